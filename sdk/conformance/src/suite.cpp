#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "flow/conformance/conformance.hpp"
#include "flow/flow.hpp"
#include "flow/testing/harness.hpp"
#include "inputs.hpp"
#include "host/plugin_loader.hpp"

namespace flow::conformance {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

CheckResult pass(const std::string& name, std::string saw = {}) { return {name, Status::Pass, {}, std::move(saw)}; }
CheckResult fail(const std::string& name, std::string expected, std::string saw) {
  return {name, Status::Fail, std::move(expected), std::move(saw)};
}
CheckResult skip(const std::string& name, std::string reason) { return {name, Status::Skip, std::move(reason), {}}; }

std::string seconds_text(std::chrono::milliseconds d) { return format_double(static_cast<double>(d.count()) / 1000.0) + "s"; }

// ---------------------------------------------------------------------------------------------
// What a check runs against.

enum class Applies { All, Source, Processor, Transform };
enum class Needs { Load, Sample };  // Load: the library loads; Sample: the sample config works

struct Env {
  const Options& options;
  const loader::Plugin& plugin;
  const PluginDescriptor& d;
  std::string dir;          // a fresh temporary directory for this check
  std::string config_yaml;  // the sample, with ${TMPDIR} replaced by `dir`

  Value config() const { return config_yaml.empty() ? Value() : testing::yaml(config_yaml); }
  // The inputs to try, the plugin's own sample first.
  std::vector<Shape> shapes() const { return shapes_for(d, config(), dir); }
  bool is_source() const { return d.info.kind == StageKind::Source; }
};

struct CheckDef {
  std::string name;
  Applies applies;
  Needs needs;
  bool isolated;            // runs plugin code: in a forked child with a time limit
  std::string expectation;  // what a crash or a hang violates
  std::function<CheckResult(Env&)> body;
};

bool applies_to(Applies a, StageKind k) {
  switch (a) {
    case Applies::All: return true;
    case Applies::Source: return k == StageKind::Source;
    case Applies::Processor: return k != StageKind::Source;
    case Applies::Transform: return k == StageKind::Transform;
  }
  return false;
}

const char* applies_text(Applies a) {
  switch (a) {
    case Applies::All: return "every plugin";
    case Applies::Source: return "sources";
    case Applies::Processor: return "transforms and sinks";
    case Applies::Transform: return "transforms";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Calling plugin code: anything thrown becomes a text; non-std exceptions and empty messages are
// conformance failures of their own.

struct Outcome {
  bool ok = true;         // returned normally
  bool clean = true;      // when it threw: a std::exception with a message
  std::string message;    // what it threw
};

template <class F>
Outcome guarded(F&& f) {
  try {
    f();
    return {};
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (what.empty()) return {false, false, "a std::exception with an empty message"};
    return {false, true, what};
  } catch (...) {
    return {false, false, "an exception that is not a std::exception (no message)"};
  }
}

std::string first_line(const std::string& s, std::size_t max = 200) {
  std::string out = s.substr(0, s.find('\n'));
  if (out.size() > max) out = out.substr(0, max) + "...";
  return out;
}

// Acknowledges every batch the stage emitted (standing in for the downstream stages); counts
// emitted batches that carry rows but no positions, and inconsistent batches.
struct OutputStats {
  std::size_t batches = 0, rows = 0, rows_without_positions = 0, inconsistent = 0;
};
void ack_outputs(testing::StageHarness& h, OutputStats& stats) {
  std::vector<std::string> outputs;
  if (h.descriptor().info.main_output) outputs.push_back("");
  for (const auto& o : h.descriptor().info.extra_outputs) outputs.push_back(o);
  for (const auto& o : outputs) {
    for (auto& b : h.drain(o)) {
      ++stats.batches;
      stats.rows += b.num_rows();
      if (!b.schema() || !b.consistent() || b.num_columns() != b.schema()->size()) ++stats.inconsistent;
      if (b.num_rows() > 0 && b.positions().empty()) stats.rows_without_positions += b.num_rows();
      b.positions().ack();
    }
  }
}

std::unique_ptr<testing::StageHarness> open_harness(Env& env, int cycle = 0) {
  auto h = std::make_unique<testing::StageHarness>(env.d, env.config());
  h->set_cycle(cycle);
  h->open();
  return h;
}

// Finds the first input shape the stage accepts (one valid row, then finish).
struct Probe {
  std::optional<Shape> shape;  // the first one accepted
  std::string rejections;  // why the others were refused
};
Probe probe_shape(Env& env) {
  Probe p;
  for (const Shape& s : env.shapes()) {
    OutputStats stats;
    auto o = guarded([&] {
      auto h = open_harness(env);
      h->push(s.valid(1, 0, std::chrono::duration_cast<std::chrono::microseconds>(h->now().time_since_epoch()).count()));
      h->finish();
      ack_outputs(*h, stats);
      h->close();
    });
    if (o.ok) {
      p.shape = s;
      return p;
    }
    p.rejections += std::string(p.rejections.empty() ? "" : "; ") + s.name + ": " + first_line(o.message, 120);
  }
  return p;
}

int64_t now_micros(const testing::StageHarness& h) {
  return std::chrono::duration_cast<std::chrono::microseconds>(h.now().time_since_epoch()).count();
}

// Pushes each batch into its own freshly opened stage (open, push, finish, close), as the runtime
// would fail the pipeline after a stage threw. Returns the first problem, or nullopt.
struct DataRun {
  std::size_t accepted = 0, rejected = 0;
  std::string first_rejection;
  std::optional<std::string> violation;
};
DataRun push_each(Env& env, const std::vector<std::function<Batch(testing::StageHarness&)>>& makers) {
  DataRun run;
  for (const auto& make : makers) {
    OutputStats stats;
    auto o = guarded([&] {
      auto h = open_harness(env);
      h->push(make(*h));
      ack_outputs(*h, stats);
      h->finish();
      ack_outputs(*h, stats);
      h->close();
    });
    if (!o.clean) {
      run.violation = "the stage threw " + o.message;
      return run;
    }
    if (stats.inconsistent) {
      run.violation = "it emitted " + std::to_string(stats.inconsistent) + " batch(es) whose columns differ in length or from the schema";
      return run;
    }
    if (o.ok) {
      ++run.accepted;
    } else {
      ++run.rejected;
      if (run.first_rejection.empty()) run.first_rejection = first_line(o.message, 120);
    }
  }
  return run;
}

CheckResult data_result(const std::string& name, const DataRun& run) {
  if (run.violation)
    return fail(name, "no crash, no hang, errors thrown as std::exception with a message, consistent output batches",
                *run.violation);
  std::string saw = std::to_string(run.accepted) + " batch(es) accepted";
  if (run.rejected) saw += ", " + std::to_string(run.rejected) + " rejected with a message (\"" + run.first_rejection + "\")";
  return pass(name, saw);
}

// Runs a source's run() on a thread; stops it when `before_stop` returns, and waits `bound` for
// run() to return. On a hang the harness and the thread are left behind on purpose: the check
// runs in a child process that exits right after.
struct SourceRunResult {
  bool returned_before_stop = false;
  bool returned = false;
  std::chrono::milliseconds stop_took{0};
  Outcome outcome;
};
SourceRunResult run_source_until(std::unique_ptr<testing::StageHarness>& hp, std::chrono::milliseconds bound,
                                 const std::function<void(testing::StageHarness&, const std::future<void>&)>& before_stop) {
  auto& h = *hp;
  auto* src = dynamic_cast<Source*>(&h.stage());
  if (!src) throw std::logic_error("the stage of a source plugin is not a flow::Source");
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  auto outcome = std::make_shared<Outcome>();
  std::thread t([src, &h, done, outcome] {
    *outcome = guarded([&] { src->run(h.context(), h.emitter()); });
    done->set_value();
  });
  SourceRunResult r;
  before_stop(h, fut);
  r.returned_before_stop = fut.wait_for(0ms) == std::future_status::ready;
  const auto asked = Clock::now();
  h.request_stop();
  r.returned = fut.wait_for(bound) == std::future_status::ready;
  r.stop_took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked);
  if (!r.returned) {
    t.detach();
    (void)hp.release();  // still used by the stuck thread
    return r;
  }
  t.join();
  r.outcome = *outcome;
  return r;
}

// ---------------------------------------------------------------------------------------------
// The checks.

const std::regex kNameRe(R"(^([a-z0-9]+(-[a-z0-9]+)*\.)*[a-z0-9]+(-[a-z0-9]+)*$)");
const std::regex kOptionRe(R"(^[a-z][a-z0-9_]*$)");

CheckResult check_name(Env& env) {
  const std::string n = "descriptor.name";
  const auto& name = env.d.info.name;
  if (!std::regex_match(name, kNameRe))
    return fail(n, "a kebab-case name, optionally with a dotted prefix (csv-window-sink, acme.word-count)",
                "'" + name + "'");
  if (env.d.info.version.empty()) return fail(n, "a version", "an empty version");
  return pass(n, name + " " + env.d.info.version);
}

CheckResult check_kind(Env& env) {
  const std::string n = "descriptor.kind";
  const auto k = static_cast<int>(env.d.info.kind);
  if (k < 0 || k > 2) return fail(n, "kind source, transform or sink", "kind value " + std::to_string(k));
  if (env.d.info.kind != StageKind::Sink && !env.d.info.main_output)
    return fail(n, "a main output for a source or transform", "main_output = false");
  std::set<std::string> seen;
  for (const auto& o : env.d.info.extra_outputs)
    if (o.empty() || !std::regex_match(o, kNameRe) || !seen.insert(o).second)
      return fail(n, "extra outputs with unique kebab-case names", "extra output '" + o + "'");
  return pass(n, kind_name(env.d.info.kind));
}

// Long enough for a sentence, short enough for one line of `flowctl plugins list`.
constexpr std::size_t kMaxDescription = 160;

CheckResult check_description(Env& env) {
  const std::string n = "descriptor.description";
  const auto& d = env.d.info.description;
  if (d.empty()) return fail(n, "a one-line description", "an empty description");
  if (d.find('\n') != std::string::npos) return fail(n, "a one-line description", "a description with a line break");
  if (d.size() > kMaxDescription) return fail(n, "a description of at most " + std::to_string(kMaxDescription) + " characters", std::to_string(d.size()) + " characters");
  return pass(n, "\"" + d + "\"");
}

CheckResult check_documented(Env& env) {
  const std::string n = "descriptor.options-documented";
  std::set<std::string> seen;
  for (const auto& o : env.d.options) {
    if (!std::regex_match(o.name, kOptionRe))
      return fail(n, "snake_case option names", "option '" + o.name + "'");
    if (!seen.insert(o.name).second) return fail(n, "unique option names", "option '" + o.name + "' declared twice");
    bool blank = true;
    for (char c : o.doc)
      if (!std::isspace(static_cast<unsigned char>(c))) blank = false;
    if (blank) return fail(n, "a doc line for every option", "option '" + o.name + "' has an empty doc");
    if (o.doc.find('\n') != std::string::npos)
      return fail(n, "one-line option docs", "option '" + o.name + "' has a line break in its doc");
  }
  return pass(n, std::to_string(env.d.options.size()) + " option(s), each documented");
}

std::string range_text(const OptionSpec& s) {
  if (s.min && s.max) return "[" + format_double(*s.min) + ", " + format_double(*s.max) + "]";
  if (s.min) return ">= " + format_double(*s.min);
  if (s.max) return "<= " + format_double(*s.max);
  return "any";
}
std::string allowed_text(const OptionSpec& s) {
  std::string t;
  for (std::size_t i = 0; i < s.allowed.size(); ++i) t += (i ? ", " : "") + s.allowed[i];
  return "{" + t + "}";
}

CheckResult check_defaults(Env& env) {
  const std::string n = "descriptor.defaults";
  for (const auto& o : env.d.options) {
    if (o.required) {
      if (!o.default_text.empty())
        return fail(n, "no default for a required option", "option '" + o.name + "' has default '" + o.default_text + "'");
      continue;
    }
    const std::string& t = o.default_text;
    std::optional<double> numeric;
    bool parses = true;
    switch (o.type) {
      case OptionType::Bool: parses = parse_bool(t).has_value(); break;
      case OptionType::Int:
        if (auto v = parse_int(t)) numeric = static_cast<double>(*v);
        else parses = false;
        break;
      case OptionType::Float:
        if (auto v = parse_double(t)) numeric = *v;
        else parses = false;
        break;
      case OptionType::Duration:
        if (auto v = parse_duration(t)) numeric = static_cast<double>(v->count()) / 1000.0;
        else parses = false;
        break;
      case OptionType::Size:
        if (auto v = parse_size(t)) numeric = static_cast<double>(v->bytes);
        else parses = false;
        break;
      case OptionType::String:
        if (!o.allowed.empty() && t != "\"\"" && std::find(o.allowed.begin(), o.allowed.end(), t) == o.allowed.end())
          return fail(n, "option '" + o.name + "' defaults to one of " + allowed_text(o),
                      "default '" + t + "'");
        break;
      default: break;
    }
    if (!parses)
      return fail(n, "option '" + o.name + "' has a default that is a valid " + option_type_name(o.type),
                  "default '" + t + "'");
    if (numeric && ((o.min && *numeric < *o.min) || (o.max && *numeric > *o.max)))
      return fail(n, "option '" + o.name + "' defaults to a value in " + range_text(o),
                  "default '" + t + "'");
  }
  return pass(n, "every default valid for its type and range");
}

CheckResult check_sample(Env& env) {
  const std::string n = "config.sample";
  Value config;
  try {
    config = env.config();
  } catch (const std::exception& e) {
    return fail(n, "a sample config that is valid YAML", e.what());
  }
  if (!config.is_null() && !config.is_map()) return fail(n, "a sample config that is a map of options", Value::kind_name(config.kind()));
  auto errors = env.plugin.check(config, Location{"<sample config>", 0, 0});
  if (!errors.empty()) {
    std::string saw;
    for (const auto& e : errors) saw += (saw.empty() ? "" : "; ") + e.str();
    return fail(n, "the sample config accepted by the plugin's check", saw);
  }
  std::unique_ptr<Stage> stage;
  try {
    stage = env.plugin.create(config);
  } catch (const std::exception& e) {
    return fail(n, "a stage created from the sample config", first_line(e.what()));
  }
  const bool is_source = dynamic_cast<Source*>(stage.get()) != nullptr;
  const bool is_processor = dynamic_cast<Processor*>(stage.get()) != nullptr;
  if (env.is_source() ? !is_source : !is_processor)
    return fail(n, std::string("a stage class matching kind '") + kind_name(env.d.info.kind) + "'",
                is_source ? "a flow::Source" : is_processor ? "a flow::Processor" : "neither a Source nor a Processor");
  stage.reset();
  auto o = guarded([&] {
    auto h = open_harness(env);
    h->close();
  });
  if (!o.ok) return fail(n, "open() and close() with the sample config", o.message);
  return pass(n, "checked, created, opened and closed");
}

// Whether `errors` has one naming `what` (quoted as the option table quotes it).
bool names(const std::vector<ConfigError>& errors, const std::string& what) {
  for (const auto& e : errors)
    if (e.message.find("'" + what + "'") != std::string::npos) return true;
  return false;
}
std::string errors_text(const std::vector<ConfigError>& errors) {
  if (errors.empty()) return "no error";
  std::string s;
  for (const auto& e : errors) s += (s.empty() ? "" : "; ") + e.message;
  return s;
}
Value as_map(Value v) { return v.is_null() ? Value::map() : v; }

CheckResult check_required(Env& env) {
  const std::string n = "config.required";
  std::size_t count = 0;
  for (const auto& o : env.d.options) {
    if (!o.required) continue;
    ++count;
    Value config = as_map(env.config());
    auto& entries = config.entries();
    std::erase_if(entries, [&](const Value::Entry& e) { return e.key == o.name; });
    auto errors = env.plugin.check(config, {});
    if (!names(errors, o.name))
      return fail(n, "without required option '" + o.name + "': an error naming it", errors_text(errors));
    bool threw = false;
    try {
      env.plugin.create(config);
    } catch (const std::exception&) {
      threw = true;
    }
    if (!threw) return fail(n, "without required option '" + o.name + "': create() refuses", "a stage was created");
  }
  return pass(n, count ? std::to_string(count) + " required option(s), each missing one rejected" : "no required options");
}

std::optional<Value> wrong_value(OptionType t) {
  auto map = [] {
    Value m = Value::map();
    m.set("not", Value::scalar("expected"));
    return m;
  };
  switch (t) {
    case OptionType::Bool: return Value::scalar("not-a-bool");
    case OptionType::Int:
    case OptionType::Float: return Value::scalar("not-a-number");
    case OptionType::Duration: return Value::scalar("soon");
    case OptionType::Size: return Value::scalar("lots");
    case OptionType::String:
    case OptionType::StringList: return map();
    case OptionType::StringMap: return Value::scalar("not-a-map");
    case OptionType::Object: return std::nullopt;  // the plugin interprets it
  }
  return std::nullopt;
}

CheckResult check_wrong_type(Env& env) {
  const std::string n = "config.wrong-type";
  std::size_t count = 0;
  for (const auto& o : env.d.options) {
    auto bad = wrong_value(o.type);
    if (!bad) continue;
    ++count;
    Value config = as_map(env.config());
    config.set(o.name, *bad);
    auto errors = env.plugin.check(config, {});
    if (!names(errors, o.name))
      return fail(n, std::string("option '") + o.name + "' (" + option_type_name(o.type) + ") set to a wrong type: an error naming it",
                  errors_text(errors));
  }
  return pass(n, std::to_string(count) + " option(s), each rejected with a wrong type");
}

CheckResult check_unknown(Env& env) {
  const std::string n = "config.unknown-option";
  Value config = as_map(env.config());
  config.set("no_such_option_xyz", Value::scalar("1"));
  auto errors = env.plugin.check(config, {});
  if (!names(errors, "no_such_option_xyz"))
    return fail(n, "an unknown option rejected with an error naming it", errors_text(errors));
  return pass(n, first_line(errors.front().message));
}

CheckResult check_open_close(Env& env) {
  const std::string n = "lifecycle.open-close";
  for (int cycle = 0; cycle < 3; ++cycle) {
    OutputStats stats;
    auto o = guarded([&] {
      auto h = open_harness(env, cycle);
      if (!env.is_source()) {
        h->finish();
        ack_outputs(*h, stats);
      }
      h->close();
    });
    if (!o.ok) return fail(n, "open, " + std::string(env.is_source() ? "" : "finish, ") + "close three times (a new stage per cycle)",
                           "cycle " + std::to_string(cycle) + ": " + o.message);
  }
  return pass(n, "3 cycles");
}

CheckResult check_stop_idle(Env& env) {
  const std::string n = "lifecycle.stop-idle";
  auto h = open_harness(env);
  auto r = run_source_until(h, env.options.stop_bound, [](testing::StageHarness&, const std::future<void>& f) {
    f.wait_for(50ms);  // let it start
  });
  const std::string expected = "run() returns within " + seconds_text(env.options.stop_bound) + " of a stop request";
  if (!r.returned) return fail(n, expected, "still running after " + seconds_text(env.options.stop_bound));
  if (!r.outcome.clean) return fail(n, "run() throws only std::exceptions with a message", r.outcome.message);
  if (!r.outcome.ok) return fail(n, expected + " without an error", r.outcome.message);
  h->close();
  return pass(n, r.returned_before_stop ? "returned by itself before the stop request" : "returned after the stop request");
}

CheckResult check_stop_blocked(Env& env) {
  const std::string n = "lifecycle.stop-blocked";
  auto h = open_harness(env);
  h->set_capacity(1);
  bool blocked = false;
  auto r = run_source_until(h, env.options.stop_bound, [&](testing::StageHarness& hs, const std::future<void>& f) {
    const auto until = Clock::now() + 3s;
    while (Clock::now() < until && f.wait_for(5ms) != std::future_status::ready)
      if (hs.output_rows("") > 0) {
        blocked = true;
        f.wait_for(100ms);  // time to block on the next emit
        break;
      }
  });
  const std::string expected = "run() blocked by a full output returns within " + seconds_text(env.options.stop_bound) +
                               " of a stop request";
  if (!r.returned) return fail(n, expected, "still running after " + seconds_text(env.options.stop_bound));
  if (!r.outcome.clean) return fail(n, "run() throws only std::exceptions with a message", r.outcome.message);
  if (!r.outcome.ok) return fail(n, expected + " without an error", r.outcome.message);
  h->close();
  return pass(n, blocked ? "returned while its output was full" : "emitted nothing within 3s; returned after the stop request");
}

CheckResult check_source_batches(Env& env) {
  const std::string n = "data.source-batches";
  auto h = open_harness(env);
  auto r = run_source_until(h, env.options.stop_bound, [](testing::StageHarness& hs, const std::future<void>& f) {
    const auto until = Clock::now() + 3s;
    while (Clock::now() < until && f.wait_for(5ms) != std::future_status::ready)
      if (hs.output_rows("") > 0) {
        f.wait_for(100ms);  // a few more batches
        break;
      }
  });
  if (!r.returned) return fail(n, "run() returns after a stop request", "still running after " + seconds_text(env.options.stop_bound));
  if (!r.outcome.clean) return fail(n, "run() throws only std::exceptions with a message", r.outcome.message);
  OutputStats stats;
  ack_outputs(*h, stats);
  h->close();
  if (stats.inconsistent)
    return fail(n, "batches whose columns match their schema and have one length",
                std::to_string(stats.inconsistent) + " inconsistent batch(es) of " + std::to_string(stats.batches));
  return pass(n, std::to_string(stats.batches) + " batch(es), " + std::to_string(stats.rows) + " row(s)");
}

CheckResult check_finish_empty(Env& env) {
  const std::string n = "lifecycle.finish-empty";
  OutputStats stats;
  auto o = guarded([&] {
    auto h = open_harness(env);
    h->finish();
    ack_outputs(*h, stats);
    h->close();
  });
  if (!o.ok) return fail(n, "finish() without any input succeeds", o.message);
  if (stats.rows) return fail(n, "no output rows without input", std::to_string(stats.rows) + " row(s)");
  return pass(n, "finished with no input");
}

CheckResult check_empty_batch(Env& env) {
  auto probe = probe_shape(env);
  std::vector<std::function<Batch(testing::StageHarness&)>> makers;
  for (const Shape& s : env.shapes()) makers.push_back([s](testing::StageHarness& h) { return s.valid(0, 0, now_micros(h)); });
  auto run = push_each(env, makers);
  if (!run.violation && probe.shape && run.accepted == 0)
    run.violation = std::string("it rejected an empty batch of ") + probe.shape->name +
                    ", which it accepts with rows: " + run.first_rejection;
  return data_result("data.empty-batch", run);
}

CheckResult check_large_batch(Env& env) {
  auto probe = probe_shape(env);
  const Shape s = probe.shape ? *probe.shape : env.shapes().front();
  const std::size_t rows = env.options.large_batch_rows;
  auto run = push_each(env, {[&](testing::StageHarness& h) { return s.valid(rows, 0, now_micros(h)); }});
  auto r = data_result("data.large-batch", run);
  if (r.passed()) r.saw = std::to_string(rows) + " rows of " + s.name + ": " + r.saw;
  return r;
}

CheckResult check_random_bytes(Env& env) {
  std::vector<std::function<Batch(testing::StageHarness&)>> makers;
  for (const Shape& s : env.shapes())
    for (uint64_t seed = 1; seed <= 3; ++seed)
      makers.push_back([s, seed](testing::StageHarness&) {
        std::mt19937_64 rng(seed * 7919);
        return s.random(500, rng);
      });
  return data_result("data.random-bytes", push_each(env, makers));
}

CheckResult check_malformed(Env& env) {
  std::vector<std::function<Batch(testing::StageHarness&)>> makers;
  for (const Shape& s : env.shapes()) makers.push_back([s](testing::StageHarness&) { return s.malformed(); });
  return data_result("data.malformed-records", push_each(env, makers));
}

// Feeds batches with tracked positions, acknowledging what the stage emits as a downstream
// stage would, then finishes: every group of an accepted batch must be acknowledged exactly once.
struct AckRun {
  std::optional<std::string> problem;  // set when the run itself failed
  std::size_t groups = 0, accepted = 0;
  std::map<int64_t, int> acks;  // by the group's first offset
  std::set<int64_t> accepted_groups;
  OutputStats stats;
  Shape shape;
};
AckRun ack_run(Env& env, const Probe& probe) {
  AckRun run;
  run.shape = *probe.shape;
  testing::AckLog log;
  auto outcome = guarded([&] {
    auto h = open_harness(env);
    for (int64_t i = 0; i < 6; ++i) {
      const std::size_t rows = 20 + static_cast<std::size_t>(i) * 7;
      const int64_t begin = i * 1000;
      Batch b = run.shape.valid(rows, begin, now_micros(*h));
      b.positions() = log.track(begin, begin + static_cast<int64_t>(rows));
      ++run.groups;
      auto o = guarded([&] { h->push(std::move(b)); });
      if (!o.clean) throw std::runtime_error("process() threw " + o.message);
      if (o.ok) {
        ++run.accepted;
        run.accepted_groups.insert(begin);
      }
      ack_outputs(*h, run.stats);
      h->advance(std::chrono::seconds(1));
      ack_outputs(*h, run.stats);
    }
    h->advance(std::chrono::minutes(2));  // lets time-based stages (windows) close
    ack_outputs(*h, run.stats);
    h->finish();
    ack_outputs(*h, run.stats);
    h->close();
    ack_outputs(*h, run.stats);
  });
  if (!outcome.ok) run.problem = outcome.message;
  for (const auto& r : log.acked()) run.acks[r.begin] += 1;
  return run;
}

CheckResult check_ack_once(Env& env) {
  const std::string n = "ack.exactly-once";
  auto probe = probe_shape(env);
  if (!probe.shape) return skip(n, "no input the stage accepts (" + probe.rejections + ")");
  auto run = ack_run(env, probe);
  const std::string expected = "every position group of an accepted batch acknowledged exactly once (after the suite acknowledged the stage's output and called finish)";
  if (run.problem) return fail(n, expected, "the stage failed: " + *run.problem);
  std::size_t never = 0, twice = 0;
  for (int64_t g : run.accepted_groups) {
    const int c = run.acks.count(g) ? run.acks.at(g) : 0;
    if (c == 0) ++never;
    if (c > 1) ++twice;
  }
  for (const auto& [g, c] : run.acks)
    if (!run.accepted_groups.count(g) && c > 1) ++twice;
  if (never || twice)
    return fail(n, expected,
                std::to_string(run.accepted) + " accepted group(s): " + std::to_string(never) + " never acknowledged, " +
                    std::to_string(twice) + " acknowledged more than once");
  return pass(n, std::to_string(run.accepted) + " group(s) of " + run.shape.name + ", each acknowledged once");
}

CheckResult check_handed_on(Env& env) {
  const std::string n = "ack.handed-on";
  auto probe = probe_shape(env);
  if (!probe.shape) return skip(n, "no input the stage accepts (" + probe.rejections + ")");
  auto run = ack_run(env, probe);
  if (run.problem) return fail(n, "a transform that processes accepted input", "the stage failed: " + *run.problem);
  if (run.stats.rows_without_positions)
    return fail(n, "every forwarded row carries its input's positions (move them with the batch; acknowledge only dropped rows)",
                std::to_string(run.stats.rows_without_positions) + " of " + std::to_string(run.stats.rows) +
                    " emitted row(s) without positions");
  return pass(n, std::to_string(run.stats.rows) + " emitted row(s), all with positions");
}

const std::vector<CheckDef>& checks() {
  static const std::vector<CheckDef> defs = {
      {"descriptor.name", Applies::All, Needs::Load, false, "", check_name},
      {"descriptor.kind", Applies::All, Needs::Load, false, "", check_kind},
      {"descriptor.description", Applies::All, Needs::Load, false, "", check_description},
      {"descriptor.options-documented", Applies::All, Needs::Load, false, "", check_documented},
      {"descriptor.defaults", Applies::All, Needs::Load, false, "", check_defaults},
      {"config.sample", Applies::All, Needs::Load, true, "the sample config checked, created, opened and closed without a crash", check_sample},
      {"config.required", Applies::All, Needs::Load, true, "each required option removed: rejected with a message, no crash", check_required},
      {"config.wrong-type", Applies::All, Needs::Load, true, "each option set to a wrong type: rejected with a message, no crash", check_wrong_type},
      {"config.unknown-option", Applies::All, Needs::Load, true, "an unknown option rejected with a message, no crash", check_unknown},
      {"lifecycle.open-close", Applies::All, Needs::Sample, true, "open and close three times without a crash or hang", check_open_close},
      {"lifecycle.stop-idle", Applies::Source, Needs::Sample, true, "run() returns promptly after a stop request", check_stop_idle},
      {"lifecycle.stop-blocked", Applies::Source, Needs::Sample, true, "run() blocked on a full output returns promptly after a stop request", check_stop_blocked},
      {"lifecycle.finish-empty", Applies::Processor, Needs::Sample, true, "finish() with no input, without a crash or hang", check_finish_empty},
      {"data.source-batches", Applies::Source, Needs::Sample, true, "consistent batches, no crash or hang", check_source_batches},
      {"data.empty-batch", Applies::Processor, Needs::Sample, true, "an empty batch handled without a crash or hang", check_empty_batch},
      {"data.large-batch", Applies::Processor, Needs::Sample, true, "a large batch handled without a crash, within the time limit", check_large_batch},
      {"data.random-bytes", Applies::Processor, Needs::Sample, true, "random bytes rejected or handled without a crash or hang", check_random_bytes},
      {"data.malformed-records", Applies::Processor, Needs::Sample, true, "malformed records rejected or handled without a crash or hang", check_malformed},
      {"ack.exactly-once", Applies::Processor, Needs::Sample, true, "every position group acknowledged exactly once, no crash or hang", check_ack_once},
      {"ack.handed-on", Applies::Transform, Needs::Sample, true, "forwarded rows carry their positions, no crash or hang", check_handed_on},
  };
  return defs;
}

const CheckDef& find_def(const std::string& name) {
  for (const auto& d : checks())
    if (d.name == name) return d;
  throw std::logic_error("no conformance check '" + name + "'");
}

// ---------------------------------------------------------------------------------------------
// Running a check in a child process.

void write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t w = ::write(fd, s.data() + off, s.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += static_cast<std::size_t>(w);
  }
}

std::string serialize(const CheckResult& r) {
  const char status = r.passed() ? 'P' : r.failed() ? 'F' : 'S';
  return std::string(1, status) + std::to_string(r.expected.size()) + "\n" + r.expected + r.saw;
}

std::optional<CheckResult> deserialize(const std::string& name, const std::string& s) {
  if (s.size() < 2) return std::nullopt;
  const auto nl = s.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  auto len = parse_int(std::string_view(s).substr(1, nl - 1));
  if (!len || *len < 0 || nl + 1 + static_cast<std::size_t>(*len) > s.size()) return std::nullopt;
  CheckResult r;
  r.name = name;
  r.status = s[0] == 'P' ? Status::Pass : s[0] == 'F' ? Status::Fail : Status::Skip;
  r.expected = s.substr(nl + 1, static_cast<std::size_t>(*len));
  r.saw = s.substr(nl + 1 + static_cast<std::size_t>(*len));
  return r;
}

std::string make_temp_dir() {
  std::error_code ec;
  fs::path base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string templ = (base / "flow-conformance-XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("cannot create a temporary directory in " + base.string() + ": " + std::strerror(errno));
  return templ;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

CheckResult run_isolated(const CheckDef& def, Env& env, std::chrono::milliseconds limit) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(def.name, def.expectation, std::string("pipe() failed: ") + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return fail(def.name, def.expectation, std::string("fork() failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(2, 1);  // whatever the plugin prints stays out of the report on stdout
    CheckResult r;
    auto o = guarded([&] { r = def.body(env); });
    if (!o.ok) r = fail(def.name, def.expectation, "the check stopped on " + o.message);
    write_all(fds[1], serialize(r));
    ::_exit(0);  // no destructors or atexit handlers of the parent's state (stuck threads are fine)
  }
  ::close(fds[1]);
  std::string data;
  const auto deadline = Clock::now() + limit;
  bool eof = false, timed_out = false;
  char buf[4096];
  while (!eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int pr = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    const ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) eof = true;
    else data.append(buf, static_cast<std::size_t>(got));
  }
  ::close(fds[0]);
  int status = 0;
  if (timed_out) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return fail(def.name, def.expectation, "no result within " + seconds_text(limit) + ": the stage hung (killed)");
  }
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fail(def.name, def.expectation,
                "the process died from signal " + std::to_string(sig) + " (" + ::strsignal(sig) + ")");
  }
  if (auto r = deserialize(def.name, data)) return *r;
  return fail(def.name, def.expectation,
              "the process exited with code " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + " before reporting");
}

}  // namespace

// ---------------------------------------------------------------------------------------------

const std::vector<std::string>& check_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = {"load.entry-point", "load.abi"};
    for (const auto& c : checks()) v.push_back(c.name);
    return v;
  }();
  return names;
}

struct Suite::Impl {
  Options options;
  bool load_tried = false;
  CheckResult entry, abi;
  loader::PluginPtr plugin;
  std::optional<CheckResult> sample;  // config.sample, once run

  void load() {
    if (load_tried) return;
    load_tried = true;
    entry = pass("load.entry-point");
    abi = pass("load.abi");
    // The loader's own handshake; each failed step is its own check.
    const std::string entry_expected = "a shared library exporting flow_plugin_abi and flow_plugin_descriptor_v1 (FLOW_PLUGIN)";
    const std::string abi_expected = "ABI " + std::to_string(kAbiVersion) + " built with " + kToolchainTag;
    try {
      plugin = loader::load_plugin_file(options.library);
      entry.saw = plugin->info().name;
      abi.saw = "ABI " + std::to_string(kAbiVersion);
    } catch (const loader::LoadError& e) {
      switch (e.step()) {
        case loader::LoadStep::EntryPoint:
          entry = fail("load.entry-point", entry_expected, e.what());
          abi = skip("load.abi", "needs load.entry-point to pass");
          break;
        case loader::LoadStep::Abi:
          abi = fail("load.abi", abi_expected, e.what());
          break;
        case loader::LoadStep::Descriptor:
          entry = fail("load.entry-point", entry_expected + " whose descriptor builds", e.what());
          break;
      }
    }
  }

  CheckResult run_def(const CheckDef& def) {
    if (!plugin) return skip(def.name, "needs the library to load (load.entry-point, load.abi)");
    if (!applies_to(def.applies, plugin->info().kind))
      return skip(def.name, std::string("applies to ") + applies_text(def.applies) + ", not to a " + kind_name(plugin->info().kind));
    if (def.needs == Needs::Sample) {
      if (!sample) sample = run_def(find_def("config.sample"));
      if (!sample->passed()) return skip(def.name, "needs config.sample to pass");
    }
    std::string dir;
    try {
      dir = make_temp_dir();
    } catch (const std::exception& e) {
      return fail(def.name, def.expectation, e.what());
    }
    Env env{options, *plugin, plugin->descriptor(), dir, replace_all(options.sample_yaml, "${TMPDIR}", dir)};
    CheckResult r;
    if (def.isolated) {
      r = run_isolated(def, env, options.check_timeout);
    } else {
      auto o = guarded([&] { r = def.body(env); });
      if (!o.ok) r = fail(def.name, def.expectation, o.message);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (def.name == "config.sample") sample = r;
    return r;
  }

  CheckResult run_one(const std::string& name) {
    load();
    if (name == "load.entry-point") return entry;
    if (name == "load.abi") return abi;
    for (const auto& def : checks())
      if (def.name == name) {
        if (name == "config.sample" && sample) return *sample;
        return run_def(def);
      }
    return fail(name, "a known check name", "'" + name + "'");
  }
};

Suite::Suite(Options options) : impl_(new Impl{std::move(options)}) {}
Suite::~Suite() { delete impl_; }

CheckResult Suite::run_one(const std::string& name) { return impl_->run_one(name); }

std::vector<CheckResult> Suite::run() {
  std::optional<std::regex> filter;
  if (!impl_->options.filter.empty()) filter.emplace(impl_->options.filter);  // throws std::regex_error
  std::vector<CheckResult> out;
  for (const auto& name : check_names())
    if (!filter || std::regex_search(name, *filter)) out.push_back(run_one(name));
  return out;
}

std::string format_result(const CheckResult& r) {
  switch (r.status) {
    case Status::Pass: return "PASS " + r.name;
    case Status::Fail: return "FAIL " + r.name + ": expected " + first_line(r.expected, 400) + ", saw " + first_line(r.saw, 400);
    case Status::Skip: return "SKIP " + r.name + ": " + first_line(r.expected, 400);
  }
  return "?";
}

std::size_t print_report(const std::vector<CheckResult>& results, std::FILE* out) {
  std::size_t passed = 0, failed = 0, skipped = 0;
  for (const auto& r : results) {
    std::fprintf(out, "%s\n", format_result(r).c_str());
    if (r.passed()) ++passed;
    else if (r.failed()) ++failed;
    else ++skipped;
  }
  if (skipped) std::fprintf(out, "%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
  else std::fprintf(out, "%zu passed, %zu failed\n", passed, failed);
  std::fflush(out);
  return failed;
}

}  // namespace flow::conformance
