// Plugin options: one typed table bound to the plugin's options struct by pointer-to-member.
// The same table validates a config (unknown keys with "did you mean", types, ranges, required
// options), fills the struct, and describes the options for `flowctl plugins describe`, the
// README's generated table and the conformance suite. Defaults are the struct's own member
// initialisers, so they are written once.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cctype>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "flow/value.hpp"

namespace flow {

// A byte count written as "8MiB", "64KiB", "10MB" or a plain number.
struct ByteSize {
  uint64_t bytes = 0;
  bool operator==(const ByteSize&) const = default;
};

using Duration = std::chrono::milliseconds;

enum class OptionType { Bool, Int, Float, String, Duration, Size, StringList, StringMap, Object };

inline const char* option_type_name(OptionType t) {
  switch (t) {
    case OptionType::Bool: return "bool";
    case OptionType::Int: return "int";
    case OptionType::Float: return "float";
    case OptionType::String: return "string";
    case OptionType::Duration: return "duration";
    case OptionType::Size: return "size";
    case OptionType::StringList: return "list of strings";
    case OptionType::StringMap: return "map of strings";
    case OptionType::Object: return "object";
  }
  return "?";
}

// The declared, type-erased description of one option.
struct OptionSpec {
  std::string name;
  OptionType type = OptionType::String;
  std::string doc;
  bool required = false;
  std::string default_text;  // the default, formatted as it would be written in YAML
  std::optional<double> min, max;
  std::vector<std::string> allowed;  // for strings: the only accepted values, when non-empty
};

// ---------------------------------------------------------------------------------------------
// Text <-> value helpers, shared by the option table and the core (durations, sizes).

inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within a small distance, else "".
inline std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

inline std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

inline std::optional<double> parse_double(std::string_view s) {
  double v = 0;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || !std::isfinite(v))
    return std::nullopt;
  return v;
}

inline std::optional<bool> parse_bool(std::string_view s) {
  if (s == "true" || s == "yes" || s == "on" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "no" || s == "off" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

// "250ms", "5s", "2m", "1h", "1.5s", "0". A unit is required except for 0.
inline std::optional<Duration> parse_duration(std::string_view s) {
  if (s == "0") return Duration(0);
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  auto num = parse_double(s.substr(0, i));
  if (!num || *num < 0) return std::nullopt;
  const std::string_view unit = s.substr(i);
  double ms = 0;
  if (unit == "ms") ms = *num;
  else if (unit == "s") ms = *num * 1000;
  else if (unit == "m" || unit == "min") ms = *num * 60'000;
  else if (unit == "h") ms = *num * 3'600'000;
  else if (unit == "d") ms = *num * 86'400'000;
  else return std::nullopt;
  // Past ~292 million years llround overflows (found by fuzzing: "99999999999999999999h" was negative).
  if (!(ms < 9.2e18)) return std::nullopt;
  return Duration(static_cast<int64_t>(std::llround(ms)));
}

inline std::string format_duration(Duration d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// "8MiB", "64KiB", "1GiB", "10MB", "1000".
inline std::optional<ByteSize> parse_size(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  auto num = parse_double(s.substr(0, i));
  if (!num || *num < 0) return std::nullopt;
  const std::string_view unit = s.substr(i);
  double mult = 0;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB") mult = 1024.0;
  else if (unit == "MiB") mult = 1024.0 * 1024;
  else if (unit == "GiB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "KB" || unit == "kB") mult = 1e3;
  else if (unit == "MB") mult = 1e6;
  else if (unit == "GB") mult = 1e9;
  else return std::nullopt;
  if (!(*num * mult < 9.2e18)) return std::nullopt;  // llround would overflow (fuzzing)
  return ByteSize{static_cast<uint64_t>(std::llround(*num * mult))};
}

inline std::string format_size(ByteSize s) {
  const uint64_t b = s.bytes;
  if (b != 0 && b % (1024ull * 1024 * 1024) == 0) return std::to_string(b >> 30) + "GiB";
  if (b != 0 && b % (1024ull * 1024) == 0) return std::to_string(b >> 20) + "MiB";
  if (b != 0 && b % 1024 == 0) return std::to_string(b >> 10) + "KiB";
  return std::to_string(b);
}

inline std::string format_double(double v) {
  // Whole numbers print as integers ("1000000", not "1e+06"): they appear in ranges and defaults.
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 1e15)
    return std::to_string(static_cast<long long>(v));
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  std::string s(buf, p);
  return s;
}

// "[1, 10]", ">= 1" or "<= 10": the one wording of a numeric option's range, in errors and docs.
inline std::string option_range_text(const OptionSpec& s) {
  if (s.min && s.max) return "[" + format_double(*s.min) + ", " + format_double(*s.max) + "]";
  if (s.min) return ">= " + format_double(*s.min);
  if (s.max) return "<= " + format_double(*s.max);
  return "";
}

namespace detail {

template <class T>
struct OptionTraits;

template <>
struct OptionTraits<bool> {
  static constexpr OptionType type = OptionType::Bool;
  static bool parse(const Value& v) {
    if (v.is_scalar() && !v.quoted())
      if (auto b = parse_bool(v.text())) return *b;
    throw ConfigException(v.location(), "expected true or false, got " + describe(v));
  }
  static std::string format(bool b) { return b ? "true" : "false"; }
  static std::string describe(const Value& v) {
    return v.is_scalar() ? "'" + v.text() + "'" : std::string("a ") + Value::kind_name(v.kind());
  }
};

template <class T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
struct OptionTraits<T> {
  static constexpr OptionType type = OptionType::Int;
  static T parse(const Value& v) {
    if (v.is_scalar() && !v.quoted())
      if (auto i = parse_int(v.text())) {
        if (*i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            static_cast<uint64_t>(*i) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
          throw ConfigException(v.location(), "integer '" + v.text() + "' is out of range");
        return static_cast<T>(*i);
      }
    throw ConfigException(v.location(),
                          "expected an integer, got " + OptionTraits<bool>::describe(v));
  }
  static std::string format(T i) { return std::to_string(i); }
};

template <>
struct OptionTraits<double> {
  static constexpr OptionType type = OptionType::Float;
  static double parse(const Value& v) {
    if (v.is_scalar() && !v.quoted())
      if (auto d = parse_double(v.text())) return *d;
    throw ConfigException(v.location(),
                          "expected a number, got " + OptionTraits<bool>::describe(v));
  }
  static std::string format(double d) { return format_double(d); }
};

template <>
struct OptionTraits<std::string> {
  static constexpr OptionType type = OptionType::String;
  static std::string parse(const Value& v) {
    if (v.is_scalar()) return v.text();
    throw ConfigException(v.location(),
                          std::string("expected a string, got a ") + Value::kind_name(v.kind()));
  }
  static std::string format(const std::string& s) { return s.empty() ? "\"\"" : s; }
};

template <>
struct OptionTraits<Duration> {
  static constexpr OptionType type = OptionType::Duration;
  static Duration parse(const Value& v) {
    if (v.is_scalar())
      if (auto d = parse_duration(v.text())) return *d;
    throw ConfigException(v.location(), "expected a duration such as 500ms, 5s, 2m or 1h, got " +
                                            OptionTraits<bool>::describe(v));
  }
  static std::string format(Duration d) { return format_duration(d); }
};

template <>
struct OptionTraits<ByteSize> {
  static constexpr OptionType type = OptionType::Size;
  static ByteSize parse(const Value& v) {
    if (v.is_scalar())
      if (auto s = parse_size(v.text())) return *s;
    throw ConfigException(v.location(), "expected a size such as 4096, 64KiB or 8MiB, got " +
                                            OptionTraits<bool>::describe(v));
  }
  static std::string format(ByteSize s) { return format_size(s); }
};

template <>
struct OptionTraits<std::vector<std::string>> {
  static constexpr OptionType type = OptionType::StringList;
  static std::vector<std::string> parse(const Value& v) {
    if (v.is_scalar()) return {v.text()};  // a single value stands for a list of one
    if (!v.is_list())
      throw ConfigException(v.location(), std::string("expected a list of strings, got a ") +
                                              Value::kind_name(v.kind()));
    std::vector<std::string> out;
    for (const auto& item : v.items()) out.push_back(OptionTraits<std::string>::parse(item));
    return out;
  }
  static std::string format(const std::vector<std::string>& l) {
    std::string s = "[";
    for (std::size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + l[i];
    return s + "]";
  }
};

template <>
struct OptionTraits<std::map<std::string, std::string>> {
  static constexpr OptionType type = OptionType::StringMap;
  static std::map<std::string, std::string> parse(const Value& v) {
    if (v.is_null()) return {};
    if (!v.is_map())
      throw ConfigException(v.location(), std::string("expected a map of strings, got a ") +
                                              Value::kind_name(v.kind()));
    std::map<std::string, std::string> out;
    for (const auto& e : v.entries()) out[e.key] = OptionTraits<std::string>::parse(e.value);
    return out;
  }
  static std::string format(const std::map<std::string, std::string>& m) {
    return m.empty() ? "{}" : "{...}";
  }
};

// A structured option (for example json-validator's field schema): the plugin interprets the
// tree itself, reporting problems with ConfigException at the offending node.
template <>
struct OptionTraits<Value> {
  static constexpr OptionType type = OptionType::Object;
  static Value parse(const Value& v) { return v; }
  static std::string format(const Value&) { return "-"; }
};

}  // namespace detail

template <class Options>
class OptionTable {
 public:
  // Fluent refinements of the option just added.
  class Ref {
   public:
    Ref(OptionTable* t, std::size_t i) : t_(t), i_(i) {}
    Ref& required() {
      t_->specs_[i_].required = true;
      t_->specs_[i_].default_text.clear();
      return *this;
    }
    Ref& range(double min, double max) {
      t_->specs_[i_].min = min;
      t_->specs_[i_].max = max;
      return *this;
    }
    Ref& min(double m) {
      t_->specs_[i_].min = m;
      return *this;
    }
    Ref& one_of(std::vector<std::string> values) {
      t_->specs_[i_].allowed = std::move(values);
      return *this;
    }

   private:
    OptionTable* t_;
    std::size_t i_;
  };

  template <class T>
  Ref add(std::string name, T Options::*member, std::string doc) {
    using Traits = detail::OptionTraits<T>;
    OptionSpec spec;
    spec.name = name;
    spec.type = Traits::type;
    spec.doc = std::move(doc);
    const Options defaults{};
    spec.default_text = Traits::format(defaults.*member);
    specs_.push_back(std::move(spec));
    setters_.push_back([member](Options& o, const Value& v) { o.*member = Traits::parse(v); });
    numeric_.push_back([member](const Options& o) -> std::optional<double> {
      if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>)
        return static_cast<double>(o.*member);
      else if constexpr (std::is_same_v<T, Duration>)
        return static_cast<double>((o.*member).count()) / 1000.0;  // ranges in seconds
      else if constexpr (std::is_same_v<T, ByteSize>)
        return static_cast<double>((o.*member).bytes);
      else
        return std::nullopt;
    });
    text_.push_back([member](const Options& o) -> std::optional<std::string> {
      if constexpr (std::is_same_v<T, std::string>) return o.*member;
      else return std::nullopt;
    });
    return Ref(this, specs_.size() - 1);
  }

  // An option whose value is one of a few names, stored as the plugin's own enum (or any
  // type with ==):
  //   t.add_enum("units", &Options::units, {{"celsius", Units::C}, {"fahrenheit", Units::F}},
  //              "Unit of temperature in and out");
  // Described as a string that is one of the names (validation, describe, README); the
  // default is the name of the member's initial value.
  template <class E>
  Ref add_enum(std::string name, E Options::*member, std::vector<std::pair<std::string, E>> values,
               std::string doc) {
    if (values.empty()) throw std::invalid_argument("add_enum '" + name + "': no values");
    OptionSpec spec;
    spec.name = name;
    spec.type = OptionType::String;
    spec.doc = std::move(doc);
    const Options defaults{};
    spec.default_text = "?";  // a default outside the list: the conformance suite reports it
    for (const auto& [text, value] : values) {
      spec.allowed.push_back(text);
      if (value == defaults.*member && spec.default_text == "?") spec.default_text = text;
    }
    auto allowed = spec.allowed;
    specs_.push_back(std::move(spec));
    setters_.push_back([member, values = std::move(values), allowed](Options& o, const Value& v) {
      const std::string t = detail::OptionTraits<std::string>::parse(v);
      for (const auto& [text, value] : values)
        if (text == t) {
          o.*member = value;
          return;
        }
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw ConfigException(v.location(), "'" + t + "' is not one of {" + list + "}" + did_you_mean(t, allowed));
    });
    numeric_.push_back([](const Options&) -> std::optional<double> { return std::nullopt; });
    text_.push_back([](const Options&) -> std::optional<std::string> { return std::nullopt; });
    return Ref(this, specs_.size() - 1);
  }

  const std::vector<OptionSpec>& specs() const { return specs_; }

  // Parses `config` (a map, or null for "no options"), appending every problem to `errors`.
  Options parse(const Value& config, std::vector<ConfigError>& errors) const {
    Options out{};
    if (config.is_null()) {
      check_required(config, {}, errors);
      return out;
    }
    if (!config.is_map()) {
      errors.push_back({config.location(), std::string("'config' must be a map of options, got a ") +
                                               Value::kind_name(config.kind())});
      return out;
    }
    std::vector<std::string> names;
    for (const auto& s : specs_) names.push_back(s.name);
    std::vector<bool> seen(specs_.size(), false);
    for (const auto& e : config.entries()) {
      auto it = std::find(names.begin(), names.end(), e.key);
      if (it == names.end()) {
        errors.push_back({e.key_location, "unknown option '" + e.key + "'" + did_you_mean(e.key, names)});
        continue;
      }
      const std::size_t i = static_cast<std::size_t>(it - names.begin());
      seen[i] = true;
      const OptionSpec& spec = specs_[i];
      try {
        setters_[i](out, e.value);
        if (auto n = numeric_[i](out)) {
          if ((spec.min && *n < *spec.min) || (spec.max && *n > *spec.max))
            errors.push_back({e.value.location(), "option '" + spec.name + "': value " +
                                                      quoted(e.value) + " is out of range " +
                                                      option_range_text(spec)});
        }
        if (auto t = text_[i](out); t && !spec.allowed.empty() &&
                                    std::find(spec.allowed.begin(), spec.allowed.end(), *t) ==
                                        spec.allowed.end()) {
          errors.push_back({e.value.location(), "option '" + spec.name + "': '" + *t +
                                                    "' is not one of " + allowed_text(spec) +
                                                    did_you_mean(*t, spec.allowed)});
        }
      } catch (const ConfigException& ex) {
        // A value beyond the C++ type ("-1" for an unsigned option) names the declared range too.
        std::string msg = ex.what();
        if (msg.ends_with("is out of range") && !option_range_text(spec).empty()) msg += " " + option_range_text(spec);
        errors.push_back({ex.where(), "option '" + spec.name + "': " + msg});
      }
    }
    check_required(config, seen, errors);
    return out;
  }

  static std::string allowed_text(const OptionSpec& s) {
    std::string t;
    for (std::size_t i = 0; i < s.allowed.size(); ++i) t += (i ? ", " : "") + s.allowed[i];
    return "{" + t + "}";
  }

 private:
  static std::string quoted(const Value& v) { return v.is_scalar() ? "'" + v.text() + "'" : "?"; }

  void check_required(const Value& config, const std::vector<bool>& seen,
                      std::vector<ConfigError>& errors) const {
    for (std::size_t i = 0; i < specs_.size(); ++i)
      if (specs_[i].required && (seen.empty() || !seen[i]))
        errors.push_back({config.location(), "missing required option '" + specs_[i].name + "'"});
  }

  std::vector<OptionSpec> specs_;
  std::vector<std::function<void(Options&, const Value&)>> setters_;
  std::vector<std::function<std::optional<double>(const Options&)>> numeric_;
  std::vector<std::function<std::optional<std::string>(const Options&)>> text_;
};

}  // namespace flow
