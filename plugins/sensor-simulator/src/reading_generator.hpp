// The sensor-simulator's reading stream, as a small header-only class, so that tests,
// benchmarks and end-to-end tests can reproduce the exact messages of a seed without running
// the plugin.
//
// A stream is a sequence of rounds; each round has one reading per sensor (ids 1..sensors) and
// advances the simulated clock by `interval_micros`. Values are a per-sensor random walk, kept
// in tenths (so they print with exactly one decimal and no floating-point formatting). The walk
// and the choice of invalid messages draw from two separate random streams, so invalid_ratio
// changes which messages are replaced, never the valid ones around them.
#pragma once

#include "flow/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flow_sim {

// ---------------------------------------------------------------------------------------------
// Time text. A small strftime subset implemented by hand: fast (formatted once per round), the
// same on every libc, and with %f (microseconds) which strftime lacks.

using flow::days_from_civil;

struct CivilTime {
  int64_t year;
  unsigned month, day, hour, minute, second, micros;
};

constexpr CivilTime civil_from_micros(int64_t micros) {
  int64_t secs = micros / 1'000'000;
  int64_t us = micros % 1'000'000;
  if (us < 0) us += 1'000'000, secs -= 1;
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) sod += 86400, days -= 1;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
  return {y, m, d, static_cast<unsigned>(sod / 3600), static_cast<unsigned>(sod / 60 % 60),
          static_cast<unsigned>(sod % 60), static_cast<unsigned>(us)};
}

// Directives understood by format_time: %Y %m %d %H %M %S %f (6-digit microseconds) %F (%Y-%m-%d)
// %T (%H:%M:%S) %s (epoch seconds) %z (+0000) %%. Returns the first unsupported directive
// ("%q"), or nullopt when the format is fine.
inline std::optional<std::string> unsupported_directive(std::string_view format) {
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') continue;
    if (i + 1 >= format.size()) return std::string("%");
    const char c = format[++i];
    if (std::string_view("YmdHMSfFTsz%").find(c) == std::string_view::npos)
      return std::string("%") + c;
  }
  return std::nullopt;
}

inline void append_digits(std::string& out, int64_t v, int width) {
  char buf[24];
  if (v < 0) {
    out.push_back('-');
    v = -v;
  }
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  for (auto n = p - buf; n < width; ++n) out.push_back('0');
  out.append(buf, p);
}

// Appends `micros` (UTC) formatted with `format` (see unsupported_directive for the directives).
inline void format_time(std::string& out, std::string_view format, int64_t micros) {
  const CivilTime t = civil_from_micros(micros);
  for (std::size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c != '%' || i + 1 >= format.size()) {
      out.push_back(c);
      continue;
    }
    switch (format[++i]) {
      case 'Y': append_digits(out, t.year, 4); break;
      case 'm': append_digits(out, t.month, 2); break;
      case 'd': append_digits(out, t.day, 2); break;
      case 'H': append_digits(out, t.hour, 2); break;
      case 'M': append_digits(out, t.minute, 2); break;
      case 'S': append_digits(out, t.second, 2); break;
      case 'f': append_digits(out, t.micros, 6); break;
      case 'F':
        append_digits(out, t.year, 4), out.push_back('-'), append_digits(out, t.month, 2);
        out.push_back('-'), append_digits(out, t.day, 2);
        break;
      case 'T':
        append_digits(out, t.hour, 2), out.push_back(':'), append_digits(out, t.minute, 2);
        out.push_back(':'), append_digits(out, t.second, 2);
        break;
      case 's': {
        int64_t s = micros / 1'000'000;
        if (micros % 1'000'000 < 0) s -= 1;
        append_digits(out, s, 1);
        break;
      }
      case 'z': out += "+0000"; break;
      case '%': out.push_back('%'); break;
      default: out.push_back('%'), out.push_back(format[i]); break;
    }
  }
}

// "2025-06-15 09:12:01" (also with 'T', optional ".ffffff" and a trailing 'Z'), UTC, to micros.
inline std::optional<int64_t> parse_start_time(std::string_view s) {
  auto num = [&](std::size_t pos, std::size_t len) -> std::optional<unsigned> {
    if (pos + len > s.size()) return std::nullopt;
    unsigned v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
    }
    return v;
  };
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') || s[13] != ':' ||
      s[16] != ':')
    return std::nullopt;
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
  if (!y || !mo || !d || !h || !mi || !se) return std::nullopt;
  static constexpr unsigned kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (*mo < 1 || *mo > 12 || *d < 1 || *d > kDays[*mo - 1] || *h > 23 || *mi > 59 || *se > 59)
    return std::nullopt;
  const bool leap = (*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0;
  if (*mo == 2 && *d == 29 && !leap) return std::nullopt;
  std::size_t i = 19;
  int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    int64_t scale = 100'000;
    ++i;
    const std::size_t begin = i;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) frac += (s[i] - '0') * scale;
    if (i == begin || i - begin > 6) return std::nullopt;
  }
  if (i < s.size() && s[i] == 'Z') ++i;
  if (i != s.size()) return std::nullopt;
  const int64_t days = days_from_civil(*y, *mo, *d);
  return ((days * 86400 + *h * 3600 + *mi * 60 + *se) * 1'000'000) + frac;
}

// ---------------------------------------------------------------------------------------------
// Random numbers: splitmix64 for seeding, xoshiro256** for the streams. Hand-written rather than
// std:: engines + distributions, whose outputs differ between standard libraries.

constexpr uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& w : s_) w = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi] (small ranges; the bias is negligible).
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<uint64_t, 4> s_{};
};

// ---------------------------------------------------------------------------------------------

enum class InvalidKind : uint8_t { None, Truncated, MissingField, WrongType, OutOfRange, NaN, Garbage };
inline constexpr int kInvalidKinds = 6;

// Label values of the "invalid_generated" counter, indexed by InvalidKind - 1.
inline constexpr std::array<std::string_view, kInvalidKinds> kInvalidKindNames = {
    "truncated", "missing_field", "wrong_type", "out_of_range", "nan", "garbage"};

inline std::string_view invalid_kind_name(InvalidKind k) {
  return k == InvalidKind::None ? std::string_view("none") : kInvalidKindNames[static_cast<int>(k) - 1];
}

// Physical ranges, in tenths.
inline constexpr int kMinTemperature = -200, kMaxTemperature = 500;  // -20.0 .. 50.0 C
inline constexpr int kMinHumidity = 0, kMaxHumidity = 1000;          //   0.0 .. 100.0 %

struct GeneratorSettings {
  int64_t sensors = 10;
  uint64_t seed = 42;
  int cycle = 0;                        // mixed into the seed: cycles never repeat a stream
  int64_t start_micros = 0;             // reading time of the first round (UTC)
  int64_t interval_micros = 1'000'000;  // simulated time between rounds
  int64_t first_seq = 0;                // sequence number of the first reading
  std::string timestamp_format = "%Y-%m-%d %H:%M:%S";
  double invalid_ratio = 0;
};

struct Reading {
  int64_t seq = 0;
  int64_t sensor_id = 0;
  int64_t time_micros = 0;
  InvalidKind invalid = InvalidKind::None;
};

class ReadingGenerator {
 public:
  explicit ReadingGenerator(GeneratorSettings s)
      : s_(std::move(s)),
        walk_(mix(s_.seed, s_.cycle, 1)),
        faults_(mix(s_.seed, s_.cycle, 2)),
        seq_(s_.first_seq),
        round_time_(s_.start_micros) {
    if (s_.sensors < 1) s_.sensors = 1;
    sensors_.resize(static_cast<std::size_t>(s_.sensors));
    for (auto& st : sensors_) {
      st.temp_base = static_cast<int>(walk_.between(50, 300));
      st.hum_base = static_cast<int>(walk_.between(300, 800));
      st.temp = st.temp_base + static_cast<int>(walk_.between(-20, 20));
      st.hum = st.hum_base + static_cast<int>(walk_.between(-50, 50));
    }
    message_.reserve(256);
    valid_.reserve(256);
    timestamp_.reserve(64);
  }

  const GeneratorSettings& settings() const { return s_; }
  int64_t next_seq() const { return seq_; }
  // Reading time of the next reading's round, and whether that reading starts a round.
  int64_t next_time_micros() const { return round_time_; }
  bool at_round_start() const { return index_ == 0; }
  int64_t rounds_done() const { return rounds_; }

  // The next message; the view stays valid until the next call.
  std::string_view next(Reading& r) {
    std::string& out = valid_;
    out.clear();
    append_next(r, out);
    return out;
  }

  // Appends the next message to `out` (a column's characters: a valid message, nearly all of
  // them, is written there without a copy in between).
  void append_next(Reading& r, std::string& out) {
    if (index_ == 0) {
      timestamp_.clear();
      format_time(timestamp_, s_.timestamp_format, round_time_);
    }
    Sensor& st = sensors_[static_cast<std::size_t>(index_)];
    step(st);
    r.seq = seq_++;
    r.sensor_id = index_ + 1;
    r.time_micros = round_time_;
    r.invalid = InvalidKind::None;
    if (s_.invalid_ratio > 0 && faults_.uniform() < s_.invalid_ratio)
      r.invalid = static_cast<InvalidKind>(1 + faults_.next() % kInvalidKinds);
    if (r.invalid == InvalidKind::None) {
      append_valid(out, r.sensor_id, st.temp, st.hum, timestamp_);
    } else {
      write_invalid(r, st);
      out.append(message_);
    }
    if (++index_ == s_.sensors) {
      index_ = 0;
      ++rounds_;
      round_time_ += s_.interval_micros;
    }
  }

  // The valid message of a reading, exactly as next() writes it (for tests and e2e checks).
  static std::string valid_json(int64_t sensor_id, int temp_tenths, int hum_tenths, std::string_view timestamp) {
    std::string out;
    append_valid(out, sensor_id, temp_tenths, hum_tenths, timestamp);
    return out;
  }

 private:
  struct Sensor {
    int temp = 0, hum = 0, temp_base = 0, hum_base = 0;
  };

  // An invalid message of kind r.invalid, into message_.
  void write_invalid(const Reading& r, const Sensor& st) {
    message_.clear();
    switch (r.invalid) {
      case InvalidKind::None: write_valid(r.sensor_id, st.temp, st.hum); break;
      case InvalidKind::Truncated: {
        write_valid(r.sensor_id, st.temp, st.hum);
        // Any strict prefix of an object is invalid JSON.
        message_.resize(1 + faults_.next() % (message_.size() - 1));
        break;
      }
      case InvalidKind::MissingField: write_missing(r.sensor_id, st.temp, st.hum); break;
      case InvalidKind::WrongType: write_wrong_type(r.sensor_id, st.temp, st.hum); break;
      case InvalidKind::OutOfRange: write_out_of_range(r.sensor_id, st.temp, st.hum); break;
      case InvalidKind::NaN: write_nan(r.sensor_id, st.temp, st.hum); break;
      case InvalidKind::Garbage: write_garbage(r.sensor_id, st.temp, st.hum); break;
    }
  }

  static uint64_t mix(uint64_t seed, int cycle, uint64_t stream) {
    uint64_t st = seed;
    uint64_t a = splitmix64(st);
    st = a ^ (static_cast<uint64_t>(static_cast<uint32_t>(cycle)) * 0xD1B54A32D192ED03ull) ^ (stream << 56);
    return splitmix64(st);
  }

  void step(Sensor& st) {
    const uint64_t r = walk_.next();
    // A small random step plus a pull back to the sensor's own level keeps the walk plausible.
    st.temp += static_cast<int>((r & 0xffff) % 7) - 3 + (st.temp_base - st.temp) / 32;
    st.hum += static_cast<int>(((r >> 16) & 0xffff) % 17) - 8 + (st.hum_base - st.hum) / 32;
    st.temp = std::clamp(st.temp, kMinTemperature, kMaxTemperature);
    st.hum = std::clamp(st.hum, kMinHumidity, kMaxHumidity);
  }

  static void append_tenths(std::string& out, int tenths) {
    if (tenths < 0) {
      out.push_back('-');
      tenths = -tenths;
    }
    char buf[16];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, tenths / 10);
    (void)ec;
    out.append(buf, p);
    out.push_back('.');
    out.push_back(static_cast<char>('0' + tenths % 10));
  }
  static void append_int(std::string& out, int64_t v) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec;
    out.append(buf, p);
  }
  // Writes into a stack buffer and appends once: the message is built per record, and string
  // appends of literals (strlen, capacity checks) cost more than the digits.
  static char* put(char* p, std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    return p + s.size();
  }
  static char* put_tenths(char* p, int tenths) {
    if (tenths < 0) *p++ = '-', tenths = -tenths;
    p = std::to_chars(p, p + 12, tenths / 10).ptr;
    *p++ = '.';
    *p++ = static_cast<char>('0' + tenths % 10);
    return p;
  }
  static void append_valid(std::string& out, int64_t id, int temp, int hum, std::string_view ts) {
    if (ts.size() > 64) {  // long custom timestamp formats: not worth a bigger buffer
      append_valid_slow(out, id, temp, hum, ts);
      return;
    }
    char buf[160];
    char* p = put(buf, "{\"sensor_id\":");
    p = std::to_chars(p, p + 24, id).ptr;
    p = put(p, ",\"temperature\":");
    p = put_tenths(p, temp);
    p = put(p, ",\"humidity\":");
    p = put_tenths(p, hum);
    p = put(p, ",\"timestamp\":\"");
    p = put(p, ts);
    p = put(p, "\"}");
    out.append(buf, static_cast<std::size_t>(p - buf));
  }
  static void append_valid_slow(std::string& out, int64_t id, int temp, int hum, std::string_view ts) {
    out += "{\"sensor_id\":";
    append_int(out, id);
    out += ",\"temperature\":";
    append_tenths(out, temp);
    out += ",\"humidity\":";
    append_tenths(out, hum);
    out += ",\"timestamp\":\"";
    out += ts;
    out += "\"}";
  }
  void write_valid(int64_t id, int temp, int hum) { append_valid(message_, id, temp, hum, timestamp_); }

  void write_missing(int64_t id, int temp, int hum) {
    const auto skip = faults_.next() % 4;
    message_ += '{';
    bool first = true;
    auto sep = [&] {
      if (!first) message_ += ',';
      first = false;
    };
    if (skip != 0) sep(), message_ += "\"sensor_id\":", append_int(message_, id);
    if (skip != 1) sep(), message_ += "\"temperature\":", append_tenths(message_, temp);
    if (skip != 2) sep(), message_ += "\"humidity\":", append_tenths(message_, hum);
    if (skip != 3) sep(), message_ += "\"timestamp\":\"", message_ += timestamp_, message_ += '"';
    message_ += '}';
  }

  void write_wrong_type(int64_t id, int temp, int hum) {
    const auto which = faults_.next() % 4;
    message_ += "{\"sensor_id\":";
    if (which == 0) message_ += '"', append_int(message_, id), message_ += '"';
    else append_int(message_, id);
    message_ += ",\"temperature\":";
    if (which == 1) message_ += '"', append_tenths(message_, temp), message_ += '"';
    else append_tenths(message_, temp);
    message_ += ",\"humidity\":";
    if (which == 2) message_ += "true";
    else append_tenths(message_, hum);
    message_ += ",\"timestamp\":";
    if (which == 3) append_int(message_, round_time_ / 1'000'000);
    else message_ += '"', message_ += timestamp_, message_ += '"';
    message_ += '}';
  }

  void write_out_of_range(int64_t id, int temp, int hum) {
    switch (faults_.next() % 3) {
      case 0: hum = static_cast<int>(faults_.between(1001, 1999)); break;       // 100.1 .. 199.9 %
      case 1: temp = static_cast<int>(faults_.between(501, 999)); break;        // 50.1 .. 99.9 C
      default: temp = static_cast<int>(faults_.between(-999, -201)); break;     // -99.9 .. -20.1 C
    }
    write_valid(id, temp, hum);
  }

  void write_nan(int64_t id, int temp, int hum) {
    const bool in_temperature = faults_.next() % 2 == 0;
    message_ += "{\"sensor_id\":";
    append_int(message_, id);
    message_ += ",\"temperature\":";
    if (in_temperature) message_ += "NaN";
    else append_tenths(message_, temp);
    message_ += ",\"humidity\":";
    if (!in_temperature) message_ += "NaN";
    else append_tenths(message_, hum);
    message_ += ",\"timestamp\":\"";
    message_ += timestamp_;
    message_ += "\"}";
  }

  void write_garbage(int64_t id, int temp, int hum) {
    if (faults_.next() % 2 == 0) {
      // Random bytes, always with at least one byte that can never occur in UTF-8.
      const auto n = static_cast<std::size_t>(faults_.between(8, 64));
      for (std::size_t i = 0; i < n; ++i) message_.push_back(static_cast<char>(faults_.next() & 0xff));
      message_[faults_.next() % n] = static_cast<char>(0xff);
    } else {
      // A valid-looking message with one byte of its timestamp replaced by an invalid one.
      write_valid(id, temp, hum);
      const std::size_t ts_begin = message_.size() - 2 - timestamp_.size();
      const std::size_t span = timestamp_.empty() ? 1 : timestamp_.size();
      message_[ts_begin + faults_.next() % span] = static_cast<char>(0xfe);
    }
  }

  GeneratorSettings s_;
  Rng walk_;
  Rng faults_;
  std::vector<Sensor> sensors_;
  int64_t seq_ = 0;
  int64_t index_ = 0;  // sensor index within the current round
  int64_t rounds_ = 0;
  int64_t round_time_ = 0;
  std::string timestamp_;
  std::string message_;  // an invalid message being built
  std::string valid_;    // next()'s message
};

// Where the previous cycle of a stage stopped, so the next one continues its clock and sequence
// numbers: the runtime rebuilds stages every cycle, but shared resources (Context::shared) live
// for the whole run.
struct StreamState {
  std::mutex mu;
  bool valid = false;
  int cycle = 0;
  int64_t next_seq = 0;
  int64_t next_time_micros = 0;
};

inline std::string stream_state_key(const std::string& stage_id) { return "sensor-simulator/" + stage_id; }

}  // namespace flow_sim
