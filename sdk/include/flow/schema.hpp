// Named, typed fields of a Batch.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flow {

// Timestamps are int64 microseconds since the Unix epoch, UTC (as Arrow's timestamp[us]).
enum class Type { Int64, Float64, Bool, String, Timestamp };

inline const char* type_name(Type t) {
  switch (t) {
    case Type::Int64: return "int64";
    case Type::Float64: return "float64";
    case Type::Bool: return "bool";
    case Type::String: return "string";
    case Type::Timestamp: return "timestamp";
  }
  return "?";
}

struct Field {
  std::string name;
  Type type = Type::String;
  bool operator==(const Field&) const = default;
};

class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}

  const std::vector<Field>& fields() const { return fields_; }
  std::size_t size() const { return fields_.size(); }
  const Field& field(std::size_t i) const { return fields_.at(i); }
  std::optional<std::size_t> index_of(std::string_view name) const {
    for (std::size_t i = 0; i < fields_.size(); ++i)
      if (fields_[i].name == name) return i;
    return std::nullopt;
  }
  bool has(std::string_view name) const { return index_of(name).has_value(); }
  // By name; throws std::invalid_argument naming the field and listing the schema's fields.
  const Field& field(std::string_view name) const { return fields_[require(name)]; }
  bool operator==(const Schema&) const = default;

  // The builder: each returns a new schema and leaves this one alone (schemas are shared
  // between batches and threads, so they never change). Throws std::invalid_argument naming
  // the field when `with` would duplicate a name or `without`/`renamed` find none.
  std::shared_ptr<const Schema> with(Field f) const;
  std::shared_ptr<const Schema> without(std::string_view name) const;
  std::shared_ptr<const Schema> renamed(std::string_view from, std::string to) const;

  // "sensor_id (int64), temperature (float64)": for error messages.
  std::string describe() const {
    std::string s;
    for (const auto& f : fields_) s += (s.empty() ? "" : ", ") + f.name + " (" + type_name(f.type) + ")";
    return s.empty() ? "no fields" : s;
  }

  std::size_t require(std::string_view name) const {
    if (auto i = index_of(name)) return *i;
    throw std::invalid_argument("no field '" + std::string(name) + "' in schema [" + describe() + "]");
  }

 private:
  void check_new_name(const std::string& name) const {
    if (name.empty()) throw std::invalid_argument("a field name must not be empty");
    if (has(name)) throw std::invalid_argument("schema already has a field '" + name + "'");
  }

  std::vector<Field> fields_;
};

using SchemaPtr = std::shared_ptr<const Schema>;

inline SchemaPtr make_schema(std::vector<Field> fields) {
  return std::make_shared<const Schema>(std::move(fields));
}

inline SchemaPtr Schema::with(Field f) const {
  check_new_name(f.name);
  auto fields = fields_;
  fields.push_back(std::move(f));
  return make_schema(std::move(fields));
}

inline SchemaPtr Schema::without(std::string_view name) const {
  auto fields = fields_;
  fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(require(name)));
  return make_schema(std::move(fields));
}

inline SchemaPtr Schema::renamed(std::string_view from, std::string to) const {
  const std::size_t i = require(from);
  if (to != from) check_new_name(to);
  auto fields = fields_;
  fields[i].name = std::move(to);
  return make_schema(std::move(fields));
}

// The well-known schemas that let plugins from different authors connect.

// Raw messages, as produced by kafka-source and sensor-simulator: `value` holds the payload.
// kafka-source fills every column; other sources may leave topic/partition/offset empty/zero.
inline SchemaPtr raw_message_schema() {
  static const SchemaPtr s = make_schema({{"key", Type::String},
                                          {"value", Type::String},
                                          {"topic", Type::String},
                                          {"partition", Type::Int64},
                                          {"offset", Type::Int64},
                                          {"timestamp", Type::Timestamp}});
  return s;
}

// Validated sensor readings: what json-validator emits for the schema of pipelines/iot-local.yaml
// and examples/, and the shape the conformance suite feeds transforms after raw messages.
inline SchemaPtr sensor_row_schema() {
  static const SchemaPtr s = make_schema({{"sensor_id", Type::Int64},
                                          {"temperature", Type::Float64},
                                          {"humidity", Type::Float64},
                                          {"timestamp", Type::Timestamp}});
  return s;
}

// Dead letters: records a stage rejected, with why and where they came from (json-validator's and
// file-source's output `invalid`), so one sink takes the rejects of every stage.
inline SchemaPtr dead_letter_schema() {
  static const SchemaPtr s = make_schema({{"raw", Type::String},
                                          {"reason", Type::String},
                                          {"message", Type::String},
                                          {"source", Type::String},
                                          {"partition", Type::Int64},
                                          {"offset", Type::Int64}});
  return s;
}

// File events, as emitted by file sinks (csv-window-sink) once a file is durable, and consumed
// by merge-archive. `path` is absolute; window bounds are timestamps.
inline SchemaPtr file_event_schema() {
  static const SchemaPtr s = make_schema({{"path", Type::String},
                                          {"rows", Type::Int64},
                                          {"bytes", Type::Int64},
                                          {"window_start", Type::Timestamp},
                                          {"window_end", Type::Timestamp},
                                          {"header", Type::String}});
  return s;
}

}  // namespace flow
