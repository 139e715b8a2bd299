// flowctl broker: runs flow-broker, the Kafka-protocol dev broker built with the Kafka plugins
// (plugins/kafka-common/broker), with the same arguments. flowctl itself links no Kafka code.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "flowctl/commands.hpp"

namespace flow::cli {
namespace {
namespace fs = std::filesystem;

// FLOW_BROKER_PROGRAM, else lib/flow/flow-broker next to flowctl (build and install trees alike).
std::string broker_program() {
  if (const char* env = std::getenv("FLOW_BROKER_PROGRAM")) return env;
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  return ((ec ? fs::current_path() : self.parent_path()) / ".." / "lib" / "flow" / "flow-broker").lexically_normal();
}
}  // namespace

void register_broker_command(CLI::App& app, Globals& g) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto* broker = app.add_subcommand(
      "broker", "Kafka-protocol dev broker on 127.0.0.1 (librdkafka's mock cluster); `flowctl broker --help` for options");
  broker->prefix_command();  // every argument, --help included, goes to flow-broker
  broker->set_help_flag();
  broker->allow_extras();
  broker->callback([&g, broker, args] {
    const std::string program = broker_program();
    std::vector<std::string> argv_s = {program};
    for (const auto& a : broker->remaining()) argv_s.push_back(a);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(stdout);
    std::fflush(stderr);
    ::execv(program.c_str(), argv.data());
    std::fprintf(stderr, "flowctl: error: broker: cannot run %s: %s (built with the Kafka plugins; set FLOW_BROKER_PROGRAM)\n",
                 program.c_str(), std::strerror(errno));
    g.exit_code = kExitRuntime;
  });
}

}  // namespace flow::cli
