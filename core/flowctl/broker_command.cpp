// flowctl broker: librdkafka's mock cluster as a standalone Kafka-protocol dev broker.
//
// librdkafka 2.0.2 has no API to choose the mock broker's port: it binds 127.0.0.1:0. To listen
// on the port the user asked for (and advertise that same port in metadata, which a forwarding
// proxy could not do), flowctl defines `bind` itself: while `g_forced_port` is set, the first
// bind of an IPv4 socket to port 0 (the mock's listener) gets that port instead. The executable's
// symbol takes precedence over libc's for librdkafka's call; every other bind goes straight to
// the kernel unchanged.
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "flow_kafka/common.hpp"
#include "flowctl/commands.hpp"

namespace {
std::atomic<int> g_forced_port{0};
}  // namespace

extern "C" int bind(int fd, const struct sockaddr* addr, socklen_t len) noexcept {
  if (addr && addr->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    int port = g_forced_port.load();
    if (in->sin_port == 0 && port != 0 && g_forced_port.compare_exchange_strong(port, 0)) {
      sockaddr_in fixed = *in;
      fixed.sin_port = htons(static_cast<uint16_t>(port));
      return static_cast<int>(syscall(SYS_bind, fd, reinterpret_cast<const sockaddr*>(&fixed), sizeof fixed));
    }
  }
  return static_cast<int>(syscall(SYS_bind, fd, addr, len));
}

namespace flow::cli {
namespace {
// librdkafka 2.0.2 asserts (aborts) when the mock's listener cannot bind, so try the port first.
bool port_free(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // as the mock does
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

void register_broker_command(CLI::App& app, Globals& g) {
  struct Args {
    int port = 9092;
    int partitions = 4;
    std::vector<std::string> topics;
  };
  auto args = std::make_shared<Args>();
  auto* broker = app.add_subcommand(
      "broker", "Kafka-protocol dev broker on 127.0.0.1 (librdkafka's mock cluster); stops on SIGINT/SIGTERM");
  broker->add_option("--port", args->port, "TCP port on 127.0.0.1 (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  broker->add_option("--partitions", args->partitions, "Partitions of each --topic")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  broker->add_option("--topic", args->topics, "Topic to create at start (repeatable)")->type_name("NAME");
  broker->footer(std::string("Prints 'bootstrap: 127.0.0.1:PORT' on stdout once it listens.\n\nRetention: ") +
                 flow::kafka::kMockRetentionNote +
                 " Topics a client produces to without --topic are created on first use with 4 partitions.");
  broker->callback([&g, args] {
    // Signals go to sigwait below, not to librdkafka's threads (they inherit this mask).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    if (args->port != 0 && !port_free(args->port)) {
      std::fprintf(stderr, "flowctl: error: broker: cannot listen on 127.0.0.1:%d: port in use\n", args->port);
      g.exit_code = kExitRuntime;
      return;
    }
    std::unique_ptr<flow::kafka::EmbeddedBroker> b;
    g_forced_port = args->port;
    try {
      b = std::make_unique<flow::kafka::EmbeddedBroker>(args->partitions);
    } catch (const std::exception& e) {
      g_forced_port = 0;
      std::fprintf(stderr, "flowctl: error: broker: %s (is port %d in use?)\n", e.what(), args->port);
      g.exit_code = kExitRuntime;
      return;
    }
    g_forced_port = 0;
    try {
      for (const auto& t : args->topics) b->ensure_topic(t, args->partitions);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "flowctl: error: broker: %s\n", e.what());
      g.exit_code = kExitRuntime;
      return;
    }
    const std::string& bootstrap = b->bootstrap();
    if (args->port != 0 && bootstrap.find(":" + std::to_string(args->port)) == std::string::npos)
      std::fprintf(stderr, "flowctl: warning: broker could not bind port %d; listening on %s instead\n", args->port,
                   bootstrap.c_str());
    std::printf("bootstrap: %s\n", bootstrap.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "flowctl: broker listening on %s (%zu topic(s), %d partition(s) each); SIGINT/SIGTERM stops it\n",
                 bootstrap.c_str(), args->topics.size(), args->partitions);
    int sig = 0;
    sigwait(&set, &sig);
    std::fprintf(stderr, "flowctl: broker stopping (signal %d)\n", sig);
    b.reset();
    g.exit_code = kExitOk;
  });
}

}  // namespace flow::cli
