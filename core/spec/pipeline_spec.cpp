#include "spec/pipeline_spec.hpp"

#include "host/yaml_value.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <set>

namespace flow::spec {
namespace {

const std::vector<std::string> kTopKeys = {"name", "description", "run", "stages", "dashboard", "limits"};
const std::vector<std::string> kStageKeys = {"id", "plugin", "config", "input", "inputs", "buffer", "stop_after", "description"};
const std::vector<std::string> kRunKeys = {"duration", "cycles", "scheduling"};
const std::vector<std::string> kBufferKeys = {"batches", "bytes", "records"};

void check_keys(const Value& map, const std::vector<std::string>& allowed, const std::string& what,
                std::vector<ConfigError>& errors) {
  for (const auto& e : map.entries())
    if (std::find(allowed.begin(), allowed.end(), e.key) == allowed.end())
      errors.push_back({e.key_location, fmt::format("unknown key '{}' in {}{}", e.key, what,
                                                    did_you_mean(e.key, allowed))});
}

std::optional<std::string> scalar(const Value* v, const std::string& what, std::vector<ConfigError>& errors) {
  if (!v) return std::nullopt;
  if (!v->is_scalar()) {
    errors.push_back({v->location(), fmt::format("{} must be a plain value, got a {}", what, Value::kind_name(v->kind()))});
    return std::nullopt;
  }
  return v->text();
}

bool valid_id(const std::string& id) {
  if (id.empty()) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

// `buffer` of a stage, or the pipeline's `limits` (the same keys).
void parse_buffer(const Value& v, BufferLimits& out, std::vector<ConfigError>& errors, const std::string& what = "buffer") {
  if (!v.is_map()) {
    errors.push_back({v.location(), "'" + what + "' must be a map with 'batches', 'bytes' and/or 'records'"});
    return;
  }
  check_keys(v, kBufferKeys, "'" + what + "'", errors);
  if (const Value* b = v.find("batches")) {
    auto n = b->is_scalar() ? parse_int(b->text()) : std::nullopt;
    if (!n || *n < 1 || *n > 1'000'000)
      errors.push_back({b->location(), "'" + what + ".batches' must be an integer from 1 to 1000000"});
    else
      out.batches = static_cast<std::size_t>(*n);
  }
  if (const Value* b = v.find("bytes")) {
    auto n = b->is_scalar() ? parse_size(b->text()) : std::nullopt;
    if (!n || n->bytes < 1024)
      errors.push_back({b->location(), "'" + what + ".bytes' must be a size of at least 1KiB, such as 64MiB"});
    else
      out.bytes = n->bytes;
  }
  if (const Value* r = v.find("records")) {
    auto n = r->is_scalar() ? parse_int(r->text()) : std::nullopt;
    if (!n || *n < 1 || *n > 1'000'000'000'000)
      errors.push_back({r->location(), "'" + what + ".records' must be an integer from 1 to 1000000000000"});
    else
      out.records = static_cast<uint64_t>(*n);
  }
}

// `limits: {batches, bytes, records}`: the most in flight in the whole pipeline's channels. Split evenly
// over the channels (one per stage with inputs), each stage's buffer is lowered to its share, so
// the channels' own bounds enforce the total: writers block (backpressure), nothing is dropped.
void apply_limits(const Value& v, PipelineSpec& spec, std::vector<ConfigError>& errors) {
  BufferLimits total{SIZE_MAX, UINT64_MAX, UINT64_MAX};
  const std::size_t before = errors.size();
  parse_buffer(v, total, errors, "limits");
  if (errors.size() != before) return;
  spec.limits = total;
  const auto channels = static_cast<std::size_t>(
      std::count_if(spec.stages.begin(), spec.stages.end(), [](const StageSpec& s) { return !s.inputs.empty(); }));
  if (channels == 0) return;
  if (total.batches != SIZE_MAX && total.batches < channels) {
    errors.push_back({v.find("batches")->location(),
                      fmt::format("'limits.batches' is {}, below the pipeline's {} channels: each needs room for one batch",
                                  total.batches, channels)});
    return;
  }
  if (total.bytes != UINT64_MAX && total.bytes / channels < 1024) {
    errors.push_back({v.find("bytes")->location(),
                      fmt::format("'limits.bytes' leaves less than 1KiB to each of the pipeline's {} channels", channels)});
    return;
  }
  if (total.records != UINT64_MAX && total.records < channels) {
    errors.push_back({v.find("records")->location(),
                      fmt::format("'limits.records' is {}, below the pipeline's {} channels: each needs room for one record",
                                  total.records, channels)});
    return;
  }
  for (auto& s : spec.stages) {
    if (s.inputs.empty()) continue;
    if (total.records != UINT64_MAX) s.buffer.records = std::min(s.buffer.records, total.records / channels);
    if (total.batches != SIZE_MAX) s.buffer.batches = std::min(s.buffer.batches, total.batches / channels);
    if (total.bytes != UINT64_MAX) s.buffer.bytes = std::min(s.buffer.bytes, total.bytes / channels);
  }
}

void parse_input(const Value& v, std::vector<OutputRef>& out, std::vector<ConfigError>& errors) {
  if (!v.is_scalar() || v.text().empty()) {
    errors.push_back({v.location(), "an input must be a stage id, or 'stage.output'"});
    return;
  }
  const auto& t = v.text();
  const auto dot = t.find('.');
  OutputRef r;
  r.stage = t.substr(0, dot);
  r.output = dot == std::string::npos ? "" : t.substr(dot + 1);
  r.where = v.location();
  out.push_back(std::move(r));
}

// A --set value points at the --set argument, not at line 1 of a one-line document.
void relocate(Value& v, const Location& where) {
  v.set_location(where);
  for (auto& i : v.items()) relocate(i, where);
  for (auto& e : v.entries()) {
    e.key_location = where;
    relocate(e.value, where);
  }
}

// Sets `path` (dotted) inside `map`. The rule for keys that contain dots themselves (librdkafka's
// "session.timeout.ms"): at each level the longest existing key that is the whole rest of the
// path, or a prefix of it followed by '.', wins; a prefix that names a map is descended into.
// With no existing key, the first segment names a new key at the stage's config level (option
// names hold no dots), and the whole rest is one key inside a nested map.
bool set_path(Value& map, const std::string& path, Value value, const Location& where, bool top) {
  const Value::Entry* best = nullptr;
  for (const auto& e : map.entries()) {
    const bool whole = e.key == path;
    const bool prefix = path.size() > e.key.size() && path.starts_with(e.key) && path[e.key.size()] == '.' &&
                        e.value.is_map();
    if ((whole || prefix) && (!best || e.key.size() > best->key.size())) best = &e;
  }
  if (best && best->key != path) {
    Value* next = map.find(best->key);
    return set_path(*next, path.substr(best->key.size() + 1), std::move(value), where, false);
  }
  const auto dot = path.find('.');
  if (best || !top || dot == std::string::npos) {
    map.set(path, std::move(value), where);
    return true;
  }
  Value inner = Value::map(where);
  inner.set(path.substr(dot + 1), std::move(value), where);
  map.set(path.substr(0, dot), std::move(inner), where);
  return true;
}

}  // namespace

void apply_overrides(Value& root, const std::vector<std::string>& sets, std::vector<ConfigError>& errors) {
  const Location cli{"--set", 0, 0};
  for (const auto& s : sets) {
    const auto eq = s.find('=');
    const auto dot = s.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 || dot + 1 == eq) {
      errors.push_back({cli, fmt::format("--set '{}': expected stage.option=value or run.duration=value", s)});
      continue;
    }
    const std::string target = s.substr(0, dot);
    const std::string key = s.substr(dot + 1, eq - dot - 1);
    const Location where{"--set " + s, 0, 0};
    // The value is YAML: [a, b] is a list, {k: v} a map, 5 a number, "5" a string. An empty
    // value is an empty string rather than null.
    const std::string text = s.substr(eq + 1);
    Value value = Value::scalar("", where, true);
    if (!text.empty()) {
      std::vector<ConfigError> value_errors;
      auto parsed = config::parse_yaml(text, "--set " + s, value_errors);
      if (!parsed || !value_errors.empty()) {
        for (auto& e : value_errors) errors.push_back({where, e.message});
        if (value_errors.empty()) errors.push_back({where, "--set: the value is not valid YAML"});
        continue;
      }
      value = std::move(*parsed);
      relocate(value, where);
    }
    if (!root.is_map()) return;
    if (target == "run") {
      Value* run = root.find("run");
      if (!run) {
        root.set("run", Value::map(where), where);
        run = root.find("run");
      }
      if (!run->is_map()) {
        errors.push_back({where, "--set: 'run' in the file is not a map"});
        continue;
      }
      run->set(key, std::move(value), where);
      continue;
    }
    Value* stages = root.find("stages");
    Value* stage = nullptr;
    std::vector<std::string> ids;
    if (stages && stages->is_list())
      for (auto& st : stages->items())
        if (const Value* id = st.find("id"); id && id->is_scalar()) {
          ids.push_back(id->text());
          if (id->text() == target) stage = &st;
        }
    if (!stage) {
      errors.push_back({where, fmt::format("--set: no stage with id '{}'{}", target, did_you_mean(target, ids))});
      continue;
    }
    Value* config = stage->find("config");
    if (!config || config->is_null()) {
      stage->set("config", Value::map(where), where);
      config = stage->find("config");
    }
    if (!config->is_map()) {
      errors.push_back({where, fmt::format("--set: stage '{}' has a config that is not a map", target)});
      continue;
    }
    // An option the plugin does not have is refused by its own check, with a suggestion.
    set_path(*config, key, std::move(value), where, true);
  }
}

std::optional<PipelineSpec> parse_pipeline(const Value& root, const std::string& file,
                                           std::vector<ConfigError>& errors, PipelineSpec* partial) {
  const std::size_t before = errors.size();
  PipelineSpec spec;
  spec.file = file;
  if (!root.is_map()) {
    errors.push_back({root.location(), "a pipeline file must be a map with 'name' and 'stages'"});
    return std::nullopt;
  }
  check_keys(root, kTopKeys, "the pipeline", errors);
  if (auto n = scalar(root.find("name"), "'name'", errors)) spec.name = *n;
  else if (!root.find("name")) errors.push_back({root.location(), "missing key 'name'"});

  if (const Value* run = root.find("run")) {
    if (!run->is_map()) {
      errors.push_back({run->location(), "'run' must be a map with 'duration', 'cycles' and/or 'scheduling'"});
    } else {
      check_keys(*run, kRunKeys, "'run'", errors);
      if (const Value* d = run->find("duration")) {
        auto dur = d->is_scalar() ? parse_duration(d->text()) : std::nullopt;
        if (!dur || dur->count() <= 0)
          errors.push_back({d->location(), fmt::format("'run.duration' must be a positive duration such as 30s or 2m, got '{}'", d->is_scalar() ? d->text() : "?")});
        else
          spec.run.duration = *dur;
      }
      if (const Value* c = run->find("cycles")) {
        if (c->is_scalar() && c->text() == "forever") spec.run.cycles = 0;
        else {
          auto n = c->is_scalar() ? parse_int(c->text()) : std::nullopt;
          if (!n || *n < 1 || *n > 1'000'000)
            errors.push_back({c->location(), fmt::format("'run.cycles' must be a positive integer or 'forever', got '{}'", c->is_scalar() ? c->text() : "?")});
          else
            spec.run.cycles = static_cast<int>(*n);
        }
      }
      if (const Value* sc = run->find("scheduling")) {
        const std::string text = sc->is_scalar() ? sc->text() : "?";
        if (text == "batch") spec.run.scheduling = Scheduling::Batch;
        else if (text == "normal") spec.run.scheduling = Scheduling::Normal;
        else errors.push_back({sc->location(), fmt::format("'run.scheduling' must be 'batch' or 'normal', got '{}'", text)});
      }
      if (spec.run.cycles != 1 && !run->find("duration"))  // an invalid duration is reported once, above
        errors.push_back({run->location(), "'run.cycles' needs 'run.duration': each cycle runs for that long"});
    }
  }

  const Value* stages = root.find("stages");
  if (!stages) {
    errors.push_back({root.location(), "missing key 'stages'"});
  } else if (!stages->is_list() || stages->items().empty()) {
    errors.push_back({stages->location(), "'stages' must be a non-empty list"});
  } else {
    std::set<std::string> ids;
    for (const Value& st : stages->items()) {
      if (!st.is_map()) {
        errors.push_back({st.location(), "a stage must be a map with 'id' and 'plugin'"});
        continue;
      }
      check_keys(st, kStageKeys, "a stage", errors);
      StageSpec s;
      s.where = st.location();
      if (auto id = scalar(st.find("id"), "'id'", errors)) {
        s.id = *id;
        if (!valid_id(s.id)) {
          errors.push_back({st.find("id")->location(), fmt::format("stage id '{}' may hold only letters, digits, '-' and '_'", s.id)});
          s.usable_id = false;
        } else if (!ids.insert(s.id).second) {
          errors.push_back({st.find("id")->location(), fmt::format("duplicate stage id '{}'", s.id)});
          s.usable_id = false;
        }
      } else {
        if (!st.find("id")) errors.push_back({st.location(), "stage: missing key 'id'"});
        s.usable_id = false;
      }
      const std::string who = s.id.empty() ? std::string("stage") : fmt::format("stage '{}'", s.id);
      if (auto p = scalar(st.find("plugin"), "'plugin'", errors)) {
        s.plugin = *p;
        s.plugin_where = st.find("plugin")->location();
      } else if (!st.find("plugin")) {
        errors.push_back({st.location(), who + ": missing key 'plugin'"});
      }
      if (const Value* c = st.find("config")) s.config = *c;
      const Value* in = st.find("input");
      const Value* ins = st.find("inputs");
      if (in && ins) errors.push_back({ins->location(), who + ": give 'input' or 'inputs', not both"});
      // 'input' and 'inputs' both take one reference or a list of them.
      for (const Value* v : {in, ins}) {
        if (!v) continue;
        if (v->is_list())
          for (const auto& i : v->items()) parse_input(i, s.inputs, errors);
        else
          parse_input(*v, s.inputs, errors);
      }
      if (const Value* b = st.find("buffer")) parse_buffer(*b, s.buffer, errors);
      if (const Value* sa = st.find("stop_after")) {
        if (sa->is_list())
          for (const auto& i : sa->items()) parse_input(i, s.stop_after, errors);
        else
          parse_input(*sa, s.stop_after, errors);
        for (const auto& ref : s.stop_after)
          if (!ref.output.empty())
            errors.push_back({ref.where, who + ": 'stop_after' lists stage ids, not outputs ('" + ref.str() + "')"});
      }
      spec.stages.push_back(std::move(s));
    }
  }
  // dashboard: {stage: validate}: the tap the live dashboard charts.
  if (const Value* d = root.find("dashboard")) {
    const Value* st = d->is_map() ? d->find("stage") : nullptr;
    if (d->is_map()) check_keys(*d, {"stage"}, "'dashboard'", errors);
    if (!st || !st->is_scalar()) {
      errors.push_back({d->location(), "'dashboard' must be a map with 'stage', e.g. dashboard: {stage: validate}"});
    } else {
      const std::string ref = st->text();
      const std::string id = ref.substr(0, ref.find('.'));
      if (!spec.stage(id)) {
        std::vector<std::string> known;
        for (const auto& x : spec.stages) known.push_back(x.id);
        errors.push_back({st->location(), fmt::format("'dashboard.stage': unknown stage '{}'{}", id, did_you_mean(id, known))});
      } else {
        spec.dashboard_stage = ref;
      }
    }
  }
  if (const Value* l = root.find("limits")) apply_limits(*l, spec, errors);
  if (partial) *partial = spec;
  if (errors.size() != before) return std::nullopt;
  return spec;
}

std::map<std::string, loader::PluginPtr> check_pipeline(const PipelineSpec& spec, loader::Registry& registry,
                                                        std::vector<ConfigError>& errors) {
  const std::size_t before = errors.size();
  std::map<std::string, loader::PluginPtr> plugins;  // usable ids only
  std::vector<loader::PluginPtr> loaded(spec.stages.size());  // every stage, repeats included
  std::set<std::string> bad_config;  // stages whose config failed: their wiring is not checked
  std::vector<std::string> known;    // plugin names, for suggestions (discovered once)
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const auto& s = spec.stages[i];
    if (s.plugin.empty()) continue;  // missing or malformed: reported by parse_pipeline
    const std::string who = s.id.empty() ? std::string("stage") : fmt::format("stage '{}'", s.id);
    try {
      loaded[i] = registry.get(s.plugin);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      if (msg.starts_with("unknown plugin")) {
        if (known.empty())
          for (const auto& p : registry.discover()) known.push_back(p->info().name);
        std::string dirs;
        for (const auto& d : registry.search_path()) dirs += (dirs.empty() ? "" : ", ") + d.string();
        msg = fmt::format("unknown plugin '{}'{} (looked for libflow-{}.so in {}; add a folder with --plugin-path DIR or FLOW_PLUGIN_PATH)",
                          s.plugin, did_you_mean(s.plugin, known), s.plugin, dirs);
      }
      errors.push_back({s.plugin_where, fmt::format("{}: {}", who, msg)});
      continue;
    }
    if (s.usable_id) plugins[s.id] = loaded[i];
    Location cfg_where = s.config.is_null() ? s.where : s.config.location();
    auto config_errors = loaded[i]->check(s.config, cfg_where);
    if (!config_errors.empty() && s.usable_id) bad_config.insert(s.id);
    for (auto& e : config_errors) {
      if (e.where.line == 0 && e.where.file.empty()) e.where = cfg_where;
      errors.push_back({e.where, fmt::format("{}: {}", who, e.message)});
    }
  }
  // Inputs: they exist, the named outputs exist, kinds fit.
  std::map<std::string, std::vector<std::string>> edges;  // consumer -> producers
  for (std::size_t i = 0; i < spec.stages.size(); ++i) {
    const auto& s = spec.stages[i];
    const std::string who = s.id.empty() ? std::string("stage") : fmt::format("stage '{}'", s.id);
    const auto& mine = loaded[i];
    const bool is_source = mine && mine->info().kind == StageKind::Source;
    if (is_source && !s.inputs.empty())
      errors.push_back({s.inputs.front().where, fmt::format("{}: a source ({}) takes no input", who, s.plugin)});
    if (!is_source && mine && s.inputs.empty())
      errors.push_back({s.where, fmt::format("{}: a {} needs an 'input'", who, kind_name(mine->info().kind))});
    for (const auto& in : s.inputs) {
      const StageSpec* from = spec.stage(in.stage);
      if (!from) {
        std::vector<std::string> ids;
        for (const auto& o : spec.stages)
          if (o.usable_id) ids.push_back(o.id);
        errors.push_back({in.where, fmt::format("{}: input '{}' names no stage{}", who, in.str(), did_you_mean(in.stage, ids))});
        continue;
      }
      if (in.stage == s.id) {
        errors.push_back({in.where, fmt::format("{}: a stage cannot read its own output", who)});
        continue;
      }
      if (s.usable_id && !is_source) edges[s.id].push_back(in.stage);  // a source's input is already an error
      auto p = plugins.find(in.stage);
      if (p == plugins.end()) continue;
      const auto& info = p->second->info();
      if (in.output.empty()) {
        if (!info.main_output)
          errors.push_back({in.where, fmt::format("{}: input '{}' is a {} ({}) that emits nothing", who, in.str(), kind_name(info.kind), info.name)});
      } else if (std::find(info.extra_outputs.begin(), info.extra_outputs.end(), in.output) == info.extra_outputs.end()) {
        std::string outs;
        for (const auto& o : info.extra_outputs) outs += (outs.empty() ? "" : ", ") + o;
        errors.push_back({in.where, fmt::format("{}: '{}' has no output '{}' ({} outputs: {}){}", who, in.stage, in.output,
                                                info.name, outs.empty() ? "only the main one" : outs, did_you_mean(in.output, info.extra_outputs))});
      }
    }
  }
  // Columns: what each stage reads against what its upstream declares it emits.
  for (const auto& s : spec.stages) {
    auto me = plugins.find(s.id);
    if (!s.usable_id || me == plugins.end() || bad_config.count(s.id)) continue;
    const auto wants = me->second->input_columns(s.config);
    if (wants.empty()) continue;
    for (const auto& in : s.inputs) {
      const StageSpec* from = spec.stage(in.stage);
      auto up = plugins.find(in.stage);
      if (!from || up == plugins.end() || bad_config.count(in.stage) || !in.output.empty()) continue;
      const auto has = up->second->output_schema(from->config);
      if (!has) continue;
      std::string emitted;
      for (const auto& f : has->fields()) emitted += fmt::format("{}{} {}", emitted.empty() ? "" : ", ", f.name, type_name(f.type));
      for (const auto& c : wants) {
        const auto i = has->index_of(c.name);
        if (!i) {
          if (c.required)
            errors.push_back({in.where, fmt::format("stage '{}': input '{}' has no column '{}' ({}), which {} reads; '{}' emits: {}",
                                                    s.id, in.str(), c.name, type_name(c.type), s.plugin, in.stage, emitted)});
        } else if (has->field(*i).type != c.type) {
          errors.push_back({in.where, fmt::format("stage '{}': column '{}' of input '{}' is {}, but {} reads it as {}", s.id,
                                                  c.name, in.str(), type_name(has->field(*i).type), s.plugin, type_name(c.type))});
        }
      }
    }
  }
  // stop_after: sources only, existing stages, and no wait that can never end (a source waiting
  // for a stage that only finishes after that very source stopped).
  std::map<std::string, std::set<std::string>> upstream_sources;  // stage -> sources feeding it
  std::function<const std::set<std::string>&(const std::string&)> sources_of = [&](const std::string& id) -> const std::set<std::string>& {
    if (auto it = upstream_sources.find(id); it != upstream_sources.end()) return it->second;
    upstream_sources[id];  // an empty placeholder while visiting: a graph cycle is reported below
    std::set<std::string> acc;
    if (auto p = plugins.find(id); p != plugins.end() && p->second->info().kind == StageKind::Source) acc.insert(id);
    for (const auto& dep : edges[id]) {
      const auto& d = sources_of(dep);
      acc.insert(d.begin(), d.end());
    }
    upstream_sources[id] = acc;
    return upstream_sources[id];
  };
  for (const auto& s : spec.stages) {
    if (s.stop_after.empty() || !s.usable_id) continue;
    auto me = plugins.find(s.id);
    if (me != plugins.end() && me->second->info().kind != StageKind::Source) {
      errors.push_back({s.stop_after.front().where, fmt::format("stage '{}': 'stop_after' applies to sources only", s.id)});
      continue;
    }
    for (const auto& t : s.stop_after) {
      if (!spec.stage(t.stage)) {
        std::vector<std::string> ids;
        for (const auto& o : spec.stages) ids.push_back(o.id);
        errors.push_back({t.where, fmt::format("stage '{}': stop_after '{}' names no stage{}", s.id, t.stage, did_you_mean(t.stage, ids))});
      }
    }
  }
  {
    // Wait graph (stages that name no stage wait for nothing, reported above): source S waits for stage T; T finishes once every source upstream of it stopped.
    std::map<std::string, std::vector<std::string>> waits;  // source -> sources it transitively waits for
    for (const auto& s : spec.stages)
      for (const auto& t : s.stop_after) {
        const auto& srcs = sources_of(t.stage);
        waits[s.id].insert(waits[s.id].end(), srcs.begin(), srcs.end());
      }
    std::map<std::string, int> mark;
    std::function<bool(const std::string&)> loops = [&](const std::string& id) {
      mark[id] = 1;
      for (const auto& w : waits[id]) {
        if (mark[w] == 1) return true;
        if (mark[w] == 0 && loops(w)) return true;
      }
      mark[id] = 2;
      return false;
    };
    for (const auto& s : spec.stages)
      if (!s.stop_after.empty() && mark[s.id] == 0 && loops(s.id)) {
        errors.push_back({s.stop_after.front().where,
                          fmt::format("stage '{}': 'stop_after' waits for a stage that can only finish after '{}' stopped", s.id, s.id)});
        break;
      }
  }

  // Cycles: depth-first search over consumer -> producer edges; reported once per cycle, at the
  // first stage of the cycle in file order, with the path.
  std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
  std::vector<std::string> stack;
  std::set<std::string> reported;
  std::function<void(const std::string&)> visit = [&](const std::string& id) {
    state[id] = 1;
    stack.push_back(id);
    for (const auto& dep : edges[id]) {
      if (state[dep] == 1) {
        std::vector<std::string> loop(std::find(stack.begin(), stack.end(), dep), stack.end());
        const StageSpec* first = nullptr;
        for (const auto& st : spec.stages)
          if (st.usable_id && std::find(loop.begin(), loop.end(), st.id) != loop.end()) {
            first = &st;
            break;
          }
        if (!first || reported.count(first->id)) continue;
        for (const auto& l : loop) reported.insert(l);
        // Printed in data-flow order, starting and ending at the first stage.
        std::reverse(loop.begin(), loop.end());
        std::rotate(loop.begin(), std::find(loop.begin(), loop.end(), first->id), loop.end());
        std::string path;
        for (const auto& l : loop) path += l + " -> ";
        errors.push_back({first->where, fmt::format("stage '{}': its inputs form a cycle ({}{})", first->id, path, first->id)});
      } else if (state[dep] == 0) {
        visit(dep);
      }
    }
    stack.pop_back();
    state[id] = 2;
  };
  for (const auto& s : spec.stages)
    if (s.usable_id && state[s.id] == 0) visit(s.id);
  if (errors.size() != before) return {};
  return plugins;
}

std::string format_errors(std::vector<ConfigError> errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    if (a.where.file != b.where.file) return a.where.file < b.where.file;
    if (a.where.line != b.where.line) return a.where.line < b.where.line;
    return a.where.column < b.where.column;
  });
  std::string out;
  for (const auto& e : errors) out += e.str() + "\n";
  return out;
}

}  // namespace flow::spec
