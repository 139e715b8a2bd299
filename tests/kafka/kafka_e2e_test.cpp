// Kafka end to end, with real processes: `flowctl broker` (librdkafka's mock cluster), kcat and
// `flowctl run`. Each test starts its own broker on a free port (--port 0, the port read from
// its "bootstrap:" line) with its own topic. Waits are bounded; nothing asserts on wall time.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A child process with stdout/stderr in files.
class Proc {
 public:
  Proc(std::vector<std::string> argv, const fs::path& out, const fs::path& err) : out_(out), err_(err) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(o, 1);
      dup2(e, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
  }
  ~Proc() {
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  void signal(int sig) {
    if (!status_) kill(pid_, sig);
  }
  // Exit code (or 128+signal); nullopt if still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(20ms);
    }
    return status_;
  }
  bool running() { return !wait(0ms); }
  std::string err() const { return slurp(err_); }
  std::string out() const { return slurp(out_); }
  static std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  fs::path out_, err_;
};

// Waits (bounded) until `pred` holds.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 60s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

std::vector<std::string> lines(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream f(p);
  for (std::string l; std::getline(f, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

class KafkaE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / (std::string("flow-kafka-") + info->name() + "-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    topic_ = std::string("t-") + info->name();
  }
  void TearDown() override {
    if (broker_) {
      broker_->signal(SIGTERM);
      EXPECT_EQ(broker_->wait(20s), 0) << "flowctl broker did not stop cleanly on SIGTERM";
    }
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Starts `flowctl broker` with this test's topic; returns the bootstrap address.
  std::string start_broker(int partitions) {
    broker_ = std::make_unique<Proc>(
        std::vector<std::string>{FLOW_FLOWCTL, "broker", "--port", "0", "--partitions", std::to_string(partitions),
                                 "--topic", topic_},
        dir_ / "broker.out", dir_ / "broker.err");
    std::string bootstrap;
    EXPECT_TRUE(eventually(
        [&] {
          const auto out = broker_->out();
          const auto at = out.find("bootstrap: ");
          const auto nl = out.find('\n', at);
          if (at == std::string::npos || nl == std::string::npos) return false;
          bootstrap = out.substr(at + 11, nl - at - 11);
          return true;
        },
        20s))
        << broker_->err();
    return bootstrap;
  }

  // kcat -P: one message per line of `messages` ("key\tvalue").
  void kcat_produce(const std::string& bootstrap, const std::vector<std::string>& messages) {
    const auto file = dir_ / "produce.txt";
    {
      std::ofstream f(file);
      for (const auto& m : messages) f << m << "\n";
    }
    Proc kcat({"kcat", "-P", "-b", bootstrap, "-t", topic_, "-K", "\t", "-l", file.string()}, dir_ / "kcat.out",
              dir_ / "kcat.err");
    ASSERT_EQ(kcat.wait(60s), 0) << kcat.err();
  }

  fs::path write_consumer_pipeline(const std::string& name, const std::string& bootstrap, const fs::path& out,
                                    const std::string& extra_source = "", const std::string& extra_sink = "") {
    const auto p = dir_ / (name + ".yaml");
    std::ofstream f(p);
    f << "name: " << name << "\n"
      << "stages:\n"
      << "  - id: consume\n    plugin: kafka-source\n    config:\n"
      << "      brokers: '" << bootstrap << "'\n      topics: [" << topic_ << "]\n      group: g\n"
      << "      batch_size: 100\n      commit_interval: 200ms\n"
      << extra_source << "  - id: write\n    plugin: test.kafka-record-sink\n    input: consume\n    config:\n"
      << "      path: '" << out.string() << "'\n"
      << extra_sink;
    return p;
  }

  // Two members of group 'g' on an 8-partition topic, each assigned 4 partitions before `n`
  // records are produced, then running until the records are written between them.
  struct Members {
    std::unique_ptr<Proc> a, b;
    fs::path out_a, out_b;
  };
  void start_two_members_and_consume(Members& m, int n, const std::string& commit_interval = "200ms") {
    const auto bootstrap = start_broker(8);
    m.out_a = dir_ / "a.tsv";
    m.out_b = dir_ / "b.tsv";
    auto pipeline = [&](const std::string& name, const fs::path& out) {
      const auto p = write_consumer_pipeline(name, bootstrap, out);
      std::ifstream in(p);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      text.replace(text.find("200ms"), 5, commit_interval);
      std::ofstream(p) << text;
      return p;
    };
    m.a = run_flowctl(pipeline("a", m.out_a), "a");
    m.b = run_flowctl(pipeline("b", m.out_b), "b");
    auto holds4 = [](const Proc& p) { return p.err().find("assigned 4") != std::string::npos; };
    ASSERT_TRUE(eventually([&] { return holds4(*m.a) && holds4(*m.b); }, 90s))
        << "a:\n" << m.a->err() << "\nb:\n" << m.b->err();
    kcat_produce(bootstrap, make_messages(n));
    ASSERT_TRUE(eventually(
        [&] { return lines(m.out_a).size() + lines(m.out_b).size() >= static_cast<std::size_t>(n); }, 90s));
  }

  // `global` goes before the subcommand (e.g. --log-level debug).
  // `after` follows the pipeline (--set ...); `quiet` false keeps the summary on stderr.
  std::unique_ptr<Proc> run_flowctl(const fs::path& pipeline, const std::string& tag,
                                    std::vector<std::string> global = {}, std::vector<std::string> after = {},
                                    bool quiet = true) {
    std::vector<std::string> argv{FLOW_FLOWCTL, "--plugin-path", FLOW_PLUGIN_DIR, "--plugin-path", FLOW_TEST_PLUGIN_DIR};
    argv.insert(argv.end(), global.begin(), global.end());
    argv.push_back("run");
    if (quiet) argv.push_back("-q");
    argv.push_back(pipeline.string());
    argv.insert(argv.end(), after.begin(), after.end());
    return std::make_unique<Proc>(argv, dir_ / (tag + ".out"), dir_ / (tag + ".err"));
  }

  static bool built(std::initializer_list<const char*> plugins) {
    for (const char* p : plugins)
      if (!fs::exists(fs::path(FLOW_PLUGIN_DIR) / (std::string("libflow-") + p + ".so"))) return false;
    return true;
  }

  // A consumer group member writing validated {"seq","temp"} records to CSV parts under `out`.
  fs::path write_csv_member(const std::string& name, const std::string& bootstrap, const fs::path& out,
                            const std::string& extra_source = "") {
    const auto p = dir_ / (name + ".yaml");
    std::ofstream f(p);
    f << "name: " << name << "\nstages:\n"
      << "  - id: consume\n    plugin: kafka-source\n    config:\n"
      << "      brokers: '" << bootstrap << "'\n      topics: [" << topic_ << "]\n      group: g\n"
      << "      batch_size: 100\n      commit_interval: 200ms\n"
      << "      librdkafka: {session.timeout.ms: '6000', heartbeat.interval.ms: '500'}\n"
      << extra_source
      << "  - id: validate\n    plugin: json-validator\n    input: consume\n    config:\n"
      << "      schema: {seq: int, temp: float}\n      on_invalid: fail\n"
      << "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n    config: {path: '" << out.string()
      << "', window: 1s}\n";
    return p;
  }

  // Messages of about 1 KiB, seq from..to-1: 7,000 of them pass the mock cluster's 5 MiB.
  static std::vector<std::string> padded_messages(int from, int to) {
    std::vector<std::string> out;
    const std::string pad(1000, 'x');
    for (int i = from; i < to; ++i)
      out.push_back("k\t{\"seq\":" + std::to_string(i) + ",\"temp\":20.5,\"pad\":\"" + pad + "\"}");
    return out;
  }

  // The oldest offset partition 0 of the topic still holds (kcat reads one record from the start).
  int64_t oldest_offset(const std::string& bootstrap) {
    Proc low({"kcat", "-C", "-b", bootstrap, "-t", topic_, "-o", "beginning", "-c", "1", "-e", "-q", "-f", "%o\\n"},
             dir_ / "low.out", dir_ / "low.err");
    EXPECT_EQ(low.wait(60s), 0) << low.err();
    return std::stoll(low.out());
  }

  // The first column of every committed part (one with a manifest entry) under these dirs.
  static std::vector<std::string> committed_first_cells(const std::vector<fs::path>& dirs) {
    std::vector<std::string> out;
    for (const auto& d : dirs) {
      if (!fs::exists(d)) continue;
      for (const auto& e : fs::directory_iterator(d)) {
        const auto name = e.path().filename().string();
        if (e.path().extension() != ".csv" || name.front() == '.') continue;
        if (!fs::exists(d / "_checkpoint" / "commits" / (e.path().stem().string() + ".json"))) continue;
        auto ls = lines(e.path());
        for (std::size_t i = 1; i < ls.size(); ++i) out.push_back(ls[i].substr(0, ls[i].find(',')));
      }
    }
    return out;
  }

  static uint64_t counter(const std::string& err, const std::string& stage, const std::string& name) {
    std::stringstream s(err);
    for (std::string l; std::getline(s, l);) {
      if (l.rfind(stage + " ", 0) != 0) continue;
      const auto at = l.find(" " + name + "=");
      if (at != std::string::npos) return std::stoull(l.substr(at + name.size() + 2));
    }
    return 0;
  }

  static std::vector<std::string> make_messages(int n, int first = 0) {
    std::vector<std::string> m;
    for (int i = first; i < first + n; ++i)
      m.push_back("sensor-" + std::to_string(i % 17) + "\t{\"seq\":" + std::to_string(i) + ",\"temp\":" +
                  std::to_string(20 + i % 10) + ".5}");
    return m;
  }

  // value column of record-sink lines, by count.
  static std::map<std::string, int> value_counts(const std::vector<std::string>& ls) {
    std::map<std::string, int> c;
    for (const auto& l : ls) c[l.substr(l.rfind('\t') + 1)]++;
    return c;
  }

  fs::path dir_;
  std::string topic_;
  std::unique_ptr<Proc> broker_;
};

TEST_F(KafkaE2E, ConsumerPipelineDeliversEveryKcatMessageFieldForField) {
  const auto bootstrap = start_broker(4);
  const auto msgs = make_messages(500);
  kcat_produce(bootstrap, msgs);
  const auto out = dir_ / "records.tsv";
  auto run = run_flowctl(write_consumer_pipeline("consume", bootstrap, out, "      exit_at_end: true\n"), "run");
  ASSERT_EQ(run->wait(120s), 0) << run->err();
  const auto got = lines(out);
  ASSERT_EQ(got.size(), msgs.size()) << run->err();
  std::multiset<std::string> expected(msgs.begin(), msgs.end()), actual;
  for (const auto& l : got) {
    // topic, partition, offset, key, value
    std::vector<std::string> f;
    std::stringstream s(l);
    for (std::string x; std::getline(s, x, '\t');) f.push_back(x);
    ASSERT_EQ(f.size(), 5u) << l;
    EXPECT_EQ(f[0], topic_);
    actual.insert(f[3] + "\t" + f[4]);
  }
  EXPECT_EQ(actual, expected);
}

TEST_F(KafkaE2E, ConsumerPipelineArchivesEveryKcatJsonLineFieldForField) {
  for (const char* p : {"json-validator", "csv-window-sink", "merge-archive"})
    if (!fs::exists(fs::path(FLOW_PLUGIN_DIR) / (std::string("libflow-") + p + ".so")))
      GTEST_SKIP() << p << " is not built";
  const auto bootstrap = start_broker(4);
  const int n = 1000;
  std::vector<std::string> msgs, expected_rows;
  for (int i = 0; i < n; ++i) {
    const std::string id = std::to_string(1 + i % 13), t = std::to_string(10 + i % 20) + "." + std::to_string(1 + i % 9),
                      h = std::to_string(30 + i % 50) + ".5",
                      ts = "2025-06-15 09:" + std::to_string(10 + i / 60 % 50) + ":" + std::to_string(10 + i % 50);
    msgs.push_back(id + "\t{\"sensor_id\":" + id + ",\"temperature\":" + t + ",\"humidity\":" + h +
                   ",\"timestamp\":\"" + ts + "\"}");
    expected_rows.push_back(id + "," + t + "," + h + "," + ts);  // numbers chosen to print as written
  }
  kcat_produce(bootstrap, msgs);
  const auto p = dir_ / "archive.yaml";
  {
    std::ofstream f(p);
    f << "name: archive\nstages:\n"
      << "  - id: consume\n    plugin: kafka-source\n    config:\n"
      << "      brokers: '" << bootstrap << "'\n      topics: [" << topic_ << "]\n      exit_at_end: true\n"
      << "  - id: validate\n    plugin: json-validator\n    input: consume\n    config:\n"
      << "      schema: {sensor_id: int, temperature: float, humidity: float, timestamp: timestamp}\n"
      << "      on_invalid: fail\n"
      << "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n    config: {path: '" << (dir_ / "parts").string()
      << "', window: 1s}\n"
      << "  - id: archive\n    plugin: merge-archive\n    input: csv\n    config: {parts_dir: '"
      << (dir_ / "parts").string() << "', backup_dir: '" << (dir_ / "backup").string() << "'}\n";
  }
  auto run = run_flowctl(p, "run");
  ASSERT_EQ(run->wait(120s), 0) << run->err();
  std::vector<std::string> rows;
  for (const auto& e : fs::directory_iterator(dir_ / "backup"))
    if (e.path().extension() == ".csv") {
      auto ls = lines(e.path());
      ASSERT_FALSE(ls.empty());
      EXPECT_EQ(ls[0], "sensor_id,temperature,humidity,timestamp");
      rows.insert(rows.end(), ls.begin() + 1, ls.end());
    }
  std::multiset<std::string> want(expected_rows.begin(), expected_rows.end()), got(rows.begin(), rows.end());
  EXPECT_EQ(rows.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(got, want);
}

TEST_F(KafkaE2E, ProducerPipelineSendsReadingsKeyedBySensor) {
  if (!fs::exists(fs::path(FLOW_PLUGIN_DIR) / "libflow-sensor-simulator.so"))
    GTEST_SKIP() << "sensor-simulator is not built";
  const auto bootstrap = start_broker(4);
  const int n = 300;
  const auto p = dir_ / "produce.yaml";
  {
    std::ofstream f(p);
    f << "name: produce\nstages:\n"
      << "  - id: sim\n    plugin: sensor-simulator\n    config: {sensors: 7, rate: 0, max_records: " << n << "}\n"
      << "  - id: publish\n    plugin: kafka-sink\n    input: sim\n    config:\n"
      << "      brokers: '" << bootstrap << "'\n      topic: " << topic_ << "\n";
  }
  auto run = run_flowctl(p, "run");
  ASSERT_EQ(run->wait(120s), 0) << run->err();
  Proc kcat({"kcat", "-C", "-b", bootstrap, "-t", topic_, "-e", "-o", "beginning", "-f", "%k\t%s\n"},
            dir_ / "kcat.out", dir_ / "kcat.err");
  ASSERT_EQ(kcat.wait(60s), 0) << kcat.err();
  const auto got = lines(dir_ / "kcat.out");
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  std::set<std::string> keys;
  for (const auto& l : got) {
    const auto key = l.substr(0, l.find('\t'));
    keys.insert(key);
    // The key is the sensor id that the JSON value names.
    EXPECT_NE(l.find(key, key.size() + 1), std::string::npos) << l;
  }
  EXPECT_EQ(keys.size(), 7u);
}

TEST_F(KafkaE2E, TwoConsumersInOneGroupSplitPartitionsAndDeliverEachRecordOnce) {
  const int n = 2000;
  Members m;
  start_two_members_and_consume(m, n);
  if (HasFatalFailure()) return;
  m.a->signal(SIGTERM);
  m.b->signal(SIGTERM);
  EXPECT_EQ(m.a->wait(60s), 0) << m.a->err();
  EXPECT_EQ(m.b->wait(60s), 0) << m.b->err();
  const auto la = lines(m.out_a), lb = lines(m.out_b);
  EXPECT_GT(la.size(), 0u);
  EXPECT_GT(lb.size(), 0u);
  std::vector<std::string> all = la;
  all.insert(all.end(), lb.begin(), lb.end());
  const auto counts = value_counts(all);
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(n));
  for (const auto& [v, c] : counts) EXPECT_EQ(c, 1) << v;
  // Each partition went to exactly one member.
  std::set<std::string> pa, pb;
  for (const auto& l : la) pa.insert(l.substr(0, l.find('\t', l.find('\t') + 1)));
  for (const auto& l : lb) pb.insert(l.substr(0, l.find('\t', l.find('\t') + 1)));
  for (const auto& p : pa) EXPECT_EQ(pb.count(p), 0u) << p;
}

// librdkafka 2.0.2's rd_kafka_consumer_close() could hang for good when another member's leave
// put the group into a rebalance just as this one stopped (seen in CI): the member stopped
// second must still exit, with every record it had read written.
TEST_F(KafkaE2E, MemberStoppedWhileTheGroupRebalancesExits) {
  const int n = 2000;
  Members m;
  // No periodic commit during the run: the final commit meets the rebalance.
  start_two_members_and_consume(m, n, "1h");
  if (HasFatalFailure()) return;
  m.b->signal(SIGTERM);
  ASSERT_EQ(m.b->wait(60s), 0) << m.b->err();
  // a has not yet noticed b's leave (heartbeats are 3s apart).
  m.a->signal(SIGTERM);
  EXPECT_EQ(m.a->wait(60s), 0) << m.a->err();
  std::vector<std::string> all = lines(m.out_a);
  for (auto& l : lines(m.out_b)) all.push_back(std::move(l));
  EXPECT_EQ(value_counts(all).size(), static_cast<std::size_t>(n));
}

TEST_F(KafkaE2E, KillNineAndRestartLosesNoRecord) {
  const auto bootstrap = start_broker(4);
  const int n = 20000;
  kcat_produce(bootstrap, make_messages(n));
  const auto out = dir_ / "records.tsv";
  // A slow sink so the kill lands mid-stream; a short session timeout so the restarted member
  // need not wait 45s for the group to drop the killed one.
  const std::string session = "      librdkafka: {session.timeout.ms: '6000', heartbeat.interval.ms: '1000'}\n";
  const auto p = write_consumer_pipeline("consume", bootstrap, out, session, "      delay: 20ms\n");
  {
    auto first = run_flowctl(p, "first");
    ASSERT_TRUE(eventually([&] { return lines(out).size() >= 3000; }, 90s)) << first->err();
    first->signal(SIGKILL);
    ASSERT_TRUE(first->wait(10s));
  }
  const std::size_t before = lines(out).size();
  ASSERT_LT(before, static_cast<std::size_t>(n)) << "the first run finished before the kill";
  // The restart reads to the end.
  const auto p2 = write_consumer_pipeline("consume2", bootstrap, out, session + "      exit_at_end: true\n");
  auto second = run_flowctl(p2, "second");
  ASSERT_EQ(second->wait(180s), 0) << second->err();
  const auto counts = value_counts(lines(out));
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(n)) << "records missing from the union of both runs";
  std::size_t dups = 0;
  for (const auto& [v, c] : counts) dups += static_cast<std::size_t>(c - 1);
  std::printf("[ kafka    ] kill -9 after %zu of %d records: %zu duplicate(s) after restart (at-least-once)\n", before,
              n, dups);
  EXPECT_LT(dups, static_cast<std::size_t>(n));
}

TEST_F(KafkaE2E, SlowSinkWithShortPollIntervalStaysInGroupAndDeliversAll) {
  const auto bootstrap = start_broker(2);
  const int n = 1000;
  kcat_produce(bootstrap, make_messages(n));
  const auto out = dir_ / "records.tsv";
  // 10 batches of 100 at 1s each take ~10s, over three times max_poll_interval: only a consumer
  // that keeps polling while paused stays in the group.
  const auto p = write_consumer_pipeline("slow", bootstrap, out, "      max_poll_interval: 3s\n      exit_at_end: true\n",
                                         "      delay: 1s\n    buffer: {batches: 2}\n");
  auto run = run_flowctl(p, "run", {"--log-level", "debug"});
  ASSERT_EQ(run->wait(180s), 0) << run->err();
  const auto counts = value_counts(lines(out));
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(n));
  for (const auto& [v, c] : counts) EXPECT_EQ(c, 1) << v;
  const auto err = run->err();
  EXPECT_NE(err.find("partitions paused"), std::string::npos) << "backpressure never paused the partitions";
  EXPECT_EQ(err.find("revoked"), std::string::npos) << "the consumer lost its partitions:\n" << err;
  EXPECT_EQ(err.find("MAX_POLL_EXCEEDED"), std::string::npos) << err;
}

// on_stop: drain. A SIGINT lands while a slow sink holds most of the topic back; the source
// still emits everything below the high watermarks of the stop before it returns.
TEST_F(KafkaE2E, DrainedStopConsumesEverythingProducedBeforeIt) {
  const auto bootstrap = start_broker(4);
  const int n = 3000;
  kcat_produce(bootstrap, make_messages(n));
  const auto out = dir_ / "records.tsv";
  const auto p = write_consumer_pipeline("drain", bootstrap, out, "      on_stop: drain\n      drain_timeout: 120s\n",
                                         "      delay: 50ms\n    buffer: {batches: 2}\n");
  auto run = run_flowctl(p, "run");
  ASSERT_TRUE(eventually([&] { return lines(out).size() >= 100; }, 90s)) << run->err();
  run->signal(SIGINT);
  const std::size_t at_stop = lines(out).size();
  ASSERT_EQ(run->wait(180s), 0) << run->err();
  ASSERT_LT(at_stop, static_cast<std::size_t>(n)) << "everything was consumed before the stop";
  const auto counts = value_counts(lines(out));
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(n)) << run->err();
  for (const auto& [v, c] : counts) EXPECT_EQ(c, 1) << v;
  EXPECT_NE(run->err().find("drained"), std::string::npos) << run->err();
}

// The IoT shape in one process: simulator -> kafka-sink -> kafka-source (stop_after the sink,
// on_stop: drain) -> sink. When the run's duration ends, every record produced is consumed.
TEST_F(KafkaE2E, StopAfterProducerWithDrainConsumesEverythingProduced) {
  if (!fs::exists(fs::path(FLOW_PLUGIN_DIR) / "libflow-sensor-simulator.so"))
    GTEST_SKIP() << "sensor-simulator is not built";
  const auto bootstrap = start_broker(4);
  const auto out = dir_ / "records.tsv";
  const auto p = dir_ / "loop.yaml";
  {
    std::ofstream f(p);
    f << "name: loop\nrun: {duration: 4s}\nstages:\n"
      << "  - id: sim\n    plugin: sensor-simulator\n    config: {sensors: 50, rate: 20}\n"
      << "  - id: publish\n    plugin: kafka-sink\n    input: sim\n    config:\n"
      << "      brokers: '" << bootstrap << "'\n      topic: " << topic_ << "\n      linger: 200ms\n"
      << "  - id: consume\n    plugin: kafka-source\n    stop_after: [publish]\n    config:\n"
      << "      brokers: '" << bootstrap << "'\n      topics: [" << topic_ << "]\n      group: loop\n"
      << "      on_stop: drain\n"
      << "  - id: write\n    plugin: test.kafka-record-sink\n    input: consume\n    config:\n"
      << "      path: '" << out.string() << "'\n";
  }
  auto run = run_flowctl(p, "run");
  ASSERT_EQ(run->wait(120s), 0) << run->err();
  Proc kcat({"kcat", "-C", "-b", bootstrap, "-t", topic_, "-e", "-o", "beginning", "-f", "%p\t%o\n"},
            dir_ / "kcat.out", dir_ / "kcat.err");
  ASSERT_EQ(kcat.wait(60s), 0) << kcat.err();
  const auto produced = lines(dir_ / "kcat.out");
  ASSERT_GT(produced.size(), 100u) << run->err();
  std::multiset<std::string> want(produced.begin(), produced.end()), got;
  for (const auto& l : lines(out)) {  // topic, partition, offset, key, value
    const auto a = l.find('\t'), b = l.find('\t', a + 1), c = l.find('\t', b + 1);
    got.insert(l.substr(a + 1, b - a - 1) + "\t" + l.substr(b + 1, c - b - 1));
  }
  EXPECT_EQ(got.size(), want.size()) << run->err();
  EXPECT_EQ(got, want);
}

TEST_F(KafkaE2E, UnreachableBrokerExitsOneNamingIt) {
  const auto out = dir_ / "records.tsv";
  auto run = run_flowctl(write_consumer_pipeline("down", "127.0.0.1:9", out), "run");
  const auto rc = run->wait(60s);
  ASSERT_TRUE(rc) << "still running a minute after start";
  EXPECT_EQ(*rc, 1) << run->err();
  EXPECT_NE(run->err().find("127.0.0.1:9"), std::string::npos) << run->err();
  EXPECT_NE(run->err().find("consume"), std::string::npos) << "no stage id:\n" << run->err();
  // Said once, plainly (issue 15: it used to read "brokers 'brokers '127.0.0.1:9''").
  EXPECT_NE(run->err().find("cannot reach Kafka brokers 127.0.0.1:9 within 10s ("), std::string::npos) << run->err();
  EXPECT_EQ(run->err().find("brokers 'brokers"), std::string::npos) << run->err();
}

TEST_F(KafkaE2E, MissingTopicExitsOneNamingTheTopic) {
  const auto bootstrap = start_broker(1);
  const auto p = write_consumer_pipeline("missing", bootstrap, dir_ / "records.tsv");
  std::ifstream in(p);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.replace(text.find("[" + topic_ + "]"), topic_.size() + 2, "[no-such-topic]");
  std::ofstream(p) << text;
  auto run = run_flowctl(p, "run");
  const auto rc = run->wait(60s);
  ASSERT_TRUE(rc) << "still running a minute after start";
  EXPECT_EQ(*rc, 1) << run->err();
  EXPECT_NE(run->err().find("topic 'no-such-topic' does not exist on brokers " + bootstrap), std::string::npos)
      << run->err();
}

TEST_F(KafkaE2E, BrokerRefusesABusyPortWithExitOne) {
  const auto bootstrap = start_broker(1);
  const auto port = bootstrap.substr(bootstrap.rfind(':') + 1);
  Proc second({FLOW_FLOWCTL, "broker", "--port", port}, dir_ / "b2.out", dir_ / "b2.err");
  EXPECT_EQ(second.wait(30s), 1) << second.err();
  EXPECT_NE(second.err().find("in use"), std::string::npos) << second.err();
}

}  // namespace

// Issue 9: every cycle consumes (the consumer keeps its group membership across cycles), and
// produced == consumed == archived + dead-lettered.
TEST_F(KafkaE2E, IotDemoThreeCyclesConsumeInEveryCycleAndArchiveEverything) {
  if (!built({"sensor-simulator", "json-validator", "csv-window-sink", "merge-archive"}))
    GTEST_SKIP() << "the IoT plugins are not built";
  const auto parts = dir_ / "parts", dead = dir_ / "dead-letter", backup = dir_ / "backup";
  auto run = run_flowctl(fs::path(FLOW_SOURCE_DIR) / "pipelines/iot-demo.yaml", "run", {},
                         {"--set", "run.cycles=3", "--set", "run.duration=3s", "--set", "csv.path=" + parts.string(),
                          "--set", "dead-letter.path=" + dead.string(), "--set", "archive.parts_dir=" + parts.string(),
                          "--set", "archive.backup_dir=" + backup.string()},
                         false);
  ASSERT_EQ(run->wait(180s), 0) << run->err();
  const auto err = run->err();
  const uint64_t produced = counter(err, "publish", "delivered"), consumed = counter(err, "consume", "records");
  std::size_t archives = 0, archived = 0;
  for (const auto& e : fs::directory_iterator(backup))
    if (e.path().extension() == ".csv") {
      const auto rows = lines(e.path()).size() - 1;
      EXPECT_GT(rows, 0u) << e.path();
      archived += rows;
      ++archives;
    }
  const std::size_t dead_rows = committed_first_cells({dead}).size();
  EXPECT_EQ(archives, 3u) << "one archive per cycle, each with rows\n" << err;
  EXPECT_GT(produced, 0u) << err;
  EXPECT_EQ(consumed, produced) << err;
  EXPECT_EQ(archived + dead_rows, produced) << err;
  EXPECT_NE(err.find("delivery 'consume': exactly-once"), std::string::npos) << err;
}

// Issue 9: a second run on the same directories fails at once, naming the holder.
TEST_F(KafkaE2E, SecondRunOnTheSameDirectoriesFailsNamingTheHolder) {
  if (!built({"sensor-simulator", "csv-window-sink"})) GTEST_SKIP() << "plugins not built";
  const auto p = dir_ / "sim.yaml";
  std::ofstream(p) << "name: sim\nrun: {duration: 120s}\nstages:\n"
                   << "  - id: sim\n    plugin: sensor-simulator\n    config: {sensors: 2, rate: 5}\n"
                   << "  - id: csv\n    plugin: csv-window-sink\n    input: sim\n    config: {path: '"
                   << (dir_ / "parts").string() << "', window: 1s}\n";
  auto first = run_flowctl(p, "first");
  ASSERT_TRUE(eventually([&] { return Proc::slurp(dir_ / "parts" / ".flow.lock").find("pid") != std::string::npos; }))
      << first->err();
  auto second = run_flowctl(p, "second");
  ASSERT_EQ(second->wait(30s), 1) << second->err();
  EXPECT_NE(second->err().find("is in use by flowctl pid"), std::string::npos) << second->err();
  EXPECT_TRUE(first->running()) << first->err();
  first->signal(SIGTERM);
  EXPECT_EQ(first->wait(60s), 0) << first->err();
}

// Issue 9: a topic that goes quiet does not hold the last window open.
TEST_F(KafkaE2E, IdleTopicCommitsTheLastWindowWhileRunning) {
  if (!built({"json-validator", "csv-window-sink"})) GTEST_SKIP() << "plugins not built";
  const auto bootstrap = start_broker(4);
  const auto out = dir_ / "parts";
  auto run = run_flowctl(write_csv_member("idle", bootstrap, out), "run");
  ASSERT_TRUE(eventually([&] { return run->err().find("assigned 4") != std::string::npos; }, 90s)) << run->err();
  const int n = 200;
  kcat_produce(bootstrap, make_messages(n));
  const auto produced_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually([&] { return committed_first_cells({out}).size() == static_cast<std::size_t>(n); }, 60s))
      << run->err();
  std::printf("[ kafka    ] idle topic: last window committed %.2fs after kcat finished (window 1s)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - produced_at).count());
  EXPECT_TRUE(run->running()) << "the window must close while the pipeline runs, not at its stop";
  run->signal(SIGTERM);
  EXPECT_EQ(run->wait(60s), 0) << run->err();
}

// Issue 9: two members, a third joining mid-run, one leaving gracefully: the members losing
// partitions commit their output before releasing them, so the union holds each record once.
TEST_F(KafkaE2E, MembersJoiningAndLeavingWriteEachRecordOnce) {
  if (!built({"json-validator", "csv-window-sink"})) GTEST_SKIP() << "plugins not built";
  const auto bootstrap = start_broker(8);
  std::vector<fs::path> outs = {dir_ / "a", dir_ / "b", dir_ / "c"};
  auto a = run_flowctl(write_csv_member("a", bootstrap, outs[0]), "a", {}, {}, false);
  auto b = run_flowctl(write_csv_member("b", bootstrap, outs[1]), "b", {}, {}, false);
  auto holds4 = [](const Proc& p) { return p.err().find("assigned 4") != std::string::npos; };
  ASSERT_TRUE(eventually([&] { return holds4(*a) && holds4(*b); }, 90s)) << a->err() << b->err();
  int total = 0;
  auto produce = [&](int n) {
    kcat_produce(bootstrap, make_messages(n, total));
    total += n;
  };
  auto all_written = [&] { return committed_first_cells(outs).size() >= static_cast<std::size_t>(total); };
  produce(2000);
  // c joins while records arrive: a and b give partitions away mid-stream.
  auto c = run_flowctl(write_csv_member("c", bootstrap, outs[2]), "c", {}, {}, false);
  produce(2000);
  ASSERT_TRUE(eventually([&] { return c->err().find("assigned") != std::string::npos; }, 90s)) << c->err();
  produce(2000);
  ASSERT_TRUE(eventually(all_written, 90s)) << a->err() << b->err() << c->err();
  b->signal(SIGTERM);  // b leaves gracefully
  EXPECT_EQ(b->wait(60s), 0) << b->err();
  produce(2000);
  ASSERT_TRUE(eventually(all_written, 90s)) << a->err() << c->err();
  a->signal(SIGTERM);
  c->signal(SIGTERM);
  EXPECT_EQ(a->wait(60s), 0) << a->err();
  EXPECT_EQ(c->wait(60s), 0) << c->err();
  std::map<std::string, int> counts;
  for (const auto& s : committed_first_cells(outs)) counts[s]++;
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(total));
  int dups = 0;
  for (const auto& [v, n] : counts) dups += n - 1;
  // librdkafka's mock cluster refuses every offset commit once a rebalance started; the members
  // then commit the revoked partitions to the handover group, which the next owner reads.
  uint64_t counted = 0, handovers = 0, handed = 0;
  for (const auto* p : {a.get(), b.get(), c.get()}) {
    const auto err = p->err();
    for (auto at = err.find("for the next owner"); at != std::string::npos; at = err.find("for the next owner", at + 1)) ++handovers;
    for (auto at = err.find("handed over by the previous owner"); at != std::string::npos;
         at = err.find("handed over by the previous owner", at + 1))
      ++handed;
    const auto at = err.find(" record(s) possibly written twice across members");
    if (at == std::string::npos) continue;
    const auto start = err.rfind("; ", at) + 2;
    counted += std::stoull(err.substr(start, at - start));
  }
  std::printf("[ kafka    ] members joining and leaving: %d duplicate(s), %llu counted as possible by the members; "
              "%llu handover commit(s), %llu partition(s) started from one\n",
              dups, static_cast<unsigned long long>(counted), static_cast<unsigned long long>(handovers),
              static_cast<unsigned long long>(handed));
  EXPECT_EQ(dups, 0) << "records written by two members";
  EXPECT_EQ(counted, 0u) << "a member counted possible duplicates";
}

// Issue 9: a drain that ends with records waiting and nothing consumed fails the run instead of
// passing for done. The mock cluster's group join takes about 3 s, longer than this run and its
// drain_timeout, so the member never gets its partitions.
TEST_F(KafkaE2E, CycleThatConsumesNothingWhileRecordsWaitExitsOne) {
  const auto bootstrap = start_broker(4);
  kcat_produce(bootstrap, make_messages(50));
  const auto out = dir_ / "records.tsv";
  const auto p = write_consumer_pipeline("stalled", bootstrap, out, "      on_stop: drain\n      drain_timeout: 500ms\n");
  {
    std::ifstream in(p);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("stages:"), 7, "run: {duration: 1s}\nstages:");
    std::ofstream(p) << text;
  }
  auto run = run_flowctl(p, "run");
  ASSERT_EQ(run->wait(60s), 1) << run->err();
  EXPECT_NE(run->err().find("this cycle consumed nothing"), std::string::npos) << run->err();
}

namespace {

// Issue 15: records the broker dropped (the mock cluster keeps 5 MiB per partition) before the
// exactly-once consumer read them fail the run, naming the partition and the count.
TEST_F(KafkaE2E, RecordsDroppedByRetentionBeforeConsumingFailTheExactlyOnceRun) {
  if (!built({"json-validator", "csv-window-sink"})) GTEST_SKIP() << "needs json-validator and csv-window-sink";
  const auto bootstrap = start_broker(1);
  kcat_produce(bootstrap, make_messages(100));
  const auto out = dir_ / "out";
  auto first = run_flowctl(write_csv_member("first", bootstrap, out, "      exit_at_end: true\n"), "first");
  ASSERT_EQ(first->wait(120s), 0) << first->err();
  ASSERT_EQ(committed_first_cells({out}).size(), 100u);

  // About 7 MiB more while nothing consumes: the oldest records, 100 onwards, age out.
  kcat_produce(bootstrap, padded_messages(100, 7100));
  const int64_t low_watermark = oldest_offset(bootstrap);
  ASSERT_GT(low_watermark, 100) << "the broker kept everything; the test needs more data";

  auto second = run_flowctl(write_csv_member("second", bootstrap, out, "      exit_at_end: true\n"), "second");
  const auto rc = second->wait(120s);
  ASSERT_TRUE(rc) << "still running";
  EXPECT_EQ(*rc, 1) << second->err();
  const auto err = second->err();
  EXPECT_NE(err.find(topic_ + "[0]: " + std::to_string(low_watermark - 100) + " record(s) lost before this stage read "
                                                                              "them: offsets 100 to " +
                     std::to_string(low_watermark - 1)),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("delivery: exactly-once cannot hold"), std::string::npos) << err;
  EXPECT_EQ(committed_first_cells({out}).size(), 100u) << "wrote past the gap";
}

// The same when the group has never read or committed anything: the mock cluster's log starts
// at offset 0, so a first record past it means the broker dropped the ones before (librdkafka
// itself resets to the new log start without a word).
TEST_F(KafkaE2E, RecordsDroppedBeforeAFreshGroupReadsAnythingFailTheExactlyOnceRun) {
  if (!built({"json-validator", "csv-window-sink"})) GTEST_SKIP() << "needs json-validator and csv-window-sink";
  const auto bootstrap = start_broker(1);
  kcat_produce(bootstrap, padded_messages(0, 7000));
  const int64_t low_watermark = oldest_offset(bootstrap);
  ASSERT_GT(low_watermark, 0) << "the broker kept everything; the test needs more data";

  const auto out = dir_ / "out";
  auto fresh = run_flowctl(write_csv_member("fresh", bootstrap, out, "      exit_at_end: true\n"), "fresh");
  const auto rc = fresh->wait(120s);
  ASSERT_TRUE(rc) << "still running";
  EXPECT_EQ(*rc, 1) << fresh->err();
  const auto err = fresh->err();
  EXPECT_NE(err.find(topic_ + "[0]: " + std::to_string(low_watermark) + " record(s) lost before this stage read them: "
                                                                        "offsets 0 to " +
                     std::to_string(low_watermark - 1)),
            std::string::npos)
      << err;
  EXPECT_TRUE(committed_first_cells({out}).empty()) << "wrote past the gap";
}

}  // namespace

namespace {

// Issue 15: bad Kafka messages each go to the dead letters with a reason; the run goes on and
// every good record around them is written.
TEST_F(KafkaE2E, BadMessagesGoToDeadLettersWithAReasonAndTheRunGoesOn) {
  if (!built({"json-validator", "csv-window-sink"})) GTEST_SKIP() << "needs json-validator and csv-window-sink";
  const auto bootstrap = start_broker(1);
  kcat_produce(bootstrap, make_messages(50));
  // One message per file: 3 MiB (json-validator's max_message_bytes is 1 MiB; the mock cluster
  // drops a 10 MiB message at once, with everything before it, since it keeps 5 MiB per
  // partition), binary, invalid UTF-8, JSON nested 10,000 deep.
  const auto big = dir_ / "big", binary = dir_ / "binary", latin1 = dir_ / "latin1", deep = dir_ / "deep";
  {
    std::ofstream(big) << "{\"seq\":1,\"temp\":1.5,\"pad\":\"" << std::string(3u << 20, 'x') << "\"}";
    std::string b;
    for (int i = 0; i < 256; ++i) b.push_back(static_cast<char>(i));
    std::ofstream(binary, std::ios::binary) << b;
    std::ofstream(latin1, std::ios::binary) << "{\"seq\":2,\"temp\":1.5,\"name\":\"caf\xe9\"}";
    std::ofstream(deep) << std::string(10000, '[') << std::string(10000, ']');
  }
  Proc files({"kcat", "-P", "-b", bootstrap, "-t", topic_, "-X", "message.max.bytes=20000000", big.string(),
              binary.string(), latin1.string(), deep.string()},
             dir_ / "files.out", dir_ / "files.err");
  ASSERT_EQ(files.wait(60s), 0) << files.err();
  // An empty value, then a key with no value at all (-Z: empty means NULL).
  const auto empty = dir_ / "empty.txt";
  std::ofstream(empty) << "e:\n";
  Proc e({"kcat", "-P", "-b", bootstrap, "-t", topic_, "-K:", "-l", empty.string()}, dir_ / "e.out", dir_ / "e.err");
  ASSERT_EQ(e.wait(60s), 0) << e.err();
  Proc n({"kcat", "-P", "-b", bootstrap, "-t", topic_, "-K:", "-Z", "-l", empty.string()}, dir_ / "n.out",
         dir_ / "n.err");
  ASSERT_EQ(n.wait(60s), 0) << n.err();
  kcat_produce(bootstrap, make_messages(50, 50));

  const auto p = dir_ / "bad.yaml";
  std::ofstream(p) << "name: bad\nstages:\n"
                   << "  - id: consume\n    plugin: kafka-source\n    config:\n"
                   << "      brokers: '" << bootstrap << "'\n      topics: [" << topic_ << "]\n      group: g\n"
                   << "      exit_at_end: true\n"
                   << "  - id: validate\n    plugin: json-validator\n    input: consume\n    config:\n"
                   << "      schema: {seq: int, temp: float}\n      on_invalid: dead-letter\n"
                   << "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n    config: {path: '"
                   << (dir_ / "out").string() << "', window: 1s}\n"
                   << "  - id: dead\n    plugin: csv-window-sink\n    input: validate.invalid\n    config: {path: '"
                   << (dir_ / "dead").string() << "', window: 1s, prefix: invalid}\n";
  auto run = run_flowctl(p, "run");
  const auto rc = run->wait(180s);
  ASSERT_TRUE(rc) << "still running";
  ASSERT_EQ(*rc, 0) << run->err();
  EXPECT_EQ(committed_first_cells({dir_ / "out"}).size(), 100u) << run->err();
  // Dead letters: reason is the second column; one row per bad message (fields may hold
  // quoted line breaks, so count by offset, the last column).
  std::string dead;
  for (const auto& e2 : fs::directory_iterator(dir_ / "dead"))
    if (e2.path().extension() == ".csv") {
      std::ifstream in(e2.path(), std::ios::binary);
      dead.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  for (const char* offset : {",50\n", ",51\n", ",52\n", ",53\n", ",54\n", ",55\n"})
    EXPECT_NE(dead.find(offset), std::string::npos) << "no dead letter ending in offset " << offset;
  for (const char* reason : {",oversize,", ",malformed_json,", ",invalid_utf8,", ",empty,"})
    EXPECT_NE(dead.find(reason), std::string::npos) << "no reason '" << reason << "'";
}

}  // namespace

namespace {

// Issue 15: the broker goes away for 30 s and comes back on the same port (a new, empty mock
// cluster: it keeps no data across restarts). The consumer and producer pipelines carry on by
// themselves, what was produced after the return is consumed, and each says the outage once
// when it starts and once when it ends.
TEST_F(KafkaE2E, BrokerAwayThirtySecondsIsLoggedOnceEachWayAndBothSidesResume) {
  if (!built({"sensor-simulator"})) GTEST_SKIP() << "needs sensor-simulator";
  const auto bootstrap = start_broker(1);
  const auto port = bootstrap.substr(bootstrap.rfind(':') + 1);
  const auto out = dir_ / "records.tsv";
  auto consumer = run_flowctl(write_consumer_pipeline("consume", bootstrap, out), "consumer");
  // A producer pipeline, 50 records a second, for the whole test.
  const auto pp = dir_ / "produce.yaml";
  std::ofstream(pp) << "name: produce\nstages:\n"
                    << "  - id: sim\n    plugin: sensor-simulator\n    config: {sensors: 3, rate: 50}\n"
                    << "  - id: publish\n    plugin: kafka-sink\n    input: sim\n    config:\n"
                    << "      brokers: '" << bootstrap << "'\n      topic: " << topic_ << "\n";
  auto producer = run_flowctl(pp, "producer");
  auto simulated = [&] {
    std::size_t n = 0;
    for (const auto& l : lines(out)) n += l.find("sensor_id") != std::string::npos;
    return n;
  };
  kcat_produce(bootstrap, make_messages(20));
  ASSERT_TRUE(eventually([&] { return lines(out).size() >= 20 && simulated() > 0; }, 90s)) << consumer->err();

  broker_->signal(SIGKILL);
  ASSERT_TRUE(broker_->wait(20s));
  const std::string lost = "cannot reach Kafka brokers " + bootstrap;
  ASSERT_TRUE(eventually([&] { return consumer->err().find(lost) != std::string::npos; }, 60s)) << consumer->err();
  std::this_thread::sleep_for(30s);  // the outage itself (not a synchronisation)
  broker_ = std::make_unique<Proc>(
      std::vector<std::string>{FLOW_FLOWCTL, "broker", "--port", port, "--partitions", "1", "--topic", topic_},
      dir_ / "broker2.out", dir_ / "broker2.err");
  ASSERT_TRUE(eventually([&] { return broker_->out().find("bootstrap: ") != std::string::npos; }, 30s))
      << broker_->err();
  const std::string back = "Kafka brokers " + bootstrap + " answer again after";
  ASSERT_TRUE(eventually([&] { return consumer->err().find(back) != std::string::npos; }, 90s)) << consumer->err();
  ASSERT_TRUE(eventually([&] { return producer->err().find(back) != std::string::npos; }, 90s)) << producer->err();
  // The producer goes on by itself: its records reach the consumer through the new broker.
  const auto before = simulated();
  ASSERT_TRUE(eventually([&] { return simulated() >= before + 100; }, 90s)) << producer->err() << consumer->err();

  // The new broker's log starts at offset 0 again; the consumer reads what is produced now.
  kcat_produce(bootstrap, make_messages(20, 1000));
  ASSERT_TRUE(eventually(
      [&] {
        const auto c = value_counts(lines(out));
        for (const auto& m : make_messages(20, 1000))
          if (!c.count(m.substr(m.find('\t') + 1))) return false;
        return true;
      },
      90s))
      << consumer->err();
  consumer->signal(SIGTERM);
  ASSERT_TRUE(consumer->wait(60s));
  const auto err = consumer->err();
  auto count = [&](const std::string& s) {
    std::size_t n = 0;
    for (auto at = err.find(s); at != std::string::npos; at = err.find(s, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(lost), 1u) << err;
  EXPECT_EQ(count(back), 1u) << err;
  EXPECT_EQ(count("|FAIL|"), 0u) << "librdkafka's per-retry lines leaked:\n" << err;
  producer->signal(SIGTERM);
  EXPECT_EQ(producer->wait(60s), 0) << producer->err();
  const auto perr = producer->err();
  auto pcount = [&](const std::string& s) {
    std::size_t n = 0;
    for (auto at = perr.find(s); at != std::string::npos; at = perr.find(s, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(pcount(lost), 1u) << perr;
  EXPECT_EQ(pcount(back), 1u) << perr;
  EXPECT_EQ(pcount("|FAIL|"), 0u) << perr;
}

}  // namespace
