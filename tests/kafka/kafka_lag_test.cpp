// kafka-source's per-partition lag, end to end: `flowctl broker`, records produced with kcat to
// chosen partitions, `flowctl run --metrics-port 0` with a sink held shut by a gate file (the
// consumer fills the pipeline, then pauses its partitions), /metrics and /metrics.json read over
// HTTP, and `flowctl top` in tmux. Records produced while the consumer is paused must show as
// exactly that much more lag per partition (a cached high watermark would not move), and the lag
// must fall to 0 once the gate opens and everything is consumed.
#include <gtest/gtest.h>
#include <httplib.h>
#include <simdjson.h>

#include <fstream>
#include <map>
#include <regex>

#include "support/process.hpp"

namespace {

namespace fs = std::filesystem;
using flow::test::eventually;
using flow::test::Process;
using flow::test::TempDir;
using namespace std::chrono_literals;

using flow::test::have;
using flow::test::shell;

std::size_t line_count(const fs::path& p) {
  std::ifstream f(p);
  std::size_t n = 0;
  for (std::string l; std::getline(f, l);) n += !l.empty();
  return n;
}

// The consume stage's lag per partition and its records counter, from /metrics.json.
struct Lag {
  std::map<int, int64_t> by_partition;
  uint64_t records = 0;
  int64_t at(int partition) const {
    auto it = by_partition.find(partition);
    return it == by_partition.end() ? -1 : it->second;
  }
  int64_t total() const {
    int64_t t = 0;
    for (const auto& [p, v] : by_partition) t += v;
    return t;
  }
  bool operator==(const Lag&) const = default;
};

std::optional<Lag> read_lag(int port, const std::string& topic) {
  httplib::Client c("127.0.0.1", port);
  auto res = c.Get("/metrics.json");
  if (!res || res->status != 200) return std::nullopt;
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  if (p.parse(res->body).get(doc)) return std::nullopt;
  Lag lag;
  simdjson::dom::array stages;
  if (doc["stages"].get(stages)) return std::nullopt;
  for (auto s : stages) {
    if (std::string_view(s["id"].get_string().value_unsafe()) != "consume") continue;
    uint64_t records = 0;
    if (!s["counters"]["records"].get(records)) lag.records = records;
    simdjson::dom::object gauges;
    if (s["gauges"].get(gauges)) return std::nullopt;
    const std::regex key("kafka_partition_lag\\{topic=\"" + topic + "\",partition=\"(\\d+)\"\\}");
    for (auto [k, v] : gauges) {
      std::smatch m;
      const std::string ks(k);
      if (std::regex_match(ks, m, key)) lag.by_partition[std::stoi(m[1])] = v.get_int64().value_unsafe();
    }
  }
  return lag;
}

class KafkaLag : public ::testing::Test {
 protected:
  void TearDown() override {
    if (broker_) {
      broker_->signal(SIGTERM);
      broker_->wait(20s);
    }
  }

  std::string start_broker(int partitions) {
    broker_ = std::make_unique<Process>(std::vector<std::string>{FLOW_FLOWCTL, "broker", "--port", "0", "--partitions",
                                                                 std::to_string(partitions), "--topic", topic_},
                                        dir_.path() / "broker");
    std::string bootstrap;
    EXPECT_TRUE(eventually([&] {
      const auto out = broker_->out();
      const auto at = out.find("bootstrap: ");
      const auto nl = out.find('\n', at);
      if (at == std::string::npos || nl == std::string::npos) return false;
      bootstrap = out.substr(at + 11, nl - at - 11);
      return true;
    }, 20s)) << broker_->err();
    return bootstrap;
  }

  // kcat -P -p PARTITION: `n` records numbered from `first`.
  void produce(const std::string& bootstrap, int partition, int n, int first) {
    const auto file = dir_.path() / "produce.txt";
    {
      std::ofstream f(file);
      for (int i = first; i < first + n; ++i) f << "{\"seq\":" << i << "}\n";
    }
    Process kcat({"/usr/bin/kcat", "-P", "-b", bootstrap, "-t", topic_, "-p", std::to_string(partition), "-l", file.string()},
                 dir_.path() / "kcat");
    ASSERT_EQ(kcat.wait(60s), 0) << kcat.err();
  }

  TempDir dir_;
  std::string topic_ = "lag";
  std::unique_ptr<Process> broker_;
};

TEST_F(KafkaLag, LagIsWhatThePausedConsumerHasNotReadPerPartitionAndFallsToZero) {
  if (!have("kcat")) GTEST_SKIP() << "kcat is not installed (scripts/setup installs it)";
  const auto bootstrap = start_broker(2);
  produce(bootstrap, 0, 300, 0);
  produce(bootstrap, 1, 200, 300);
  const auto gate = dir_.path() / "gate";
  const auto out = dir_.path() / "records.tsv";
  flow::test::write_file(dir_.path() / "lag.yaml",
                         "name: lag\nstages:\n"
                         "  - id: consume\n    plugin: kafka-source\n    config:\n"
                         "      brokers: '" + bootstrap + "'\n      topics: [" + topic_ + "]\n      group: g\n"
                         "      batch_size: 100\n      commit_interval: 200ms\n"
                         "  - id: write\n    plugin: test.kafka-record-sink\n    input: consume\n"
                         "    buffer: {batches: 1}\n"
                         "    config: {path: '" + out.string() + "', gate: '" + gate.string() + "'}\n");
  Process run({FLOW_FLOWCTL, "--plugin-path", FLOW_PLUGIN_DIR, "--plugin-path", FLOW_TEST_PLUGIN_DIR, "--log-level", "debug",
               "run", "-q", (dir_.path() / "lag.yaml").string(), "--metrics-port", "0"},
              dir_.path() / "run");
  int port = 0;
  const std::regex port_re(R"(metrics: http://127\.0\.0\.1:(\d+)/)");
  ASSERT_TRUE(eventually([&] {
    std::smatch m;
    const std::string err = run.err();
    if (std::regex_search(err, m, port_re)) port = std::stoi(m[1]);
    return port > 0 || run.wait(0ms).has_value();
  }, 60s));
  ASSERT_GT(port, 0) << run.err();

  // The sink takes nothing: the consumer fills the pipeline and pauses its partitions.
  ASSERT_TRUE(eventually([&] { return run.err().find("partitions paused") != std::string::npos; }, 90s)) << run.err();
  // Still, until what was fetched before the pause is taken: then the lag of each partition is
  // what it has not read, in all exactly the records produced minus those it took.
  Lag before;
  auto still_since = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] {
    const auto now = read_lag(port, topic_);
    if (!now || now->by_partition.size() != 2 || now->total() != 500 - static_cast<int64_t>(now->records) ||
        !(*now == before)) {
      if (now) before = *now;
      still_since = std::chrono::steady_clock::now();
      return false;
    }
    return std::chrono::steady_clock::now() - still_since > 3s;  // several lag refreshes alike
  }, 90s)) << "lag total " << before.total() << ", records " << before.records << "\n" << run.err();
  EXPECT_EQ(line_count(out), 0u) << "the gated sink wrote records";

  // Produced while paused: each partition's lag grows by exactly what it got.
  produce(bootstrap, 0, 150, 500);
  produce(bootstrap, 1, 50, 650);
  Lag paused;
  ASSERT_TRUE(eventually([&] {
    const auto now = read_lag(port, topic_);
    if (now) paused = *now;
    return now && now->at(0) == before.at(0) + 150 && now->at(1) == before.at(1) + 50;
  }, 60s)) << "partition 0: " << paused.at(0) << " (was " << before.at(0) << "), partition 1: " << paused.at(1)
           << " (was " << before.at(1) << ")";
  EXPECT_EQ(paused.records, before.records) << "the paused consumer took records";
  // Prometheus: one gauge family, a series per partition.
  httplib::Client c("127.0.0.1", port);
  const auto prom = c.Get("/metrics");
  ASSERT_TRUE(prom);
  EXPECT_NE(prom->body.find("# TYPE flow_plugin_kafka_partition_lag gauge\n"), std::string::npos) << prom->body;
  for (int p : {0, 1})
    EXPECT_NE(prom->body.find("flow_plugin_kafka_partition_lag{pipeline=\"lag\",stage=\"consume\",topic=\"" + topic_ +
                              "\",partition=\"" + std::to_string(p) + "\"} " + std::to_string(paused.at(p)) + "\n"),
              std::string::npos)
        << prom->body;

  // `flowctl top` in an 80-column tmux: the partition lag section with the total.
  const bool tmux = have("tmux");
  const std::string t = "tmux -L flow-lag-" + std::to_string(getpid()) + " ";
  struct Kill {
    std::string t;
    ~Kill() { shell(t + "kill-server 2>/dev/null"); }
  } kill{t};
  auto screen = [&] { return shell(t + "capture-pane -p -t top"); };
  std::string last;
  if (tmux) {
    shell(t + "-f /dev/null new-session -d -s top -x 80 -y 40 '" FLOW_FLOWCTL " top --port " + std::to_string(port) + "'");
    const std::string total = "PARTITION LAG  total " + std::to_string(paused.total()) + " in 2 partition(s)";
    const std::regex row0("\nconsume +" + topic_ + " +0 +" + std::to_string(paused.at(0)) + "\n");
    ASSERT_TRUE(eventually([&] {
      last = screen();
      return last.find(total) != std::string::npos && std::regex_search(last, row0);
    }, 30s)) << last;
    std::istringstream lines(last);
    for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 80u) << l;
  }

  // The gate opens: everything is consumed and written, and the lag falls to 0.
  flow::test::write_file(gate, "");
  Lag done;
  ASSERT_TRUE(eventually([&] {
    const auto now = read_lag(port, topic_);
    if (now) done = *now;
    return now && now->at(0) == 0 && now->at(1) == 0 && line_count(out) == 700;
  }, 90s)) << "lag " << done.at(0) << "/" << done.at(1) << ", written " << line_count(out);
  EXPECT_EQ(done.records, 700u);
  if (tmux)
    EXPECT_TRUE(eventually([&] { return (last = screen()).find("PARTITION LAG  total 0 in 2 partition(s)") != std::string::npos; },
                           30s))
        << last;
  else
    std::cerr << "tmux is not installed: flowctl top not checked (scripts/setup installs it)\n";
  run.signal(SIGINT);
  EXPECT_EQ(run.wait(120s), 0) << run.err();
}

}  // namespace
