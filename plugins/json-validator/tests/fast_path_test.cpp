// The on-demand fast path (fast_walk.hpp) against the DOM path it short-cuts: for valid messages,
// edge cases of numbers, strings and keys, and thousands of mutated messages, both give the same
// verdict, reason, message and values; and the fast path really takes the ordinary valid ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "flow/testing/harness.hpp"
#include "reading_generator.hpp"  // the simulator's stream (plugins/sensor-simulator/src)
#include "record_validator.hpp"

namespace {

using json_validator::RecordValidator;

RecordValidator make(const std::string& schema, bool reject_extra) {
  std::vector<flow::ConfigError> errors;
  auto fields = json_validator::parse_schema(flow::testing::yaml(schema), errors);
  EXPECT_TRUE(errors.empty());
  return RecordValidator(std::move(fields), reject_extra, 4096);
}

const char* kSchema = R"(
sensor_id: {type: int, min: 1, max: 100000}
temperature: {type: float, min: -50, max: 100}
humidity: {type: float, required: false}
timestamp: timestamp
status: {type: string, required: false, allowed: [ok, degraded]}
active: {type: bool, required: false}
level: {type: int, required: false, allowed: [1, 2, 3]}
ratio: {type: float, required: false, allowed: [0.5, 1]}
note: {type: string, required: false}
flag: {type: bool, required: false, allowed: [true]}
)";

const std::vector<std::string> kSeeds = {
    R"({"sensor_id":7,"temperature":-3.5,"humidity":66.2,"timestamp":"2025-06-15 09:12:01","status":"ok","active":true})",
    R"({"sensor_id":1,"temperature":29.5,"humidity":66.2,"timestamp":"2025-06-15 09:12:01"})",
    R"({"timestamp":"2025-01-01 00:00:00","humidity":0,"temperature":50,"sensor_id":12,"extra":[1,{"a":null}]})",
    R"({"sensor_id":3,"temperature":1e1,"humidity":1E-1,"timestamp":"2024-02-29 23:59:59","status":"d\u0065graded"})",
    R"( { "sensor_id" : 9 , "temperature" : 0 , "timestamp" : "2025-06-15 09:12:01" , "note" : "a\"b\\c\u00e9" } )",
    R"({"sensor_id":2,"temperature":-0,"humidity":-0.0,"timestamp":"2025-06-15 09:12:01","level":2,"ratio":1})",
    R"({"sensor_id":2,"temperature":3,"timestamp":"2025-06-15 09:12:01","x":1,"y":"s","z":true,"w":null,"v":-0})",
    R"({"sensor_id":2,"temperature":3,"timestamp":"2025-06-15 09:12:01","humidity":null,"flag":true,"active":false})",
};

// Hand-picked cases: each is close to a difference between the two parsers.
const std::vector<std::string> kEdges = {
    R"({"sensor_id":1,"temperature":-0,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":-0,"temperature":1,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":12345678901234567890,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":123456789012345678901,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":9007199254740993,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":9223372036854775807,"temperature":1,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":9223372036854775808,"temperature":1,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1.0,"temperature":1,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":01,"temperature":1,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":1e400,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":1e-400,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":"NaN","timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01"} )",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01"}x)",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01"}{})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01",})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","sensor_id":2})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":1,"q":2})",
    R"({"sensor\u005fid":1,"temperature":1,"timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":18446744073709551615})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":18446744073709551616})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":-9223372036854775809})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":[1,]})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":"\x"})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":"\ud800"})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":nul})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","q":truex})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","note":"\ud83d\ude00"})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01","note":"tab	in"})",
    R"({"sensor_id":1,"temperature":1,"timestamp":null})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-02-30 00:00:00"})",
    R"({"sensor_id":1,"temperature":1 "timestamp":"2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":1,"timestamp" "2025-06-15 09:12:01"})",
    R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01")",
    R"([{"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01"}])",
    R"("just a string")",
    R"({})",
    "{\"sensor_id\":1,\"temperature\":1,\"timestamp\":\"2025-06-15 09:12:01\",\"note\":\"\xff\"}",
};

std::string mutate(std::string s, std::mt19937_64& rng) {
  static const std::string kJsonish = "{}[]\":,.-+eE0123456789 \\tfnul\x80\xc3\xff";
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const std::size_t at = rng() % s.size();
    switch (rng() % 6) {
      case 0: s[at] = kJsonish[rng() % kJsonish.size()]; break;
      case 1: s.erase(at, 1 + rng() % 4); break;
      case 2: s.insert(at, 1, kJsonish[rng() % kJsonish.size()]); break;
      case 3: s.resize(at); break;
      case 4: s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 12)); break;
      default: s[at] = static_cast<char>(rng() & 0xff); break;
    }
  }
  return s;
}

// In place: the message inside a larger buffer, followed by bytes that are not padding (as in a
// batch's column, where the next messages follow).
bool validate_in_place(RecordValidator& v, const std::string& raw, std::mt19937_64& rng) {
  static std::string buf;
  buf = raw;
  static const std::string kTail = "\"}]{[,:0123456789 \\eE-+.tfnul\x80\xff";
  for (int i = 0; i < 80; ++i) buf.push_back(kTail[rng() % kTail.size()]);
  return v.validate(std::string_view(buf.data(), raw.size()), buf.size());
}

void expect_same(RecordValidator& fast, RecordValidator& dom, const std::string& raw) {
  static std::mt19937_64 rng(99);
  const bool in_place = validate_in_place(fast, raw, rng);
  ASSERT_EQ(in_place, dom.validate(raw)) << "in place: " << raw << "\nDOM: " << dom.message();
  if (!in_place) {
    EXPECT_EQ(fast.message(), dom.message()) << raw;
  }
  const bool a = fast.validate(raw);
  const bool b = dom.validate(raw);
  ASSERT_EQ(a, b) << raw << "\nDOM: " << dom.message();
  if (!a) {
    EXPECT_EQ(fast.reason(), dom.reason()) << raw;
    EXPECT_EQ(fast.message(), dom.message()) << raw;
    return;
  }
  for (std::size_t f = 0; f < fast.fields().size(); ++f) {
    const auto &x = fast.slots()[f], &y = dom.slots()[f];
    ASSERT_EQ(x.present, y.present) << raw << " field " << fast.fields()[f].name;
    if (!x.present) continue;
    EXPECT_EQ(x.i, y.i) << raw;
    EXPECT_EQ(std::memcmp(&x.d, &y.d, sizeof x.d), 0) << raw << ": " << x.d << " vs " << y.d;  // -0.0 too
    EXPECT_EQ(x.b, y.b) << raw;
    EXPECT_EQ(x.s, y.s) << raw;
  }
}

// Which fast paths a validator under test has: both (the default), the on-demand walk alone, or
// the plain scan alone (as on a CPU without AVX2), so that each is compared with the DOM parser
// on every message.
enum class Paths { Both, WalkOnly, PlainOnly };

void use_paths(RecordValidator& v, Paths p) {
  v.use_fast_path(p != Paths::PlainOnly);
  v.use_plain_scan(p != Paths::WalkOnly);
}

TEST(FastPath, AgreesWithTheDomParserOnEdgesAndMutations) {
  for (Paths paths : {Paths::Both, Paths::WalkOnly, Paths::PlainOnly})
    for (bool reject_extra : {false, true}) {
      RecordValidator fast = make(kSchema, reject_extra), dom = make(kSchema, reject_extra);
      if (!fast.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
      use_paths(fast, paths);
      ASSERT_FALSE(dom.use_fast_path(false));
      for (const auto& s : kSeeds) expect_same(fast, dom, s);
      for (const auto& s : kEdges) expect_same(fast, dom, s);
      std::mt19937_64 rng(reject_extra ? 7 : 20250615);
      for (int i = 0; i < 40000; ++i) expect_same(fast, dom, mutate(kSeeds[rng() % kSeeds.size()], rng));
      EXPECT_GT(fast.fast_accepted(), 50u);  // the seeds, and mutations that stay valid (digits, spaces)
      if (paths == Paths::WalkOnly) {
        EXPECT_EQ(fast.plain_accepted(), 0u);
      } else {
        EXPECT_GT(fast.plain_accepted(), 50u);
      }
      if (paths == Paths::PlainOnly) {
        EXPECT_EQ(fast.plain_accepted(), fast.fast_accepted());
      }
      EXPECT_EQ(dom.fast_accepted(), 0u);
      if (HasFatalFailure()) return;
    }
}

// The plain scan takes the form producers write, and leaves every other valid form to the walk
// (which the DOM parser agrees with): what it takes and what it leaves, counted one by one.
TEST(FastPath, PlainScanTakesThePlainFormAndLeavesTheRest) {
  const std::string t = R"("timestamp":"2025-06-15 09:12:01")";
  const std::vector<std::string> taken = {
      R"({"sensor_id":7,"temperature":-3.5,"humidity":66.2,)" + t + "}",
      R"({"sensor_id":1,"temperature":29,)" + t + "}",
      " \t\r\n{ \"sensor_id\" :\n1 , \"temperature\": 0.0 ,  " + t + " , \"humidity\":null } \n",
      R"({)" + t + R"(,"temperature":-0.5,"sensor_id":100000})",  // out of schema order
      R"({"sensor_id":2,"temperature":1,"humidity":0.00000000000001,)" + t + "}",  // 15 digits
      R"({"sensor_id":2,"temperature":1,"humidity":-99999999999.9999,)" + t + "}",
      R"({"sensor_id":2,"temperature":-0.0,"level":3,"ratio":0.5,)" + t + "}",
      "{\"sensor_id\":2,\"temperature\":1,\"status\":\"ok\",\"active\":false,\"flag\":true,\"note\":\"~ \x7f!\"," + t +
          "}",
      R"({"sensor_id":2,"temperature":1,"note":"","active":null,"level":null,)" + t + "}",
  };
  const std::vector<std::string> left = {
      R"({"sensor_id":1,"temperature":1e1,)" + t + "}",                  // exponent
      R"({"sensor_id":1,"temperature":1,"humidity":0.000000000000001,)" + t + "}",  // 16 digits
      R"({"sensor_id":1,"temperature":1,"humidity":1234567890123456,)" + t + "}",   // 16 digits
      R"({"sensor_id":1,"temperature":-0,)" + t + "}",                   // -0 as an integer
      R"({"sensor_id":1,"temperature":1,"note":"caf\u00e9",)" + t + "}",  // an escape
      R"({"sensor_id":1,"temperature":1,"note":"caf\u00c3\u00a9",)" + t + "}",
      "{\"sensor_id\":1,\"temperature\":1,\"note\":\"caf\xc3\xa9\"," + t + "}",  // UTF-8
      R"({"sensor\u005fid":1,"temperature":1,)" + t + "}",              // an escaped key
      R"({"sensor_id":1,"temperature":1,"other":2,)" + t + "}",         // a key not in the schema
  };
  for (bool reject_extra : {false, true}) {
    RecordValidator fast = make(kSchema, reject_extra), dom = make(kSchema, reject_extra);
    fast.use_fast_path(true);
    dom.use_fast_path(false);
    for (const auto& m : taken) {
      const uint64_t before = fast.plain_accepted();
      expect_same(fast, dom, m);
      EXPECT_EQ(fast.plain_accepted(), before + 2) << m;  // in place and copied
    }
    for (const auto& m : left) {
      const uint64_t before = fast.plain_accepted();
      expect_same(fast, dom, m);
      EXPECT_EQ(fast.plain_accepted(), before) << m;
      if (!reject_extra || m.find("other") == std::string::npos) {
        EXPECT_TRUE(dom.validate(m)) << m << ": " << dom.message();  // valid, only not plain
      }
    }
  }
}

TEST(FastPath, TakesTheSimulatorsValidMessages) {
  RecordValidator v = make(R"(
sensor_id: {type: int, min: 1}
temperature: {type: float, min: -20, max: 50}
humidity: {type: float, min: 0, max: 100}
timestamp: timestamp
)", true);
  RecordValidator dom = make(R"(
sensor_id: {type: int, min: 1}
temperature: {type: float, min: -20, max: 50}
humidity: {type: float, min: 0, max: 100}
timestamp: timestamp
)", true);
  if (!v.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
  dom.use_fast_path(false);
  flow_sim::GeneratorSettings g;
  g.sensors = 100;
  g.seed = 42;
  g.invalid_ratio = 0.2;  // the simulator's own bad messages too: each must be rejected alike
  g.start_micros = *flow_sim::parse_start_time("2025-06-15 09:12:01");
  flow_sim::ReadingGenerator gen(g);
  flow_sim::Reading r;
  uint64_t valid = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string m(gen.next(r));
    expect_same(v, dom, m);
    if (dom.validate(m)) ++valid;
  }
  EXPECT_GT(valid, 10000u);
  EXPECT_EQ(v.fast_accepted(), 2 * valid);  // expect_same validates each twice: in place and copied
  EXPECT_EQ(v.plain_accepted(), v.fast_accepted());  // all in the plain form
}

}  // namespace

namespace {

// More than 64 fields: the walker tracks keys 64 and on apart from the first 64 (a bit mask).
TEST(FastPath, SchemasOfMoreThan64Fields) {
  std::string schema;
  for (int i = 0; i < 70; ++i)
    schema += "f" + std::to_string(i) + (i % 10 == 9 ? ": {type: int, required: false}\n" : ": int\n");
  RecordValidator fast = make(schema, true), dom = make(schema, true);
  if (!fast.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
  dom.use_fast_path(false);
  auto message = [](const std::vector<int>& order, const std::string& extra) {
    std::string m = "{";
    for (int i : order) m += (m.size() > 1 ? "," : "") + std::string("\"f") + std::to_string(i) + "\":" + std::to_string(i * 3);
    return m + extra + "}";
  };
  std::vector<int> all(70);
  for (int i = 0; i < 70; ++i) all[static_cast<std::size_t>(i)] = i;
  std::vector<int> reversed(all.rbegin(), all.rend());
  std::vector<int> no_69(all.begin(), all.end() - 1), no_68(all.begin(), all.end());
  no_68.erase(no_68.begin() + 68);
  const std::vector<std::string> cases = {
      message(all, ""), message(reversed, ""),
      message(no_69, ""),                     // f69 is optional
      message(no_69, R"(,"f69":null)"),       // null optional
      message(no_68, ""),                     // f68 is required: missing_field
      message(all, R"(,"f66":1)"),            // duplicate beyond the first 64
      message(all, R"(,"f3":1)"),             // duplicate within the first 64
      message(no_69, R"(,"f69":1,"f69":2)"),  // duplicate of an optional one beyond 64
  };
  for (const auto& c : cases) expect_same(fast, dom, c);
  EXPECT_EQ(fast.fast_accepted(), 2u * 4u);  // the four valid ones, each twice (in place, copied)
  ASSERT_TRUE(fast.validate(message(no_69, "")));
  EXPECT_FALSE(fast.slots()[69].present);
  EXPECT_EQ(fast.slots()[68].i, 68 * 3);
  ASSERT_FALSE(fast.validate(message(all, R"(,"f66":1)")));
  EXPECT_EQ(fast.reason(), json_validator::Reason::DuplicateKey);
  ASSERT_FALSE(fast.validate(message(no_68, "")));
  EXPECT_EQ(fast.message(), "missing required field 'f68'");
}

// Key names around the 32-byte compare (31 bytes and its quote fit; longer ones are compared
// by name), and string values around the 32-byte scan for their closing quote or a backslash.
TEST(FastPath, LongKeysAndStringsAroundThe32ByteBlocks) {
  const std::string k31(31, 'k'), k32(32, 'm'), k40 = std::string(39, 'n') + "x";
  const std::string schema = k31 + ": string\n" + k32 + ": {type: string, required: false}\n" + k40 +
                             ": {type: int, required: false}\nshort: {type: string, required: false}\n";
  RecordValidator fast = make(schema, true), dom = make(schema, true);
  if (!fast.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
  dom.use_fast_path(false);
  uint64_t valid = 0;
  for (std::size_t len : {0, 1, 30, 31, 32, 33, 63, 64, 65, 100}) {
    for (std::size_t escape_at : {std::string::npos, std::size_t{0}, len / 2, len}) {
      std::string text(len, 'v');
      if (escape_at != std::string::npos) text.insert(std::min(escape_at, text.size()), "\\\"");
      const std::string s = "\"" + text + "\"";
      const std::vector<std::string> messages = {
          "{\"" + k31 + "\":" + s + ",\"" + k32 + "\":" + s + ",\"" + k40 + "\":7,\"short\":" + s + "}",
          "{\"" + k40 + "\":1,\"" + k32 + "\":" + s + ",\"" + k31 + "\":" + s + "}",
          "{\"" + k31 + "x\":" + s + "}",                         // a longer key: unknown field
          "{\"" + k31.substr(1) + "\":" + s + "}",                // a shorter one
          "{\"" + k31 + "\":" + s + ",\"" + k40.substr(0, 39) + "y\":1}",  // last byte differs
          "{\"" + k31 + "\":" + s + ",\"" + k31 + "\":" + s + "}",  // duplicate
      };
      for (const auto& m : messages) {
        expect_same(fast, dom, m);
        if (dom.validate(m)) ++valid;
      }
      ASSERT_TRUE(fast.validate(messages[0])) << fast.message();
      std::string unescaped(len, 'v');
      if (escape_at != std::string::npos) unescaped.insert(std::min(escape_at, unescaped.size()), "\"");
      EXPECT_EQ(fast.slots()[0].s, unescaped);
      EXPECT_EQ(fast.slots()[3].s, unescaped);
      EXPECT_EQ(fast.slots()[2].i, 7);
    }
  }
  EXPECT_EQ(valid, 10u * 4u * 2u);
  EXPECT_EQ(fast.fast_accepted(), valid * 2 + 10u * 4u);  // expect_same twice, and the check above
}

// The timestamp cache: texts with the same last two characters share a place (the later must not
// take the earlier's value), short texts (under 8 bytes) and texts too long to be kept.
TEST(FastPath, TimestampCacheKeepsTextsApart) {
  for (const char* format : {"%Y-%m-%d %H:%M:%S", "%s", "%Y-%m-%dT%H:%M:%S.%f at an offset of %z hours"}) {
    const std::string schema = std::string("t: {type: timestamp, format: \"") + format + "\"}\n";
    RecordValidator fast = make(schema, true), dom = make(schema, true);
    if (!fast.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
    dom.use_fast_path(false);
    std::mt19937_64 rng(3);
    for (int i = 0; i < 3000; ++i) {
      const int64_t secs = 1'749'978'721 + static_cast<int64_t>(rng() % 50) * 86'400 + static_cast<int64_t>(rng() % 3) * 100;
      std::string text;
      int64_t micros = 0;  // what the text says, computed here (both paths share the cache)
      if (std::string(format) == "%s") {
        const int64_t n = rng() % 2 ? secs % 10'000'000 : secs % 1000;  // 1 to 7 digits
        text = std::to_string(n);
        micros = n * 1'000'000;
      } else {
        const std::time_t t = static_cast<std::time_t>(secs);
        std::tm tm{};
        gmtime_r(&t, &tm);
        char buf[64];
        text.assign(buf, std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm));
        micros = secs * 1'000'000;
        if (std::string(format) != "%Y-%m-%d %H:%M:%S") {  // 48 bytes and more: never kept
          const int64_t ms = static_cast<int64_t>(rng() % 900) + 100, hours = static_cast<int64_t>(rng() % 3);
          text[10] = 'T';
          text += "." + std::to_string(ms) + " at an offset of +0" + std::to_string(hours) + ":00 hours";
          micros += ms * 1000 - hours * 3'600'000'000;
        }
      }
      const std::string m = "{\"t\":\"" + text + "\"}";
      ASSERT_TRUE(dom.validate(m)) << m << ": " << dom.message();
      ASSERT_TRUE(fast.validate(m)) << m << ": " << fast.message();
      ASSERT_EQ(fast.slots()[0].i, micros) << m;
      ASSERT_EQ(dom.slots()[0].i, micros) << m;
    }
    EXPECT_EQ(fast.fast_accepted(), 3000u);
  }
}


// validate_rows(): rows that lie back to back in a column are walked in windows of one
// document stream; each row's verdict, reason, message and values must be those of the row
// validated alone, whatever its neighbours are (a row that is not exactly one document must not
// take its neighbour's bytes or give its own to them).
struct Verdict {
  bool valid = false;
  json_validator::Reason reason{};
  std::string message;
  std::vector<json_validator::Slot> slots;
  std::vector<std::string> texts;  // the slots' strings, copied (views into the parser)
};

Verdict verdict_of(RecordValidator& v, bool valid) {
  Verdict out;
  out.valid = valid;
  if (!valid) {
    out.reason = v.reason();
    out.message = v.message();
    return out;
  }
  out.slots = v.slots();
  for (std::size_t f = 0; f < out.slots.size(); ++f) {  // only strings hold text (other slots: stale views)
    const auto type = v.fields()[f].type;
    const bool text = type == json_validator::FieldType::String || type == json_validator::FieldType::Timestamp;
    out.texts.emplace_back(out.slots[f].present && text ? out.slots[f].s : std::string_view());
  }
  return out;
}

void expect_same_verdict(const Verdict& a, const Verdict& b, const std::string& raw) {
  ASSERT_EQ(a.valid, b.valid) << raw << "\nalone: " << b.message << "\nin a stream: " << a.message;
  if (!a.valid) {
    EXPECT_EQ(a.reason, b.reason) << raw;
    EXPECT_EQ(a.message, b.message) << raw;
    return;
  }
  for (std::size_t f = 0; f < a.slots.size(); ++f) {
    ASSERT_EQ(a.slots[f].present, b.slots[f].present) << raw << " field " << f;
    if (!a.slots[f].present) continue;
    EXPECT_EQ(a.slots[f].i, b.slots[f].i) << raw;
    EXPECT_EQ(std::memcmp(&a.slots[f].d, &b.slots[f].d, sizeof(double)), 0) << raw;
    EXPECT_EQ(a.slots[f].b, b.slots[f].b) << raw;
    EXPECT_EQ(a.texts[f], b.texts[f]) << raw;
  }
}

// Validates `rows` laid out as a column (no padding after the last: as a batch holds them, so
// the last rows are taken alone) through validate_rows(), and each alone with `alone`.
void expect_rows_as_alone(RecordValidator& v, RecordValidator& alone, const std::vector<std::string>& rows,
                          std::size_t padding = 0) {
  std::string chars;
  std::vector<uint32_t> offsets{0};
  for (const auto& r : rows) {
    chars += r;
    offsets.push_back(static_cast<uint32_t>(chars.size()));
  }
  const std::size_t size = chars.size();
  chars.append(padding, ' ');
  struct Ctx {
    RecordValidator* v;
    std::vector<Verdict> got;
    std::vector<std::size_t> order;
  } ctx{&v, {}, {}};
  ASSERT_TRUE(v.validate_rows(chars.data(), size + padding, offsets.data(), 0, rows.size(),
                              [](void* p, std::size_t row, bool valid) {
                                auto& c = *static_cast<Ctx*>(p);
                                c.order.push_back(row);
                                c.got.push_back(verdict_of(*c.v, valid));
                                return true;
                              },
                              &ctx));
  ASSERT_EQ(ctx.got.size(), rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    ASSERT_EQ(ctx.order[r], r);
    const bool ok = alone.validate(rows[r]);
    expect_same_verdict(ctx.got[r], verdict_of(alone, ok), rows[r]);
  }
}

TEST(FastPath, RowsInAStreamAgreeWithRowsAlone) {
  for (bool plain : {false, true})
  for (bool reject_extra : {false, true}) {
    RecordValidator v = make(kSchema, reject_extra), alone = make(kSchema, reject_extra);
    if (!v.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
    v.use_plain_scan(plain);  // off: every valid row from a stream; on: the plain ones scanned
    std::mt19937_64 rng(reject_extra ? 31 : 1234);
    // Awkward neighbours: rows that are not one document, or would join with the next one.
    const std::vector<std::string> joiners = {"", " ", "{", "}", "{\"a\":", "\"", "\\", "[", "]", "1", "x",
                                              "\xc3", "\xa9", "{}{}", "{} ", " {}", "\n", "null", "{\"note\":\"\xc3"};
    for (int round = 0; round < 400; ++round) {
      std::vector<std::string> rows;
      const int n = 1 + static_cast<int>(rng() % 300);
      // From an awkward row in every few to one in a few hundred: dense ones test the way back
      // from a stream that lost track, sparse ones long streams with awkward rows inside.
      const uint64_t every = 4 + static_cast<uint64_t>(round % 50) * 8;
      for (int i = 0; i < n; ++i) {
        switch (rng() % every) {
          case 0: rows.push_back(kEdges[rng() % kEdges.size()]); break;
          case 1: rows.push_back(mutate(kSeeds[rng() % kSeeds.size()], rng)); break;
          case 2: rows.push_back(joiners[rng() % joiners.size()]); break;
          case 3: {  // a valid message split over two rows, the second followed by another message
            const std::string& m = kSeeds[1 + rng() % (kSeeds.size() - 1)];
            const std::size_t at = 1 + rng() % (m.size() - 1);
            rows.push_back(m.substr(0, at));
            rows.push_back(m.substr(at) + (rng() % 2 ? " " : "") + kSeeds[1]);
            break;
          }
          case 4: {  // a valid message followed by the start of another, or by awkward bytes
            const std::string& m = kSeeds[1];
            rows.push_back(m + (rng() % 2 ? m.substr(0, 1 + rng() % (m.size() - 1)) : joiners[rng() % joiners.size()]));
            break;
          }
          default: rows.push_back(kSeeds[rng() % kSeeds.size()]); break;
        }
      }
      expect_rows_as_alone(v, alone, rows, round % 2 ? 64 : 0);
      if (HasFatalFailure()) return;
    }
    if (plain) {
      EXPECT_GT(v.plain_accepted(), 10000u);  // most valid rows were plain
    } else {
      EXPECT_GT(v.stream_accepted(), 10000u);  // most valid rows came from streams
    }
  }
}

// The last row of a window followed, in the same row, by the start of another document (which
// a stream leaves out as truncated): not one document, so judged alone.
TEST(FastPath, RowsInAStreamEndingInAPartOfADocument) {
  RecordValidator v = make(kSchema, false), alone = make(kSchema, false);
  if (!v.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
  v.use_plain_scan(false);  // every row through the stream
  for (const std::string tail : {"[1,", "{\"a\":", "{", "[", "{\"sensor_id\":1"}) {
    std::vector<std::string> rows(10, kSeeds[1]);
    rows.push_back(kSeeds[1] + tail);
    rows.push_back("");  // ends the window
    rows.push_back(kSeeds[1]);
    expect_rows_as_alone(v, alone, rows, 64);
  }
  EXPECT_GE(v.stream_accepted(), 50u);
}

// A row on which the on-demand parser gives up for good (its iterator is dead): the stream stops
// there instead of moving on (simdjson would read through a null parser), the rest judged alone.
TEST(FastPath, RowsInAStreamAfterARowTheParserGivesUpOn) {
  RecordValidator v = make(kSchema, false), alone = make(kSchema, false);
  if (!v.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
  v.use_plain_scan(false);  // every row through the stream
  for (const std::string bad : {R"({"sensor_id":1,"temperature":1 "timestamp":"2025-06-15 09:12:01"})",
                                R"({"sensor_id":1,"temperature":1,"timestamp" "2025-06-15 09:12:01"})",
                                R"({"sensor_id":1,"temperature":[1,{"a":}],"timestamp":"2025-06-15 09:12:01"})",
                                R"({"sensor_id":1,"temperature":1,"timestamp":"2025-06-15 09:12:01",})"}) {
    std::vector<std::string> rows;
    for (int i = 0; i < 7; ++i) rows.push_back(i == 3 ? bad : kSeeds[1]);
    expect_rows_as_alone(v, alone, rows, 64);
  }
  EXPECT_GE(v.stream_accepted(), 12u);
}

TEST(FastPath, RowsInAStreamStopWhenTold) {
  RecordValidator v = make(kSchema, false);
  if (!v.use_fast_path(true)) GTEST_SKIP() << "this CPU cannot run simdjson's haswell kernel";
  v.use_plain_scan(false);
  std::string chars;
  std::vector<uint32_t> offsets{0};
  for (int i = 0; i < 200; ++i) {
    chars += kSeeds[1];
    offsets.push_back(static_cast<uint32_t>(chars.size()));
  }
  chars.append(64, ' ');
  std::vector<std::size_t> seen;
  EXPECT_FALSE(v.validate_rows(chars.data(), chars.size(), offsets.data(), 10, 200,
                               [](void* p, std::size_t row, bool valid) {
                                 auto& s = *static_cast<std::vector<std::size_t>*>(p);
                                 s.push_back(row);
                                 return valid && row < 57;
                               },
                               &seen));
  ASSERT_EQ(seen.size(), 48u);  // rows 10 .. 57, then stopped
  EXPECT_EQ(seen.front(), 10u);
  EXPECT_EQ(seen.back(), 57u);
  EXPECT_GT(v.stream_accepted(), 40u);
}

}  // namespace
