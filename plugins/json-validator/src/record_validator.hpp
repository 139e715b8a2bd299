// The validation core of json-validator, independent of batches: a record schema read from the
// stage's `schema` option, and a RecordValidator that checks one message against it. A valid
// message is accepted by one plain pass over its bytes (plain_scan.hpp) when it has the form
// producers write, else by one on-demand pass (fast_walk.hpp) when the CPU has AVX2; anything
// else is decided, and explained, by simdjson's DOM parser. Tests and benchmarks use it directly.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "flow/schema.hpp"
#include "fast_walk.hpp"
#include "flow/value.hpp"
#include "plain_scan.hpp"
#include "timestamp_format.hpp"

namespace json_validator {

// Why a record was rejected. The names (kReasonNames) are the `reason` label of the
// invalid_records counter and the `reason` column of dead letters: keep them stable.
enum class Reason : uint8_t {
  Empty,
  Oversize,
  MalformedJson,
  InvalidUtf8,
  NotAnObject,
  DuplicateKey,
  MissingField,
  UnknownField,
  WrongType,
  NestedValue,
  OutOfRange,
  NotFinite,
  NotAllowed,
  BadTimestamp,
};
inline constexpr std::size_t kReasonCount = 14;
inline constexpr std::array<std::string_view, kReasonCount> kReasonNames = {
    "empty",     "oversize",     "malformed_json", "invalid_utf8", "not_an_object",
    "duplicate_key", "missing_field", "unknown_field", "wrong_type", "nested_value",
    "out_of_range", "not_finite",  "not_allowed",  "bad_timestamp"};
inline std::string_view reason_name(Reason r) { return kReasonNames[static_cast<std::size_t>(r)]; }

enum class FieldType : uint8_t { Int, Float, String, Bool, Timestamp };
inline constexpr std::array<std::string_view, 5> kFieldTypeNames = {"int", "float", "string", "bool", "timestamp"};

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::String;
  bool required = true;
  std::optional<double> min, max;            // float
  std::optional<int64_t> min_int, max_int;   // int
  std::vector<std::string> allowed_strings;  // string
  std::vector<int64_t> allowed_ints;         // int
  std::vector<double> allowed_floats;        // float
  std::vector<bool> allowed_bools;           // bool
  TimestampFormat format;                    // timestamp
  flow::Location where;

  bool has_allowed() const {
    return !allowed_strings.empty() || !allowed_ints.empty() || !allowed_floats.empty() || !allowed_bools.empty();
  }
};

// Reads the `schema` option: a map, in order, of field name -> type name or spec map. Every
// problem goes to `errors` with the position of the offending node.
std::vector<FieldSpec> parse_schema(const flow::Value& schema, std::vector<flow::ConfigError>& errors);

// The typed output schema (int -> Int64, float -> Float64, ..., timestamp -> Timestamp).
flow::SchemaPtr output_schema(const std::vector<FieldSpec>& fields);

class RecordValidator {
 public:
  RecordValidator(std::vector<FieldSpec> fields, bool reject_extra_fields, std::size_t max_message_bytes);

  // True when `raw` is valid: its values are then in slots(). Else reason() and message() say why.
  // `readable`: how many bytes from raw.data() may be read (raw inside a larger buffer); with
  // SIMDJSON_PADDING to spare, the message is parsed where it lies instead of being copied.
  // The fast path is inlined into callers (a loop over a batch's rows).
  bool validate(std::string_view raw, std::size_t readable = 0);

  // What validate_rows() says of a row: valid (slots() hold its values) or not (reason() and
  // message() say why), as validate() of its text would. Returns false to stop.
  using RowVerdict = bool (*)(void* ctx, std::size_t row, bool valid);
  // Validates rows [begin, end) of a string column (row r's text from chars + offsets[r] to
  // chars + offsets[r + 1]; `size` bytes of chars readable) in order, as validate() each: with
  // the fast path, windows of small messages share one stage-1 pass (fast::Walker::walk_rows).
  // False when on_row stopped it.
  bool validate_rows(const char* chars, std::size_t size, const uint32_t* offsets, std::size_t begin, std::size_t end,
                     RowVerdict on_row, void* ctx);

  const std::vector<FieldSpec>& fields() const { return fields_; }
  const std::vector<Slot>& slots() const { return slots_; }
  Reason reason() const { return reason_; }
  const std::string& message() const { return message_; }

  // Tests: turn the fast paths (the plain scan and the on-demand walk) off (DOM only) or on
  // (the walk when the CPU has it); true if the walk is on.
  bool use_fast_path(bool on);
  // Tests: turn the plain scan alone off or on (so the walk is tested on every message).
  void use_plain_scan(bool on) { plain_ = on; }
  // How many messages the fast paths accepted (tests: they are really used).
  uint64_t fast_accepted() const { return fast_accepted_; }
  // How many of those the plain scan accepted.
  uint64_t plain_accepted() const { return plain_accepted_; }
  // How many of those validate_rows() accepted from a document stream (tests: it is used).
  uint64_t stream_accepted() const { return stream_accepted_; }

 private:
  bool validate_rest(std::string_view raw, bool tried_in_place);  // all but the fast path in place
  bool validate_dom(std::string_view raw);  // raw is in buffer_
  void copy_to_buffer(std::string_view raw);
  bool accept_fast(const char* buf, std::size_t len, std::size_t capacity);
  bool accept_plain(const char* buf, std::size_t len);
  bool accept_walked();
  bool timestamp(std::size_t f, std::string_view s, int64_t& micros);
  bool parse_timestamp(std::size_t f, std::size_t at, std::string_view s, int64_t& micros);
  bool fail(Reason r);
  bool check_value(std::size_t f, simdjson::dom::element value);
  bool classify_parse_error(std::string_view raw, simdjson::error_code code);
  bool seen_unknown_key(std::string_view key);

  // validate_rows(): at most this many rows share a stream; fewer than kMinStreamRows are
  // validated alone. A row the stream cannot vouch for costs at most a window's stage 1 again.
  static constexpr std::size_t kStreamRows = 128, kMinStreamRows = 4;

  std::vector<FieldSpec> fields_;
  bool reject_extra_;
  std::size_t max_bytes_;
  simdjson::dom::parser parser_;
  std::unique_ptr<fast::Walker> walker_;  // null when the CPU cannot run it
  bool plain_ = true;                      // plain::scan() first
  std::vector<fast::Key> keys_;
  // Fields with work left after the walk: timestamps (parsed) and `allowed` lists (checked).
  std::vector<std::size_t> after_walk_;
  uint64_t fast_accepted_ = 0, stream_accepted_ = 0, plain_accepted_ = 0;
  std::unique_ptr<char[]> buffer_;  // the message plus simdjson's padding
  std::size_t buffer_capacity_ = 0;
  std::vector<Slot> slots_;
  std::vector<uint64_t> seen_;  // generation at which a field was last seen: no per-record reset
  uint64_t generation_ = 0;
  // A timestamp text parsed recently, and its value. Texts of up to kTimeText bytes are kept
  // (longer ones are parsed each time): a fixed array is compared without a call.
  static constexpr std::size_t kTimeText = 40;
  struct LastTime {
    std::size_t size = kTimeText + 1;  // empty
    int64_t micros = 0;
    char text[kTimeText];
  };
  // Per timestamp field, kTimeCache texts, placed by their last two characters: a batch from
  // many Kafka partitions mixes several seconds, which one remembered text would keep missing.
  static constexpr std::size_t kTimeCache = 8;
  std::vector<std::array<LastTime, kTimeCache>> last_time_;
  std::vector<std::string_view> unknown_keys_;
  std::unordered_set<std::string_view> unknown_set_;
  Reason reason_ = Reason::MalformedJson;
  std::string message_;
};

namespace detail {

// An `allowed` list holds the value; an empty list allows every value.
template <class T, class V>
bool allows(const std::vector<T>& allowed, const V& v) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

// Equality of n bytes without a call: 8-byte words, the last one overlapping.
inline bool same_bytes(const char* a, const char* b, std::size_t n) {
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
  uint64_t u, v;
  for (std::size_t i = 0; i + 8 < n; i += 8) {
    std::memcpy(&u, a + i, 8);
    std::memcpy(&v, b + i, 8);
    if (u != v) return false;
  }
  std::memcpy(&u, a + n - 8, 8);
  std::memcpy(&v, b + n - 8, 8);
  return u == v;
}

}  // namespace detail

inline bool RecordValidator::validate(std::string_view raw, std::size_t readable) {
  // The fast path reads the padding but never depends on its bytes (the JSON ends at the
  // object's last brace; stage 1 pads the last block itself): a message with enough readable
  // bytes after it is parsed where it lies.
  static_assert(simdjson::SIMDJSON_PADDING >= plain::kReadPast);
  if ((walker_ || plain_) && !raw.empty() && raw.size() <= max_bytes_ &&
      readable >= raw.size() + simdjson::SIMDJSON_PADDING) {
    if (accept_plain(raw.data(), raw.size()) || (walker_ && accept_fast(raw.data(), raw.size(), readable))) {
      message_.clear();
      return true;
    }
    return validate_rest(raw, true);
  }
  return validate_rest(raw, false);
}

// The rules of check_value() for the values of one on-demand pass, which writes the slots and
// checks types, bounds and required fields itself; false = not accepted here (validate_dom()
// then decides and says why).
inline bool RecordValidator::accept_fast(const char* buf, std::size_t len, std::size_t capacity) {
  return walker_->walk(buf, len, capacity, keys_.data(), keys_.size(), !reject_extra_, slots_.data()) &&
         accept_walked();
}

// The same for one plain scan (plain_scan.hpp); `len` bytes and plain::kReadPast readable after.
inline bool RecordValidator::accept_plain(const char* buf, std::size_t len) {
  if (!plain_ || !plain::scan(buf, len, keys_.data(), keys_.size(), slots_.data()) || !accept_walked()) return false;
  ++plain_accepted_;
  return true;
}

// The rest of the rules (allowed lists, timestamps) for the values a walk left in the slots.
inline bool RecordValidator::accept_walked() {
  Slot* slots = slots_.data();
  for (const std::size_t f : after_walk_) {
    Slot& slot = slots[f];
    if (!slot.present) continue;
    const FieldSpec& spec = fields_[f];
    switch (spec.type) {
      case FieldType::Int:
        if (!detail::allows(spec.allowed_ints, slot.i)) return false;
        break;
      case FieldType::Float:
        if (!detail::allows(spec.allowed_floats, slot.d)) return false;
        break;
      case FieldType::String:
        if (!detail::allows(spec.allowed_strings, slot.s)) return false;
        break;
      case FieldType::Bool:
        if (!detail::allows(spec.allowed_bools, slot.b)) return false;
        break;
      case FieldType::Timestamp:
        if (!timestamp(f, slot.s, slot.i)) return false;
        break;
    }
  }
  ++fast_accepted_;
  return true;
}

// A stream's records usually share their second: reuse a recent text's value.
inline bool RecordValidator::timestamp(std::size_t f, std::string_view s, int64_t& micros) {
  const std::size_t n = s.size();
  const std::size_t at =
      n < 2 ? 0 : (static_cast<unsigned char>(s[n - 1]) + 3u * static_cast<unsigned char>(s[n - 2])) % kTimeCache;
  const LastTime& last = last_time_[f][at];
  if (last.size == n && detail::same_bytes(last.text, s.data(), n)) {
    micros = last.micros;
    return true;
  }
  return parse_timestamp(f, at, s, micros);
}

}  // namespace json_validator
