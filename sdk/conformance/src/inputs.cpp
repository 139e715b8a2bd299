#include "inputs.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "flow_parts/file_parts.hpp"

namespace flow::conformance {

const char* shape_name(Shape s) {
  switch (s) {
    case Shape::Raw: return "raw messages";
    case Shape::Sensor: return "sensor rows";
    case Shape::FileEvent: return "file events";
  }
  return "?";
}

const std::vector<Shape>& all_shapes() {
  static const std::vector<Shape> shapes = {Shape::Raw, Shape::Sensor, Shape::FileEvent};
  return shapes;
}

SchemaPtr sensor_schema() { return sensor_row_schema(); }

namespace {

constexpr const char* kPartHeader = "sensor_id,temperature,humidity,timestamp";

SchemaPtr schema_of(Shape s) {
  switch (s) {
    case Shape::Raw: return raw_message_schema();
    case Shape::Sensor: return sensor_schema();
    case Shape::FileEvent: return file_event_schema();
  }
  return raw_message_schema();
}

std::string iso(int64_t micros) {
  const std::time_t secs = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string sensor_json(int64_t i, int64_t micros) {
  const int64_t id = i % 10 + 1;
  const double temperature = 15.0 + static_cast<double>(i % 200) / 10.0;
  const double humidity = 30.0 + static_cast<double>(i % 400) / 10.0;
  return "{\"sensor_id\":" + std::to_string(id) + ",\"temperature\":" + format_double(temperature) +
         ",\"humidity\":" + format_double(humidity) + ",\"timestamp\":\"" + iso(micros) + "\"}";
}

void append_raw(Batch& b, std::string_view key, std::string_view value, int64_t offset, int64_t micros) {
  b.column(0).append_string(key);
  b.column(1).append_string(value);
  b.column(2).append_string("conformance");
  b.column(3).append_int64(0);
  b.column(4).append_int64(offset);
  b.column(5).append_timestamp(micros);
}

std::string random_bytes(std::mt19937_64& rng, std::size_t max_len, bool allow_slash = true) {
  std::string s(static_cast<std::size_t>(rng() % (max_len + 1)), '\0');
  for (auto& c : s) {
    c = static_cast<char>(rng() & 0xff);
    if (!allow_slash && (c == '/' || c == '\0')) c = '_';
  }
  return s;
}

}  // namespace

Batch valid_batch(Shape shape, std::size_t rows, int64_t first, int64_t base_micros, const std::string& dir) {
  Batch b(schema_of(shape));
  for (std::size_t r = 0; r < rows; ++r) {
    const int64_t i = first + static_cast<int64_t>(r);
    const int64_t micros = base_micros + i * 1000;
    switch (shape) {
      case Shape::Raw: append_raw(b, "sensor-" + std::to_string(i % 10 + 1), sensor_json(i, micros), i, micros); break;
      case Shape::Sensor:
        b.column(0).append_int64(i % 10 + 1);
        b.column(1).append_double(15.0 + static_cast<double>(i % 200) / 10.0);
        b.column(2).append_double(30.0 + static_cast<double>(i % 400) / 10.0);
        b.column(3).append_timestamp(micros);
        break;
      case Shape::FileEvent: {
        // Real part files under <dir>/parts (a sample config points a file-consuming stage's
        // input directory at ${TMPDIR}/parts); past 1000 rows the events name missing files.
        // Committed parts in the file-parts format (plugins/file-parts-common): the part and its
        // manifest entry.
        const std::string name = flow::parts::part_name("part", "conformance", 0, i, 0);
        const std::string part = dir + "/parts/" + name;
        const std::string text = std::string(kPartHeader) + "\n" + std::to_string(i % 10 + 1) + ",21.5,40," + iso(micros) + "\n";
        if (rows <= 1000) {
          std::filesystem::create_directories(dir + "/parts");
          std::ofstream(part, std::ios::binary) << text;
          flow::parts::Manifest m;
          m.part = name;
          m.rows = 1;
          m.bytes = text.size();
          m.window_start_us = micros;
          m.window_end_us = micros + 10'000'000;
          m.run_id = "conformance";
          m.window_seq = i;
          m.header = kPartHeader;
          m.ranges = {{"conformance", 0, i, i + 1}};
          std::filesystem::create_directories(flow::parts::commits_dir(dir + "/parts/_checkpoint"));
          flow::parts::write_manifest(flow::parts::commits_dir(dir + "/parts/_checkpoint"), m, false);
        }
        b.column(0).append_string(part);
        b.column(1).append_int64(1);
        b.column(2).append_int64(static_cast<int64_t>(text.size()));
        b.column(3).append_timestamp(micros);
        b.column(4).append_timestamp(micros + 10'000'000);
        b.column(5).append_string(kPartHeader);
        break;
      }
    }
  }
  return b;
}

Batch random_batch(Shape shape, std::size_t rows, std::mt19937_64& rng, const std::string& dir) {
  Batch b(schema_of(shape));
  auto random_double = [&rng] {
    const uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;  // any bit pattern: NaNs, infinities, denormals
  };
  for (std::size_t r = 0; r < rows; ++r) {
    switch (shape) {
      case Shape::Raw:
        append_raw(b, random_bytes(rng, 16), random_bytes(rng, 256), static_cast<int64_t>(rng()),
                   static_cast<int64_t>(rng()));
        break;
      case Shape::Sensor:
        b.column(0).append_int64(static_cast<int64_t>(rng()));
        b.column(1).append_double(random_double());
        b.column(2).append_double(random_double());
        b.column(3).append_timestamp(static_cast<int64_t>(rng()));
        break;
      case Shape::FileEvent:
        // Paths stay inside the check's own directory whatever the bytes: a stage that deletes
        // or renames its inputs must not reach anything else.
        b.column(0).append_string(dir + "/" + random_bytes(rng, 64, false));
        b.column(1).append_int64(static_cast<int64_t>(rng()));
        b.column(2).append_int64(static_cast<int64_t>(rng()));
        b.column(3).append_timestamp(static_cast<int64_t>(rng()));
        b.column(4).append_timestamp(static_cast<int64_t>(rng()));
        b.column(5).append_string(random_bytes(rng, 128));
        break;
    }
  }
  return b;
}

Batch malformed_batch(Shape shape, const std::string& dir) {
  Batch b(schema_of(shape));
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  switch (shape) {
    case Shape::Raw: {
      const std::string ts = "\"timestamp\":\"2025-06-15T09:00:00Z\"";
      std::vector<std::string> values = {
          "", " ", "{", "}", "[]", "null", "42", "\"text\"", "{\"sensor_id\":",
          "{\"sensor_id\":1,\"temperature\":\"hot\",\"humidity\":40," + ts + "}",
          "{\"sensor_id\":1,\"temperature\":1e999,\"humidity\":40," + ts + "}",
          "{\"sensor_id\":-99999999999999999999999,\"temperature\":20,\"humidity\":40," + ts + "}",
          "{\"sensor_id\":1,\"sensor_id\":2,\"temperature\":20,\"humidity\":40," + ts + "}",
          "{\"sensor_id\":1,\"temperature\":NaN,\"humidity\":40," + ts + "}",
          "{\"sensor_id\":\"\\u0000\",\"temperature\":20,\"humidity\":40," + ts + "}",
          "{\"sensor_id\":1,\"temperature\":20,\"humidity\":40,\"timestamp\":\"9999-99-99T99:99:99Z\"}",
          "{\"sensor_id\":1,\"temperature\":20,\"humidity\":40,\"timestamp\":12}",
          "{\"temperature\":20,\"humidity\":40," + ts + "}",
          "{\"sensor_id\":1,\"temperature\":20,\"humidity\":40," + ts + ",\"extra\":{\"a\":[1,2,{}]}}",
          "\xff\xfe\xfd not utf-8",
          std::string(100'000, '['),
          std::string(20'000, '{') + std::string(20'000, '}'),
          "{\"sensor_id\":\"" + std::string(1 << 20, 'a') + "\"}",
      };
      int64_t i = 0;
      for (const auto& v : values) append_raw(b, "malformed", v, i, 1'750'000'000'000'000 + i), ++i;
      // A row of nulls.
      for (std::size_t c = 0; c < b.num_columns(); ++c) b.column(c).append_null();
      break;
    }
    case Shape::Sensor: {
      const std::vector<double> doubles = {nan, inf, -inf, 1e308, -1e308, 0.0, -0.0, std::numeric_limits<double>::denorm_min()};
      const std::vector<int64_t> ints = {kMin, kMax, 0, -1, kMin, kMax, 1, 2};
      for (std::size_t i = 0; i < doubles.size(); ++i) {
        b.column(0).append_int64(ints[i]);
        b.column(1).append_double(doubles[i]);
        b.column(2).append_double(doubles[doubles.size() - 1 - i]);
        b.column(3).append_timestamp(ints[(i + 3) % ints.size()]);
      }
      for (std::size_t c = 0; c < b.num_columns(); ++c) b.column(c).append_null();
      break;
    }
    case Shape::FileEvent: {
      const std::vector<std::string> paths = {"", dir, dir + "/", dir + "/missing.csv", dir + "/a\nb.csv",
                                              dir + "/" + std::string(300, 'x')};
      int64_t i = 0;
      for (const auto& p : paths) {
        b.column(0).append_string(p);
        b.column(1).append_int64(i % 2 ? -1 : kMax);
        b.column(2).append_int64(i % 2 ? kMax : -1);
        b.column(3).append_timestamp(i % 2 ? kMax : kMin);
        b.column(4).append_timestamp(i % 2 ? kMin : 0);  // ends before it starts
        b.column(5).append_string(i % 2 ? "" : "a,\"b\nc\",d");
        ++i;
      }
      for (std::size_t c = 0; c < b.num_columns(); ++c) b.column(c).append_null();
      break;
    }
  }
  return b;
}

}  // namespace flow::conformance
