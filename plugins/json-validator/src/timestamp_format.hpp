// Timestamp text -> microseconds since the epoch (UTC), for a strptime-like format compiled once.
// Hand-written instead of strptime: strptime is locale-dependent, has no fractional seconds and
// does not reject impossible dates (2025-02-30), and this parser runs once per record.
#pragma once

#include "flow/text.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace json_validator {

class TimestampFormat {
 public:
  // Directives: %Y (4 digits) %m %d %H %M %S (1-2 digits) %f (1-9 fraction digits) %F (%Y-%m-%d)
  // %T (%H:%M:%S) %s (epoch seconds) %z (Z, +hh:mm or +hhmm) %%; other characters match themselves.
  // Returns an error message, or nullopt when `format` is usable.
  static std::optional<std::string> compile(std::string_view format, TimestampFormat& out);

  // False when `text` does not match or names an impossible time.
  bool parse(std::string_view text, int64_t& micros) const;

  const std::string& text() const { return text_; }

 private:
  enum class Op : uint8_t { Literal, Year, Month, Day, Hour, Minute, Second, Fraction, Epoch, Zone };
  struct Token {
    Op op;
    char literal;
  };
  std::vector<Token> tokens_;
  std::string text_;
};

using flow::days_from_civil;

}  // namespace json_validator
