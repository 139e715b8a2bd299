#include "inputs.hpp"

#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>

namespace flow::conformance {

SchemaPtr sensor_schema() { return sensor_row_schema(); }

namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

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

double random_double(std::mt19937_64& rng) {
  const uint64_t bits = rng();
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;  // any bit pattern: NaNs, infinities, denormals
}

void append_random(Column& c, std::mt19937_64& rng) {
  switch (c.type()) {
    case Type::Int64: c.append_int64(static_cast<int64_t>(rng())); break;
    case Type::Timestamp: c.append_timestamp(static_cast<int64_t>(rng())); break;
    case Type::Float64: c.append_double(random_double(rng)); break;
    case Type::Bool: c.append_bool(rng() & 1); break;
    case Type::String: c.append_string(random_bytes(rng, 256)); break;
  }
}

void append_null_row(Batch& b) {
  for (std::size_t c = 0; c < b.num_columns(); ++c) b.column(c).append_null();
}

// ---------------------------------------------------------------------------------------------
// Generic shapes, for plugins that supply no sample.

Shape raw_shape() {
  Shape s;
  s.name = "raw messages";
  s.valid = [](std::size_t rows, int64_t first, int64_t now_us) {
    Batch b(raw_message_schema());
    for (std::size_t r = 0; r < rows; ++r) {
      const int64_t i = first + static_cast<int64_t>(r), micros = now_us + i * 1000;
      append_raw(b, "sensor-" + std::to_string(i % 10 + 1), sensor_json(i, micros), i, micros);
    }
    return b;
  };
  s.random = [](std::size_t rows, std::mt19937_64& rng) {
    Batch b(raw_message_schema());
    for (std::size_t r = 0; r < rows; ++r)
      append_raw(b, random_bytes(rng, 16), random_bytes(rng, 256), static_cast<int64_t>(rng()), static_cast<int64_t>(rng()));
    return b;
  };
  s.malformed = [] {
    Batch b(raw_message_schema());
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
      append_null_row(b);
      return b;
  };
  return s;
}

Shape sensor_shape() {
  Shape s;
  s.name = "sensor rows";
  s.valid = [](std::size_t rows, int64_t first, int64_t now_us) {
    Batch b(sensor_schema());
    for (std::size_t r = 0; r < rows; ++r) {
      const int64_t i = first + static_cast<int64_t>(r);
      b.column(0).append_int64(i % 10 + 1);
      b.column(1).append_double(15.0 + static_cast<double>(i % 200) / 10.0);
      b.column(2).append_double(30.0 + static_cast<double>(i % 400) / 10.0);
      b.column(3).append_timestamp(now_us + i * 1000);
    }
    return b;
  };
  s.random = [](std::size_t rows, std::mt19937_64& rng) {
    Batch b(sensor_schema());
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < b.num_columns(); ++c) append_random(b.column(c), rng);
    return b;
  };
  s.malformed = [] {
    Batch b(sensor_schema());
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    const std::vector<double> doubles = {nan, inf, -inf, 1e308, -1e308, 0.0, -0.0, std::numeric_limits<double>::denorm_min()};
    const std::vector<int64_t> ints = {kMin, kMax, 0, -1, kMin, kMax, 1, 2};
    for (std::size_t i = 0; i < doubles.size(); ++i) {
      b.column(0).append_int64(ints[i]);
      b.column(1).append_double(doubles[i]);
      b.column(2).append_double(doubles[doubles.size() - 1 - i]);
      b.column(3).append_timestamp(ints[(i + 3) % ints.size()]);
    }
    append_null_row(b);
    return b;
  };
  return s;
}

// ---------------------------------------------------------------------------------------------
// The plugin's own shape. Random and malformed batches are derived from its sample, column by
// column. A string that names a path inside the check's directory keeps that prefix and gets a
// suffix without '/': a stage that deletes or renames its inputs must not reach anything else.

bool is_path_in(std::string_view v, const std::string& dir) { return !dir.empty() && v.starts_with(dir); }

std::string mutate_string(std::string_view v, const std::string& dir, std::mt19937_64& rng) {
  if (is_path_in(v, dir)) return std::string(v) + random_bytes(rng, 64, false);
  return random_bytes(rng, 256);
}

Shape plugin_shape(const PluginDescriptor& d, const Value& config, const std::string& dir) {
  Shape s;
  s.name = "the plugin's sample input";
  auto sample = [&d, config, dir](std::size_t rows, int64_t first, int64_t now_us) {
    auto b = d.sample_input(config, SampleRequest{rows, first, now_us, dir});
    if (!b) throw std::runtime_error("sample_input gave nothing");
    return std::move(*b);
  };
  s.valid = sample;
  s.random = [sample, dir](std::size_t rows, std::mt19937_64& rng) {
    const Batch base = sample(rows, 0, 1'750'000'000'000'000);
    Batch b(base.schema());
    for (std::size_t r = 0; r < base.num_rows(); ++r)
      for (std::size_t c = 0; c < b.num_columns(); ++c) {
        const Column& from = base.column(c);
        if (from.type() == Type::String && !from.is_null(r)) b.column(c).append_string(mutate_string(from.string_at(r), dir, rng));
        else append_random(b.column(c), rng);
      }
    return b;
  };
  s.malformed = [sample, dir] {
    const Batch base = sample(1, 0, 1'750'000'000'000'000);
    Batch b(base.schema());
    if (base.num_rows() == 0) return b;
    // One row per oddity; every other column keeps the sample's value.
    const std::vector<std::string> suffixes = {"", "\xff\xfe\xfd not utf-8", "\n,\"\r\n", std::string(1 << 20, 'a'), std::string(1, '\0')};
    const std::vector<int64_t> ints = {kMin, kMax, 0, -1};
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    const std::vector<double> doubles = {nan, inf, -inf, -0.0, 1e308};
    auto copy_row_except = [&](std::size_t except, const std::function<void(Column&)>& odd) {
      for (std::size_t c = 0; c < b.num_columns(); ++c) {
        if (c == except) odd(b.column(c));
        else b.column(c).append_from(base.column(c), 0);
      }
    };
    for (std::size_t c = 0; c < b.num_columns(); ++c) {
      const Column& from = base.column(c);
      switch (from.type()) {
        case Type::String: {
          const std::string v = from.is_null(0) ? std::string() : std::string(from.string_at(0));
          copy_row_except(c, [&](Column& col) { col.append_string(is_path_in(v, dir) ? dir + "/" : ""); });
          for (const auto& sfx : suffixes) copy_row_except(c, [&](Column& col) { col.append_string(v + sfx); });
          break;
        }
        case Type::Int64:
        case Type::Timestamp:
          for (int64_t v : ints) copy_row_except(c, [&](Column& col) { from.type() == Type::Int64 ? col.append_int64(v) : col.append_timestamp(v); });
          break;
        case Type::Float64:
          for (double v : doubles) copy_row_except(c, [&](Column& col) { col.append_double(v); });
          break;
        case Type::Bool: break;
      }
      copy_row_except(c, [](Column& col) { col.append_null(); });
    }
    append_null_row(b);
    return b;
  };
  return s;
}

}  // namespace

std::vector<Shape> shapes_for(const PluginDescriptor& d, const Value& config, const std::string& dir) {
  std::vector<Shape> shapes;
  bool has_sample = false;
  try {
    has_sample = d.sample_input && d.sample_input(config, SampleRequest{0, 0, 0, dir}).has_value();
  } catch (...) {
    has_sample = true;  // it has one, and the checks will say how it fails
  }
  if (has_sample) shapes.push_back(plugin_shape(d, config, dir));
  shapes.push_back(raw_shape());
  shapes.push_back(sensor_shape());
  return shapes;
}

}  // namespace flow::conformance
