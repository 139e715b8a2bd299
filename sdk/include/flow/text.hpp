// Small text and date helpers that plugins and the core share, so each exists once: JSON string
// literals (manifests, describe --format json, metrics JSON) and civil dates (timestamp parsing
// and formatting without the C library's time zone state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace flow {

// The UTF-8 sequence at the start of `s` (not empty): {n, true} when its first n bytes are one
// valid sequence; {n, false} when they are invalid, n being the "maximal subpart" (the longest
// prefix that could have begun a valid sequence, at least one byte), which is what one U+FFFD
// replaces as the Unicode Standard (ch. 3) recommends and browsers do. Overlong forms, surrogates
// and code points above U+10FFFF are invalid (RFC 3629).
inline std::pair<std::size_t, bool> utf8_step(std::string_view s) {
  const auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) return {1, true};
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range; later ones are 80..BF
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) n = 3;
  else if (c == 0xED) n = 3, hi = 0x9F;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else return {1, false};
  for (std::size_t i = 1; i < n; ++i) {
    if (i >= s.size()) return {i, false};
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return {i, false};
  }
  return {n, true};
}

// Appends `s` as a JSON string literal, quotes included. JSON text is UTF-8 (RFC 8259), so bytes
// that are not valid UTF-8 (Latin-1 text, binary in a string column, a cut multi-byte sequence)
// become U+FFFD, the replacement character, one per maximal invalid subpart: the output is
// always valid JSON and valid text, and valid UTF-8 passes unchanged.
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const auto [n, valid] = utf8_step(s.substr(i));
      if (valid) out.append(s.substr(i, n));
      else out += "\xEF\xBF\xBD";  // U+FFFD
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

inline std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
constexpr int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace flow
