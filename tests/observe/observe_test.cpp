// Seeing a running pipeline, as a user does: `flowctl run --metrics-port 0` in a real process,
// then `flowctl tap`, `flowctl top` inside tmux, the dashboard in headless Chromium (driven over
// the DevTools protocol on a pipe), and a real Prometheus server scraping /metrics.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "flow/text.hpp"
#include "support/process.hpp"

namespace {

namespace fs = std::filesystem;
using flow::test::eventually;
using flow::test::Process;
using flow::test::TempDir;
using namespace std::chrono_literals;

constexpr int kSensors = 5;

std::string pipeline_yaml(const fs::path& out, int rate) {
  return "name: observe-e2e\n"
         "dashboard: {stage: validate}\n"
         "stages:\n"
         "  - id: sim\n    plugin: sensor-simulator\n"
         "    config: {sensors: " + std::to_string(kSensors) + ", rate: " + std::to_string(rate) + ", seed: 7, invalid_ratio: 0.05}\n"
         "  - id: validate\n    plugin: json-validator\n    input: sim\n"
         "    config:\n      on_invalid: dead-letter\n      schema:\n"
         "        sensor_id: {type: int, min: 0}\n"
         "        temperature: {type: float, min: -20, max: 50}\n"
         "        humidity: {type: float, min: 0, max: 100}\n"
         "        timestamp: {type: timestamp, format: \"%Y-%m-%d %H:%M:%S\"}\n"
         "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n"
         "    config: {path: " + (out / "parts").string() + ", checkpoint_dir: " + (out / "checkpoint").string() + ", window: 1s}\n"
         "  - id: rejected\n    plugin: csv-window-sink\n    input: validate.invalid\n"
         "    config: {path: " + (out / "invalid").string() + ", checkpoint_dir: " + (out / "invalid-checkpoint").string() + ", window: 1s}\n";
}

// `flowctl run` until stopped with SIGINT; the metrics port is read from what it prints.
class Pipeline {
 public:
  explicit Pipeline(const TempDir& dir, int rate = 20, std::vector<std::string> extra = {}) {
    flow::test::write_file(dir.path() / "p.yaml", pipeline_yaml(dir.path(), rate));
    std::vector<std::string> argv = {FLOW_FLOWCTL, "--plugin-path", FLOW_PLUGIN_DIR, "run", (dir.path() / "p.yaml").string(),
                                     "--metrics-port", "0", "-q"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<Process>(argv, dir.path() / "flowctl-run");
    const std::regex re(R"(metrics: http://127\.0\.0\.1:(\d+)/)");
    eventually([&] {
      std::smatch m;
      const std::string err = proc_->err();
      if (std::regex_search(err, m, re)) port_ = std::stoi(m[1]);
      return port_ > 0 || proc_->wait(0ms).has_value();
    });
  }
  ~Pipeline() {
    proc_->signal(SIGINT);
    proc_->wait(60s);
  }
  int port() const { return port_; }
  Process& process() { return *proc_; }
  // stop with SIGINT (drain) and return the exit code
  std::optional<int> stop() {
    proc_->signal(SIGINT);
    return proc_->wait(120s);
  }

 private:
  std::unique_ptr<Process> proc_;
  int port_ = 0;
};

using flow::test::have;
using flow::test::shell;

int free_port() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

TEST(Observe, TapPrintsTheFilteredRecordsOfAnEdge) {
  TempDir dir;
  Pipeline p(dir);
  ASSERT_GT(p.port(), 0) << p.process().err();
  Process tap({FLOW_FLOWCTL, "tap", "validate", "--port", std::to_string(p.port()), "--limit", "5", "--filter", "sensor_id == 3"},
              dir.path() / "tap");
  ASSERT_EQ(tap.wait(60s), 0) << tap.err();
  const auto rows = lines_of(tap.out());
  ASSERT_EQ(rows.size(), 5u) << tap.out();
  for (const auto& r : rows) {
    EXPECT_THAT(r, ::testing::StartsWith("{\"sensor_id\":3,\"temperature\":"));
    EXPECT_THAT(r, ::testing::HasSubstr("\"humidity\":"));
  }
  // The rejected records' edge, by its output name.
  Process invalid({FLOW_FLOWCTL, "tap", "validate.invalid", "--port", std::to_string(p.port()), "--limit", "1"}, dir.path() / "tap-invalid");
  ASSERT_EQ(invalid.wait(60s), 0) << invalid.err();
  EXPECT_THAT(invalid.out(), ::testing::HasSubstr("\"reason\":"));
  // An unknown edge is a usage error naming the edges there are.
  Process bad({FLOW_FLOWCTL, "tap", "valid", "--port", std::to_string(p.port())}, dir.path() / "tap-bad");
  ASSERT_EQ(bad.wait(60s), 2);
  EXPECT_THAT(bad.err(), ::testing::HasSubstr("no tap 'valid'; this pipeline's taps: csv, rejected, sim, validate, validate.invalid"));
  Process filter({FLOW_FLOWCTL, "tap", "validate", "--port", std::to_string(p.port()), "--filter", "temperature ~ 3"}, dir.path() / "tap-f");
  ASSERT_EQ(filter.wait(60s), 2);
  EXPECT_THAT(filter.err(), ::testing::HasSubstr("--filter 'temperature ~ 3'"));
}

TEST(Observe, ADashboardOnAnUnknownEdgeIsAUsageError) {
  TempDir dir;
  flow::test::write_file(dir.path() / "p.yaml", pipeline_yaml(dir.path(), 20));
  Process run({FLOW_FLOWCTL, "--plugin-path", FLOW_PLUGIN_DIR, "run", (dir.path() / "p.yaml").string(), "--dashboard",
               "validate.nope", "--metrics-port", "0"},
              dir.path() / "run");
  ASSERT_EQ(run.wait(60s), 2);
  EXPECT_THAT(run.err(), ::testing::HasSubstr("--dashboard: no stage output 'validate.nope' (there are: csv, rejected, sim, validate, validate.invalid)"));
}

// A reader that never reads: its samples are dropped on the pipeline's side, the pipeline runs
// on and drains normally, and every record still reaches the sink.
TEST(Observe, AStalledTapNeverHoldsThePipelineBack) {
  TempDir dir;
  Pipeline p(dir, 2000);
  ASSERT_GT(p.port(), 0) << p.process().err();
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(p.port()));
  ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string req = "GET /tap?stage=validate HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(s, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  httplib::Client http("127.0.0.1", p.port());
  auto records_out = [&](const std::string& stage) -> uint64_t {
    auto r = http.Get("/metrics");
    if (!r) return 0;
    std::smatch m;
    const std::regex re("flow_stage_records_in_total\\{pipeline=\"observe-e2e\",stage=\"" + stage + "\"\\} (\\d+)");
    return std::regex_search(r->body, m, re) ? std::stoull(m[1]) : 0;
  };
  // Far more than fits in the socket buffers and the tap's queue.
  ASSERT_TRUE(eventually([&] { return records_out("csv") > 50000; }, 120s)) << p.process().err();
  ASSERT_EQ(p.stop(), 0) << p.process().err();
  close(s);
}

TEST(Observe, TopRunsInTmuxSortsAndQuitsOnQ) {
  if (!have("tmux")) GTEST_SKIP() << "tmux is not installed (scripts/setup installs it)";
  TempDir dir;
  Pipeline p(dir);
  ASSERT_GT(p.port(), 0) << p.process().err();
  const std::string sock = "flow-top-" + std::to_string(getpid());
  const std::string tmux = "tmux -L " + sock + " ";
  // The exit code goes to a file: tmux's #{pane_dead_status} is sometimes still empty when the
  // pane is already dead.
  const auto rc_file = dir.path() / "top.rc";
  shell(tmux + "-f /dev/null new-session -d -s top -x 80 -y 40 '" FLOW_FLOWCTL " top --port " + std::to_string(p.port()) +
        "; echo $? > " + rc_file.string() + "'");
  shell(tmux + "set-option -t top remain-on-exit on");
  struct Kill {
    std::string t;
    ~Kill() { shell(t + "kill-server 2>/dev/null"); }
  } kill{tmux};
  auto screen = [&] { return shell(tmux + "capture-pane -p -t top"); };
  // Live rates: the validate row shows records per second in, above zero.
  const std::regex validate_row(R"(\nvalidate +json-validator +([0-9.]+k?) +([0-9.]+k?) )");
  std::string last;
  ASSERT_TRUE(eventually([&] {
    last = screen();
    std::smatch m;
    return std::regex_search(last, m, validate_row) && m[1] != "0";
  }, 60s)) << last;
  EXPECT_THAT(last, ::testing::HasSubstr("sort: out/s"));
  EXPECT_THAT(last, ::testing::HasSubstr("STAGE          PLUGIN"));
  EXPECT_THAT(last, ::testing::HasSubstr("->validate"));
  EXPECT_THAT(last, ::testing::HasSubstr("invalid_records{reason="));
  for (const auto& l : lines_of(last)) EXPECT_LE(l.size(), 80u) << l;
  shell(tmux + "send-keys -t top s");
  ASSERT_TRUE(eventually([&] { return (last = screen()).find("sort: errors") != std::string::npos; }, 30s)) << last;
  shell(tmux + "send-keys -t top s");
  ASSERT_TRUE(eventually([&] { return (last = screen()).find("sort: name") != std::string::npos; }, 30s)) << last;
  // Sorted by name: csv, rejected, sim, validate.
  const auto csv = last.find("\ncsv "), rej = last.find("\nrejected "), sim = last.find("\nsim "), val = last.find("\nvalidate ");
  EXPECT_LT(csv, rej);
  EXPECT_LT(rej, sim);
  EXPECT_LT(sim, val);
  shell(tmux + "send-keys -t top q");
  std::string rc;
  ASSERT_TRUE(eventually([&] {
    std::ifstream f(rc_file);
    return std::getline(f, rc) && !rc.empty();
  }, 30s)) << "top did not quit on q";
  EXPECT_EQ(rc, "0");
}

// A Kafka source that cannot reach its broker: librdkafka's own lines come through the logger,
// as JSON with the stage id, and on a terminal (tmux) never land inside the status line.
// A consumer given a producer-only librdkafka property: librdkafka logs a CONFWARN line (level 4)
// when it creates the client, which must reach the stage's logger.
std::string confwarn_kafka_yaml(const fs::path& out) {
  return "name: klog\nrun: {duration: 4s}\nstages:\n"
         "  - id: consume\n    plugin: kafka-source\n    config: {brokers: embedded, topics: [t], group: g, librdkafka: {linger.ms: \"5\"}}\n"
         "  - id: out\n    plugin: csv-window-sink\n    input: consume\n    config: {path: " + (out / "parts").string() + ", window: 5s}\n";
}

bool have_kafka_plugin() { return fs::exists(fs::path(FLOW_PLUGIN_DIR) / "libflow-kafka-source.so"); }

TEST(Observe, LibrdkafkaLinesAreJsonLogLinesWithTheStageId) {
  if (!have_kafka_plugin()) GTEST_SKIP() << "kafka-source is not built (FLOW_PLUGINS)";
  TempDir dir;
  flow::test::write_file(dir.path() / "k.yaml", confwarn_kafka_yaml(dir.path()));
  Process run({FLOW_FLOWCTL, "--plugin-path", FLOW_PLUGIN_DIR, "run", (dir.path() / "k.yaml").string(), "-q", "--log-format", "json"},
              dir.path() / "run");
  ASSERT_TRUE(run.wait(120s).has_value());
  bool saw_librdkafka = false;
  for (const auto& line : lines_of(run.err())) {
    simdjson::dom::parser p;
    simdjson::dom::element e;
    ASSERT_FALSE(p.parse(line).get(e)) << "not JSON: " << line;
    std::string_view stage, level, message, time;
    ASSERT_FALSE(e["stage"].get(stage) || e["level"].get(level) || e["message"].get(message) || e["time"].get(time)) << line;
    if (message.starts_with("librdkafka CONFWARN:")) {
      saw_librdkafka = true;
      EXPECT_EQ(stage, "consume");
      EXPECT_EQ(level, "warn");  // librdkafka's level 4
    }
  }
  EXPECT_TRUE(saw_librdkafka) << run.err();
}

TEST(Observe, LogLinesNeverInterleaveWithTheStatusLine) {
  if (!have("tmux")) GTEST_SKIP() << "tmux is not installed (scripts/setup installs it)";
  if (!have_kafka_plugin()) GTEST_SKIP() << "kafka-source is not built (FLOW_PLUGINS)";
  TempDir dir;
  flow::test::write_file(dir.path() / "k.yaml", confwarn_kafka_yaml(dir.path()));
  const std::string tmux = "tmux -L flow-status-" + std::to_string(getpid()) + " ";
  shell(tmux + "-f /dev/null new-session -d -s run -x 200 -y 50 '" FLOW_FLOWCTL " --plugin-path " FLOW_PLUGIN_DIR " run " +
        (dir.path() / "k.yaml").string() + "'");
  shell(tmux + "set-option -t run remain-on-exit on");
  struct Kill {
    std::string t;
    ~Kill() { shell(t + "kill-server 2>/dev/null"); }
  } kill{tmux};
  auto screen = [&] { return shell(tmux + "capture-pane -p -J -S - -t run"); };
  std::string last;
  // The status line with the elapsed and remaining time, under log lines.
  ASSERT_TRUE(eventually([&] {
    last = screen();
    return last.find(" of 4s, ") != std::string::npos && last.find("s left]") != std::string::npos &&
           last.find("librdkafka CONFWARN") != std::string::npos;
  }, 60s)) << last;
  ASSERT_TRUE(eventually([&] { return shell(tmux + "display-message -p -t run '#{pane_dead}'") == "1\n"; }, 120s));
  last = screen();
  int log_lines = 0;
  for (const auto& l : lines_of(last)) {
    if (l.find("librdkafka") == std::string::npos && l.find(" [flow] ") == std::string::npos) continue;
    ++log_lines;
    EXPECT_TRUE(std::regex_search(l, std::regex(R"(^20\d\d-\d\d-\d\dT)"))) << "a log line not at the start of its line: " << l;
    EXPECT_EQ(l.find("s left]"), std::string::npos) << l;
  }
  EXPECT_GE(log_lines, 2) << last;
}

// The DevTools protocol over --remote-debugging-pipe: requests on fd 3, answers on fd 4, each a
// JSON message ended by a NUL byte.
class Chromium {
 public:
  explicit Chromium(const fs::path& profile) {
    int to[2], from[2];
    if (pipe(to) != 0 || pipe(from) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(to[0], 3);
      dup2(from[1], 4);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      const std::string dir = "--user-data-dir=" + profile.string();
      execlp("chromium", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-pipe", "--window-size=1280,1400", dir.c_str(), "about:blank", nullptr);
      _exit(127);
    }
    close(to[0]);
    close(from[1]);
    out_ = to[1];
    in_ = from[0];
  }
  ~Chromium() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int st;
    waitpid(pid_, &st, 0);
    close(out_);
    close(in_);
  }
  // Sends a command and returns its "result" object as JSON text ("" on error or timeout).
  std::string call(const std::string& method, const std::string& params, const std::string& session = "") {
    const int id = ++next_id_;
    std::string msg = "{\"id\":" + std::to_string(id) + (session.empty() ? "" : ",\"sessionId\":\"" + session + "\"") +
                      ",\"method\":\"" + method + "\",\"params\":" + params + "}";
    msg.push_back('\0');
    if (write(out_, msg.data(), msg.size()) != static_cast<ssize_t>(msg.size())) return "";
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto nul = buf_.find('\0');
      if (nul == std::string::npos) {
        pollfd p{in_, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;
        char tmp[65536];
        const ssize_t n = read(in_, tmp, sizeof tmp);
        if (n <= 0) return "";
        buf_.append(tmp, static_cast<std::size_t>(n));
        continue;
      }
      std::string one = buf_.substr(0, nul);
      buf_.erase(0, nul + 1);
      simdjson::dom::element e;
      if (parser_.parse(one).get(e)) continue;
      int64_t got = 0;
      if (e["id"].get(got) || got != id) continue;  // an event, or another answer
      simdjson::dom::element r;
      if (e["result"].get(r)) return "";
      return simdjson::to_string(r);
    }
    return "";
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  int next_id_ = 0;
  std::string buf_;
  simdjson::dom::parser parser_;
};

std::string field(const std::string& json, const char* key) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  std::string_view v;
  if (p.parse(json).get(e) || e[key].get(v)) return "";
  return std::string(v);
}

std::string base64_decode(std::string_view in) {
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* p = std::strchr(table, c);
    if (!p || c == '\0') continue;
    val = (val << 6) + static_cast<int>(p - table);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

TEST(Observe, DashboardChartsEverySensorInHeadlessChromium) {
  if (!have("chromium")) GTEST_SKIP() << "chromium is not installed (scripts/setup installs it)";
  TempDir dir;
  Pipeline p(dir);
  ASSERT_GT(p.port(), 0) << p.process().err();
  Chromium browser(dir.path() / "profile");
  const std::string target = field(browser.call("Target.createTarget", "{\"url\":\"http://127.0.0.1:" + std::to_string(p.port()) + "/\"}"), "targetId");
  ASSERT_FALSE(target.empty()) << "chromium did not open the page";
  const std::string session = field(browser.call("Target.attachToTarget", "{\"targetId\":\"" + target + "\",\"flatten\":true}"), "sessionId");
  ASSERT_FALSE(session.empty());
  // What the charts hold, read from the DOM: column, key and point count of each line.
  const std::string expr =
      "JSON.stringify(Array.from(document.querySelectorAll('polyline.series')).map(p=>[p.dataset.column,p.dataset.key,+p.dataset.points]))";
  std::map<std::string, std::map<std::string, int>> points;
  std::string raw;
  auto read = [&] {
    raw = browser.call("Runtime.evaluate", "{\"expression\":" + flow::json_string(expr) + ",\"returnByValue\":true}", session);
    simdjson::dom::parser jp;
    simdjson::dom::element e;
    std::string_view value;
    if (jp.parse(raw).get(e) || e["result"]["value"].get(value)) return false;
    simdjson::dom::parser vp;
    simdjson::dom::array arr;
    if (vp.parse(std::string(value)).get(arr)) return false;
    points.clear();
    for (auto item : arr) {
      simdjson::dom::array t = item.get_array().value_unsafe();
      points[std::string(t.at(0).get_string().value_unsafe())][std::string(t.at(1).get_string().value_unsafe())] =
          static_cast<int>(t.at(2).get_double().value_unsafe());
    }
    // Live: every sensor's line in both charts, each with several points (updates arrived).
    for (const char* col : {"temperature", "humidity"}) {
      if (points[col].size() != kSensors) return false;
      for (const auto& [k, n] : points[col])
        if (n < 4) return false;
    }
    return true;
  };
  ASSERT_TRUE(eventually(read, 90s)) << raw;
  for (const char* col : {"temperature", "humidity"}) {
    std::set<std::string> keys;
    for (const auto& [k, n] : points[col]) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"1", "2", "3", "4", "5"})) << col;
  }
  EXPECT_EQ(points.count("sensor_id"), 0u) << "the key column is not charted";
  EXPECT_EQ(points.count("timestamp"), 0u);
  // The pipeline graph: an edge per input, with its fill.
  const std::string edges = browser.call(
      "Runtime.evaluate", "{\"expression\":\"document.querySelectorAll('line.edge').length\",\"returnByValue\":true}", session);
  EXPECT_THAT(edges, ::testing::HasSubstr("\"value\":3"));
  const std::string shot = browser.call("Page.captureScreenshot", "{\"format\":\"png\"}", session);
  const std::string png = base64_decode(field(shot, "data"));
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  fs::create_directories(FLOW_ARTIFACT_DIR);
  flow::test::write_file(fs::path(FLOW_ARTIFACT_DIR) / "dashboard.png", png);
}

TEST(Observe, PrometheusScrapesThePerStageCounters) {
  if (!have("prometheus")) GTEST_SKIP() << "prometheus is not installed (scripts/setup installs it)";
  TempDir dir;
  Pipeline p(dir);
  ASSERT_GT(p.port(), 0) << p.process().err();
  const int prom_port = free_port();
  flow::test::write_file(dir.path() / "prometheus.yml",
                         "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                         "scrape_configs:\n  - job_name: flow\n    static_configs:\n      - targets: ['127.0.0.1:" +
                             std::to_string(p.port()) + "']\n");
  Process prom({shell("command -v prometheus").substr(0, shell("command -v prometheus").find('\n')),
                "--config.file=" + (dir.path() / "prometheus.yml").string(), "--storage.tsdb.path=" + (dir.path() / "tsdb").string(),
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
               dir.path() / "prometheus");
  httplib::Client api("127.0.0.1", prom_port);
  std::string body;
  auto value_of = [&](const std::string& query) -> double {
    auto r = api.Get("/api/v1/query?query=" + httplib::detail::encode_query_param(query));
    if (!r || r->status != 200) return -1;
    body = r->body;
    simdjson::dom::parser jp;
    simdjson::dom::element e;
    simdjson::dom::array result;
    if (jp.parse(body).get(e) || e["data"]["result"].get(result) || result.size() == 0) return -1;
    std::string_view v;
    if (result.at(0)["value"].at(1).get(v)) return -1;
    return std::stod(std::string(v));
  };
  ASSERT_TRUE(eventually([&] { return value_of("flow_stage_records_in_total{job=\"flow\",stage=\"validate\"}") > 0; }, 120s))
      << body << prom.err();
  EXPECT_GT(value_of("flow_stage_records_out_total{stage=\"sim\"}"), 0) << body;
  EXPECT_GT(value_of("sum(flow_plugin_invalid_records_total{stage=\"validate\"})"), 0) << body;
  EXPECT_GE(value_of("flow_channel_capacity_batches{channel=\"->validate\"}"), 1) << body;
  EXPECT_EQ(value_of("up{job=\"flow\"}"), 1) << body;
  // Every query of the shipped Grafana dashboard is valid PromQL and finds series.
  simdjson::dom::parser gp;
  simdjson::dom::element dash;
  ASSERT_FALSE(gp.load(FLOW_SOURCE_DIR "/docs/grafana-dashboard.json").get(dash));
  int queries = 0;
  simdjson::dom::array panels;
  ASSERT_FALSE(dash["panels"].get(panels));
  for (auto panel : panels) {
    simdjson::dom::array targets;
    if (panel["targets"].get(targets)) continue;
    for (auto t : targets) {
      std::string expr(t["expr"].get_string().value_unsafe());
      expr = std::regex_replace(expr, std::regex("\\$pipeline"), "observe-e2e");
      // no merge-archive or kafka-source stage here
      if (expr.find("rows_archived") != std::string::npos || expr.find("kafka_partition_lag") != std::string::npos) continue;
      ++queries;
      EXPECT_TRUE(eventually([&] { return value_of(expr) >= 0; }, 60s)) << expr << "\n" << body;
    }
  }
  EXPECT_GE(queries, 5);
  prom.signal(SIGTERM);
  prom.wait(60s);
}

}  // namespace
