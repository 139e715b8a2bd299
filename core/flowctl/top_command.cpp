// flowctl top: a live terminal view of a running pipeline (`flowctl run --metrics-port`), like
// `vector top`: per stage records/s in and out and totals, errors by reason from the plugins'
// counters, per channel fill and writer-blocked time, per partition lag when a stage sets a
// `*lag*` gauge (kafka-source's kafka_partition_lag), time left with a duration. It polls
// /metrics.json once a second; keys: q quits, s changes the sort. Fits 80 columns; plain ANSI
// (alternate screen, clear, no curses), so it works over ssh and inside tmux.
#include <fmt/format.h>
#include <httplib.h>
#include <poll.h>
#include <simdjson.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <vector>

#include "flowctl/commands.hpp"
#include "observability/status_line.hpp"

namespace flow::cli {
namespace {

struct StageRow {
  std::string id, plugin;
  uint64_t in = 0, out = 0, errors = 0;
  double in_rate = 0, out_rate = 0;
  std::map<std::string, uint64_t> counters;
  std::map<std::string, int64_t> gauges;
};
struct ChannelRow {
  std::string name;
  uint64_t depth = 0, max_batches = 1, bytes = 0, max_bytes = 1;
  double blocked = 0;
};
struct View {
  std::string pipeline;
  int cycle = 0;
  double uptime = 0;
  int cycles = 1;  // 0: until stopped
  std::optional<double> duration;
  double cycle_seconds = 0;
  std::vector<StageRow> stages;
  std::vector<ChannelRow> channels;
};

bool is_error_counter(const std::string& k) {
  for (const char* w : {"invalid", "error", "fail", "dead", "skipped", "gap"})
    if (k.find(w) != std::string::npos) return true;
  return false;
}

bool parse_view(const std::string& body, View& v, std::string& err) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto e = parser.parse(body).get(doc)) {
    err = simdjson::error_message(e);
    return false;
  }
  v.pipeline = std::string(doc["pipeline"].get_string().value_unsafe());
  v.cycle = static_cast<int>(doc["cycle"].get_int64().value_unsafe());
  v.uptime = doc["uptime_seconds"].get_double().value_unsafe();
  // Absent from an older flowctl's snapshot: then no time left is shown.
  int64_t cycles = 1;
  double duration = 0;
  if (!doc["cycles"].get(cycles)) v.cycles = static_cast<int>(cycles);
  if (!doc["duration_seconds"].get(duration)) v.duration = duration;
  if (double at = 0; !doc["cycle_seconds"].get(at)) v.cycle_seconds = at;
  simdjson::dom::array stages, channels;
  if (doc["stages"].get(stages) || doc["channels"].get(channels)) {
    err = "not a Flow metrics snapshot";
    return false;
  }
  for (auto s : stages) {
    StageRow r;
    r.id = std::string(s["id"].get_string().value_unsafe());
    r.plugin = std::string(s["plugin"].get_string().value_unsafe());
    r.in = s["records_in"].get_uint64().value_unsafe();
    r.out = s["records_out"].get_uint64().value_unsafe();
    simdjson::dom::object counters, gauges;
    if (!s["gauges"].get(gauges))
      for (auto [k, val] : gauges) r.gauges[std::string(k)] = val.get_int64().value_unsafe();
    if (s["counters"].get(counters)) continue;
    for (auto [k, val] : counters) {
      r.counters[std::string(k)] = val.get_uint64().value_unsafe();
      if (is_error_counter(std::string(k))) r.errors += val.get_uint64().value_unsafe();
    }
    v.stages.push_back(std::move(r));
  }
  for (auto c : channels) {
    ChannelRow r;
    r.name = std::string(c["name"].get_string().value_unsafe());
    r.depth = c["depth"].get_uint64().value_unsafe();
    r.max_batches = std::max<uint64_t>(1, c["max_batches"].get_uint64().value_unsafe());
    r.bytes = c["bytes"].get_uint64().value_unsafe();
    r.max_bytes = std::max<uint64_t>(1, c["max_bytes"].get_uint64().value_unsafe());
    r.blocked = c["blocked_seconds"].get_double().value_unsafe();
    v.channels.push_back(std::move(r));
  }
  return true;
}

std::string fit(std::string s, std::size_t w) {
  if (s.size() > w) s = s.substr(0, w > 1 ? w - 1 : 0) + "~";
  return s;
}

std::string human(double v) {
  if (v >= 1e9) return fmt::format("{:.1f}G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

const char* kSorts[] = {"name", "in/s", "out/s", "errors"};
constexpr std::size_t kLagRows = 5;  // partitions listed; the total covers all

// The value of `name` in a key `metric{a="x",name="y"}` (values as counter_key writes them).
std::string label(const std::string& key, const std::string& name) {
  const std::string at = name + "=\"";
  for (std::size_t i = key.find('{'); i != std::string::npos && i + 1 < key.size(); i = key.find(',', i + 1)) {
    if (key.compare(i + 1, at.size(), at) != 0) continue;
    const auto begin = i + 1 + at.size();
    return key.substr(begin, key.find('"', begin) - begin);
  }
  return "";
}

}  // namespace

// The frame, `width` columns wide at most; `sort` indexes kSorts. Public for the unit test.
std::string render_top(View v, const std::string& url, int sort, std::size_t width, const std::string& note) {
  std::vector<std::string> lines;
  const std::string cycle = v.cycles == 1 ? "" : v.cycles > 0 ? fmt::format("cycle {}/{}  ", v.cycle + 1, v.cycles)
                                                               : fmt::format("cycle {}  ", v.cycle + 1);
  lines.push_back(fmt::format("flowctl top  {}  {}up {:.0f}s  sort: {}", v.pipeline, cycle, v.uptime, kSorts[sort]));
  if (!note.empty()) {
    lines.push_back(note);
  } else if (const auto left = observability::time_left(v.cycle, v.cycles, v.cycle_seconds, v.duration)) {
    lines.push_back(left->total ? fmt::format("{}  {:.0f}s left in this cycle, {:.0f}s in all", url, left->cycle, *left->total)
                                : fmt::format("{}  {:.0f}s left in this cycle", url, left->cycle));
  } else {
    lines.push_back(url);
  }
  lines.push_back("");
  lines.push_back(fmt::format("{:<14} {:<16} {:>7} {:>7} {:>9} {:>9} {:>6}", "STAGE", "PLUGIN", "IN/s", "OUT/s", "IN", "OUT", "ERR"));
  auto& st = v.stages;
  if (sort == 1) std::stable_sort(st.begin(), st.end(), [](auto& a, auto& b) { return a.in_rate > b.in_rate; });
  if (sort == 2) std::stable_sort(st.begin(), st.end(), [](auto& a, auto& b) { return a.out_rate > b.out_rate; });
  if (sort == 3) std::stable_sort(st.begin(), st.end(), [](auto& a, auto& b) { return a.errors > b.errors; });
  if (sort == 0) std::stable_sort(st.begin(), st.end(), [](auto& a, auto& b) { return a.id < b.id; });
  for (const auto& s : st)
    lines.push_back(fmt::format("{:<14} {:<16} {:>7} {:>7} {:>9} {:>9} {:>6}", fit(s.id, 14), fit(s.plugin, 16), human(s.in_rate),
                                human(s.out_rate), human(static_cast<double>(s.in)), human(static_cast<double>(s.out)),
                                human(static_cast<double>(s.errors))));
  lines.push_back("");
  lines.push_back(fmt::format("{:<24} {:<22} {:>9} {:>12}", "CHANNEL", "FILL", "BATCHES", "BLOCKED"));
  for (const auto& c : v.channels) {
    const double f = std::min(1.0, std::max(static_cast<double>(c.depth) / c.max_batches, static_cast<double>(c.bytes) / c.max_bytes));
    const int n = static_cast<int>(f * 14 + 0.5);
    lines.push_back(fmt::format("{:<24} [{}{}] {:>4.0f}% {:>9} {:>11.2f}s", fit(c.name, 24), std::string(n, '#'), std::string(14 - n, ' '),
                                f * 100, fmt::format("{}/{}", c.depth, c.max_batches), c.blocked));
  }
  std::vector<std::string> errs;
  for (const auto& s : v.stages)
    for (const auto& [k, val] : s.counters)
      if (is_error_counter(k)) errs.push_back(fmt::format("{:<14} {:<50} {:>12}", fit(s.id, 14), fit(k, 50), val));
  if (!errs.empty()) {
    lines.push_back("");
    lines.push_back("ERRORS BY REASON");
    lines.insert(lines.end(), errs.begin(), errs.end());
  }
  // The partitions furthest behind and the total, from the stages' `*lag*` gauges.
  struct Lag {
    std::string stage, topic, partition;
    int64_t lag;
  };
  std::vector<Lag> lag;
  int64_t total = 0;
  for (const auto& s : v.stages)
    for (const auto& [k, val] : s.gauges) {
      if (k.substr(0, k.find('{')).find("lag") == std::string::npos) continue;
      std::string topic = label(k, "topic"), partition = label(k, "partition");
      if (topic.empty() && partition.empty()) topic = k;
      lag.push_back({s.id, topic, partition, val});
      total += val;
    }
  if (!lag.empty()) {
    std::stable_sort(lag.begin(), lag.end(), [](const Lag& a, const Lag& b) { return a.lag > b.lag; });
    lines.push_back("");
    lines.push_back(fmt::format("PARTITION LAG  total {} in {} partition(s){}", total, lag.size(),
                                lag.size() > kLagRows ? fmt::format(", top {}", kLagRows) : ""));
    lines.push_back(fmt::format("{:<14} {:<40} {:>9} {:>12}", "STAGE", "TOPIC", "PARTITION", "LAG"));
    for (std::size_t i = 0; i < lag.size() && i < kLagRows; ++i)
      lines.push_back(fmt::format("{:<14} {:<40} {:>9} {:>12}", fit(lag[i].stage, 14), fit(lag[i].topic, 40),
                                  fit(lag[i].partition, 9), lag[i].lag));
  }
  lines.push_back("");
  lines.push_back("q quit   s sort (name, in/s, out/s, errors)");
  std::string out;
  for (auto& l : lines) out += fit(l, width) + "\n";
  return out;
}

namespace {

struct RawTerminal {
  bool on = false;
  termios saved{};
  RawTerminal() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) != 0) return;
    termios raw = saved;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    on = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    std::fputs("\033[?1049h\033[?25l", stdout);  // alternate screen, hide the cursor
  }
  ~RawTerminal() {
    if (!on) return;
    std::fputs("\033[?25h\033[?1049l", stdout);
    std::fflush(stdout);
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  }
};

std::size_t term_width() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

}  // namespace

void register_top_command(CLI::App& app, Globals& g) {
  struct Args {
    std::string url;
    int port = 9464;
    double interval = 1.0;
    bool once = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("top", "Live view of a running pipeline: rates, totals, errors, channel fill (q quits)");
  cmd->add_option("--url", a->url, "The pipeline's metrics address (default http://127.0.0.1:PORT)")->type_name("URL");
  cmd->add_option("--port", a->port, "The port given to `flowctl run --metrics-port` (default 9464)");
  cmd->add_option("--interval", a->interval, "Seconds between refreshes (default 1)");
  cmd->add_flag("--once", a->once, "Print one frame (rates over --interval) and exit, for scripts");
  cmd->callback([&g, a] {
    const std::string base = a->url.empty() ? fmt::format("http://127.0.0.1:{}", a->port) : a->url;
    httplib::Client client(base);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(std::chrono::seconds(5));
    std::optional<RawTerminal> term;
    if (!a->once) term.emplace();
    std::optional<View> before;
    auto before_t = std::chrono::steady_clock::now();
    int sort = 2;
    int frames = 0;
    for (;;) {
      View v;
      std::string note, err;
      auto res = client.Get("/metrics.json");
      const auto t = std::chrono::steady_clock::now();
      if (!res || res->status != 200 || !parse_view(res->body, v, err)) {
        if (a->once || !before) {
          term.reset();
          std::fprintf(stderr, "flowctl: error: cannot read %s/metrics.json (%s); is `flowctl run --metrics-port` running?\n",
                       base.c_str(), res ? (err.empty() ? fmt::format("HTTP {}", res->status).c_str() : err.c_str())
                                         : httplib::to_string(res.error()).c_str());
          g.exit_code = kExitRuntime;
          return;
        }
        v = *before;
        note = fmt::format("{}: not reachable (pipeline ended?); q quits", base);
      } else if (before) {
        const double dt = std::chrono::duration<double>(t - before_t).count();
        for (auto& s : v.stages)
          for (const auto& b : before->stages)
            if (b.id == s.id && dt > 0) {
              s.in_rate = static_cast<double>(s.in - std::min(s.in, b.in)) / dt;
              s.out_rate = static_cast<double>(s.out - std::min(s.out, b.out)) / dt;
            }
      }
      if (!a->once || before) {
        const std::string frame = render_top(v, base, sort, term_width(), note);
        if (term && term->on) std::fputs("\033[H\033[2J", stdout);
        std::fputs(frame.c_str(), stdout);
        std::fflush(stdout);
        ++frames;
        if (a->once) return;
      }
      if (note.empty()) {
        before = v;
        before_t = t;
      }
      // Wait for a key or the next refresh.
      const auto deadline = t + std::chrono::duration<double>(a->interval);
      for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{STDIN_FILENO, POLLIN, 0};
        if (a->once || !term || !term->on) {
          ::poll(nullptr, 0, static_cast<int>(left.count()));
          continue;
        }
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char c = 0;
        if (::read(STDIN_FILENO, &c, 1) != 1) continue;
        if (c == 'q' || c == 'Q' || c == 3) return;
        if (c == 's' || c == 'S') {
          sort = (sort + 1) % 4;
          break;  // redraw now
        }
      }
    }
  });
}

}  // namespace flow::cli
