#include "timestamp_format.hpp"

namespace json_validator {

std::optional<std::string> TimestampFormat::compile(std::string_view format, TimestampFormat& out) {
  out.tokens_.clear();
  out.text_ = std::string(format);
  bool year = false, month = false, day = false, epoch = false;
  auto add = [&](Op op, char c = 0) { out.tokens_.push_back({op, c}); };
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      add(Op::Literal, format[i]);
      continue;
    }
    if (i + 1 >= format.size()) return "format '" + out.text_ + "' ends with a lone '%'";
    switch (const char c = format[++i]) {
      case 'Y': add(Op::Year), year = true; break;
      case 'm': add(Op::Month), month = true; break;
      case 'd': add(Op::Day), day = true; break;
      case 'H': add(Op::Hour); break;
      case 'M': add(Op::Minute); break;
      case 'S': add(Op::Second); break;
      case 'f': add(Op::Fraction); break;
      case 's': add(Op::Epoch), epoch = true; break;
      case 'z': add(Op::Zone); break;
      case '%': add(Op::Literal, '%'); break;
      case 'F':
        add(Op::Year), add(Op::Literal, '-'), add(Op::Month), add(Op::Literal, '-'), add(Op::Day);
        year = month = day = true;
        break;
      case 'T':
        add(Op::Hour), add(Op::Literal, ':'), add(Op::Minute), add(Op::Literal, ':'), add(Op::Second);
        break;
      default:
        return "format '" + out.text_ + "': unsupported directive '%" + std::string(1, c) +
               "' (supported: %Y %m %d %H %M %S %f %F %T %s %z %%)";
    }
  }
  if (epoch && (year || month || day))
    return "format '" + out.text_ + "' mixes %s with date directives";
  if (!epoch && !(year && month && day))
    return "format '" + out.text_ + "' does not determine a date: it needs %Y, %m and %d (or %F), or %s";
  return std::nullopt;
}

namespace {

// Reads between min_digits and max_digits decimal digits at `p`.
bool digits(std::string_view s, std::size_t& p, int min_digits, int max_digits, int64_t& v, int* count = nullptr) {
  v = 0;
  int n = 0;
  while (n < max_digits && p < s.size() && s[p] >= '0' && s[p] <= '9') {
    v = v * 10 + (s[p] - '0');
    ++p, ++n;
  }
  if (count) *count = n;
  return n >= min_digits;
}

}  // namespace

bool TimestampFormat::parse(std::string_view s, int64_t& micros) const {
  int64_t year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0, frac = 0, epoch = 0, offset = 0;
  bool has_epoch = false;
  std::size_t p = 0;
  for (const Token& t : tokens_) {
    switch (t.op) {
      case Op::Literal:
        if (p >= s.size() || s[p] != t.literal) return false;
        ++p;
        break;
      case Op::Year:
        if (!digits(s, p, 4, 4, year)) return false;
        break;
      case Op::Month:
        if (!digits(s, p, 1, 2, month) || month < 1 || month > 12) return false;
        break;
      case Op::Day:
        if (!digits(s, p, 1, 2, day) || day < 1) return false;
        break;
      case Op::Hour:
        if (!digits(s, p, 1, 2, hour) || hour > 23) return false;
        break;
      case Op::Minute:
        if (!digits(s, p, 1, 2, minute) || minute > 59) return false;
        break;
      case Op::Second:
        if (!digits(s, p, 1, 2, second) || second > 59) return false;
        break;
      case Op::Fraction: {
        int n = 0;
        if (!digits(s, p, 1, 9, frac, &n)) return false;
        for (; n < 6; ++n) frac *= 10;
        for (; n > 6; --n) frac /= 10;
        break;
      }
      case Op::Epoch: {
        const bool neg = p < s.size() && s[p] == '-';
        if (neg) ++p;
        if (!digits(s, p, 1, 12, epoch)) return false;
        if (neg) epoch = -epoch;
        has_epoch = true;
        break;
      }
      case Op::Zone: {
        if (p < s.size() && s[p] == 'Z') {
          ++p;
          break;
        }
        if (p >= s.size() || (s[p] != '+' && s[p] != '-')) return false;
        const int sign = s[p++] == '-' ? -1 : 1;
        int64_t hh = 0, mm = 0;
        if (!digits(s, p, 2, 2, hh) || hh > 23) return false;
        if (p < s.size() && s[p] == ':') ++p;
        if (!digits(s, p, 2, 2, mm) || mm > 59) return false;
        offset = sign * (hh * 3600 + mm * 60);
        break;
      }
    }
  }
  if (p != s.size()) return false;
  int64_t secs = 0;
  if (has_epoch) {
    secs = epoch;
  } else {
    static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > kDays[month - 1] || (month == 2 && day == 29 && !leap)) return false;
    secs = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 + hour * 3600 +
           minute * 60 + second;
  }
  micros = (secs - offset) * 1'000'000 + frac;
  return true;
}

}  // namespace json_validator
