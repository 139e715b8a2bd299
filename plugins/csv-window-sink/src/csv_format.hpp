// RFC 4180 formatting of columnar batches into one growing text buffer. Everything appends to a
// caller-owned buffer (a TextBuffer, or a std::string), so formatting a row allocates nothing
// once the buffer has grown.
#pragma once

#include <charconv>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "flow/batch.hpp"

namespace flow_csv {

// An allocator whose default construction leaves a char unset: resize() of a vector using it
// does not zero the new bytes.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
// The sink's text buffer. append_rows() grows its buffer for the rows' largest possible text,
// writes, and cuts it back; std::string::resize would zero that bound first (~140 bytes a
// row of memset in the IoT pipeline, a fifth of what formatting costs).
using TextBuffer = std::vector<char, UninitializedAllocator<char>>;

// Fields containing one of these must be quoted (RFC 4180, section 2.6).
inline bool needs_quotes(std::string_view s) {
  for (const char c : s)
    if (c == ',' || c == '"' || c == '\n' || c == '\r') return true;
  return false;
}

// Cells that a spreadsheet would run as a formula (OWASP "CSV injection").
inline bool looks_like_formula(std::string_view s) {
  if (s.empty()) return false;
  const char c = s.front();
  return c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
}

inline char* write_text(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// Writes one string cell (at most 2 x its length + 3 bytes), quoted when needed;
// `escape_formulas` prefixes formula-like cells with a single quote, which spreadsheets show but
// do not evaluate.
inline char* write_string_cell(char* p, std::string_view s, bool escape_formulas) {
  const bool escape = escape_formulas && looks_like_formula(s);
  if (!needs_quotes(s)) {
    if (escape) *p++ = '\'';
    return write_text(p, s);
  }
  *p++ = '"';
  if (escape) *p++ = '\'';
  for (const char c : s) {
    *p++ = c;
    if (c == '"') *p++ = '"';  // doubled
  }
  *p++ = '"';
  return p;
}

inline void append_string_cell(std::string& out, std::string_view s, bool escape_formulas) {
  const std::size_t at = out.size();
  out.resize(at + 2 * s.size() + 3);
  out.resize(static_cast<std::size_t>(write_string_cell(out.data() + at, s, escape_formulas) - out.data()));
}

inline void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, p);
}

// The shortest text of `v` when it is exactly (as a double) a decimal with at most 3 decimals and
// 0 < |v| < 10000 (sensor readings: "21.3"): the same bytes as std::to_chars(v), which for such
// values picks fixed notation and these digits, at a tenth of its cost. False for anything else.
// Why it matches: no two decimals of <= 3 places round to the same double below 10000, so the
// first scale at which t / 10^d == v gives the shortest round-trip digits, and below 10000 fixed
// notation is never longer than scientific (ties go to fixed).
inline char* write_short_decimal(char* out, double v) {
  const double a = v < 0 ? -v : v;
  if (!(a > 0 && a < 10000)) return nullptr;  // also rejects NaN and +-0 (to_chars writes "-0")
  static constexpr double kScale[] = {1, 10, 100, 1000};
  static constexpr int64_t kPow[] = {1, 10, 100, 1000};
  for (int d = 0; d < 4; ++d) {
    const double scaled = a * kScale[d];
    const auto t = static_cast<int64_t>(scaled + 0.5);
    if (static_cast<double>(t) / kScale[d] != a) continue;
    // Written from the end backwards, straight into `out`: the integer part's digit count
    // (1 to 4, since a < 10000) says where the text ends.
    const int64_t whole = t / kPow[d];
    const int whole_digits = whole < 10 ? 1 : whole < 100 ? 2 : whole < 1000 ? 3 : 4;
    char* p = out;
    if (v < 0) *p++ = '-';
    char* const end = p + whole_digits + (d ? d + 1 : 0);
    char* q = end;
    int64_t rest = t;
    for (int i = 0; i < d; ++i, rest /= 10) *--q = static_cast<char>('0' + rest % 10);
    if (d) *--q = '.';
    do *--q = static_cast<char>('0' + rest % 10), rest /= 10;
    while (rest);
    return end;
  }
  return nullptr;
}

inline bool append_short_decimal(std::string& out, double v) {
  char buf[16];
  char* end = write_short_decimal(buf, v);
  if (!end) return false;
  out.append(buf, end);
  return true;
}

// Shortest form that parses back (std::from_chars) to the same double; with `precision` >= 0,
// that many decimals, rounded, as printf's %.Nf ("20.32"), without a sign on a rounded zero.
// Writes at most 32 bytes (shortest form) or 400 (with a precision).
inline char* write_double(char* out, double v, int precision = -1) {
  if (precision < 0) {
    if (char* end = write_short_decimal(out, v)) return end;
    return std::to_chars(out, out + 32, v).ptr;
  }
  char buf[400];  // fixed notation of the largest double with 17 decimals fits
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, precision);
  (void)ec;
  const char* b = buf;
  if (*b == '-' && std::string_view(b + 1, static_cast<std::size_t>(p - b - 1)).find_first_not_of("0.") == std::string_view::npos)
    ++b;  // "-0.00" -> "0.00"
  return write_text(out, std::string_view(b, static_cast<std::size_t>(p - b)));
}

inline void append_double(std::string& out, double v, int precision = -1) {
  char buf[400];
  out.append(buf, write_double(buf, v, precision));
}

// strftime in UTC, remembering the last seconds formatted: consecutive records of a stream
// usually share one, so most timestamps cost one comparison and one copy.
class TimestampFormatter {
 public:
  explicit TimestampFormatter(std::string format = "%Y-%m-%d %H:%M:%S") : format_(std::move(format)) {
    // The longest text the format gives: a Wednesday in September (the longest day and month
    // names) at the end of a day, with room for wider years and epoch seconds.
    std::tm tm{};
    tm.tm_year = 2000 - 1900;
    tm.tm_mon = 8;
    tm.tm_mday = 27;
    tm.tm_wday = 3;
    tm.tm_yday = 270;
    tm.tm_hour = 23;
    tm.tm_min = 59;
    tm.tm_sec = 59;
    char buf[256];
    max_bytes_ = std::strftime(buf, sizeof buf, format_.c_str(), &tm) + 32;
    for (auto& e : cache_) e.text.reserve(32);
  }

  void append(std::string& out, int64_t micros) { out.append(text(micros)); }
  // Writes the text at `p` (at least max_bytes() free); returns its end.
  char* write(char* p, int64_t micros) {
    const std::string& t = text(micros);
    // A fixed-size copy (no call) when the text is short: each entry has room for 32 bytes, and
    // so has the space append_rows() keeps for a timestamp cell (max_bytes()).
    if (t.size() <= 32) std::memcpy(p, t.data(), 32);
    else std::memcpy(p, t.data(), t.size());
    return p + t.size();
  }
  std::size_t max_bytes() const { return max_bytes_; }

 private:
  const std::string& text(int64_t micros) {
    int64_t secs = micros / 1'000'000;
    if (micros % 1'000'000 < 0) --secs;  // floor for times before 1970
    // A few recent seconds, by second: rows from many Kafka partitions interleave seconds.
    Entry& e = cache_[static_cast<uint64_t>(secs) % kCache];
    if (!e.valid || secs != e.secs) {
      const std::time_t t = static_cast<std::time_t>(secs);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[256];
      const std::size_t n = std::strftime(buf, sizeof buf, format_.c_str(), &tm);
      e.text.assign(buf, std::min(n, max_bytes_));
      e.secs = secs;
      e.valid = true;
    }
    return e.text;
  }

  static constexpr std::size_t kCache = 8;
  struct Entry {
    std::string text;  // room for 32 bytes, which write() copies at once
    int64_t secs = 0;
    bool valid = false;
  };
  std::string format_;
  std::array<Entry, kCache> cache_;
  std::size_t max_bytes_ = 0;
};

struct CellOptions {
  bool escape_formulas = false;
  int float_precision = -1;  // decimals of float cells; -1 = shortest round-trip text
};

// Appends rows [begin, end) of `batch`, each with a line feed; nulls are empty cells. The text
// is written straight into `out`, grown once for the rows' largest possible size (what each
// type can take, twice each string's length plus quotes), then cut to what was written: one
// size check per batch instead of one per character, which is most of what formatting costs.
template <class Text>  // TextBuffer or std::string
void append_rows(Text& out, const flow::Batch& batch, std::size_t begin, std::size_t end, TimestampFormatter& ts,
                 const CellOptions& opts) {
  if (begin >= end) return;
  const std::size_t ncols = batch.num_columns(), rows = end - begin;
  std::size_t bound = rows;  // line feeds
  for (std::size_t c = 0; c < ncols; ++c) {
    const flow::Column& col = batch.column(c);
    std::size_t cell = 1;  // its comma
    switch (col.type()) {
      case flow::Type::Int64: cell += 20; break;
      case flow::Type::Float64: cell += opts.float_precision < 0 ? 32 : 400; break;
      case flow::Type::Bool: cell += 5; break;
      case flow::Type::Timestamp: cell += ts.max_bytes(); break;
      case flow::Type::String:
        cell += 3;  // quotes and a formula escape
        bound += 2 * (col.offsets()[end] - col.offsets()[begin]);
        break;
    }
    bound += cell * rows;
  }
  // Each column's type and data, read once: the text is written through a char*, which may
  // alias anything, so reading them through the columns would reload them for every cell.
  struct Source {
    flow::Type type;
    const flow::Column* nullable;  // set when the column holds a null
    const int64_t* ints;
    const double* floats;
    const uint8_t* bools;
    const char* chars;
    const uint32_t* offsets;
  };
  std::array<Source, 16> small;
  std::vector<Source> large;
  Source* src = small.data();
  if (ncols > small.size()) {
    large.resize(ncols);
    src = large.data();
  }
  for (std::size_t c = 0; c < ncols; ++c) {
    const flow::Column& col = batch.column(c);
    src[c] = {col.type(), col.has_nulls() ? &col : nullptr, col.ints().data(), col.floats().data(),
              col.bools().data(), col.chars().data(), col.offsets().data()};
  }
  const int precision = opts.float_precision;
  const bool escape = opts.escape_formulas;
  const std::size_t start = out.size();
  out.resize(start + bound);
  char* const base = out.data();
  char* p = base + start;
  for (std::size_t row = begin; row < end; ++row) {
    for (std::size_t c = 0; c < ncols; ++c) {
      if (c) *p++ = ',';
      const Source& s = src[c];
      if (s.nullable && s.nullable->is_null(row)) continue;
      switch (s.type) {
        case flow::Type::Int64: p = std::to_chars(p, p + 20, s.ints[row]).ptr; break;
        case flow::Type::Float64: p = write_double(p, s.floats[row], precision); break;
        case flow::Type::Bool: p = write_text(p, s.bools[row] ? std::string_view("true") : std::string_view("false")); break;
        case flow::Type::Timestamp: p = ts.write(p, s.ints[row]); break;
        case flow::Type::String:
          p = write_string_cell(p, std::string_view(s.chars + s.offsets[row], s.offsets[row + 1] - s.offsets[row]), escape);
          break;
      }
    }
    *p++ = '\n';
  }
  out.resize(static_cast<std::size_t>(p - base));
}

// Appends row `row` of `batch` and a line feed.
template <class Text>
void append_row(Text& out, const flow::Batch& batch, std::size_t row, TimestampFormatter& ts, const CellOptions& opts) {
  append_rows(out, batch, row, row + 1, ts, opts);
}

// The header row (without the line feed): the schema's field names, quoted where needed. Field
// names are never formula-escaped: they come from the pipeline author, not from the data.
inline std::string header_line(const flow::Schema& schema) {
  std::string out;
  for (std::size_t i = 0; i < schema.size(); ++i) {
    if (i) out.push_back(',');
    append_string_cell(out, schema.field(i).name, false);
  }
  return out;
}

}  // namespace flow_csv
