// flowctl broker: placeholder until the Kafka plugins land (issue: Kafka). Says so plainly.
#include <cstdio>

#include "flowctl/commands.hpp"

namespace flow::cli {
void register_broker_command(CLI::App& app, Globals& g) {
  auto* broker = app.add_subcommand("broker", "Kafka-protocol dev broker (not built yet)");
  broker->callback([&g] {
    std::fprintf(stderr, "flowctl: error: 'broker' is not available in this build yet\n");
    g.exit_code = kExitRuntime;
  });
}
}  // namespace flow::cli
