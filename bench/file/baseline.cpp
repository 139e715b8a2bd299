// The hand-written baseline for the file benchmark: one thread doing what file-source ->
// json-validator -> csv-window-sink do, as fast as we know how: read the file in 1 MiB blocks,
// split lines with memchr, parse each with simdjson's on-demand API, check types and ranges, parse
// and re-format the timestamp by hand, format the CSV with std::to_chars, write in 1 MiB chunks.
// Usage: file_baseline gen RECORDS FILE     writes the input (sensor-like JSON lines)
//        file_baseline run FILE OUTPUT.csv  prints the number of valid records
#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

// Days since 1970-01-01 of a civil date, and back (Howard Hinnant's algorithms).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

// "YYYY-MM-DD HH:MM:SS" -> seconds since the epoch; false when malformed.
bool parse_ts(std::string_view s, int64_t& out) {
  if (s.size() != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':') return false;
  auto num = [&](std::size_t at, std::size_t n, unsigned& v) {
    v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + static_cast<unsigned>(s[i] - '0');
    }
    return true;
  };
  unsigned y, mo, d, h, mi, se;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) || !num(17, 2, se))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return false;
  out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
  return true;
}

void append_ts(std::string& out, int64_t t) {
  int64_t days = t / 86400, rem = t % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char b[19];
  auto two = [&](int at, unsigned v) {
    b[at] = static_cast<char>('0' + v / 10);
    b[at + 1] = static_cast<char>('0' + v % 10);
  };
  const unsigned yy = static_cast<unsigned>(y);
  two(0, yy / 100 % 100);
  two(2, yy % 100);
  b[4] = '-';
  two(5, m);
  b[7] = '-';
  two(8, d);
  b[10] = ' ';
  two(11, static_cast<unsigned>(rem / 3600));
  b[13] = ':';
  two(14, static_cast<unsigned>(rem / 60 % 60));
  b[16] = ':';
  two(17, static_cast<unsigned>(rem % 60));
  out.append(b, 19);
}

int gen(long long records, const char* path) {
  std::FILE* f = std::fopen(path, "w");
  if (!f) return 1;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> step(-0.3, 0.3);
  std::vector<double> temp(100, 20.0), hum(100, 50.0);
  int64_t t = 1'750'000'000;
  std::string line;
  for (long long i = 0; i < records; ++i) {
    const int id = static_cast<int>(i % 100);
    if (id == 0) ++t;
    temp[id] = std::clamp(temp[id] + step(rng), -20.0, 50.0);
    hum[id] = std::clamp(hum[id] + step(rng), 0.0, 100.0);
    char b[160];
    line.assign("{\"sensor_id\":");
    line += std::to_string(id + 1);
    line.append(b, std::snprintf(b, sizeof b, ",\"temperature\":%.1f,\"humidity\":%.1f,\"timestamp\":\"", temp[id], hum[id]));
    append_ts(line, t);
    line += "\"}\n";
    std::fwrite(line.data(), 1, line.size(), f);
  }
  return std::fclose(f) == 0 ? 0 : 1;
}

int run(const char* in_path, const char* out_path) {
  const int in = ::open(in_path, O_RDONLY | O_CLOEXEC);
  std::FILE* out = std::fopen(out_path, "w");
  if (in < 0 || !out) return 1;
  simdjson::ondemand::parser parser;
  constexpr std::size_t kBlock = 1 << 20;
  std::vector<char> buf(kBlock + simdjson::SIMDJSON_PADDING);
  std::size_t have = 0;
  std::string csv = "sensor_id,temperature,humidity,timestamp\n";
  csv.reserve(kBlock + 4096);
  std::string padded;  // a line copied with padding when it ends too close to the buffer's end
  long long valid = 0;
  char num[32];
  auto one = [&](const char* p, std::size_t n) {
    simdjson::padded_string_view view(p, n, n + simdjson::SIMDJSON_PADDING);
    simdjson::ondemand::document doc;
    if (parser.iterate(view).get(doc)) return;
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj)) return;
    int64_t sid = 0;
    double te = 0, hu = 0;
    std::string_view stamp;
    // Fields in file order (on-demand reads forward); a record missing one is rejected.
    if (obj["sensor_id"].get_int64().get(sid) || obj["temperature"].get_double().get(te) ||
        obj["humidity"].get_double().get(hu) || obj["timestamp"].get_string().get(stamp))
      return;
    int64_t t;
    if (sid < 1 || te < -50 || te > 100 || hu < 0 || hu > 100 || !parse_ts(stamp, t)) return;
    csv.append(num, std::to_chars(num, num + 32, sid).ptr);
    csv += ',';
    csv.append(num, std::to_chars(num, num + 32, te).ptr);
    csv += ',';
    csv.append(num, std::to_chars(num, num + 32, hu).ptr);
    csv += ',';
    append_ts(csv, t);
    csv += '\n';
    ++valid;
  };
  while (true) {
    const ssize_t n = ::read(in, buf.data() + have, kBlock - have);
    if (n < 0) return 1;
    const std::size_t end = have + static_cast<std::size_t>(n);
    std::size_t start = 0;
    while (start < end) {
      const char* nl = static_cast<const char*>(std::memchr(buf.data() + start, '\n', end - start));
      if (!nl) break;
      const std::size_t len = static_cast<std::size_t>(nl - (buf.data() + start));
      // The bytes after the line (the next lines) serve as simdjson's padding.
      if (end - start - len >= simdjson::SIMDJSON_PADDING) {
        one(buf.data() + start, len);
      } else {
        padded.assign(buf.data() + start, len);
        padded.resize(len + simdjson::SIMDJSON_PADDING, ' ');
        one(padded.data(), len);
      }
      start += len + 1;
      if (csv.size() > kBlock) {
        std::fwrite(csv.data(), 1, csv.size(), out);
        csv.clear();
      }
    }
    std::memmove(buf.data(), buf.data() + start, end - start);
    have = end - start;
    if (n == 0) break;
  }
  std::fwrite(csv.data(), 1, csv.size(), out);
  std::fclose(out);
  ::close(in);
  std::printf("%lld\n", valid);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "gen") == 0) return gen(std::atoll(argv[2]), argv[3]);
  if (argc == 4 && std::strcmp(argv[1], "run") == 0) return run(argv[2], argv[3]);
  std::fprintf(stderr, "usage: %s gen RECORDS FILE | run FILE OUTPUT.csv\n", argv[0]);
  return 2;
}
