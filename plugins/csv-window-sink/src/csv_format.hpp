// RFC 4180 formatting of columnar batches into one growing text buffer. Everything appends to a
// caller-owned std::string, so formatting a row allocates nothing once the buffer has grown.
#pragma once

#include <charconv>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "flow/batch.hpp"

namespace flow_csv {

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

// Appends one string cell, quoted when needed; `escape_formulas` prefixes formula-like cells with
// a single quote, which spreadsheets show but do not evaluate.
inline void append_string_cell(std::string& out, std::string_view s, bool escape_formulas) {
  const bool escape = escape_formulas && looks_like_formula(s);
  if (!needs_quotes(s)) {
    if (escape) out.push_back('\'');
    out.append(s);
    return;
  }
  out.push_back('"');
  if (escape) out.push_back('\'');
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') {
      out.append(s.data() + start, i - start + 1);
      out.push_back('"');  // doubled
      start = i + 1;
    }
  }
  out.append(s.data() + start, s.size() - start);
  out.push_back('"');
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
inline bool append_short_decimal(std::string& out, double v) {
  const double a = v < 0 ? -v : v;
  if (!(a > 0 && a < 10000)) return false;  // also rejects NaN and +-0 (to_chars writes "-0")
  static constexpr double kScale[] = {1, 10, 100, 1000};
  for (int d = 0; d < 4; ++d) {
    const double scaled = a * kScale[d];
    const auto t = static_cast<int64_t>(scaled + 0.5);
    if (static_cast<double>(t) / kScale[d] != a) continue;
    char buf[16];
    char* p = buf + sizeof buf;
    int64_t rest = t;
    for (int i = 0; i < d; ++i, rest /= 10) *--p = static_cast<char>('0' + rest % 10);
    if (d) *--p = '.';
    do *--p = static_cast<char>('0' + rest % 10), rest /= 10;
    while (rest);
    if (v < 0) *--p = '-';
    out.append(p, static_cast<std::size_t>(buf + sizeof buf - p));
    return true;
  }
  return false;
}

// Shortest form that parses back (std::from_chars) to the same double; with `precision` >= 0,
// that many decimals, rounded, as printf's %.Nf ("20.32"), without a sign on a rounded zero.
inline void append_double(std::string& out, double v, int precision = -1) {
  if (precision < 0 && append_short_decimal(out, v)) return;
  char buf[400];  // fixed notation of the largest double with 17 decimals fits
  auto [p, ec] = precision < 0 ? std::to_chars(buf, buf + sizeof buf, v)
                               : std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, precision);
  (void)ec;
  const char* b = buf;
  if (precision >= 0 && *b == '-' && std::string_view(b + 1, static_cast<std::size_t>(p - b - 1)).find_first_not_of("0.") == std::string_view::npos)
    ++b;  // "-0.00" -> "0.00"
  out.append(b, static_cast<std::size_t>(p - b));
}

// strftime in UTC, remembering the last second formatted: consecutive records of a stream
// usually share it, so most timestamps cost one comparison and one copy.
class TimestampFormatter {
 public:
  explicit TimestampFormatter(std::string format = "%Y-%m-%d %H:%M:%S") : format_(std::move(format)) {}

  void append(std::string& out, int64_t micros) {
    int64_t secs = micros / 1'000'000;
    if (micros % 1'000'000 < 0) --secs;  // floor for times before 1970
    if (!valid_ || secs != last_secs_) {
      const std::time_t t = static_cast<std::time_t>(secs);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[256];
      const std::size_t n = std::strftime(buf, sizeof buf, format_.c_str(), &tm);
      last_.assign(buf, n);
      last_secs_ = secs;
      valid_ = true;
    }
    out.append(last_);
  }

 private:
  std::string format_;
  std::string last_;
  int64_t last_secs_ = 0;
  bool valid_ = false;
};

struct CellOptions {
  bool escape_formulas = false;
  int float_precision = -1;  // decimals of float cells; -1 = shortest round-trip text
};

// Appends row `row` of `batch` and a line feed. Nulls are empty cells.
inline void append_row(std::string& out, const flow::Batch& batch, std::size_t row, TimestampFormatter& ts,
                       const CellOptions& opts) {
  const std::size_t ncols = batch.num_columns();
  for (std::size_t c = 0; c < ncols; ++c) {
    if (c) out.push_back(',');
    const flow::Column& col = batch.column(c);
    if (col.is_null(row)) continue;
    switch (col.type()) {
      case flow::Type::Int64: append_int(out, col.int64_at(row)); break;
      case flow::Type::Float64: append_double(out, col.double_at(row), opts.float_precision); break;
      case flow::Type::Bool: out.append(col.bool_at(row) ? "true" : "false"); break;
      case flow::Type::Timestamp: ts.append(out, col.timestamp_at(row)); break;
      case flow::Type::String: append_string_cell(out, col.string_at(row), opts.escape_formulas); break;
    }
  }
  out.push_back('\n');
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
