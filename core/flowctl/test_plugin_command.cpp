// flowctl test-plugin: placeholder until the conformance suite lands. Says so plainly.
#include <cstdio>

#include "flowctl/commands.hpp"

namespace flow::cli {
void register_test_plugin_command(CLI::App& app, Globals& g) {
  auto* cmd = app.add_subcommand("test-plugin", "Run the plugin conformance suite (not built yet)");
  cmd->allow_extras();
  cmd->callback([&g] {
    std::fprintf(stderr, "flowctl: error: 'test-plugin' is not available in this build yet\n");
    g.exit_code = kExitRuntime;
  });
}
}  // namespace flow::cli
