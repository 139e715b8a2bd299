// Named, typed fields of a Batch.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
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
  bool operator==(const Schema&) const = default;

 private:
  std::vector<Field> fields_;
};

using SchemaPtr = std::shared_ptr<const Schema>;

inline SchemaPtr make_schema(std::vector<Field> fields) {
  return std::make_shared<const Schema>(std::move(fields));
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
