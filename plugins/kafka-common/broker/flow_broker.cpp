// flow-broker: librdkafka's mock cluster as a standalone Kafka-protocol dev broker. Built with
// the Kafka plugins and run by `flowctl broker` (which execs it with its arguments), so neither
// flowctl nor any process that loads plugins links librdkafka's mock or replaces a libc symbol.
//
// librdkafka 2.0.2 has no API to choose the mock broker's port: it binds 127.0.0.1:0. To listen
// on the port the user asked for (and advertise that same port in metadata, which a forwarding
// proxy could not do), this program defines `bind` itself: while `g_forced_port` is set, the
// first bind of an IPv4 socket to port 0 (the mock's listener) gets that port instead. The
// executable's symbol takes precedence over libc's for librdkafka's call; every other bind goes
// straight to the kernel unchanged. Only this small program does it.
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "flow_kafka/common.hpp"

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

int main(int argc, char** argv) {
  int port = 9092;
  int partitions = 4;
  std::vector<std::string> topics;
  CLI::App app("Kafka-protocol dev broker on 127.0.0.1 (librdkafka's mock cluster); stops on SIGINT/SIGTERM",
               "flowctl broker");
  app.add_option("--port", port, "TCP port on 127.0.0.1 (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--partitions", partitions, "Partitions of each --topic")->check(CLI::Range(1, 10000))->capture_default_str();
  app.add_option("--topic", topics, "Topic to create at start (repeatable)")->type_name("NAME");
  app.footer(std::string("Prints 'bootstrap: 127.0.0.1:PORT' on stdout once it listens.\n\nRetention: ") +
             flow::kafka::kMockRetentionNote +
             " Topics a client produces to without --topic are created on first use with 4 partitions.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  // Signals go to sigwait below, not to librdkafka's threads (they inherit this mask).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  if (port != 0 && !port_free(port)) {
    std::fprintf(stderr, "flowctl: error: broker: cannot listen on 127.0.0.1:%d: port in use\n", port);
    return 1;
  }
  std::unique_ptr<flow::kafka::EmbeddedBroker> b;
  g_forced_port = port;
  try {
    b = std::make_unique<flow::kafka::EmbeddedBroker>(partitions);
  } catch (const std::exception& e) {
    g_forced_port = 0;
    std::fprintf(stderr, "flowctl: error: broker: %s (is port %d in use?)\n", e.what(), port);
    return 1;
  }
  g_forced_port = 0;
  try {
    for (const auto& t : topics) b->ensure_topic(t, partitions);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowctl: error: broker: %s\n", e.what());
    return 1;
  }
  const std::string& bootstrap = b->bootstrap();
  if (port != 0 && bootstrap.find(":" + std::to_string(port)) == std::string::npos)
    std::fprintf(stderr, "flowctl: warning: broker could not bind port %d; listening on %s instead\n", port,
                 bootstrap.c_str());
  std::printf("bootstrap: %s\n", bootstrap.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "flowctl: broker listening on %s (%zu topic(s), %d partition(s) each); SIGINT/SIGTERM stops it\n",
               bootstrap.c_str(), topics.size(), partitions);
  int sig = 0;
  sigwait(&set, &sig);
  std::fprintf(stderr, "flowctl: broker stopping (signal %d)\n", sig);
  b.reset();
  return 0;
}
