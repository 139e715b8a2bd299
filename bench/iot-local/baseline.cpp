// The hand-written baseline for the IoT pipeline benchmark: one function, one thread, doing the
// same work as sensor-simulator -> json-validator -> csv-window-sink: generate JSON readings,
// parse each with simdjson, validate types and ranges, format CSV and write it to a file.
// Usage: iot_baseline RECORDS OUTPUT.csv
#include <simdjson.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s RECORDS OUTPUT.csv\n", argv[0]);
    return 2;
  }
  const long long records = std::atoll(argv[1]);
  std::FILE* out = std::fopen(argv[2], "w");
  if (!out) return 1;
  constexpr int kSensors = 100;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> step(-0.3, 0.3);
  std::vector<double> temp(kSensors, 20.0), hum(kSensors, 50.0);
  simdjson::dom::parser parser;
  std::string json, csv = "sensor_id,temperature,humidity,timestamp\n";
  json.reserve(256);
  csv.reserve(1 << 20);
  std::time_t t = 1'750'000'000;
  char ts[32];
  long long valid = 0;
  for (long long i = 0; i < records; ++i) {
    const int id = static_cast<int>(i % kSensors);
    if (id == 0) ++t;
    temp[id] = std::clamp(temp[id] + step(rng), -20.0, 50.0);
    hum[id] = std::clamp(hum[id] + step(rng), 0.0, 100.0);
    std::tm tm;
    gmtime_r(&t, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    json.clear();
    char num[32];
    json += "{\"sensor_id\":";
    json.append(num, std::to_chars(num, num + 32, id).ptr);
    json += ",\"temperature\":";
    json.append(num, std::snprintf(num, 32, "%.1f", temp[id]));
    json += ",\"humidity\":";
    json.append(num, std::snprintf(num, 32, "%.1f", hum[id]));
    json += ",\"timestamp\":\"";
    json += ts;
    json += "\"}";

    simdjson::dom::element doc;
    if (parser.parse(json).get(doc)) continue;
    int64_t sid;
    double te, hu;
    std::string_view stamp;
    if (doc["sensor_id"].get_int64().get(sid) || doc["temperature"].get_double().get(te) ||
        doc["humidity"].get_double().get(hu) || doc["timestamp"].get_string().get(stamp))
      continue;
    if (sid < 0 || te < -50 || te > 100 || hu < 0 || hu > 100) continue;
    std::tm parsed{};
    if (!strptime(std::string(stamp).c_str(), "%Y-%m-%d %H:%M:%S", &parsed)) continue;
    const std::time_t when = timegm(&parsed);
    gmtime_r(&when, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);

    csv.append(num, std::to_chars(num, num + 32, sid).ptr);
    csv += ',';
    csv.append(num, std::to_chars(num, num + 32, te).ptr);
    csv += ',';
    csv.append(num, std::to_chars(num, num + 32, hu).ptr);
    csv += ',';
    csv += ts;
    csv += '\n';
    ++valid;
    if (csv.size() > (1 << 20) - 256) {
      std::fwrite(csv.data(), 1, csv.size(), out);
      csv.clear();
    }
  }
  std::fwrite(csv.data(), 1, csv.size(), out);
  std::fclose(out);
  std::printf("%lld\n", valid);
  return 0;
}
