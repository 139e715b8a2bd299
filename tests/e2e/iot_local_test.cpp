// The local IoT pipeline end to end, as a user runs it: flowctl in a real process with the real
// plugins. The archive is read back by an independent CSV reader and compared, field for field,
// with the stream the simulator's generator produces for the same seed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "reading_generator.hpp"
#include "support/process.hpp"

namespace {

namespace fs = std::filesystem;
using flow::test::Process;
using flow::test::TempDir;
using namespace std::chrono_literals;

// A minimal RFC 4180 reader, independent of the sink's writer.
std::vector<std::vector<std::string>> read_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    any = true;
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') cell += '"', ++i;
      else if (c == '"') quoted = false;
      else cell += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(cell));
      cell.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(cell));
      cell.clear();
      rows.push_back(std::move(row));
      row.clear();
      any = false;
    } else {
      cell += c;
    }
  }
  if (any) {
    row.push_back(std::move(cell));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<fs::path> files_matching(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().starts_with(prefix)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t regular_files_under(const fs::path& dir) {
  std::size_t n = 0;
  if (!fs::exists(dir)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) ++n;
  return n;
}

struct Expected {
  std::vector<std::vector<std::string>> valid;  // sensor_id, temperature, humidity, timestamp (as in the JSON)
  std::vector<int64_t> invalid_offsets;
};

// Pulls "key":value out of a valid message (the generator's own fixed layout).
std::string json_field(std::string_view json, const std::string& key) {
  const auto at = json.find("\"" + key + "\":");
  auto v = json.substr(at + key.size() + 3);
  if (v.front() == '"') return std::string(v.substr(1, v.find('"', 1) - 1));
  return std::string(v.substr(0, v.find_first_of(",}")));
}

Expected expected_stream(int64_t sensors, uint64_t seed, int cycle, int64_t records, double invalid_ratio) {
  flow_sim::GeneratorSettings s;
  s.sensors = sensors;
  s.seed = seed;
  s.cycle = cycle;
  s.invalid_ratio = invalid_ratio;
  s.start_micros = 1'749'978'721'000'000;  // 2025-06-15 09:12:01 UTC, the pipeline's start_time
  flow_sim::ReadingGenerator gen(s);
  Expected e;
  for (int64_t i = 0; i < records; ++i) {
    flow_sim::Reading r;
    const std::string msg(gen.next(r));
    if (r.invalid != flow_sim::InvalidKind::None) {
      e.invalid_offsets.push_back(r.seq);
      continue;
    }
    e.valid.push_back({json_field(msg, "sensor_id"), json_field(msg, "temperature"), json_field(msg, "humidity"),
                       json_field(msg, "timestamp")});
  }
  return e;
}

std::string pipeline_yaml(const fs::path& out, int64_t records, double invalid_ratio, const std::string& run = "") {
  return "name: iot-local-e2e\n" + run +
         "stages:\n"
         "  - id: sim\n    plugin: sensor-simulator\n"
         "    config: {sensors: 7, rate: 0, seed: 1234, max_records: " + std::to_string(records) +
         ", invalid_ratio: " + std::to_string(invalid_ratio) + ", start_time: \"2025-06-15 09:12:01\", batch_size: 256}\n"
         "  - id: validate\n    plugin: json-validator\n    input: sim\n"
         "    config:\n      on_invalid: dead-letter\n      schema:\n"
         "        sensor_id: {type: int, min: 0}\n"
         "        temperature: {type: float, min: -20, max: 50}\n"
         "        humidity: {type: float, min: 0, max: 100}\n"
         "        timestamp: {type: timestamp, format: \"%Y-%m-%d %H:%M:%S\"}\n"
         "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n"
         "    config: {path: " + (out / "parts").string() + ", checkpoint_dir: " + (out / "checkpoint").string() + ", window: 1s}\n"
         "  - id: archive\n    plugin: merge-archive\n    input: csv\n"
         "    config: {parts_dir: " + (out / "parts").string() + ", checkpoint_dir: " + (out / "checkpoint").string() +
         ", backup_dir: " + (out / "backup").string() + ", prefix: sensor_data}\n"
         "  - id: rejected\n    plugin: csv-window-sink\n    input: validate.invalid\n"
         "    config: {path: " + (out / "invalid").string() + ", checkpoint_dir: " + (out / "invalid-checkpoint").string() + ", window: 1s}\n"
         "  - id: rejected-archive\n    plugin: merge-archive\n    input: rejected\n"
         "    config: {parts_dir: " + (out / "invalid").string() + ", checkpoint_dir: " + (out / "invalid-checkpoint").string() +
         ", backup_dir: " + (out / "backup").string() + ", prefix: rejected}\n";
}

int run_flowctl(const TempDir& dir, const std::string& yaml, std::string* err = nullptr) {
  flow::test::write_file(dir / "p.yaml", yaml);
  Process p({FLOW_FLOWCTL, "--plugin-path", FLOW_PLUGIN_DIR, "run", (dir / "p.yaml").string()}, dir / "flowctl");
  auto rc = p.wait(240s);
  if (err) *err = p.err();
  return rc ? *rc : -1;
}

TEST(IotLocal, ArchiveHoldsExactlyTheValidRecordsAndDeadLetterTheRest) {
  TempDir dir;
  constexpr int64_t kRecords = 20000;
  std::string err;
  ASSERT_EQ(run_flowctl(dir, pipeline_yaml(dir.path(), kRecords, 0.05), &err), 0) << err;
  const auto expected = expected_stream(7, 1234, 0, kRecords, 0.05);
  ASSERT_GT(expected.invalid_offsets.size(), 0u);

  auto archives = files_matching(dir / "backup", "sensor_data_");
  ASSERT_EQ(archives.size(), 1u) << err;
  const auto rows = read_csv(flow::test::read_file(archives[0]));
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], (std::vector<std::string>{"sensor_id", "temperature", "humidity", "timestamp"}));
  ASSERT_EQ(rows.size() - 1, expected.valid.size());
  std::size_t headers = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    if (rows[i][0] == "sensor_id") ++headers;
    const auto& want = expected.valid[i - 1];
    ASSERT_EQ(rows[i].size(), 4u) << "row " << i;
    EXPECT_EQ(rows[i][0], want[0]) << "row " << i;
    EXPECT_EQ(std::stod(rows[i][1]), std::stod(want[1])) << "row " << i;  // the same double
    EXPECT_EQ(std::stod(rows[i][2]), std::stod(want[2])) << "row " << i;
    EXPECT_EQ(rows[i][3], want[3]) << "row " << i;
  }
  EXPECT_EQ(headers, 0u) << "a header row inside the merged file";

  // Every rejected record is in the dead-letter archive, with a reason, at its offset.
  auto rejected = files_matching(dir / "backup", "rejected_");
  ASSERT_EQ(rejected.size(), 1u);
  const auto dl = read_csv(flow::test::read_file(rejected[0]));
  ASSERT_FALSE(dl.empty());
  const auto& h = dl[0];
  const auto reason_col = std::find(h.begin(), h.end(), "reason") - h.begin();
  const auto offset_col = std::find(h.begin(), h.end(), "offset") - h.begin();
  ASSERT_LT(static_cast<std::size_t>(reason_col), h.size());
  ASSERT_LT(static_cast<std::size_t>(offset_col), h.size());
  std::vector<int64_t> offsets;
  for (std::size_t i = 1; i < dl.size(); ++i) {
    EXPECT_FALSE(dl[i][static_cast<std::size_t>(reason_col)].empty()) << "row " << i;
    offsets.push_back(std::stoll(dl[i][static_cast<std::size_t>(offset_col)]));
  }
  std::sort(offsets.begin(), offsets.end());
  EXPECT_EQ(offsets, expected.invalid_offsets);

  // Nothing left behind: no part files, no window manifests. The one file merge-archive keeps in
  // the checkpoint directory is archived-offsets.json, the offsets already archived (what a
  // restart must not write again).
  EXPECT_EQ(regular_files_under(dir / "parts"), 0u);
  EXPECT_EQ(regular_files_under(dir / "invalid"), 0u);
  EXPECT_EQ(regular_files_under(dir / "checkpoint" / "commits"), 0u);
  EXPECT_EQ(regular_files_under(dir / "checkpoint"), 1u);
  EXPECT_TRUE(fs::exists(dir / "checkpoint" / "archived-offsets.json"));
}

TEST(IotLocal, ThreeCyclesGiveThreeArchivesWithNoRecordInTwo) {
  TempDir dir;
  constexpr int64_t kRecords = 3000;
  std::string err;
  ASSERT_EQ(run_flowctl(dir, pipeline_yaml(dir.path(), kRecords, 0.0, "run: {duration: 30s, cycles: 3}\n"), &err), 0) << err;
  auto archives = files_matching(dir / "backup", "sensor_data_");
  ASSERT_EQ(archives.size(), 3u) << err;
  std::set<std::vector<std::string>> seen;
  std::size_t total = 0;
  for (const auto& a : archives) {
    const auto rows = read_csv(flow::test::read_file(a));
    ASSERT_EQ(rows.size(), static_cast<std::size_t>(kRecords) + 1) << a;
    EXPECT_EQ(rows[0], (std::vector<std::string>{"sensor_id", "temperature", "humidity", "timestamp"}));
    for (std::size_t i = 1; i < rows.size(); ++i) {
      EXPECT_TRUE(seen.insert(rows[i]).second) << "record in two archives: " << ::testing::PrintToString(rows[i]);
      ++total;
    }
  }
  EXPECT_EQ(total, static_cast<std::size_t>(3 * kRecords));
}

}  // namespace
