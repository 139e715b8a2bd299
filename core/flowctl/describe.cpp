#include "flowctl/describe.hpp"

#include <fmt/format.h>

#include "flow/text.hpp"
#include "host/yaml_value.hpp"

namespace flow::cli {
namespace {

std::string constraints(const OptionSpec& o) {
  std::string c = option_range_text(o);
  if (o.min && o.max) c = "range " + c;
  if (!o.allowed.empty()) {
    std::string v;
    for (const auto& a : o.allowed) v += (v.empty() ? "" : ", ") + a;
    c += (c.empty() ? "" : "; ") + std::string("one of: ") + v;
  }
  if (o.type == OptionType::Duration && (o.min || o.max)) c += " (seconds)";
  return c;
}

std::string json_escape(const std::string& s) { return json_string(s); }

std::string md_cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

std::string outputs_text(const PluginInfo& i) {
  std::string o = i.main_output ? "main" : "";
  for (const auto& x : i.extra_outputs) o += (o.empty() ? "" : ", ") + x;
  return o.empty() ? "none" : o;
}

// The config the declared wiring is shown for: the plugin's example, else the defaults.
Value sample_config(const PluginDescriptor& d) {
  if (d.example.empty()) return Value();
  std::vector<ConfigError> errors;
  auto v = config::parse_yaml(d.example, "<example>", errors);
  return v && errors.empty() ? *v : Value();
}

// The declared wiring for the example or default options ("depends on its options" when those
// are not enough, e.g. a required option).
std::string reads_text(const PluginDescriptor& d) {
  if (d.info.kind == StageKind::Source) return "";
  std::vector<ColumnSpec> cols;
  try {
    if (d.input_columns) cols = d.input_columns(sample_config(d));
  } catch (...) {
    return "depends on its options";
  }
  if (cols.empty()) return "any columns";
  std::string t;
  for (const auto& c : cols)
    t += fmt::format("{}{} {}{}", t.empty() ? "" : ", ", c.name, type_name(c.type), c.required ? "" : " (optional)");
  return t;
}

std::string emits_text(const PluginDescriptor& d) {
  if (!d.info.main_output) return "";
  try {
    auto schema = d.output_schema ? d.output_schema(sample_config(d)) : std::nullopt;
    if (!schema) return "decided by the data";
    std::string t;
    for (const auto& f : schema->fields()) t += fmt::format("{}{} {}", t.empty() ? "" : ", ", f.name, type_name(f.type));
    return t;
  } catch (...) {
    return "depends on its options";
  }
}

}  // namespace

std::string describe_text(const PluginDescriptor& d) {
  const auto& i = d.info;
  std::string out = fmt::format("{} {} ({})\n  {}\n  outputs: {}\n", i.name, i.version, kind_name(i.kind),
                                i.description, outputs_text(i));
  if (auto r = reads_text(d); !r.empty()) out += fmt::format("  reads: {}\n", r);
  if (auto e = emits_text(d); !e.empty()) out += fmt::format("  emits (main output): {}\n", e);
  out += "\noptions:\n";
  if (d.options.empty()) out += "  (none)\n";
  for (const auto& o : d.options) {
    out += fmt::format("  {:<20} {:<14} {}\n", o.name, option_type_name(o.type),
                       o.required ? "required" : "default: " + o.default_text);
    out += fmt::format("  {:<20} {}\n", "", o.doc);
    if (auto c = constraints(o); !c.empty()) out += fmt::format("  {:<20} {}\n", "", c);
  }
  if (!d.example.empty()) {
    out += "\nexample config:\n";
    std::size_t start = 0;
    while (start < d.example.size()) {
      const auto nl = d.example.find('\n', start);
      const auto end = nl == std::string::npos ? d.example.size() : nl;
      out += "  " + d.example.substr(start, end - start) + "\n";
      start = end + 1;
    }
  }
  return out;
}

std::string describe_json(const PluginDescriptor& d) {
  const auto& i = d.info;
  std::string extra;
  for (const auto& x : i.extra_outputs) extra += (extra.empty() ? "" : ", ") + json_escape(x);
  std::string out = fmt::format(
      "{{\n  \"schema_version\": {},\n  \"name\": {},\n  \"version\": {},\n  \"kind\": {},\n  \"description\": {},\n"
      "  \"main_output\": {},\n  \"extra_outputs\": [{}],\n  \"options\": [",
      kDescribeSchemaVersion, json_escape(i.name), json_escape(i.version), json_escape(kind_name(i.kind)),
      json_escape(i.description), i.main_output ? "true" : "false", extra);
  for (std::size_t k = 0; k < d.options.size(); ++k) {
    const auto& o = d.options[k];
    std::string allowed;
    for (const auto& a : o.allowed) allowed += (allowed.empty() ? "" : ", ") + json_escape(a);
    out += fmt::format(
        "{}\n    {{\"name\": {}, \"type\": {}, \"required\": {}, \"default\": {}, \"doc\": {}, \"min\": {}, \"max\": {}, "
        "\"allowed\": [{}]}}",
        k ? "," : "", json_escape(o.name), json_escape(option_type_name(o.type)), o.required ? "true" : "false",
        o.required ? "null" : json_escape(o.default_text), json_escape(o.doc), o.min ? format_double(*o.min) : "null",
        o.max ? format_double(*o.max) : "null", allowed);
  }
  out += d.options.empty() ? "]," : "\n  ],";
  out += fmt::format("\n  \"example\": {}\n}}\n", d.example.empty() ? "null" : json_escape(d.example));
  return out;
}

std::string describe_markdown(const PluginDescriptor& d) {
  std::string out = "| option | type | default | description |\n|---|---|---|---|\n";
  for (const auto& o : d.options) {
    std::string doc = o.doc;
    if (auto c = constraints(o); !c.empty()) doc += " (" + c + ")";
    out += fmt::format("| `{}` | {} | {} | {} |\n", o.name, option_type_name(o.type),
                       o.required ? std::string("**required**") : "`" + md_cell(o.default_text) + "`", md_cell(doc));
  }
  if (d.options.empty()) out += "| (none) | | | |\n";
  if (!d.example.empty()) {
    std::string ex = d.example;
    if (!ex.ends_with('\n')) ex += '\n';
    const bool tmp = ex.find("${TMPDIR}") != std::string::npos;
    out += fmt::format("\nExample `config` (checked by the plugin{}):\n\n```yaml\n{}```\n",
                       tmp ? "; `${TMPDIR}` stands for a folder of yours" : "", ex);
  }
  return out;
}

}  // namespace flow::cli
