// Finds and loads plugin libraries (Boost.DLL), checking the ABI stamp before touching any C++
// object of the plugin. A loaded library stays mapped while anything created from it lives:
// Plugin holds the library, and stages keep their Plugin alive.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/plugin.hpp"

namespace boost::dll {
class shared_library;
}

namespace flow::loader {

class Plugin {
 public:
  Plugin(std::shared_ptr<boost::dll::shared_library> lib, const PluginDescriptor* d,
         std::filesystem::path path)
      : lib_(std::move(lib)), descriptor_(d), path_(std::move(path)) {}
  const PluginDescriptor& descriptor() const { return *descriptor_; }
  const PluginInfo& info() const { return descriptor_->info; }
  const std::filesystem::path& path() const { return path_; }
  // Non-empty when the file's name ("libflow-<name>.so") and the descriptor's name disagree.
  std::string name_warning() const;

  // Calls into the plugin, turning anything it throws into a clear message.
  std::vector<ConfigError> check(const Value& config, const Location& where) const;
  std::unique_ptr<Stage> create(const Value& config) const;  // throws std::runtime_error
  // The plugin's declared wiring for a valid config; empty / nullopt when it says nothing or
  // fails to say (a plugin's bug must not stop `validate` from reporting the rest).
  std::vector<ColumnSpec> input_columns(const Value& config) const;
  std::optional<Schema> output_schema(const Value& config) const;

 private:
  std::shared_ptr<boost::dll::shared_library> lib_;
  const PluginDescriptor* descriptor_;
  std::filesystem::path path_;
};

using PluginPtr = std::shared_ptr<const Plugin>;

// Which step of the load handshake failed: the conformance suite reports each as its own check.
enum class LoadStep { EntryPoint, Abi, Descriptor };

class LoadError : public std::runtime_error {
 public:
  explicit LoadError(const std::string& message, LoadStep step = LoadStep::EntryPoint)
      : std::runtime_error(message), step_(step) {}
  LoadStep step() const { return step_; }

 private:
  LoadStep step_;
};

// Loads one library file: the file, its entry points, its ABI stamp, then its descriptor.
// Throws LoadError naming the file, the failed step and the reason. The one handshake both
// flowctl and the conformance suite use.
PluginPtr load_plugin_file(const std::filesystem::path& path);

// "libflow-<name>.so" -> "<name>"; empty when the file is not named that way.
std::string plugin_name_from_file(const std::filesystem::path& path);

// The search path: --plugin-path entries, then FLOW_PLUGIN_PATH (colon-separated), then the
// directory next to the running flowctl (../lib/flow/plugins), which is both the build tree's
// and the install tree's layout.
std::vector<std::filesystem::path> default_search_path(const std::vector<std::string>& extra);

class Registry {
 public:
  explicit Registry(std::vector<std::filesystem::path> search_path)
      : search_path_(std::move(search_path)) {}

  // By plugin name ("csv-window-sink" -> libflow-csv-window-sink.so) or by a path to a .so.
  // Throws LoadError.
  PluginPtr get(const std::string& name_or_path);
  // Every library found on the search path; libraries that fail to load are reported in
  // `failures` as "path: reason".
  std::vector<PluginPtr> discover(std::vector<std::string>* failures = nullptr);
  const std::vector<std::filesystem::path>& search_path() const { return search_path_; }
  // Things worth a warning found while loading (a file named for another plugin), once each.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::optional<std::filesystem::path> find(const std::string& name) const;

  std::vector<std::filesystem::path> search_path_;
  std::map<std::string, PluginPtr> by_path_;
  std::vector<std::string> warnings_;
};

}  // namespace flow::loader
