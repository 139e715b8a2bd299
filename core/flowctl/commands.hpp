// flowctl's commands. Each group registers its subcommands on the app; a subcommand's callback
// sets the process exit code through `exit_code`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace flow::cli {

// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitConfig = 2;

struct Globals {
  std::vector<std::string> plugin_paths;  // --plugin-path, repeatable
  std::string log_level = "info";
  int exit_code = kExitOk;
};

void register_pipeline_commands(CLI::App& app, Globals& g);  // run, validate, graph
void register_plugin_commands(CLI::App& app, Globals& g);    // plugins list|describe
void register_broker_command(CLI::App& app, Globals& g);     // broker
void register_test_plugin_command(CLI::App& app, Globals& g);  // test-plugin
void register_tap_command(CLI::App& app, Globals& g);          // tap (tap_command.cpp)
void register_top_command(CLI::App& app, Globals& g);          // top (top_command.cpp)
void register_test_command(CLI::App& app, Globals& g);         // test (test_command.cpp)
void register_reload_command(CLI::App& app, Globals& g);       // reload (reload_command.cpp)

}  // namespace flow::cli
