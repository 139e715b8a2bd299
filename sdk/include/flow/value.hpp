// A configuration value tree with source positions. The core builds it from YAML; plugins read
// it through their option schema and never see a YAML library.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flow {

// 1-based line and column, as editors and compilers print them. line == 0 means "unknown".
struct Location {
  std::string file;
  int line = 0;
  int column = 0;

  std::string str() const {
    if (line == 0) return file.empty() ? std::string("<config>") : file;
    return (file.empty() ? std::string("<config>") : file) + ":" + std::to_string(line) + ":" +
           std::to_string(column);
  }
};

// An expected configuration problem: a position and a message. Collected, never fatal alone.
struct ConfigError {
  Location where;
  std::string message;

  std::string str() const { return where.str() + ": error: " + message; }
};

// Thrown by option parsing and plugin factories for a bad value; the loader turns it into a
// ConfigError with the stage id in front.
class ConfigException : public std::runtime_error {
 public:
  ConfigException(Location where, const std::string& message)
      : std::runtime_error(message), where_(std::move(where)) {}
  const Location& where() const { return where_; }

 private:
  Location where_;
};

class Value {
 public:
  enum class Kind { Null, Scalar, List, Map };
  struct Entry;

  Value() = default;
  // Defined after Entry: clang instantiates vector<Entry>'s destructor in an in-class body.
  static Value scalar(std::string text, Location loc = {}, bool quoted = false);
  static Value list(Location loc = {});
  static Value map(Location loc = {});
  static Value null(Location loc = {});

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_scalar() const { return kind_ == Kind::Scalar; }
  bool is_list() const { return kind_ == Kind::List; }
  bool is_map() const { return kind_ == Kind::Map; }
  const Location& location() const { return loc_; }
  void set_location(Location loc) { loc_ = std::move(loc); }

  // Scalar text as written (without quotes); quoted() tells "123" from 123.
  const std::string& text() const { return text_; }
  bool quoted() const { return quoted_; }

  const std::vector<Value>& items() const { return items_; }
  std::vector<Value>& items() { return items_; }
  const std::vector<Entry>& entries() const { return entries_; }
  std::vector<Entry>& entries() { return entries_; }

  // Map lookup; nullptr when absent or when this is not a map.
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Sets (replacing or appending) a map entry.
  void set(const std::string& key, Value v, Location key_loc = {});

  static const char* kind_name(Kind k) {
    switch (k) {
      case Kind::Null: return "null";
      case Kind::Scalar: return "scalar";
      case Kind::List: return "list";
      case Kind::Map: return "map";
    }
    return "?";
  }

 private:
  Kind kind_ = Kind::Null;
  Location loc_;
  std::string text_;
  bool quoted_ = false;
  std::vector<Value> items_;
  std::vector<Entry> entries_;
};

struct Value::Entry {
  std::string key;
  Location key_location;
  Value value;
};

inline Value Value::scalar(std::string text, Location loc, bool quoted) {
  Value v;
  v.kind_ = Kind::Scalar;
  v.text_ = std::move(text);
  v.loc_ = std::move(loc);
  v.quoted_ = quoted;
  return v;
}
inline Value Value::list(Location loc) {
  Value v;
  v.kind_ = Kind::List;
  v.loc_ = std::move(loc);
  return v;
}
inline Value Value::map(Location loc) {
  Value v;
  v.kind_ = Kind::Map;
  v.loc_ = std::move(loc);
  return v;
}
inline Value Value::null(Location loc) {
  Value v;
  v.loc_ = std::move(loc);
  return v;
}
inline const Value* Value::find(std::string_view key) const {
  for (const auto& e : entries_)
    if (e.key == key) return &e.value;
  return nullptr;
}
inline Value* Value::find(std::string_view key) {
  for (auto& e : entries_)
    if (e.key == key) return &e.value;
  return nullptr;
}
inline void Value::set(const std::string& key, Value v, Location key_loc) {
  if (kind_ == Kind::Null) kind_ = Kind::Map;
  for (auto& e : entries_)
    if (e.key == key) {
      e.value = std::move(v);
      return;
    }
  entries_.push_back(Entry{key, std::move(key_loc), std::move(v)});
}

}  // namespace flow
