#include <fmt/format.h>

#include <cstdio>

#include "flowctl/commands.hpp"
#include "runtime/log.hpp"

#ifndef FLOW_VERSION
#define FLOW_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  using namespace flow::cli;
  CLI::App app{"flowctl: run and inspect Flow data pipelines"};
  app.set_version_flag("--version", std::string("flowctl ") + FLOW_VERSION);
  app.require_subcommand(1);
  // Global options (--plugin-path, --log-level) are accepted after the subcommand too.
  app.fallthrough();
  Globals g;
  app.add_option("--plugin-path", g.plugin_paths, "Directory to search for plugins (repeatable; before FLOW_PLUGIN_PATH)")
      ->type_name("DIR");
  app.add_option("--log-level", g.log_level, "debug, info, warn or error")->type_name("LEVEL");
  register_pipeline_commands(app, g);
  register_plugin_commands(app, g);
  register_broker_command(app, g);
  register_test_plugin_command(app, g);
  register_tap_command(app, g);
  register_top_command(app, g);
  register_test_command(app, g);
  register_reload_command(app, g);
  // `broker` hands its extra arguments to the broker program: none of them are flowctl's.
  app.get_subcommand("broker")->fallthrough(false);
  app.parse_complete_callback([&] {
    flow::LogLevel level;
    if (!flow::runtime::parse_log_level(g.log_level, level))
      throw CLI::ValidationError("--log-level", "must be debug, info, warn or error");
    flow::runtime::set_log_level(level);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitConfig;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowctl: error: %s\n", e.what());
    return kExitRuntime;
  }
  return g.exit_code;
}
