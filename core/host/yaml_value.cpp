#include "host/yaml_value.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

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
  ValueBuilder(std::string file, std::vector<ConfigError>& errors) : file_(std::move(file)), errors_(errors) {}

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
    add(Value::scalar(value, loc(mark), quoted), mark);
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
  std::vector<Frame> stack_;
  std::optional<Value> root_;
};

}  // namespace

std::optional<Value> parse_yaml(const std::string& text, const std::string& file_name,
                                std::vector<ConfigError>& errors) {
  std::istringstream in(text);
  ValueBuilder builder(file_name, errors);
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
                                     std::vector<ConfigError>& errors) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    errors.push_back({Location{path.string(), 0, 0}, "cannot read the file"});
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_yaml(ss.str(), path.string(), errors);
}

}  // namespace flow::config
