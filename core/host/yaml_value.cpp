#include "host/yaml_value.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/emitter.h>
#include <yaml-cpp/parser.h>

#include <cstdlib>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace flow::config {
namespace {

// Thrown from the handler to stop parsing at the first structural problem.
struct Abort {
  ConfigError error;
};

class ValueBuilder : public YAML::EventHandler {
 public:
  ValueBuilder(std::string file, std::vector<ConfigError>& errors, std::vector<Location>* unresolved)
      : file_(std::move(file)), errors_(errors), unresolved_(unresolved) {}

  std::optional<Value> result() { return std::move(root_); }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    check_anchor(mark, anchor);
    add(Value::null(loc(mark)), mark);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    throw Abort{{loc(mark), "YAML aliases (*name) are not supported in pipeline files"}};
  }
  void OnAnchor(const YAML::Mark& mark, const std::string&) override {
    throw Abort{{loc(mark), "YAML anchors (&name) are not supported in pipeline files"}};
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    check_anchor(mark, anchor);
    // yaml-cpp gives the non-specific tag "!" to quoted scalars and "?" to plain ones.
    const bool quoted = tag == "!";
    if (!quoted && (value == "~" || value == "null" || value == "Null" || value == "NULL")) {
      add(Value::null(loc(mark)), mark);
      return;
    }
    const bool is_key = !stack_.empty() && stack_.back().value.is_map() && stack_.back().expecting_key;
    if (is_key || value.find('$') == std::string::npos) {
      add(Value::scalar(value, loc(mark), quoted), mark);
      return;
    }
    // The text starts after the opening quote of a quoted scalar.
    Location text_at = loc(mark);
    if (quoted) ++text_at.column;
    const std::size_t before = errors_.size();
    std::string expanded = expand_variables(value, text_at, errors_);
    if (unresolved_ && errors_.size() != before) unresolved_->push_back(loc(mark));
    add(Value::scalar(std::move(expanded), loc(mark), quoted), mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    check_anchor(mark, anchor);
    push(Value::list(loc(mark)), mark);
  }
  void OnSequenceEnd() override { pop(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    check_anchor(mark, anchor);
    push(Value::map(loc(mark)), mark);
  }
  void OnMapEnd() override { pop(); }

 private:
  struct Frame {
    Value value;
    bool expecting_key = true;  // maps only
    std::string pending_key;
    Location pending_key_loc;
  };

  Location loc(const YAML::Mark& m) const { return Location{file_, m.line + 1, m.column + 1}; }

  void check_anchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor)
      throw Abort{{loc(mark), "YAML anchors (&name) are not supported in pipeline files"}};
  }

  void push(Value v, const YAML::Mark& mark) {
    if (stack_.size() >= static_cast<std::size_t>(kMaxYamlDepth))
      throw Abort{{loc(mark), "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels"}};
    if (!stack_.empty() && stack_.back().value.is_map() && stack_.back().expecting_key)
      throw Abort{{loc(mark), "a map key must be a plain value, not a list or map"}};
    stack_.push_back(Frame{std::move(v)});
  }

  void pop() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    deliver(std::move(f.value));
  }

  void add(Value v, const YAML::Mark&) { deliver(std::move(v)); }

  void deliver(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    if (top.value.is_list()) {
      top.value.items().push_back(std::move(v));
      return;
    }
    if (top.expecting_key) {
      if (!v.is_scalar() && !v.is_null())
        throw Abort{{v.location(), "a map key must be a plain value, not a list or map"}};
      top.pending_key = v.is_null() ? std::string() : v.text();
      top.pending_key_loc = v.location();
      top.expecting_key = false;
      return;
    }
    top.expecting_key = true;
    for (const auto& e : top.value.entries()) {
      if (e.key == top.pending_key) {
        errors_.push_back({top.pending_key_loc, "duplicate key '" + top.pending_key +
                                                    "' (first defined at line " +
                                                    std::to_string(e.key_location.line) + ")"});
        return;  // keep the first, as yaml-cpp would, but report it
      }
    }
    top.value.entries().push_back(
        Value::Entry{std::move(top.pending_key), std::move(top.pending_key_loc), std::move(v)});
  }

  std::string file_;
  std::vector<ConfigError>& errors_;
  std::vector<Location>* unresolved_;
  std::vector<Frame> stack_;
  std::optional<Value> root_;
};

bool name_char(char c, bool first) {
  return c == '_' || std::isalpha(static_cast<unsigned char>(c)) || (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Where offset `i` of a scalar's text is, given where the text starts (exact on one line).
Location offset_location(const std::string& text, std::size_t i, const Location& at) {
  Location l = at;
  const auto nl = text.rfind('\n', i == 0 ? 0 : i - 1);
  if (nl == std::string::npos || nl >= i) {
    l.column += static_cast<int>(i);
    return l;
  }
  l.line += static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(i), '\n'));
  l.column = static_cast<int>(i - nl);
  return l;
}

void emit(YAML::Emitter& out, const Value& v) {
  if (v.is_null()) {
    out << YAML::Null;
  } else if (v.is_scalar()) {
    if (v.quoted()) out << YAML::DoubleQuoted;
    out << v.text();
  } else if (v.is_list()) {
    if (v.items().empty()) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& i : v.items()) emit(out, i);
    out << YAML::EndSeq;
  } else {
    if (v.entries().empty()) out << YAML::Flow;
    out << YAML::BeginMap;
    for (const auto& e : v.entries()) {
      out << YAML::Key << e.key << YAML::Value;
      emit(out, e.value);
    }
    out << YAML::EndMap;
  }
}

}  // namespace

std::string expand_variables(const std::string& text, const Location& at, std::vector<ConfigError>& errors,
                             const EnvLookup& lookup) {
  auto get = [&](const std::string& name) -> std::optional<std::string> {
    if (lookup) return lookup(name);
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {  // escape: a literal "${"
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const Location where = offset_location(text, i, at);
    const auto close = text.find('}', i + 2);
    if (close == std::string::npos) {
      errors.push_back({where, "unterminated '${' (write '$${' for a literal '${')"});
      out += text.substr(i);
      break;
    }
    const std::string body = text.substr(i + 2, close - i - 2);
    std::size_t n = 0;
    while (n < body.size() && name_char(body[n], n == 0)) ++n;
    const std::string name = body.substr(0, n);
    const std::string rest = body.substr(n);
    const bool has_default = rest.starts_with(":-");
    const bool has_required = rest.starts_with(":?");
    if (name.empty() || !(rest.empty() || has_default || has_required)) {
      errors.push_back({where, "'${" + body + "}' is not a variable: expected ${NAME}, ${NAME:-default} or ${NAME:?message}"});
      out += text.substr(i, close + 1 - i);
      i = close + 1;
      continue;
    }
    auto value = get(name);
    if (value && value->empty() && (has_default || has_required)) value.reset();  // ':' means unset or empty
    if (value) {
      out += *value;
    } else if (has_default) {
      out += rest.substr(2);
    } else {
      const std::string msg = has_required && rest.size() > 2 ? rest.substr(2) : "";
      errors.push_back({where, "environment variable '" + name + "' is not set" + (msg.empty() ? "" : ": " + msg) +
                                   (has_required ? "" : " (give a default with ${" + name + ":-default})")});
      out += text.substr(i, close + 1 - i);
    }
    i = close + 1;
  }
  return out;
}

std::string to_yaml(const Value& v) {
  YAML::Emitter out;
  emit(out, v);
  return std::string(out.c_str()) + "\n";
}

std::optional<Value> parse_yaml(const std::string& text, const std::string& file_name,
                                std::vector<ConfigError>& errors, std::vector<Location>* unresolved) {
  std::istringstream in(text);
  ValueBuilder builder(file_name, errors, unresolved);
  const std::size_t errors_before = errors.size();
  try {
    YAML::Parser parser(in);
    if (!parser.HandleNextDocument(builder)) {
      errors.push_back({Location{file_name, 1, 1}, "the file is empty"});
      return std::nullopt;
    }
  } catch (const Abort& a) {
    errors.push_back(a.error);
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    errors.push_back({Location{file_name, e.mark.line + 1, e.mark.column + 1},
                      "YAML syntax: " + e.msg});
    return std::nullopt;
  }
  auto v = builder.result();
  if (!v) {
    errors.push_back({Location{file_name, 1, 1}, "the file is empty"});
    return std::nullopt;
  }
  if (errors.size() != errors_before) return v;  // duplicates reported; value still usable
  return v;
}

std::optional<Value> parse_yaml_file(const std::filesystem::path& path,
                                     std::vector<ConfigError>& errors, std::vector<Location>* unresolved) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    errors.push_back({Location{path.string(), 0, 0}, "cannot read the file"});
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_yaml(ss.str(), path.string(), errors, unresolved);
}

}  // namespace flow::config
