// flowctl plugins list | describe
#include <fmt/format.h>

#include <cstdio>

#include "flowctl/commands.hpp"
#include "flowctl/describe.hpp"
#include "host/plugin_loader.hpp"

namespace flow::cli {

void register_plugin_commands(CLI::App& app, Globals& g) {
  auto* plugins = app.add_subcommand("plugins", "List and describe the plugins on the search path");
  plugins->require_subcommand(1);

  auto* list = plugins->add_subcommand("list", "Every plugin found, with its kind and description");
  list->callback([&g] {
    loader::Registry registry(loader::default_search_path(g.plugin_paths));
    std::vector<std::string> failures;
    auto found = registry.discover(&failures);
    std::printf("%-22s %-10s %-9s %s\n", "NAME", "KIND", "VERSION", "DESCRIPTION");
    for (const auto& p : found)
      std::printf("%-22s %-10s %-9s %s\n", p->info().name.c_str(), kind_name(p->info().kind), p->info().version.c_str(),
                  p->info().description.c_str());
    for (const auto& f : failures) std::fprintf(stderr, "warning: %s\n", f.c_str());
    for (const auto& w : registry.warnings()) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (found.empty()) {
      std::string dirs;
      for (const auto& d : registry.search_path()) dirs += " " + d.string();
      std::fprintf(stderr, "no plugins found in:%s\n", dirs.c_str());
    }
  });

  auto name = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("text");
  auto* describe = plugins->add_subcommand("describe", "A plugin's kind, outputs and options (from its declared schema)");
  describe->add_option("plugin", *name, "Plugin name, or path to a plugin library")->required();
  describe->add_option("--format", *format, "text, json or markdown")->check(CLI::IsMember({"text", "json", "markdown"}));
  describe->callback([&g, name, format] {
    loader::Registry registry(loader::default_search_path(g.plugin_paths));
    loader::PluginPtr p;
    try {
      p = registry.get(*name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flowctl: error: %s\n", e.what());
      g.exit_code = kExitConfig;
      return;
    }
    std::string out;
    if (*format == "json") out = describe_json(p->descriptor());
    else if (*format == "markdown") out = describe_markdown(p->descriptor());
    else out = describe_text(p->descriptor());
    std::fputs(out.c_str(), stdout);
  });
}

}  // namespace flow::cli
