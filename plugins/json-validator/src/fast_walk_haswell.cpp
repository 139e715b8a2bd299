// RecordValidator's fast path (fast_walk.hpp), compiled for AVX2 (CMakeLists.txt): simdjson
// 3.0.1 builds its on-demand API only for the kernel the compiler targets, with no run-time
// dispatch. Callers check Walker::supported() first. Keep this file free of other project
// headers, so no inline function compiled here for AVX2 is shared with the generic code.
#include <immintrin.h>
#include <simdjson.h>

#include <utility>
#include <vector>

#include "fast_walk.hpp"

#if defined(__x86_64__) && !SIMDJSON_CAN_ALWAYS_RUN_HASWELL
#error "fast_walk_haswell.cpp must be compiled for AVX2 (-mavx2 -mbmi -mpclmul -mlzcnt)"
#endif

namespace json_validator::fast {

#if !SIMDJSON_CAN_ALWAYS_RUN_HASWELL
// Other architectures: never supported(), so never called; the DOM parser does all the work.
struct Walker::Impl {};
Walker::Walker() = default;
Walker::~Walker() = default;
bool Walker::walk(const char*, std::size_t, std::size_t, const Key*, std::size_t, bool, Slot*) { return false; }
std::size_t Walker::walk_rows(const char*, const uint32_t*, std::size_t begin, std::size_t, const Key*, std::size_t,
                              bool, Slot*, RowFn, void*) {
  return begin;
}
#else

namespace od = simdjson::haswell::ondemand;

struct Walker::Impl {
  od::parser parser;
  // walk_rows(): a parser of its own, whose capacity stays kStreamBytes (a parser given
  // another capacity reallocates its buffers).
  od::parser stream_parser;
  // Keys 64 and on: the walk at which each was last seen (the first 64 use a bit mask).
  std::vector<uint64_t> seen;
  uint64_t walks = 0;
};

Walker::Walker() : impl_(std::make_unique<Impl>()) {}
Walker::~Walker() = default;

namespace {

// Equality of short strings without a call to memcmp.
inline bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  const char *x = a.data(), *y = b.data();
  std::size_t n = a.size();
  for (; n >= 8; x += 8, y += 8, n -= 8) {
    uint64_t u, v;
    __builtin_memcpy(&u, x, 8);
    __builtin_memcpy(&v, y, 8);
    if (u != v) return false;
  }
  for (; n > 0; --n)
    if (*x++ != *y++) return false;
  return true;
}

// The raw key text (after its opening quote) is `name` exactly: the bytes match and the next one
// is the closing quote (a plain name has no backslash, so that quote is not escaped).
inline bool raw_is(const char* raw, const Key& key) {
  if (key.quoted_mask) {  // set only for plain names
    const __m256i text = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(raw));
    const __m256i want = _mm256_load_si256(reinterpret_cast<const __m256i*>(key.quoted));
    const auto equal = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(text, want)));
    return (equal & key.quoted_mask) == key.quoted_mask;
  }
  const std::size_t n = key.name.size();
  return key.plain && same(std::string_view(raw, n), key.name) && raw[n] == '"';
}

// A string value, consumed: its text as it lies when it has no escape (stage 1 has already
// checked its bytes and found its closing quote), else unescaped by get_string().
inline bool string_value(od::value& v, std::string_view& out) {
  od::raw_json_string raw;
  if (v.get_raw_json_string().get(raw)) return false;  // not a string (and not consumed)
  const char* start = raw.raw();
  const __m256i quote = _mm256_set1_epi8('"'), backslash = _mm256_set1_epi8('\\');
  // 32 bytes at a time up to the closing quote, which lies inside the message: the loads end
  // within the parser's padding.
  for (const char* p = start;; p += 32) {
    const __m256i text = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const auto quotes = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(text, quote)));
    const auto escapes = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(text, backslash)));
    const uint32_t either = quotes | escapes;
    if (!either) continue;
    if (either & (0u - either) & escapes) return !v.get_string().get(out);  // a backslash first
    out = std::string_view(start, static_cast<std::size_t>(p - start) + static_cast<std::size_t>(__builtin_ctz(either)));
    return true;
  }
}

// Integral number tokens the DOM parser reads differently from on-demand's get_double (or
// refuses): "-0" (DOM: the integer 0) and more than 18 digits (DOM: uint64 or an error).
inline bool awkward_integer(std::string_view token) {
  std::size_t p = token.size() && token[0] == '-' ? 1 : 0;
  const std::size_t start = p;
  while (p < token.size() && token[p] >= '0' && token[p] <= '9') ++p;
  if (p < token.size() && (token[p] == '.' || token[p] == 'e' || token[p] == 'E')) return false;
  return p - start > 18 || (start == 1 && p - start == 1 && token[1] == '0');
}

// An ignored key's value: a scalar the DOM parser would also accept.
inline bool scalar_ok(od::value& v, od::json_type t) {
  switch (t) {
    case od::json_type::string: {
      std::string_view s;
      return !v.get_string().get(s);
    }
    case od::json_type::number: {
      if (awkward_integer(v.raw_json_token())) return false;
      od::number n;
      return !v.get_number().get(n);
    }
    case od::json_type::boolean: {
      bool b;
      return !v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool null = false;
      return !v.is_null().get(null) && null;
    }
    default: return false;  // arrays and objects: the DOM parser checks them
  }
}

}  // namespace

namespace {

// The fields of one object into out (see Walker::walk()); false = not sure. seen_late: a word
// per key for keys 64 and on (null for 64 keys or fewer), walk_id this walk's number.
inline bool walk_fields(od::object& object, const Key* keys, std::size_t n, bool ignore_extra, Slot* out,
                        uint64_t* seen_late, uint64_t walk_id) {
  // Keys seen: while they come in schema order from the first, only how many (the usual
  // case); else a bit each for the first 64, a walk number beyond (no per-record reset).
  constexpr std::size_t kOutOfOrder = ~std::size_t{0};
  std::size_t in_order = 0;
  uint64_t seen = 0;
  constexpr std::size_t kMaxUnknown = 16;
  struct Name {  // trivial, so the array costs nothing until used (a string_view array is zeroed)
    const char* data;
    std::size_t size;
  };
  Name unknown[kMaxUnknown];
  std::size_t n_unknown = 0;
  std::size_t hint = 0;  // messages usually list fields in schema order
  for (auto result : object) {
    od::field field;
    if (std::move(result).get(field)) return false;
    // The raw key text first (no copy); a key with escapes is unescaped and compared again.
    const char* raw = field.key().raw();
    std::size_t k = n;
    if (hint < n && raw_is(raw, keys[hint])) {
      k = hint;
    } else {
      for (std::size_t i = 0; i < n; ++i)
        if (raw_is(raw, keys[i])) {
          k = i;
          break;
        }
    }
    std::string_view key;
    if (k == n) {
      if (field.unescaped_key().get(key)) return false;
      for (std::size_t i = 0; i < n; ++i)
        if (same(keys[i].name, key)) {
          k = i;
          break;
        }
    }
    od::value v = field.value();
    if (k == n) {
      od::json_type t;
      if (v.type().get(t)) return false;
      if (!ignore_extra || n_unknown == kMaxUnknown) return false;
      for (std::size_t i = 0; i < n_unknown; ++i)
        if (same(std::string_view(unknown[i].data, unknown[i].size), key)) return false;
      unknown[n_unknown++] = Name{key.data(), key.size()};
      if (!scalar_ok(v, t)) return false;
      continue;
    }
    if (k == in_order && k < 64) {
      ++in_order;
    } else {
      if (in_order != kOutOfOrder) {  // keys 0 .. in_order - 1 so far, now the bit mask
        seen = in_order == 0 ? 0 : ~uint64_t{0} >> (64 - in_order);
        in_order = kOutOfOrder;
      }
      if (k < 64) {
        const uint64_t bit = uint64_t{1} << k;
        if (seen & bit) return false;  // duplicate key
        seen |= bit;
      } else {
        if (seen_late[k] == walk_id) return false;
        seen_late[k] = walk_id;
      }
    }
    hint = k + 1;
    const Key& spec = keys[k];
    Slot& o = out[k];
    // The getter of the key's kind first: a value of another type fails it without being
    // consumed, and is then accepted only as a null.
    bool got = false;
    switch (spec.kind) {
      case Kind::Int:
        got = !v.get_int64().get(o.i);
        if (got && (o.i < spec.min_int || o.i > spec.max_int)) return false;
        break;
      case Kind::Float: {
        got = !v.get_double().get(o.d);
        if (!got) break;
        // The token (still readable once consumed) is scanned only when the value is a whole
        // number, the only case where the two parsers can differ.
        if (__builtin_trunc(o.d) == o.d && awkward_integer(v.raw_json_token())) return false;
        if (!(o.d >= spec.min && o.d <= spec.max) || !__builtin_isfinite(o.d)) return false;
        break;
      }
      case Kind::String:
      case Kind::Timestamp: got = string_value(v, o.s); break;
      case Kind::Bool: got = !v.get_bool().get(o.b); break;
      default: __builtin_unreachable();  // Key::make takes only the five kinds
    }
    if (!got) {
      bool null = false;
      if (v.is_null().get(null) || !null || spec.required) return false;
      o.present = false;
      continue;
    }
    o.present = true;
  }
  // Keys not seen: absent (a required one is the DOM parser's to explain).
  if (in_order != kOutOfOrder) {
    if (in_order == n) return true;  // every key, in order
    seen = in_order == 0 ? 0 : ~uint64_t{0} >> (64 - in_order);
  }
  const uint64_t all = n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
  for (uint64_t missing = all & ~seen; missing; missing &= missing - 1) {
    const std::size_t k = static_cast<std::size_t>(__builtin_ctzll(missing));
    if (keys[k].required) return false;
    out[k].present = false;
  }
  for (std::size_t k = 64; k < n; ++k)
    if (seen_late[k] != walk_id) {
      if (keys[k].required) return false;
      out[k].present = false;
    }
  return true;
}

}  // namespace

// Keys 64 and on: the walk at which each was last seen (null with 64 keys or fewer).
inline uint64_t* Walker::late_keys(std::size_t n) {
  if (n <= 64) return nullptr;
  return late_keys_slow(n);
}

uint64_t* Walker::late_keys_slow(std::size_t n) {
  if (impl_->seen.size() < n) impl_->seen.resize(n, 0);
  return impl_->seen.data();
}

bool Walker::walk(const char* buf, std::size_t len, std::size_t capacity, const Key* keys, std::size_t n,
                  bool ignore_extra, Slot* out) {
  od::document doc;
  if (impl_->parser.iterate(buf, len, capacity).get(doc)) return false;
  od::object object;
  if (doc.get_object().get(object)) return false;
  if (!walk_fields(object, keys, n, ignore_extra, out, late_keys(n), n > 64 ? ++impl_->walks : 0)) return false;
  // Nothing may follow the object (the DOM parser: TRAILING_CONTENT).
  const char* rest = nullptr;
  return doc.current_location().get(rest) == simdjson::OUT_OF_BOUNDS;
}

std::size_t Walker::walk_rows(const char* base, const uint32_t* offsets, std::size_t begin, std::size_t end,
                              const Key* keys, std::size_t n, bool ignore_extra, Slot* out, RowFn row_done,
                              void* ctx) {
  if (end <= begin || offsets[end] - offsets[begin] > kStreamBytes) return begin;
  const char* text = base + offsets[begin];
  const std::size_t len = offsets[end] - offsets[begin];
  od::document_stream stream;
  if (impl_->stream_parser.iterate_many(text, len, kStreamBytes).get(stream)) return begin;
  auto it = stream.begin();
  // The next document starts in row r, after nothing but whitespace: so it starts row r's
  // text, and the document before it ended before row r (a document ends with a non-space).
  auto starts_row = [&](std::size_t r) {
    if (!(it != stream.end()) || (*it).error()) return false;
    const std::size_t at = it.current_index(), from = offsets[r] - offsets[begin];
    if (at < from || at >= offsets[r + 1] - offsets[begin]) return false;
    for (std::size_t i = from; i < at; ++i)
      if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') return false;
    return true;
  };
  if (!starts_row(begin)) return begin;
  for (std::size_t r = begin; r < end; ++r) {  // here the current document starts row r
    bool walked = false, alive = false;
    {
      od::document_reference doc;
      od::object object;
      if (!(*it).get(doc)) {
        if (!doc.get_object().get(object))
          walked = walk_fields(object, keys, n, ignore_extra, out, late_keys(n), n > 64 ? ++impl_->walks : 0);
        // An error the parser cannot go on from leaves the document dead: the stream cannot
        // be moved on (simdjson would read through a null parser).
        alive = static_cast<od::document&>(doc).is_alive();
      }
    }
    if (!alive) {
      row_done(ctx, r, false);
      return r + 1;
    }
    // The row is this document alone when the next one starts the next row (or the stream
    // ends, nothing left over, after the last row): only whitespace lies between. Moving
    // on resets the parser's string buffer but leaves its bytes: the row's unescaped strings
    // stay readable until the next document is walked.
    ++it;
    const bool alone = r + 1 < end ? starts_row(r + 1) : !(it != stream.end()) && stream.truncated_bytes() == 0;
    if (!alone) {
      row_done(ctx, r, false);  // the caller decides about it alone
      return r + 1;
    }
    if (!row_done(ctx, r, walked)) return r + 1;
  }
  return end;
}


#endif  // SIMDJSON_CAN_ALWAYS_RUN_HASWELL

}  // namespace json_validator::fast
