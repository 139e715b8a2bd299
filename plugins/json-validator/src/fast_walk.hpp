// The fast path of RecordValidator: one pass of simdjson's on-demand API over a message, which
// either proves the message is a well-formed object of known shape and hands over its values, or
// gives up ("not sure"), and the caller decides with the DOM parser (which also says why a record
// is rejected). Only plain types cross this interface: its implementation is compiled for AVX2
// (fast_walk_haswell.cpp), and the rest of the plugin for any x86-64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>

namespace json_validator {

// One field's value of the last valid record, as the fast path and the DOM path leave it.
struct Slot {
  bool present = false;  // false: absent or null
  int64_t i = 0;         // int, timestamp (micros)
  double d = 0;
  bool b = false;
  std::string_view s;  // string, timestamp text: valid until the next record
};

namespace fast {

enum class Kind : uint8_t { Int, Float, String, Bool, Timestamp };  // FieldType's order

// 64-byte aligned, and so 128 bytes: a key's address is a shift, and its text one aligned load.
struct alignas(64) Key {
  // The raw text of a plain name of up to 31 bytes followed by its closing quote, and a bit per
  // byte of it: the raw key text (after its opening quote) is matched with one 32-byte compare
  // (the parser's padding makes the load safe). quoted_mask 0: compared by name instead.
  char quoted[32] = {};
  uint32_t quoted_mask = 0;
  Kind kind = Kind::String;
  bool plain = false;  // no '"', '\\' or control character: comparable with the raw key text
  bool ascii = false;  // plain and only bytes < 0x80: plain::scan() matches it without UTF-8 checks
  bool required = true;
  std::string_view name;
  // The field's bounds (without min or max: the type's whole range), checked while walking.
  int64_t min_int = std::numeric_limits<int64_t>::min(), max_int = std::numeric_limits<int64_t>::max();
  double min = -std::numeric_limits<double>::infinity(), max = std::numeric_limits<double>::infinity();

  static Key make(std::string_view name, Kind kind, bool plain) {
    Key k;
    k.name = name;
    k.kind = kind;
    k.plain = plain;
    k.ascii = plain;
    for (const char c : name) k.ascii = k.ascii && static_cast<unsigned char>(c) < 0x80;
    if (plain && name.size() < sizeof k.quoted) {
      for (std::size_t i = 0; i < name.size(); ++i) k.quoted[i] = name[i];
      k.quoted[name.size()] = '"';
      k.quoted_mask = static_cast<uint32_t>((uint64_t{1} << (name.size() + 1)) - 1);
    }
    return k;
  }
};

class Walker {
 public:
  // Whether this CPU runs the walker (simdjson's haswell kernel is supported here).
  static bool supported();

  Walker();
  ~Walker();
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  // True when `buf` (len bytes, `capacity` >= len + SIMDJSON_PADDING readable) is exactly one
  // JSON object that simdjson's DOM parser accepts, without duplicate keys, whose keys are in
  // `keys` (or, with ignore_extra, others with scalar values), each value null or a scalar
  // of its key's kind (Float also takes integers, and a float is finite) within the key's
  // bounds, and every required key has a value. out[k] then holds key k's value (strings and
  // timestamps as text, unescaped). False means "not sure", never "invalid".
  bool walk(const char* buf, std::size_t len, std::size_t capacity, const Key* keys, std::size_t n, bool ignore_extra,
            Slot* out);

  // Rows [begin, end) of a string column, whose texts lie back to back (row r's from
  // base + offsets[r] to base + offsets[r + 1]; SIMDJSON_PADDING bytes readable after the last),
  // in one simdjson stage-1 pass (a document stream) instead of one per row, which costs more
  // than walking these small messages. For each row in order, row_done(ctx, r, walked): walked
  // when walk() would accept the row's text alone (out then holds its values), else the caller
  // must judge the row alone. row_done returns false to stop. Stops at the first row whose text
  // is not one document of the stream: returns the first row not given to row_done (end when
  // all were). Rows must not be empty, and all of them at most kStreamBytes (else none is done).
  static constexpr std::size_t kStreamBytes = 32 * 1024;
  using RowFn = bool (*)(void* ctx, std::size_t row, bool walked);
  std::size_t walk_rows(const char* base, const uint32_t* offsets, std::size_t begin, std::size_t end, const Key* keys,
                        std::size_t n, bool ignore_extra, Slot* out, RowFn row_done, void* ctx);

 private:
  uint64_t* late_keys(std::size_t n);  // null for schemas of 64 keys or fewer
  uint64_t* late_keys_slow(std::size_t n);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fast
}  // namespace json_validator
