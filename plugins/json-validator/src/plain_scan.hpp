// The cheapest tier of json-validator's fast path: one forward pass over a message's bytes that
// accepts only the plainest form of a valid record, the form producers write: one object whose
// keys are all schema keys, written without escapes, each once; strings of printable ASCII
// without escapes; numbers of up to 15 significant digits without an exponent; true, false and
// null. It needs no simdjson stage 1 (on a small message that costs more than the walk itself),
// so a record of the IoT schema costs ~250 instructions here against ~1100 on the on-demand
// walker (fast_walk.hpp). Anything else is "not sure", never "invalid": the walker, and then
// simdjson's DOM parser (which also says why a record is rejected), decide.
//
// Why an accepted message is one the DOM parser accepts with the same values: every byte is
// consumed by the JSON grammar (so the text is one JSON object); a string holds only bytes
// 0x20-0x7f (so its UTF-8 is valid and it needs no unescaping); an integer has at most 18 digits
// and is not "-0" (the DOM reads int64 alike); a float's digits make a mantissa below 10^15 with
// at most 14 decimals, so mantissa / 10^decimals is exact-then-rounded once (Clinger's fast path),
// the value any correctly rounding parser, simdjson's included, gives. tests/fast_path_test.cpp
// compares it with the DOM parser on edge cases and mutations; tests/fuzz/fuzz_json_record too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "fast_walk.hpp"

namespace json_validator::plain {

// Bytes readable past a message's end that scan() needs (the caller's padding: SIMDJSON_PADDING).
inline constexpr std::size_t kReadPast = 32;

namespace detail {

inline bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Every JSON space is <= ' ': one compare for the usual byte that is not one.
inline const char* skip_space(const char* p, const char* end) {
  while (p < end && static_cast<unsigned char>(*p) <= ' ' && is_space(*p)) ++p;
  return p;
}

inline bool is_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// The raw key text at p (after its opening quote) is the key's name, then the closing quote.
inline bool key_at(const char* p, const char* end, const fast::Key& key) {
  const std::size_t m = key.name.size();
  if (!key.ascii || static_cast<std::size_t>(end - p) <= m) return false;
#if defined(__SSE2__)
  if (key.quoted_mask && key.quoted_mask <= 0xffff) {  // name + quote in 16 bytes: one load
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i x = _mm_load_si128(reinterpret_cast<const __m128i*>(key.quoted));
    const auto equal = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(a, x)));
    return (equal & key.quoted_mask) == key.quoted_mask;
  }
  if (key.quoted_mask) {  // name + quote in 32 bytes: two loads (kReadPast readable after end)
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    const __m128i x = _mm_load_si128(reinterpret_cast<const __m128i*>(key.quoted));
    const __m128i y = _mm_load_si128(reinterpret_cast<const __m128i*>(key.quoted + 16));
    const auto equal = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(a, x))) |
                       static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(b, y))) << 16;
    return (equal & key.quoted_mask) == key.quoted_mask;
  }
#endif
  return std::memcmp(p, key.name.data(), m) == 0 && p[m] == '"';
}

// A string's text from p (after its opening quote) to its closing quote, which must lie before
// end; false on a backslash, a control character or a byte >= 0x80 first.
inline bool string_at(const char*& p, const char* end, const char*& text, std::size_t& size) {
  const char* q = p;
#if defined(__SSE2__)
  // 16 bytes at a time: q < end, and kReadPast bytes are readable after end. A signed compare
  // with 0x20 catches both control characters and bytes >= 0x80.
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
  for (; q < end; q += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    const auto quotes = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)));
    const auto bad = static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, backslash), _mm_cmplt_epi8(v, space))));
    const uint32_t either = quotes | bad;
    if (!either) continue;
    const char* at = q + __builtin_ctz(either);
    if (at >= end || (either & (0u - either) & bad)) return false;
    text = p;
    size = static_cast<std::size_t>(at - p);
    p = at + 1;
    return true;
  }
  return false;
#else
  for (; q < end; ++q) {
    const auto c = static_cast<unsigned char>(*q);
    if (c == '"') {
      text = p;
      size = static_cast<std::size_t>(q - p);
      p = q + 1;
      return true;
    }
    if (c == '\\' || c < 0x20 || c >= 0x80) return false;
  }
  return false;
#endif
}

// '-'? ('0' | [1-9][0-9]*): the digits' value and count (up to 18 digits, else false).
inline bool digits_at(const char*& p, const char* end, bool& negative, uint64_t& value, std::size_t& count) {
  negative = p < end && *p == '-';
  if (negative) ++p;
  const char* start = p;
  uint64_t v = 0;
  while (p < end && is_digit(*p)) v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  count = static_cast<std::size_t>(p - start);
  if (count == 0 || count > 18 || (*start == '0' && count > 1)) return false;
  value = v;
  return true;
}

inline bool int_at(const char*& p, const char* end, int64_t& out) {
  bool negative;
  uint64_t v;
  std::size_t n;
  if (!digits_at(p, end, negative, v, n)) return false;
  if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return false;
  if (negative && v == 0) return false;  // "-0"
  out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

inline bool float_at(const char*& p, const char* end, double& out) {
  static constexpr double kPow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  bool negative;
  uint64_t v;
  std::size_t n;
  if (!digits_at(p, end, negative, v, n)) return false;
  std::size_t decimals = 0;
  if (p < end && *p == '.') {
    const char* start = ++p;
    while (p < end && is_digit(*p) && p - start < 16) v = v * 10 + static_cast<uint64_t>(*p++ - '0');
    decimals = static_cast<std::size_t>(p - start);
    if (decimals == 0 || (p < end && is_digit(*p))) return false;
  } else if (negative && v == 0) {
    return false;  // "-0": the DOM parser reads the integer 0, the on-demand one -0.0
  }
  if (p < end && (*p == 'e' || *p == 'E')) return false;
  if (n + decimals > 15) return false;  // mantissa < 10^15 < 2^53: exact as a double
  double d = static_cast<double>(v);
  if (decimals) d /= kPow10[decimals];
  out = negative ? -d : d;
  return true;
}

inline bool word_at(const char*& p, const char* end, const char* word, std::size_t n) {
  if (static_cast<std::size_t>(end - p) < n || std::memcmp(p, word, n) != 0) return false;
  p += n;
  return true;
}

}  // namespace detail

// True when [s, s + len) is a record of the plainest form (above) whose keys are in `keys` (at
// most 64), each value null or of its key's kind within the key's bounds (Float also takes
// integers), and every required key has a value: out[k] then holds key k's value (strings and
// timestamps as their text in the message). False means "not sure", never "invalid". At least
// kReadPast bytes must be readable after s + len (their contents do not matter).
inline bool scan(const char* s, std::size_t len, const fast::Key* keys, std::size_t n, Slot* out) {
  using namespace detail;
  if (n == 0 || n > 64) return false;
  const char* const end = s + len;
  const char* p = skip_space(s, end);
  if (p == end || *p != '{') return false;
  p = skip_space(p + 1, end);
  uint64_t seen = 0;
  std::size_t hint = 0;  // producers usually write the keys in schema order
  if (p < end && *p == '}') {
    ++p;
  } else {
    for (;;) {
      if (p == end || *p != '"') return false;
      ++p;
      std::size_t k = hint < n && key_at(p, end, keys[hint]) ? hint : n;
      for (std::size_t i = 0; k == n && i < n; ++i)
        if (key_at(p, end, keys[i])) k = i;
      if (k == n) return false;  // not a schema key (or escaped): the walker decides
      const uint64_t bit = uint64_t{1} << k;
      if (seen & bit) return false;  // duplicate
      seen |= bit;
      hint = k + 1;
      const fast::Key& key = keys[k];
      p += key.name.size() + 1;
      if (p < end && *p != ':') p = skip_space(p, end);  // spaces are rare: tested for after
      if (p == end || *p != ':') return false;
      if (++p < end && static_cast<unsigned char>(*p) <= ' ') p = skip_space(p, end);
      if (p == end) return false;
      Slot& o = out[k];
      if (*p == 'n') {
        if (key.required || !word_at(p, end, "null", 4)) return false;
        o.present = false;
      } else {
        switch (key.kind) {
          case fast::Kind::Int:
            if (!int_at(p, end, o.i) || o.i < key.min_int || o.i > key.max_int) return false;
            break;
          case fast::Kind::Float:
            if (!float_at(p, end, o.d) || !(o.d >= key.min && o.d <= key.max)) return false;
            break;
          case fast::Kind::String:
          case fast::Kind::Timestamp: {
            const char* text;
            std::size_t size;
            if (*p != '"' || !string_at(++p, end, text, size)) return false;
            o.s = std::string_view(text, size);
            break;
          }
          case fast::Kind::Bool:
            if (*p == 't' && word_at(p, end, "true", 4)) o.b = true;
            else if (*p == 'f' && word_at(p, end, "false", 5)) o.b = false;
            else return false;
            break;
        }
        o.present = true;
      }
      if (p < end && *p != ',') p = skip_space(p, end);
      if (p == end) return false;
      if (*p == '}') {
        ++p;
        break;
      }
      if (*p != ',') return false;
      if (++p < end && static_cast<unsigned char>(*p) <= ' ') p = skip_space(p, end);
    }
  }
  if (skip_space(p, end) != end) return false;
  // Keys not seen: absent, unless required (the DOM parser explains that).
  const uint64_t all = n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
  for (uint64_t missing = all & ~seen; missing; missing &= missing - 1) {
    const auto k = static_cast<std::size_t>(__builtin_ctzll(missing));
    if (keys[k].required) return false;
    out[k].present = false;
  }
  return true;
}

}  // namespace json_validator::plain
