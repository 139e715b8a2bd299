// flowctl test FILE...: unit tests of pipelines, in YAML files beside them (docs/pipeline-tests.md).
// Each test replaces stages by given records, runs the rest of the pipeline for real on a manual
// clock (runtime/test_run.hpp) in a temporary directory, and checks what reached stage outputs
// and sinks, and the files the sinks wrote.
#include <fmt/format.h>
#include <glob.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "flow/text.hpp"
#include "flowctl/commands.hpp"
#include "host/plugin_loader.hpp"
#include "host/yaml_value.hpp"
#include "runtime/log.hpp"
#include "runtime/test_run.hpp"
#include "spec/pipeline_spec.hpp"

namespace fs = std::filesystem;

namespace flow::cli {
namespace {

// --- the test file ------------------------------------------------------------------------

struct InputSpec {
  Location where;
  std::string stage, output;  // output "" = main
  runtime::Clock::duration at{0};
  std::vector<std::string> lines;  // JSON lines (or any text): one record each
  std::string column;              // lines go to this column; "" = a raw message's `value`
  std::vector<const Value*> records;
  std::map<std::string, Type> types;
};

struct Expectation {
  Location where;
  std::string kind;    // output | input | file | stage
  std::string target;  // as written
  const Value* body = nullptr;
};

struct TestCase {
  Location where;
  std::string name;
  std::vector<std::pair<std::string, const Value*>> sets;  // "stage.key" -> value
  std::vector<std::pair<std::string, Location>> skip;      // stages not run
  std::vector<InputSpec> inputs;
  std::vector<std::pair<std::string, std::string>> files;  // created before the run
  runtime::Clock::duration end_at{0};
  std::chrono::system_clock::time_point start =
      std::chrono::sys_days{std::chrono::year{2025} / 6 / 15} + std::chrono::hours(9);
  std::vector<Expectation> expect;
  const Value* failure = nullptr;  // the run is expected to fail: {stage, message}
};

struct TestFile {
  std::string path;
  Value root;
  std::string pipeline;  // absolute
  Location pipeline_where;
  std::vector<TestCase> tests;
};

std::string did_you_mean(const std::string& key, const std::vector<std::string>& allowed) {
  std::string best;
  std::size_t best_d = 3;
  for (const auto& a : allowed) {
    const auto d = edit_distance(key, a);
    if (d < best_d) best_d = d, best = a;
  }
  return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
}

void check_keys(const Value& map, const std::vector<std::string>& allowed, const char* what, std::vector<ConfigError>& errors) {
  for (const auto& e : map.entries())
    if (std::find(allowed.begin(), allowed.end(), e.key) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      errors.push_back({e.key_location, fmt::format("unknown key '{}' in {}{} (known: {})", e.key, what,
                                                    did_you_mean(e.key, allowed), list)});
    }
}

std::optional<std::string> scalar_of(const Value* v, const char* what, std::vector<ConfigError>& errors) {
  if (!v) return std::nullopt;
  if (!v->is_scalar()) {
    errors.push_back({v->location(), fmt::format("{} must be a scalar, got a {}", what, Value::kind_name(v->kind()))});
    return std::nullopt;
  }
  return v->text();
}

std::optional<runtime::Clock::duration> duration_of(const Value* v, const char* what, std::vector<ConfigError>& errors) {
  auto text = scalar_of(v, what, errors);
  if (!text) return std::nullopt;
  auto d = parse_duration(*text);
  if (!d) {
    errors.push_back({v->location(), fmt::format("{} must be a duration such as 0s, 500ms or 2m, got '{}'", what, *text)});
    return std::nullopt;
  }
  return std::chrono::duration_cast<runtime::Clock::duration>(*d);
}

// "2025-06-15 09:00:00[.ffffff]" (or with T, optionally Z), UTC -> microseconds since the epoch.
std::optional<int64_t> parse_utc(std::string_view s) {
  if (!s.empty() && s.back() == 'Z') s.remove_suffix(1);
  int y, mo, d, h, mi, sec;
  char sep;
  int used = 0;
  const std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &sec, &used) != 7 ||
      (sep != ' ' && sep != 'T'))
    return std::nullopt;
  int64_t micros = 0;
  std::string_view rest = s.substr(static_cast<std::size_t>(used));
  if (!rest.empty()) {
    if (rest.front() != '.' || rest.size() < 2 || rest.size() > 7) return std::nullopt;
    std::string frac(rest.substr(1));
    for (char c : frac)
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    frac.resize(6, '0');
    micros = std::stoll(frac);
  }
  using namespace std::chrono;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec};
  return duration_cast<microseconds>(tp.time_since_epoch()).count() + micros;
}

std::string format_utc(int64_t micros) {
  const std::time_t t = static_cast<std::time_t>(micros >= 0 ? micros / 1'000'000 : (micros - 999'999) / 1'000'000);
  const int64_t frac = micros - static_cast<int64_t>(t) * 1'000'000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return frac ? fmt::format("{}.{:06d}", buf, frac) : std::string(buf);
}

std::optional<Type> type_named(const std::string& s) {
  if (s == "int" || s == "int64") return Type::Int64;
  if (s == "float" || s == "float64" || s == "double") return Type::Float64;
  if (s == "bool") return Type::Bool;
  if (s == "string") return Type::String;
  if (s == "timestamp") return Type::Timestamp;
  return std::nullopt;
}

// "stage" or "stage.output"
std::pair<std::string, std::string> split_ref(const std::string& s) {
  const auto dot = s.find('.');
  if (dot == std::string::npos) return {s, ""};
  return {s.substr(0, dot), s.substr(dot + 1)};
}

void parse_input(const Value& v, TestCase& t, std::vector<ConfigError>& errors) {
  if (!v.is_map()) {
    errors.push_back({v.location(), "an input must be a map with 'stage' and 'lines' or 'records'"});
    return;
  }
  check_keys(v, {"stage", "at", "lines", "records", "column", "types"}, "an input", errors);
  InputSpec in;
  in.where = v.location();
  if (auto s = scalar_of(v.find("stage"), "'stage'", errors)) std::tie(in.stage, in.output) = split_ref(*s);
  else if (!v.find("stage")) errors.push_back({v.location(), "missing key 'stage' (the stage these records replace)"});
  if (auto d = duration_of(v.find("at"), "'at'", errors)) in.at = *d;
  if (auto c = scalar_of(v.find("column"), "'column'", errors)) in.column = *c;
  const Value* lines = v.find("lines");
  const Value* records = v.find("records");
  if (!lines && !records) errors.push_back({v.location(), "an input needs 'lines' (text, one record a line) or 'records' (a list of maps)"});
  if (lines && records) errors.push_back({records->location(), "an input has 'lines' or 'records', not both"});
  if (lines) {
    if (lines->is_scalar()) {
      std::istringstream ss(lines->text());
      for (std::string line; std::getline(ss, line);)
        if (!line.empty()) in.lines.push_back(line);
    } else if (lines->is_list()) {
      for (const auto& l : lines->items())
        if (auto s = scalar_of(&l, "a line", errors)) in.lines.push_back(*s);
    } else {
      errors.push_back({lines->location(), "'lines' must be text (a block scalar: one record a line) or a list of strings"});
    }
  }
  if (records) {
    if (!records->is_list()) errors.push_back({records->location(), "'records' must be a list of maps"});
    else
      for (const auto& r : records->items()) {
        if (!r.is_map()) {
          errors.push_back({r.location(), "a record must be a map of column -> value"});
          continue;
        }
        for (const auto& e : r.entries())
          if (!e.value.is_scalar() && !e.value.is_null())
            errors.push_back({e.value.location(), fmt::format("column '{}': a value must be a scalar", e.key)});
        in.records.push_back(&r);
      }
  }
  if (const Value* types = v.find("types")) {
    if (!types->is_map()) errors.push_back({types->location(), "'types' must be a map of column -> int, float, bool, string or timestamp"});
    else
      for (const auto& e : types->entries()) {
        auto ty = e.value.is_scalar() ? type_named(e.value.text()) : std::nullopt;
        if (!ty) errors.push_back({e.value.location(), fmt::format("column '{}': the type must be int, float, bool, string or timestamp", e.key)});
        else in.types[e.key] = *ty;
      }
  }
  t.inputs.push_back(std::move(in));
}

void parse_expectation(const Value& v, TestCase& t, std::vector<ConfigError>& errors) {
  if (!v.is_map()) {
    errors.push_back({v.location(), "an expectation must be a map with one of 'output', 'input', 'file' or 'stage'"});
    return;
  }
  Expectation x;
  x.where = v.location();
  x.body = &v;
  int targets = 0;
  for (const char* k : {"output", "input", "file", "stage"})
    if (auto s = scalar_of(v.find(k), k, errors)) {
      ++targets;
      x.kind = k;
      x.target = *s;
    }
  if (targets != 1) {
    errors.push_back({v.location(), "an expectation names one of 'output: STAGE[.OUTPUT]', 'input: STAGE', 'file: GLOB' or 'stage: STAGE'"});
    return;
  }
  if (x.kind == "file") check_keys(v, {"file", "count", "lines", "contains", "line_count"}, "a file expectation", errors);
  else if (x.kind == "stage") check_keys(v, {"stage", "ran", "counters", "records_in", "records_out"}, "a stage expectation", errors);
  else check_keys(v, {x.kind, "records", "contains", "count", "reasons"}, "an expectation", errors);
  if (const Value* ran = v.find("ran"); ran && !(ran->is_scalar() && parse_bool(ran->text())))
    errors.push_back({ran->location(), "'ran' must be true or false"});
  for (const char* k : {"count", "line_count", "records_in", "records_out"})
    if (const Value* c = v.find(k); c && !(c->is_scalar() && parse_int(c->text()) && *parse_int(c->text()) >= 0))
      errors.push_back({c->location(), fmt::format("'{}' must be a whole number", k)});
  for (const char* k : {"records", "contains", "lines"})
    if (const Value* c = v.find(k); c && !c->is_list()) errors.push_back({c->location(), fmt::format("'{}' must be a list", k)});
  for (const char* k : {"reasons", "counters"})
    if (const Value* c = v.find(k); c) {
      if (!c->is_map()) errors.push_back({c->location(), fmt::format("'{}' must be a map of name -> count", k)});
      else
        for (const auto& e : c->entries())
          if (!(e.value.is_scalar() && parse_int(e.value.text())))
            errors.push_back({e.value.location(), fmt::format("'{}': the count must be a whole number", e.key)});
    }
  if (x.kind == "file")
    for (const char* k : {"lines", "contains"})
      if (const Value* c = v.find(k); c && c->is_list())
        for (const auto& l : c->items())
          if (!l.is_scalar()) errors.push_back({l.location(), "a line must be a string"});
  if (x.kind != "file")
    for (const char* k : {"records", "contains"})
      if (const Value* c = v.find(k); c && c->is_list())
        for (const auto& r : c->items())
          if (!r.is_map()) errors.push_back({r.location(), "a record must be a map of column -> value"});
  t.expect.push_back(std::move(x));
}

std::optional<TestFile> parse_test_file(const std::string& path, std::vector<ConfigError>& errors) {
  auto root = config::parse_yaml_file(path, errors);
  if (!root) return std::nullopt;
  TestFile f;
  f.path = path;
  f.root = std::move(*root);
  const Value& r = f.root;
  if (!r.is_map()) {
    errors.push_back({r.location(), "a test file must be a map with 'pipeline' and 'tests'"});
    return std::nullopt;
  }
  check_keys(r, {"pipeline", "tests"}, "the test file", errors);
  if (auto p = scalar_of(r.find("pipeline"), "'pipeline'", errors)) {
    f.pipeline_where = r.find("pipeline")->location();
    f.pipeline = (fs::absolute(path).parent_path() / *p).lexically_normal().string();
    if (!fs::is_regular_file(f.pipeline))
      errors.push_back({f.pipeline_where, fmt::format("no pipeline file '{}' (relative to the test file)", *p)});
  } else if (!r.find("pipeline")) {
    errors.push_back({r.location(), "missing key 'pipeline' (the pipeline file, relative to this file)"});
  }
  const Value* tests = r.find("tests");
  if (!tests) errors.push_back({r.location(), "missing key 'tests' (a list of tests)"});
  else if (!tests->is_list() || tests->items().empty()) errors.push_back({tests->location(), "'tests' must be a non-empty list"});
  else
    for (const auto& tv : tests->items()) {
      if (!tv.is_map()) {
        errors.push_back({tv.location(), "a test must be a map with 'name', 'inputs' and 'expect'"});
        continue;
      }
      check_keys(tv, {"name", "set", "skip", "files", "inputs", "end_at", "start_time", "expect", "failure"}, "a test", errors);
      TestCase t;
      t.where = tv.location();
      if (auto n = scalar_of(tv.find("name"), "'name'", errors)) t.name = *n;
      else if (!tv.find("name")) errors.push_back({tv.location(), "missing key 'name'"});
      if (const Value* s = tv.find("set")) {
        if (!s->is_map()) errors.push_back({s->location(), "'set' must be a map of STAGE.OPTION -> value"});
        else
          for (const auto& e : s->entries()) {
            if (e.key.find('.') == std::string::npos || e.key.front() == '.' || e.key.back() == '.')
              errors.push_back({e.key_location, fmt::format("'set': '{}' must be STAGE.OPTION", e.key)});
            else t.sets.emplace_back(e.key, &e.value);
          }
      }
      if (const Value* sk = tv.find("skip")) {
        if (!sk->is_list()) errors.push_back({sk->location(), "'skip' must be a list of stage ids"});
        else
          for (const auto& i : sk->items())
            if (auto id = scalar_of(&i, "a stage id", errors)) t.skip.emplace_back(*id, i.location());
      }
      if (const Value* fv = tv.find("files")) {
        if (!fv->is_map()) errors.push_back({fv->location(), "'files' must be a map of relative path -> content"});
        else
          for (const auto& e : fv->entries()) {
            if (fs::path(e.key).is_absolute() || e.key.find("..") != std::string::npos)
              errors.push_back({e.key_location, fmt::format("'files': '{}' must be a relative path inside the test's directory", e.key)});
            else if (auto c = scalar_of(&e.value, "a file's content", errors)) t.files.emplace_back(e.key, *c);
          }
      }
      if (const Value* in = tv.find("inputs")) {
        if (!in->is_list()) errors.push_back({in->location(), "'inputs' must be a list"});
        else
          for (const auto& i : in->items()) parse_input(i, t, errors);
      }
      if (auto d = duration_of(tv.find("end_at"), "'end_at'", errors)) t.end_at = *d;
      if (auto s = scalar_of(tv.find("start_time"), "'start_time'", errors)) {
        if (auto m = parse_utc(*s)) t.start = std::chrono::system_clock::time_point(std::chrono::microseconds(*m));
        else errors.push_back({tv.find("start_time")->location(), fmt::format("'start_time' must be a UTC time like \"2025-06-15 09:00:00\", got '{}'", *s)});
      }
      if (const Value* x = tv.find("expect")) {
        if (!x->is_list()) errors.push_back({x->location(), "'expect' must be a list"});
        else
          for (const auto& e : x->items()) parse_expectation(e, t, errors);
      }
      if (const Value* fl = tv.find("failure")) {
        if (!fl->is_map()) errors.push_back({fl->location(), "'failure' must be a map with 'stage' and/or 'message'"});
        else check_keys(*fl, {"stage", "message"}, "'failure'", errors);
        t.failure = fl;
      }
      if (t.expect.empty() && !t.failure && !tv.find("expect"))
        errors.push_back({tv.location(), "a test needs 'expect' (or 'failure'): a test that checks nothing cannot fail"});
      f.tests.push_back(std::move(t));
    }
  return f;
}

// --- the pipeline -------------------------------------------------------------------------

struct Pipeline {
  spec::PipelineSpec spec;
  std::map<std::string, loader::PluginPtr> plugins;
};

void set_option(Value& root, const std::string& key, const Value& value, std::vector<ConfigError>& errors) {
  const auto dot = key.find('.');
  const std::string stage = key.substr(0, dot);
  Value* stages = root.find("stages");
  Value* st = nullptr;
  if (stages && stages->is_list())
    for (auto& s : stages->items())
      if (const Value* id = s.find("id"); id && id->is_scalar() && id->text() == stage) st = &s;
  if (!st) {
    errors.push_back({value.location(), fmt::format("'set': the pipeline has no stage '{}'", stage)});
    return;
  }
  Value* at = st->find("config");
  if (!at || at->is_null()) {
    st->set("config", Value::map(value.location()));
    at = st->find("config");
  }
  std::string rest = key.substr(dot + 1);
  for (;;) {  // nested keys: consume.librdkafka.x
    if (!at->is_map()) {
      errors.push_back({value.location(), fmt::format("'set': '{}' does not lead to a map", key)});
      return;
    }
    const auto d = rest.find('.');
    if (d == std::string::npos || !at->find(rest.substr(0, d))) break;
    at = at->find(rest.substr(0, d));
    rest = rest.substr(d + 1);
  }
  at->set(rest, value, value.location());
}

// Absolute paths in stage options would write outside the test's directory: they go under it.
void confine_paths(Value& v, const std::string& dir) {
  if (v.is_scalar() && v.text().size() > 1 && v.text().front() == '/' && !v.text().starts_with(dir))
    v = Value::scalar(dir + v.text(), v.location(), v.quoted());
  for (auto& i : v.items()) confine_paths(i, dir);
  for (auto& e : v.entries()) confine_paths(e.value, dir);
}

std::optional<Pipeline> load(const TestFile& f, const TestCase* t, const std::string& dir, loader::Registry& registry,
                             std::vector<ConfigError>& errors) {
  auto root = config::parse_yaml_file(f.pipeline, errors);
  if (!root) return std::nullopt;
  if (t)
    for (const auto& [key, value] : t->sets) set_option(*root, key, *value, errors);
  if (!dir.empty())
    if (Value* stages = root->find("stages"); stages && stages->is_list())
      for (auto& s : stages->items())
        if (Value* c = s.find("config")) confine_paths(*c, dir);
  spec::PipelineSpec partial;
  auto spec = spec::parse_pipeline(*root, f.pipeline, errors, &partial);
  auto plugins = spec::check_pipeline(spec ? *spec : partial, registry, errors);
  if (!errors.empty() || !spec) return std::nullopt;
  return Pipeline{std::move(*spec), std::move(plugins)};
}

bool has_output(const Pipeline& p, const std::string& stage, const std::string& output) {
  const auto& info = p.plugins.at(stage)->info();
  if (output.empty()) return info.main_output;
  return std::find(info.extra_outputs.begin(), info.extra_outputs.end(), output) != info.extra_outputs.end();
}

std::string outputs_of(const Pipeline& p, const std::string& stage) {
  const auto& info = p.plugins.at(stage)->info();
  std::string s = info.main_output ? stage : "";
  for (const auto& o : info.extra_outputs) s += (s.empty() ? "" : ", ") + stage + "." + o;
  return s.empty() ? "none" : s;
}

// References to stages and outputs, checked once per file against the pipeline as written.
void check_references(const TestFile& f, const Pipeline& p, std::vector<ConfigError>& errors) {
  std::vector<std::string> ids;
  for (const auto& s : p.spec.stages) ids.push_back(s.id);
  auto known = [&](const std::string& id, const Location& where) {
    if (p.spec.stage(id)) return true;
    errors.push_back({where, fmt::format("the pipeline has no stage '{}'{}", id, did_you_mean(id, ids))});
    return false;
  };
  for (const auto& t : f.tests) {
    std::set<std::string> gone;  // replaced or skipped: what reads a skipped stage must be too
    for (const auto& in : t.inputs) gone.insert(in.stage);
    for (const auto& [id, where] : t.skip) gone.insert(id);
    for (const auto& [id, where] : t.skip) {
      if (!known(id, where)) continue;
      for (const auto& s : p.spec.stages)
        for (const auto& in : s.inputs)
          if (in.stage == id && !gone.count(s.id))
            errors.push_back({where, fmt::format("stage '{}' is skipped but '{}' reads it: skip '{}' too or give it inputs", id, s.id, s.id)});
    }
    for (const auto& in : t.inputs)
      if (known(in.stage, in.where) && !has_output(p, in.stage, in.output))
        errors.push_back({in.where, fmt::format("stage '{}' has no output '{}' (it has: {})", in.stage,
                                                in.output.empty() ? in.stage : in.stage + "." + in.output, outputs_of(p, in.stage))});
    for (const auto& x : t.expect) {
      if (x.kind == "file") continue;
      auto [id, output] = split_ref(x.target);
      if (!known(id, x.where)) continue;
      if (x.kind == "output" && !has_output(p, id, output))
        errors.push_back({x.where, fmt::format("stage '{}' has no output '{}' (it has: {})", id, x.target, outputs_of(p, id))});
      if (x.kind == "input" && p.spec.stage(id)->inputs.empty())
        errors.push_back({x.where, fmt::format("stage '{}' has no input", id)});
      else if (x.kind == "input" && std::any_of(t.inputs.begin(), t.inputs.end(), [&](const InputSpec& in) { return in.stage == id; }))
        errors.push_back({x.where, fmt::format("stage '{}' is replaced by this test's inputs: nothing reaches it (check 'output: {}')", id, id)});
    }
  }
}

// --- inputs -> batches --------------------------------------------------------------------

// `offset` continues over the inputs of one stage output, as a Kafka partition's would.
Batch lines_batch(const InputSpec& in, std::chrono::system_clock::time_point wall, int64_t& offset) {
  if (!in.column.empty()) {
    Batch b(make_schema({{in.column, Type::String}}));
    for (const auto& l : in.lines) b.column(0).append_string(l);
    return b;
  }
  Batch b(raw_message_schema());  // as kafka-source and sensor-simulator emit them
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(wall.time_since_epoch()).count();
  for (const auto& l : in.lines) {
    b.column(0).append_string("");
    b.column(1).append_string(l);
    b.column(2).append_string(in.stage);
    b.column(3).append_int64(0);
    b.column(4).append_int64(offset++);
    b.column(5).append_timestamp(now);
  }
  return b;
}

bool is_null_value(const Value* v) { return !v || v->is_null(); }

std::optional<Batch> records_batch(const InputSpec& in, std::vector<std::string>& problems) {
  std::vector<std::string> columns;
  for (const Value* r : in.records)
    for (const auto& e : r->entries())
      if (std::find(columns.begin(), columns.end(), e.key) == columns.end()) columns.push_back(e.key);
  std::vector<Field> fields;
  for (const auto& c : columns) {
    Type ty;
    if (auto it = in.types.find(c); it != in.types.end()) {
      ty = it->second;
    } else {  // the narrowest type every value of the column reads as
      bool ints = true, nums = true, bools = true;
      for (const Value* r : in.records) {
        const Value* v = r->find(c);
        if (is_null_value(v)) continue;
        const bool q = v->quoted();
        ints = ints && !q && parse_int(v->text()).has_value();
        nums = nums && !q && parse_double(v->text()).has_value();
        bools = bools && !q && (v->text() == "true" || v->text() == "false");
      }
      ty = ints ? Type::Int64 : nums ? Type::Float64 : bools ? Type::Bool : Type::String;
    }
    fields.push_back({c, ty});
  }
  Batch b(make_schema(fields));
  for (const Value* r : in.records)
    for (std::size_t c = 0; c < columns.size(); ++c) {
      const Value* v = r->find(columns[c]);
      Column& col = b.column(c);
      if (is_null_value(v)) {
        col.append_null();
        continue;
      }
      const std::string& s = v->text();
      auto bad = [&] {
        problems.push_back(fmt::format("{}: column '{}': '{}' is not a {}", v->location().str(), columns[c], s, type_name(fields[c].type)));
      };
      switch (fields[c].type) {
        case Type::Int64:
          if (auto x = parse_int(s)) col.append_int64(*x);
          else bad(), col.append_null();
          break;
        case Type::Float64:
          if (auto x = parse_double(s)) col.append_double(*x);
          else bad(), col.append_null();
          break;
        case Type::Bool:
          if (auto x = parse_bool(s)) col.append_bool(*x);
          else bad(), col.append_null();
          break;
        case Type::Timestamp:
          if (auto x = parse_utc(s)) col.append_timestamp(*x);
          else if (auto m = parse_int(s)) col.append_timestamp(*m);
          else bad(), col.append_null();
          break;
        case Type::String: col.append_string(s); break;
      }
    }
  if (!problems.empty()) return std::nullopt;
  return b;
}

// --- what came out ------------------------------------------------------------------------

struct Cell {
  bool null = false;
  Type type = Type::String;
  std::string text;  // as shown
  double number = 0;
  int64_t integer = 0;
};
using Row = std::vector<std::pair<std::string, Cell>>;

std::vector<Row> rows_of(const std::vector<Batch>& batches, const std::string& dir) {
  std::vector<Row> rows;
  for (const auto& b : batches)
    for (std::size_t r = 0; r < b.num_rows(); ++r) {
      Row row;
      for (std::size_t c = 0; c < b.num_columns(); ++c) {
        const Column& col = b.column(c);
        Cell cell;
        cell.type = col.type();
        if (col.is_null(r)) {
          cell.null = true;
          cell.text = "null";
        } else {
          switch (col.type()) {
            case Type::Int64:
              cell.integer = col.ints()[r];
              cell.number = static_cast<double>(cell.integer);
              cell.text = std::to_string(cell.integer);
              break;
            case Type::Timestamp:
              cell.integer = col.ints()[r];
              cell.text = format_utc(cell.integer);
              break;
            case Type::Float64:
              cell.number = col.floats()[r];
              cell.text = fmt::format("{}", cell.number);
              break;
            case Type::Bool: cell.text = col.bools()[r] ? "true" : "false"; break;
            case Type::String: {
              cell.text = std::string(col.string_at(r));
              // Paths inside the test's directory are shown (and compared) relative to it.
              for (std::size_t at; (at = cell.text.find(dir + "/")) != std::string::npos;) cell.text.erase(at, dir.size() + 1);
              break;
            }
          }
        }
        row.emplace_back(b.schema()->field(c).name, std::move(cell));
      }
      rows.push_back(std::move(row));
    }
  return rows;
}

const Cell* cell_of(const Row& row, const std::string& name) {
  for (const auto& [n, c] : row)
    if (n == name) return &c;
  return nullptr;
}

bool matches(const Value& expected, const Cell& actual) {
  if (expected.is_null()) return actual.null;
  if (actual.null || !expected.is_scalar()) return false;
  const std::string& e = expected.text();
  switch (actual.type) {
    case Type::Int64:
      if (auto i = parse_int(e)) return *i == actual.integer;
      if (auto d = parse_double(e)) return *d == actual.number;
      return false;
    case Type::Float64: {
      auto d = parse_double(e);
      return d && std::fabs(*d - actual.number) <= 1e-9 * std::max({1.0, std::fabs(*d), std::fabs(actual.number)});
    }
    case Type::Bool: {
      auto b = parse_bool(e);
      return b && (*b ? "true" : "false") == actual.text;
    }
    case Type::Timestamp:
      if (auto t = parse_utc(e)) return *t == actual.integer;
      if (auto i = parse_int(e)) return *i == actual.integer;
      return false;
    case Type::String: return e == actual.text;
  }
  return false;
}

bool row_matches(const Value& expected, const Row& row) {
  for (const auto& e : expected.entries()) {
    const Cell* c = cell_of(row, e.key);
    if (!c || !matches(e.value, *c)) return false;
  }
  return true;
}

std::string quote(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string show_cell(const Cell& c) {
  if (c.null) return "null";
  if (c.type == Type::String || c.type == Type::Timestamp) return quote(c.text);
  return c.text;
}

std::string show_value(const Value& v) {
  if (v.is_null()) return "null";
  if (!v.is_scalar()) return "?";
  const bool bare = !v.quoted() && (parse_double(v.text()) || v.text() == "true" || v.text() == "false");
  return bare ? v.text() : quote(v.text());
}

std::string show_expected(const Value& r) {
  std::string s = "{";
  for (const auto& e : r.entries()) s += fmt::format("{}{}: {}", s.size() > 1 ? ", " : "", e.key, show_value(e.value));
  return s + "}";
}

// The actual row, shown with the given columns (all of its columns when there are none).
std::string show_row(const Row& row, const std::vector<std::string>& columns = {}) {
  std::string s = "{";
  auto add = [&](const std::string& k, const std::string& v) { s += fmt::format("{}{}: {}", s.size() > 1 ? ", " : "", k, v); };
  if (!columns.empty()) {
    for (const auto& k : columns) {
      const Cell* c = cell_of(row, k);
      add(k, c ? show_cell(*c) : "<no such column>");
    }
  } else {
    for (const auto& [n, c] : row) add(n, show_cell(c));
  }
  return s + "}";
}

constexpr std::size_t kShowMax = 20;  // rows listed in a failure report

void list_actual(const std::vector<Row>& rows, std::vector<std::string>& out) {
  out.push_back(fmt::format("  actual ({} record{}):", rows.size(), rows.size() == 1 ? "" : "s"));
  for (std::size_t i = 0; i < rows.size() && i < kShowMax; ++i) out.push_back("    " + show_row(rows[i]));
  if (rows.size() > kShowMax) out.push_back(fmt::format("    ... {} more", rows.size() - kShowMax));
}

uint64_t count_of(const Value& v) { return static_cast<uint64_t>(*parse_int(v.text())); }

void diff_counts(const std::map<std::string, uint64_t>& expected, const std::map<std::string, uint64_t>& actual,
                 std::vector<std::string>& out) {
  std::set<std::string> keys;
  for (const auto& [k, v] : expected) keys.insert(k);
  for (const auto& [k, v] : actual) keys.insert(k);
  for (const auto& k : keys) {
    auto e = expected.find(k);
    auto a = actual.find(k);
    if (e != expected.end() && a != actual.end() && e->second == a->second) out.push_back(fmt::format("      {}: {}", k, a->second));
    else {
      if (e != expected.end()) out.push_back(fmt::format("    - {}: {}", k, e->second));
      if (a != actual.end()) out.push_back(fmt::format("    + {}: {}", k, a->second));
    }
  }
}

// A line diff of expected (n items) against actual (m items), by longest common subsequence, so
// one missing or extra record shows as one line. Ops: ' ' both, '-' expected only, '+' actual
// only; with the index into expected and/or actual. Long lists fall back to pairing by index.
struct DiffOp {
  char op;
  std::size_t e, a;
};
std::vector<DiffOp> diff(std::size_t n, std::size_t m, const std::function<bool(std::size_t, std::size_t)>& same) {
  std::vector<DiffOp> ops;
  if (n * m > 4'000'000) {
    for (std::size_t i = 0; i < std::max(n, m); ++i) {
      if (i < n && i < m && same(i, i)) ops.push_back({' ', i, i});
      else {
        if (i < n) ops.push_back({'-', i, 0});
        if (i < m) ops.push_back({'+', 0, i});
      }
    }
    return ops;
  }
  // lcs[i][j]: the longest common subsequence of expected[i..] and actual[j..].
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;)
    for (std::size_t j = m; j-- > 0;) lcs[i][j] = same(i, j) ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && same(i, j)) ops.push_back({' ', i++, j++});
    else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) ops.push_back({'-', i++, std::min(j, m)});
    else ops.push_back({'+', std::min(i, n), j++});
  }
  return ops;
}

// Checks one expectation on records; appends the failure report (empty when it holds).
void check_records(const Expectation& x, const std::vector<Row>& rows, std::vector<std::string>& out) {
  const Value& v = *x.body;
  const std::string what = fmt::format("{} '{}' ({})", x.kind, x.target, x.where.str());
  if (const Value* c = v.find("count"); c && count_of(*c) != rows.size()) {
    out.push_back(fmt::format("{}: expected {} record{}, got {}", what, count_of(*c), count_of(*c) == 1 ? "" : "s", rows.size()));
    if (!v.find("records")) list_actual(rows, out);
  }
  if (const Value* recs = v.find("records")) {
    const auto& exp = recs->items();
    bool same = exp.size() == rows.size();
    for (std::size_t i = 0; same && i < exp.size(); ++i) same = row_matches(exp[i], rows[i]);
    if (!same) {
      out.push_back(fmt::format("{}: records differ (- expected, + actual; only the expected columns are compared)", what));
      std::vector<std::string> columns;  // what the expected records name, in order
      for (const auto& e : exp)
        for (const auto& entry : e.entries())
          if (std::find(columns.begin(), columns.end(), entry.key) == columns.end()) columns.push_back(entry.key);
      std::size_t shown = 0;
      for (const auto& d : diff(exp.size(), rows.size(), [&](std::size_t i, std::size_t j) { return row_matches(exp[i], rows[j]); })) {
        if (++shown > 3 * kShowMax) {
          out.push_back("    ...");
          break;
        }
        if (d.op == ' ') out.push_back("      " + show_expected(exp[d.e]));
        else if (d.op == '-') out.push_back("    - " + show_expected(exp[d.e]));
        else out.push_back("    + " + show_row(rows[d.a], columns));
      }
    }
  }
  if (const Value* con = v.find("contains")) {
    std::vector<bool> used(rows.size(), false);
    std::vector<const Value*> missing;
    for (const auto& e : con->items()) {
      bool found = false;
      for (std::size_t i = 0; i < rows.size() && !found; ++i)
        if (!used[i] && row_matches(e, rows[i])) used[i] = found = true;
      if (!found) missing.push_back(&e);
    }
    if (!missing.empty()) {
      out.push_back(fmt::format("{}: {} expected record{} not found (- expected)", what, missing.size(), missing.size() == 1 ? "" : "s"));
      for (const Value* m : missing) out.push_back("    - " + show_expected(*m));
      list_actual(rows, out);
    }
  }
  if (const Value* rs = v.find("reasons")) {
    std::map<std::string, uint64_t> expected, actual;
    for (const auto& e : rs->entries()) expected[e.key] = count_of(e.value);
    for (const auto& r : rows)
      if (const Cell* c = cell_of(r, "reason")) actual[c->text] += 1;
    if (expected != actual) {
      out.push_back(fmt::format("{}: dead-letter reasons differ (- expected, + actual)", what));
      diff_counts(expected, actual, out);
    }
  }
}

void check_stage(const Expectation& x, const runtime::TestRunResult& r, std::vector<std::string>& out) {
  const Value& v = *x.body;
  const std::string what = fmt::format("stage '{}' ({})", x.target, x.where.str());
  const runtime::StageReport* rep = nullptr;
  for (const auto& s : r.stages)
    if (s.id == x.target) rep = &s;
  if (const Value* ran = v.find("ran")) {
    if (parse_bool(ran->text()).value_or(true) != (rep != nullptr))
      out.push_back(fmt::format("{}: expected the stage {}", what, rep ? "not to run, but it ran" : "to run, but it did not (everything it feeds is replaced or skipped)"));
    if (!rep) return;
  }
  if (!rep) {
    out.push_back(fmt::format("{}: the stage did not run (everything it feeds is replaced or skipped)", what));
    return;
  }
  for (auto [key, actual] : {std::pair{"records_in", rep->records_in}, std::pair{"records_out", rep->records_out}})
    if (const Value* c = v.find(key); c && count_of(*c) != actual)
      out.push_back(fmt::format("{}: {}: expected {}, got {}", what, key, count_of(*c), actual));
  if (const Value* cs = v.find("counters")) {
    std::map<std::string, uint64_t> expected, actual;
    for (const auto& e : cs->entries()) {
      expected[e.key] = count_of(e.value);
      // "name" sums every label set of the counter; "name{label=\"v\"}" is one of them.
      uint64_t sum = 0;
      bool any = false;
      for (const auto& [k, n] : rep->counters)
        if (k == e.key || (e.key.find('{') == std::string::npos && k.starts_with(e.key + "{"))) sum += n, any = true;
      if (any) actual[e.key] = sum;
    }
    if (expected != actual) {
      out.push_back(fmt::format("{}: counters differ (- expected, + actual)", what));
      diff_counts(expected, actual, out);
      std::string all;
      for (const auto& [k, n] : rep->counters) all += fmt::format("{}{}={}", all.empty() ? "" : ", ", k, n);
      out.push_back("  the stage's counters: " + (all.empty() ? std::string("none") : all));
    }
  }
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(l);
  }
  return lines;
}

void check_files(const Expectation& x, const std::string& dir, std::vector<std::string>& out) {
  const Value& v = *x.body;
  const std::string what = fmt::format("file '{}' ({})", x.target, x.where.str());
  std::vector<std::string> found;
  glob_t g{};
  const std::string pattern = dir + "/" + x.target;
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (std::size_t i = 0; i < g.gl_pathc; ++i)
      if (fs::is_regular_file(g.gl_pathv[i])) found.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  std::vector<std::string> written;  // every file, to show what there is
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) {
      const std::string rel = fs::relative(it->path(), dir).string();
      // Hidden files are the sinks' internals (journals named by a hash of the directory).
      if (!rel.starts_with(".") && rel.find("/.") == std::string::npos) written.push_back(rel);
    }
  std::sort(written.begin(), written.end());
  auto list_written = [&] {
    out.push_back(fmt::format("  files in the test's directory ({}):", written.size()));
    for (std::size_t i = 0; i < written.size() && i < kShowMax; ++i) out.push_back("    " + written[i]);
    if (written.size() > kShowMax) out.push_back(fmt::format("    ... {} more", written.size() - kShowMax));
  };
  const Value* c = v.find("count");
  if (c ? count_of(*c) != found.size() : found.empty()) {
    out.push_back(fmt::format("{}: expected {} file{}, found {}", what, c ? std::to_string(count_of(*c)) : "at least one",
                              !c || count_of(*c) == 1 ? "" : "s", found.size()));
    list_written();
    return;
  }
  for (const auto& path : found) {
    const std::string rel = fs::relative(path, dir).string();
    const auto lines = read_lines(path);
    if (const Value* lc = v.find("line_count"); lc && count_of(*lc) != lines.size())
      out.push_back(fmt::format("{}: {}: expected {} lines, got {}", what, rel, count_of(*lc), lines.size()));
    if (const Value* ls = v.find("lines")) {
      std::vector<std::string> exp;
      for (const auto& l : ls->items()) exp.push_back(l.is_scalar() ? l.text() : "");
      if (exp != lines) {
        out.push_back(fmt::format("{}: {}: content differs (- expected, + actual)", what, rel));
        std::size_t shown = 0;
        for (const auto& d : diff(exp.size(), lines.size(), [&](std::size_t i, std::size_t j) { return exp[i] == lines[j]; })) {
          if (++shown > 3 * kShowMax) {
            out.push_back("    ...");
            break;
          }
          out.push_back(d.op == ' ' ? "      " + lines[d.a] : d.op == '-' ? "    - " + exp[d.e] : "    + " + lines[d.a]);
        }
      }
    }
    if (const Value* cs = v.find("contains")) {
      std::vector<std::string> missing;
      for (const auto& l : cs->items())
        if (l.is_scalar() && std::find(lines.begin(), lines.end(), l.text()) == lines.end()) missing.push_back(l.text());
      if (!missing.empty()) {
        out.push_back(fmt::format("{}: {}: {} expected line{} not found", what, rel, missing.size(), missing.size() == 1 ? "" : "s"));
        for (const auto& m : missing) out.push_back("    - " + m);
        out.push_back(fmt::format("  actual ({} lines):", lines.size()));
        for (std::size_t i = 0; i < lines.size() && i < kShowMax; ++i) out.push_back("    " + lines[i]);
      }
    }
  }
}

// --- running ------------------------------------------------------------------------------

struct Options {
  std::vector<std::string> files;
  std::string filter;
  bool keep = false;
  bool verbose = false;
};

std::string capture_name(const Expectation& x) { return x.kind == "input" ? "->" + x.target : x.target; }

// Runs one test; returns the failure report (empty when it passed).
std::vector<std::string> run_test(const TestFile& f, const TestCase& t, loader::Registry& registry, const Options& opt,
                                  std::vector<std::string>& logs) {
  std::vector<std::string> out;
  std::string tmpl = (fs::temp_directory_path() / "flow-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return {fmt::format("cannot create a temporary directory: {}", std::strerror(errno))};
  const std::string dir = fs::canonical(tmpl).string();
  struct Cleanup {
    std::string dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{dir, opt.keep};
  if (opt.keep) logs.push_back("test directory: " + dir);

  std::vector<ConfigError> errors;
  auto p = load(f, &t, dir, registry, errors);
  if (!p) {
    out.push_back("the pipeline with this test's 'set' is not valid:");
    std::istringstream ss(spec::format_errors(errors));
    for (std::string l; std::getline(ss, l);) out.push_back("  " + l);
    return out;
  }
  for (const auto& [rel, content] : t.files) {
    const fs::path path = fs::path(dir) / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  runtime::TestRunConfig cfg;
  cfg.wall_start = t.start;
  cfg.end_at = t.end_at;
  std::vector<std::string> problems;
  std::map<std::string, int64_t> offsets;
  for (const auto& [id, where] : t.skip) cfg.skipped.insert(id);
  for (const auto& in : t.inputs) {
    cfg.replaced.insert(in.stage);
    const auto wall = t.start + std::chrono::duration_cast<std::chrono::system_clock::duration>(in.at);
    if (!in.records.empty()) {
      if (auto b = records_batch(in, problems)) cfg.inputs.push_back({in.stage, in.output, in.at, std::move(*b)});
    } else {
      cfg.inputs.push_back({in.stage, in.output, in.at, lines_batch(in, wall, offsets[in.stage + "." + in.output])});
    }
  }
  if (!problems.empty()) return problems;
  for (const auto& x : t.expect)
    if (x.kind == "output" || x.kind == "input") cfg.captures.insert(capture_name(x));
  // Called from the stages' threads too (a real source, librdkafka's log callback).
  auto logs_mu = std::make_shared<std::mutex>();
  cfg.log = [&logs, &opt, logs_mu](LogLevel level, std::string_view scope, std::string_view message) {
    if (level == LogLevel::Debug && !opt.verbose) return;
    static const char* names[] = {"debug", "info", "warn", "error"};
    std::lock_guard lock(*logs_mu);
    logs.push_back(fmt::format("[{}] {}: {}", names[static_cast<int>(level)], scope, message));
  };

  // Relative paths of the pipeline land in the test's directory.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir);
  runtime::TestRunResult result;
  try {
    result = runtime::run_pipeline_test(p->spec, p->plugins, std::move(cfg));
  } catch (const std::exception& e) {  // a bug of the runner, not of the pipeline: still one test's failure
    result.ok = false;
    result.error = e.what();
  }
  fs::current_path(cwd);

  if (t.failure) {
    const auto stage = scalar_of(t.failure->find("stage"), "stage", errors);
    const auto message = scalar_of(t.failure->find("message"), "message", errors);
    if (result.ok) out.push_back(fmt::format("expected the run to fail ({}), but it succeeded", t.failure->location().str()));
    else if ((stage && *stage != result.failed_stage) || (message && result.error.find(*message) == std::string::npos))
      out.push_back(fmt::format("expected a failure{}{}, got: stage '{}' failed: {}", stage ? " of stage '" + *stage + "'" : "",
                                message ? " with '" + *message + "'" : "", result.failed_stage, result.error));
  } else if (!result.ok) {
    out.push_back(result.failed_stage.empty() ? fmt::format("the run failed: {}", result.error)
                                              : fmt::format("stage '{}' failed: {}", result.failed_stage, result.error));
  }
  for (const auto& x : t.expect) {
    if (x.kind == "file") check_files(x, dir, out);
    else if (x.kind == "stage") check_stage(x, result, out);
    else {
      auto it = result.captured.find(capture_name(x));
      if (it == result.captured.end()) {
        out.push_back(fmt::format("{} '{}' ({}): the stage did not run (everything it feeds is replaced)", x.kind, x.target, x.where.str()));
        continue;
      }
      check_records(x, rows_of(it->second, dir), out);
    }
  }
  return out;
}

int run_tests(const Options& opt, Globals& g) {
  loader::Registry registry(loader::default_search_path(g.plugin_paths));
  int passed = 0, failed = 0;
  bool bad_file = false;
  std::vector<std::string> files;  // a directory stands for its *.test.yaml files
  for (const auto& a : opt.files) {
    if (!fs::is_directory(a)) {
      files.push_back(a);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(a))
      if (e.is_regular_file() && e.path().filename().string().ends_with(".test.yaml")) found.push_back(e.path().string());
    std::sort(found.begin(), found.end());
    if (found.empty()) std::fprintf(stderr, "flowctl: warning: no *.test.yaml in %s\n", a.c_str());
    files.insert(files.end(), found.begin(), found.end());
  }
  for (const auto& path : files) {
    std::vector<ConfigError> errors;
    auto f = parse_test_file(path, errors);
    // One pass: the references to stages are checked even when the file has other mistakes.
    if (f && !f->pipeline.empty() && fs::is_regular_file(f->pipeline)) {
      std::vector<ConfigError> pipeline_errors;
      if (auto p = load(*f, nullptr, "", registry, pipeline_errors)) check_references(*f, *p, errors);
      errors.insert(errors.end(), pipeline_errors.begin(), pipeline_errors.end());
    }
    if (!errors.empty() || !f) {
      std::fflush(stdout);
      std::fputs(spec::format_errors(errors).c_str(), stderr);
      std::fprintf(stderr, "%zu error%s in %s\n", errors.size(), errors.size() == 1 ? "" : "s", path.c_str());
      std::printf("FAIL %s: not run (the file has errors)\n", path.c_str());
      bad_file = true;
      ++failed;
      continue;
    }
    for (const auto& t : f->tests) {
      if (!opt.filter.empty() && t.name.find(opt.filter) == std::string::npos) continue;
      std::vector<std::string> logs;
      auto report = run_test(*f, t, registry, opt, logs);
      std::printf("%s %s: %s\n", report.empty() ? "ok  " : "FAIL", path.c_str(), t.name.c_str());
      for (const auto& l : report) std::printf("    %s\n", l.c_str());
      // Stage logs: all of them with --verbose, and the warnings and errors of a failed test.
      for (const auto& l : logs)
        if (opt.verbose || l.starts_with("test directory") || (!report.empty() && !l.starts_with("[info]")))
          std::printf("    | %s\n", l.c_str());
      std::fflush(stdout);
      report.empty() ? ++passed : ++failed;
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  if (passed + failed == 0) {  // a filter that matches nothing must not look like success
    std::fprintf(stderr, "flowctl: error: no test ran (no test file found, or none matches --filter)\n");
    return kExitConfig;
  }
  if (bad_file) return kExitConfig;
  return failed ? kExitRuntime : kExitOk;
}

}  // namespace

void register_test_command(CLI::App& app, Globals& g) {
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("test",
                                 "Run pipeline tests (YAML files beside a pipeline): given records in, checked records and files out, "
                                 "on a fake clock; see docs/pipeline-tests.md");
  cmd->add_option("files", opt->files, "Test files (e.g. pipelines/iot-local.test.yaml), or directories: their *.test.yaml")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--filter", opt->filter, "Run only the tests whose name contains this text")->type_name("TEXT");
  cmd->add_flag("--keep", opt->keep, "Keep each test's temporary directory (its path is printed)");
  cmd->add_flag("--verbose,-v", opt->verbose, "Print every stage log line under its test");
  cmd->footer("Exit code: 0 every test passed, 1 a test failed, 2 no test ran or a test file or its pipeline has errors.");
  cmd->callback([&g, opt] { g.exit_code = run_tests(*opt, g); });
}

}  // namespace flow::cli
