#include "flowctl/tap_filter.hpp"

#include <simdjson.h>

#include <charconv>
#include <regex>

namespace flow::cli {

std::optional<TapFilter> TapFilter::parse(const std::string& text, std::string& error) {
  static const std::regex re(R"(^\s*([A-Za-z0-9_.\-]+)\s*(==|!=|<=|>=|<|>|=)\s*(.*?)\s*$)");
  std::smatch m;
  if (!std::regex_match(text, m, re) || m[3].str().empty()) {
    error = "expected 'column op value' with op one of == != < <= > >= (e.g. 'temperature > 30')";
    return std::nullopt;
  }
  TapFilter f;
  f.column_ = m[1];
  f.op_ = m[2] == "=" ? "==" : m[2].str();
  std::string v = m[3];
  if (v.size() >= 2 && (v.front() == '\'' || v.front() == '"') && v.back() == v.front()) {
    f.text_ = v.substr(1, v.size() - 2);
  } else {
    f.text_ = v;
    double d = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
    if (ec == std::errc() && p == v.data() + v.size()) f.number_ = d;
  }
  return f;
}

namespace {
template <class T>
bool compare(const T& a, const std::string& op, const T& b) {
  if (op == "==") return a == b;
  if (op == "!=") return a != b;
  if (op == "<") return a < b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  return a >= b;
}
}  // namespace

bool TapFilter::matches(const std::string& json_row) const {
  simdjson::dom::parser parser;  // rows are small; a tap prints at most thousands per second
  simdjson::dom::element row;
  if (parser.parse(json_row).get(row)) return false;
  simdjson::dom::element v;
  if (row[column_].get(v)) return false;
  if (v.is_number()) {
    if (!number_) return false;
    double d = 0;
    if (v.is_double()) d = v.get_double().value();
    else if (v.is_int64()) d = static_cast<double>(v.get_int64().value());
    else d = static_cast<double>(v.get_uint64().value());
    return compare(d, op_, *number_);
  }
  if (v.is_string()) return compare(std::string(v.get_string().value()), op_, text_);
  if (v.is_bool()) return compare(std::string(v.get_bool().value() ? "true" : "false"), op_, text_);
  if (v.is_null()) return compare(std::string("null"), op_, text_);
  return false;
}

}  // namespace flow::cli
