#include "host/plugin_loader.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <cstring>
#include <set>

namespace flow::loader {
namespace fs = std::filesystem;

std::vector<ConfigError> Plugin::check(const Value& config, const Location& where) const {
  try {
    return descriptor_->check(config);
  } catch (const ConfigException& e) {
    return {{e.where(), e.what()}};
  } catch (const std::exception& e) {
    return {{where, fmt::format("plugin '{}' failed while checking its config: {}", info().name, e.what())}};
  } catch (...) {
    return {{where, fmt::format("plugin '{}' threw an unknown exception while checking its config", info().name)}};
  }
}

std::vector<ColumnSpec> Plugin::input_columns(const Value& config) const {
  try {
    return descriptor_->input_columns ? descriptor_->input_columns(config) : std::vector<ColumnSpec>{};
  } catch (...) {
    return {};
  }
}

std::optional<Schema> Plugin::output_schema(const Value& config) const {
  try {
    return descriptor_->output_schema ? descriptor_->output_schema(config) : std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
}

std::string Plugin::name_warning() const {
  const std::string file_name = plugin_name_from_file(path_);
  if (file_name.empty() || file_name == info().name) return {};
  return fmt::format("{}: the file is named for plugin '{}' but its descriptor says '{}'; it is used as '{}'",
                     path_.string(), file_name, info().name, info().name);
}

std::unique_ptr<Stage> Plugin::create(const Value& config) const {
  try {
    auto stage = descriptor_->create(config);
    if (!stage) throw std::runtime_error("the factory returned no stage");
    return stage;
  } catch (const ConfigException& e) {
    throw std::runtime_error(fmt::format("{}: {}", e.where().str(), e.what()));
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("plugin '{}' ({}): factory failed: {}", info().name,
                                         path_.string(), e.what()));
  } catch (...) {
    throw std::runtime_error(fmt::format("plugin '{}' ({}): factory threw an unknown exception",
                                         info().name, path_.string()));
  }
}

PluginPtr load_plugin_file(const fs::path& path) {
  const std::string file = path.string();
  if (!fs::exists(path)) throw LoadError(fmt::format("{}: no such plugin library", file));
  auto lib = std::make_shared<boost::dll::shared_library>();
  try {
    lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw LoadError(fmt::format("{}: cannot load the library: {}", file, e.what()));
  }
  std::string missing;
  for (const char* sym : {"flow_plugin_abi", "flow_plugin_descriptor_v1"})
    if (!lib->has(sym)) missing += std::string(missing.empty() ? "" : " and ") + sym;
  if (!missing.empty())
    throw LoadError(fmt::format("{}: not a Flow plugin (no {}; did it use FLOW_PLUGIN?)", file, missing));
  const AbiStamp* stamp = nullptr;
  try {
    stamp = lib->get_alias<const AbiStamp*()>("flow_plugin_abi")();
  } catch (...) {
    throw LoadError(fmt::format("{}: reading its ABI stamp failed", file), LoadStep::Abi);
  }
  if (stamp == nullptr) throw LoadError(fmt::format("{}: the ABI stamp is null", file), LoadStep::Abi);
  if (stamp->abi_version != kAbiVersion)
    throw LoadError(fmt::format("{}: built for Flow plugin ABI {}, but this flowctl has ABI {}; rebuild the plugin against this SDK",
                                file, stamp->abi_version, kAbiVersion),
                    LoadStep::Abi);
  if (stamp->toolchain == nullptr || std::strcmp(stamp->toolchain, kToolchainTag) != 0)
    throw LoadError(fmt::format("{}: built with standard library '{}' ({}), but flowctl uses '{}'", file,
                                stamp->toolchain ? stamp->toolchain : "?",
                                stamp->compiler ? stamp->compiler : "?", kToolchainTag),
                    LoadStep::Abi);
  const PluginDescriptor* d = nullptr;
  try {
    d = lib->get_alias<const PluginDescriptor*()>("flow_plugin_descriptor_v1")();
  } catch (const std::exception& e) {
    throw LoadError(fmt::format("{}: building its descriptor failed: {}", file, e.what()), LoadStep::Descriptor);
  } catch (...) {
    throw LoadError(fmt::format("{}: building its descriptor threw an unknown exception", file), LoadStep::Descriptor);
  }
  if (d == nullptr) throw LoadError(fmt::format("{}: the descriptor is null", file), LoadStep::Descriptor);
  if (d->info.name.empty()) throw LoadError(fmt::format("{}: the descriptor has no plugin name", file), LoadStep::Descriptor);
  if (!d->create || !d->check) throw LoadError(fmt::format("{}: the descriptor has no factory", file), LoadStep::Descriptor);
  return std::make_shared<Plugin>(std::move(lib), d, path);
}

std::string plugin_name_from_file(const fs::path& path) {
  const std::string f = path.filename().string();
  if (!f.starts_with("libflow-") || !f.ends_with(".so") || f.size() <= 11) return {};
  return f.substr(8, f.size() - 11);
}

static fs::path self_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

std::vector<fs::path> default_search_path(const std::vector<std::string>& extra) {
  std::vector<fs::path> out;
  for (const auto& e : extra) out.emplace_back(e);
  if (const char* env = std::getenv("FLOW_PLUGIN_PATH")) {
    std::string s(env);
    std::size_t start = 0;
    while (start <= s.size()) {
      auto end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) out.emplace_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  out.push_back((self_dir() / ".." / "lib" / "flow" / "plugins").lexically_normal());
  return out;
}

std::optional<fs::path> Registry::find(const std::string& name) const {
  for (const auto& dir : search_path_) {
    auto p = dir / ("libflow-" + name + ".so");
    if (fs::exists(p)) return p;
  }
  return std::nullopt;
}

PluginPtr Registry::get(const std::string& name_or_path) {
  fs::path path;
  if (name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".so")) {
    path = fs::absolute(name_or_path);
  } else {
    auto p = find(name_or_path);
    if (!p) {
      std::string dirs;
      for (const auto& d : search_path_) dirs += (dirs.empty() ? "" : ", ") + d.string();
      throw LoadError(fmt::format("unknown plugin '{}': no libflow-{}.so in {}", name_or_path,
                                  name_or_path, dirs));
    }
    path = *p;
  }
  auto key = fs::weakly_canonical(path).string();
  if (auto it = by_path_.find(key); it != by_path_.end()) return it->second;
  auto plugin = load_plugin_file(path);
  if (auto w = plugin->name_warning(); !w.empty()) warnings_.push_back(w);
  by_path_[key] = plugin;
  return plugin;
}

std::vector<PluginPtr> Registry::discover(std::vector<std::string>* failures) {
  std::vector<PluginPtr> out;
  std::set<std::string> names;
  for (const auto& dir : search_path_) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const auto fname = entry.path().filename().string();
      if (fname.starts_with("libflow-") && fname.ends_with(".so")) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      try {
        auto p = get(f.string());
        if (names.insert(p->info().name).second) out.push_back(p);  // first on the path wins
      } catch (const std::exception& e) {
        if (failures) failures->push_back(e.what());
      }
    }
  }
  return out;
}

}  // namespace flow::loader
