// The fastest single-thread program we could write for the IoT pipeline's work, as the honest
// baseline: the same readings as sensor-simulator (its own generator header), simdjson on-demand,
// the rules of pipelines/iot-local.yaml's json-validator schema (four fields, types, ranges,
// extra fields rejected, strict "%Y-%m-%d %H:%M:%S" timestamps), CSV with std::to_chars and a
// timestamp cached per second, written in 4 MiB blocks (each block's writeback started once it
// is written) and fsynced once at the end.
//
// Usage: iot_fast_baseline MODE RECORDS [OUTPUT.csv]
//   all     generate, parse, validate, format, write (the whole job)
//   gen     generate only (the messages are dropped)
//   parse   parse + validate only, over 1M pre-generated messages cycled (the JSON limit)
//   format  format only, from 1M pre-parsed rows cycled, into memory (the formatting limit)
//   all-plain, parse-plain   the same with json-validator's plain scan (plain_scan.hpp) in place
//           of simdjson: what the loop gains from the parser the pipeline uses first
// Prints "SECONDS VALID_RECORDS OUTPUT_BYTES"; SECONDS times the mode's loop alone.
#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../../plugins/csv-window-sink/src/csv_format.hpp"
#include "../../plugins/json-validator/src/plain_scan.hpp"
#include "../../plugins/sensor-simulator/src/reading_generator.hpp"

namespace {

namespace od = simdjson::ondemand;

struct Row {
  int64_t id;
  double temp, hum;
  int64_t secs;
};

flow_sim::ReadingGenerator make_generator() {
  flow_sim::GeneratorSettings g;
  g.sensors = 100;
  g.seed = 42;
  g.start_micros = *flow_sim::parse_start_time("2025-06-15 09:12:01");
  return flow_sim::ReadingGenerator(g);
}

// Strict "YYYY-MM-DD HH:MM:SS" to epoch seconds; the previous text is remembered, since a round
// of readings shares one second.
class StampParser {
 public:
  bool parse(std::string_view s, int64_t& out) {
    if (s.size() == 19 && valid_ && std::memcmp(s.data(), last_, 19) == 0) {
      out = secs_;
      return true;
    }
    if (!parse_slow(s, out)) return false;
    std::memcpy(last_, s.data(), 19);
    secs_ = out;
    valid_ = true;
    return true;
  }

 private:
  static bool parse_slow(std::string_view s, int64_t& out) {
    const auto micros = flow_sim::parse_start_time(s);
    if (s.size() != 19 || s[10] != ' ' || !micros) return false;
    out = *micros / 1'000'000;
    return true;
  }
  char last_[19];
  int64_t secs_ = 0;
  bool valid_ = false;
};

// Parses and validates one message; false = rejected.
bool validate(od::parser& parser, const char* data, std::size_t len, std::size_t capacity, StampParser& stamps,
              Row& row) {
  od::document doc;
  if (parser.iterate(data, len, capacity).get(doc)) return false;
  od::object obj;
  if (doc.get_object().get(obj)) return false;
  unsigned seen = 0;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return false;
    od::value v = field.value();
    if (key == "sensor_id") {
      if (v.get_int64().get(row.id) || row.id < 1) return false;
      seen |= 1;
    } else if (key == "temperature") {
      if (v.get_double().get(row.temp) || !(row.temp >= -20 && row.temp <= 50)) return false;
      seen |= 2;
    } else if (key == "humidity") {
      if (v.get_double().get(row.hum) || !(row.hum >= 0 && row.hum <= 100)) return false;
      seen |= 4;
    } else if (key == "timestamp") {
      std::string_view s;
      if (v.get_string().get(s) || !stamps.parse(s, row.secs)) return false;
      seen |= 8;
    } else {
      return false;  // extra_fields: reject
    }
  }
  // simdjson 3.0.1's on-demand document has no at_end(): trailing bytes after the object are
  // not checked (sensor-simulator never writes any when invalid_ratio is 0).
  return seen == 15;
}

// The same with json-validator's plain scan, which the pipeline tries before simdjson: the
// simulator's valid messages are all of its form (a message it is not sure of is rejected here).
class PlainValidator {
 public:
  PlainValidator() {
    using json_validator::fast::Key;
    using json_validator::fast::Kind;
    keys_[0] = Key::make("sensor_id", Kind::Int, true);
    keys_[0].min_int = 1;
    keys_[1] = Key::make("temperature", Kind::Float, true);
    keys_[1].min = -20;
    keys_[1].max = 50;
    keys_[2] = Key::make("humidity", Kind::Float, true);
    keys_[2].min = 0;
    keys_[2].max = 100;
    keys_[3] = Key::make("timestamp", Kind::Timestamp, true);
  }
  // `len` bytes, and json_validator::plain::kReadPast more readable.
  bool validate(const char* data, std::size_t len, StampParser& stamps, Row& row) {
    if (!json_validator::plain::scan(data, len, keys_, 4, out_)) return false;
    row.id = out_[0].i;
    row.temp = out_[1].d;
    row.hum = out_[2].d;
    return stamps.parse(out_[3].s, row.secs);
  }

 private:
  json_validator::fast::Key keys_[4];
  json_validator::Slot out_[4];
};

// Appends a row; the timestamp text is cached per second, and readings (tenths) take the
// short-decimal path csv-window-sink uses (std::to_chars's bytes at a tenth of its cost).
class Formatter {
 public:
  void append(std::string& out, const Row& r) {
    char buf[32];
    out.append(buf, std::to_chars(buf, buf + 24, r.id).ptr);
    out.push_back(',');
    append_double(out, r.temp);
    out.push_back(',');
    append_double(out, r.hum);
    out.push_back(',');
    if (!valid_ || r.secs != secs_) {
      text_.clear();
      flow_sim::format_time(text_, "%Y-%m-%d %H:%M:%S", r.secs * 1'000'000);
      text_.push_back('\n');
      secs_ = r.secs;
      valid_ = true;
    }
    out.append(text_);
  }

 private:
  static void append_double(std::string& out, double v) {
    if (flow_csv::append_short_decimal(out, v)) return;
    char buf[32];
    out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  }
  std::string text_;
  int64_t secs_ = 0;
  bool valid_ = false;
};

constexpr std::size_t kBlock = 4 << 20;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s all|gen|parse|format|all-plain|parse-plain RECORDS [OUTPUT.csv]\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  const bool plain = mode.size() > 6 && mode.compare(mode.size() - 6, 6, "-plain") == 0;
  if (plain) mode.resize(mode.size() - 6);
  PlainValidator plain_validator;
  // One message through the chosen parser (`capacity` bytes readable from data).
  auto check = [&](od::parser& parser, const char* data, std::size_t len, std::size_t capacity, StampParser& stamps,
                   Row& row) {
    return plain ? plain_validator.validate(data, len, stamps, row) : validate(parser, data, len, capacity, stamps, row);
  };
  const long long records = std::atoll(argv[2]);
  auto gen = make_generator();
  flow_sim::Reading reading;
  od::parser parser;
  StampParser stamps;
  Formatter fmt;
  std::string block;
  block.reserve(kBlock + 4096);
  long long valid = 0, bytes = 0;
  static const char kHeader[] = "sensor_id,temperature,humidity,timestamp\n";

  if (mode == "all") {
    if (argc != 4) return 2;
    const int fd = ::open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 1;
    // Each block's writeback starts once it is written (as csv-window-sink does), so the final
    // fsync waits only for the last one.
    auto flush = [&] {
      if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) std::exit(1);
      (void)::sync_file_range(fd, bytes, static_cast<off_t>(block.size()), SYNC_FILE_RANGE_WRITE);
      bytes += static_cast<long long>(block.size());
      block.clear();
    };
    const auto t0 = std::chrono::steady_clock::now();
    block.append(kHeader);
    char msg[256 + simdjson::SIMDJSON_PADDING];
    Row row;
    for (long long i = 0; i < records; ++i) {
      const std::string_view m = gen.next(reading);
      if (m.size() > 256) continue;
      std::memcpy(msg, m.data(), m.size());
      if (!check(parser, msg, m.size(), sizeof msg, stamps, row)) continue;
      fmt.append(block, row);
      ++valid;
      if (block.size() >= kBlock) flush();
    }
    flush();
    ::fsync(fd);
    ::close(fd);
    std::printf("%.4f %lld %lld\n", seconds_since(t0), valid, bytes);
    return 0;
  }
  if (mode == "gen") {
    const auto t0 = std::chrono::steady_clock::now();
    for (long long i = 0; i < records; ++i) bytes += static_cast<long long>(gen.next(reading).size());
    std::printf("%.4f %lld %lld\n", seconds_since(t0), records, bytes);
    return 0;
  }
  // Pre-generated input for the limits: 1M messages (one padded arena) and their rows.
  const long long kCycle = std::min(records, 1'000'000LL);
  std::string arena;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  for (long long i = 0; i < kCycle; ++i) {
    const std::string_view m = gen.next(reading);
    spans.emplace_back(arena.size(), m.size());
    arena.append(m);
  }
  arena.append(simdjson::SIMDJSON_PADDING, ' ');
  if (mode == "parse") {
    const auto t0 = std::chrono::steady_clock::now();
    Row row;
    for (long long i = 0; i < records; ++i) {
      const auto [off, len] = spans[static_cast<std::size_t>(i % kCycle)];
      if (check(parser, arena.data() + off, len, arena.size() - off, stamps, row)) ++valid;
      bytes += static_cast<long long>(len);
    }
    std::printf("%.4f %lld %lld\n", seconds_since(t0), valid, bytes);
    return 0;
  }
  if (mode == "format") {
    std::vector<Row> rows;
    Row row;
    for (const auto& [off, len] : spans)
      if (validate(parser, arena.data() + off, len, arena.size() - off, stamps, row)) rows.push_back(row);
    const auto t0 = std::chrono::steady_clock::now();
    for (long long i = 0; i < records; ++i) {
      fmt.append(block, rows[static_cast<std::size_t>(i) % rows.size()]);
      if (block.size() >= kBlock) {
        bytes += static_cast<long long>(block.size());
        block.clear();
      }
    }
    bytes += static_cast<long long>(block.size());
    std::printf("%.4f %lld %lld\n", seconds_since(t0), records, bytes);
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
