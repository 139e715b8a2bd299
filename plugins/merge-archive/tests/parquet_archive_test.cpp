// merge-archive's Parquet format in real `flowctl run` processes: sensor-simulator ->
// json-validator -> csv-window-sink -> merge-archive. Every Parquet archive is read back with
// DuckDB and compared row for row with the CSV archive of the same run (parsed here, not by
// DuckDB); the column types and the compression are checked; crashes in the middle of a job
// leave exactly one complete archive after the next run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <zlib.h>

#include "duckdb_db.hpp"
#include "parquet_archive.hpp"
#include "flow/conformance/gtest.hpp"
#include "flow/testing/harness.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

namespace fs = std::filesystem;
using flow::test::Process;
using flow::test::read_file;
using flow::test::TempDir;
using flow::test::visible_files;
using flow::test::write_file;
using namespace std::chrono_literals;

// The conformance suite with the Parquet format on (the CSV format runs in tests/conformance).
[[maybe_unused]] const bool kConformance = [] {
  flow::conformance::Options o;
  o.library = FLOW_PLUGIN_FILE;
  o.sample_yaml = "parts_dir: ${TMPDIR}/parts\nbackup_dir: ${TMPDIR}/backup\nformats: [csv, parquet]\n";
  return flow::conformance::register_tests(o, "ConformanceParquet");
}();

struct Row {
  int64_t sensor_id;
  double temperature, humidity;
  std::string timestamp;
  bool operator==(const Row&) const = default;
};

std::ostream& operator<<(std::ostream& o, const Row& r) {
  return o << r.sensor_id << "," << r.temperature << "," << r.humidity << "," << r.timestamp;
}

std::string pipeline(const fs::path& root, const std::string& archive_extra, int records = 20'000) {
  return "name: parquet\nstages:\n"
         "  - id: sim\n    plugin: sensor-simulator\n"
         "    config: {sensors: 10, rate: 0, max_records: " + std::to_string(records) +
         ", seed: 7, start_time: '2025-06-15 09:12:01', batch_size: 500}\n"
         "  - id: validate\n    plugin: json-validator\n    input: sim\n"
         "    config:\n      schema:\n        sensor_id: int\n        temperature: float\n"
         "        humidity: float\n        timestamp: timestamp\n"
         "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n"
         "    config: {path: " + (root / "parts").string() + ", max_rows: 3000}\n"
         "  - id: archive\n    plugin: merge-archive\n    input: csv\n"
         "    config: {parts_dir: " + (root / "parts").string() + ", backup_dir: " + (root / "backup").string() +
         archive_extra + "}\n";
}

int run(const fs::path& yaml, std::vector<std::pair<std::string, std::string>> env = {}) {
  Process p({FLOW_FLOWCTL, "run", "-q", yaml.string()}, yaml.string() + ".log", std::move(env));
  const auto rc = p.wait(5min);
  EXPECT_TRUE(rc.has_value()) << "flowctl hung";
  if (rc && *rc != 0 && *rc != 128 + SIGKILL) ADD_FAILURE() << read_file(yaml.string() + ".log.err");
  return rc.value_or(-1);
}

std::vector<Row> csv_rows(const fs::path& csv) {
  std::istringstream in(read_file(csv));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "sensor_id,temperature,humidity,timestamp") << csv;
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string cell;
    while (std::getline(ls, cell, ',')) f.push_back(cell);
    if (f.size() != 4) {
      ADD_FAILURE() << csv << ": bad line '" << line << "'";
      continue;
    }
    rows.push_back({std::stoll(f[0]), std::strtod(f[1].c_str(), nullptr), std::strtod(f[2].c_str(), nullptr), f[3]});
  }
  return rows;
}

// The rows of a Parquet file, read by DuckDB, after checking its column types and compression.
std::vector<Row> parquet_rows(const fs::path& p) {
  flow_duckdb::Database db("");
  flow_duckdb::Connection c(db);
  const std::string src = "read_parquet(" + flow_duckdb::literal(p.string()) + ")";
  flow_duckdb::Result d;
  c.query("DESCRIBE SELECT * FROM " + src, d);
  std::string types;
  for (idx_t i = 0; i < d.rows(); ++i) types += d.str(0, i) + " " + d.str(1, i) + ";";
  EXPECT_EQ(types, "sensor_id BIGINT;temperature DOUBLE;humidity DOUBLE;timestamp TIMESTAMP;") << p;
  flow_duckdb::Result m;
  c.query("SELECT DISTINCT compression FROM parquet_metadata(" + flow_duckdb::literal(p.string()) + ")", m);
  EXPECT_EQ(m.rows(), 1u);
  if (m.rows() == 1) {
    EXPECT_EQ(m.str(0, 0), "ZSTD") << p;
  }
  flow_duckdb::Result r;
  c.query("SELECT sensor_id, temperature, humidity, strftime(timestamp, '%Y-%m-%d %H:%M:%S') FROM " + src, r);
  std::vector<Row> rows;
  for (idx_t i = 0; i < r.rows(); ++i) rows.push_back({r.int64(0, i), r.dbl(1, i), r.dbl(2, i), r.str(3, i)});
  return rows;
}

std::vector<std::string> with_ext(const fs::path& dir, const std::string& ext) {
  std::vector<std::string> out;
  for (const auto& f : visible_files(dir))
    if (f.ends_with(ext)) out.push_back(f);
  return out;
}

void expect_same_rows(const std::vector<Row>& parquet, const std::vector<Row>& csv, const std::string& what) {
  ASSERT_EQ(parquet.size(), csv.size()) << what;
  for (std::size_t i = 0; i < csv.size(); ++i) ASSERT_EQ(parquet[i], csv[i]) << what << " row " << i;
}

TEST(ParquetArchive, BothFormatsEveryParquetMatchesItsCsvRowForRow) {
  TempDir tmp;
  write_file(tmp / "p.yaml", pipeline(tmp.path(), ", formats: [csv, parquet]"));
  ASSERT_EQ(run(tmp / "p.yaml"), 0);
  // A second run adds a second archive pair.
  ASSERT_EQ(run(tmp / "p.yaml"), 0);
  const auto csvs = with_ext(tmp / "backup", ".csv");
  const auto parquets = with_ext(tmp / "backup", ".parquet");
  ASSERT_EQ(csvs.size(), 2u);
  ASSERT_EQ(parquets.size(), 2u);
  for (const auto& c : csvs) {
    const fs::path p = tmp / "backup" / (c.substr(0, c.size() - 4) + ".parquet");
    ASSERT_TRUE(fs::exists(p)) << p;
    const auto rows = csv_rows(tmp / "backup" / c);
    EXPECT_EQ(rows.size(), 20'000u);
    expect_same_rows(parquet_rows(p), rows, p.string());
  }
  EXPECT_TRUE(visible_files(tmp / "parts").empty());
  for (const auto& f : flow::test::all_files(tmp / "backup")) EXPECT_FALSE(f.ends_with(".tmp.parquet")) << f;
}

TEST(ParquetArchive, ParquetOnlyHoldsTheSameRowsAsACsvRunOfTheSameStream) {
  TempDir a, b;
  write_file(a / "p.yaml", pipeline(a.path(), ", format: parquet"));
  write_file(b / "p.yaml", pipeline(b.path(), ", gzip: false"));
  ASSERT_EQ(run(a / "p.yaml"), 0);
  ASSERT_EQ(run(b / "p.yaml"), 0);
  ASSERT_EQ(visible_files(a / "backup").size(), 1u);
  const auto parquets = with_ext(a / "backup", ".parquet");
  const auto csvs = with_ext(b / "backup", ".csv");
  ASSERT_EQ(parquets.size(), 1u);
  ASSERT_EQ(csvs.size(), 1u);
  expect_same_rows(parquet_rows(a / "backup" / parquets[0]), csv_rows(b / "backup" / csvs[0]), parquets[0]);
  EXPECT_NE(read_file(a / "p.yaml.log.err").find(".parquet"), std::string::npos);
}

// Killed after the CSV archive was renamed but before its Parquet file existed: the next run's
// recovery makes it, and the parts are deleted once.
TEST(ParquetArchive, KilledBeforeTheParquetFileTheNextRunMakesIt) {
  TempDir tmp;
  write_file(tmp / "p.yaml", pipeline(tmp.path(), ", formats: [csv, parquet]"));
  EXPECT_EQ(run(tmp / "p.yaml", {{"FLOW_MERGE_ARCHIVE_CRASH_AT", "archive-renamed"}}), 128 + SIGKILL);
  ASSERT_EQ(with_ext(tmp / "backup", ".csv").size(), 1u);
  EXPECT_TRUE(with_ext(tmp / "backup", ".parquet").empty());
  write_file(tmp / "q.yaml", pipeline(tmp.path(), ", formats: [csv, parquet]", 10));
  ASSERT_EQ(run(tmp / "q.yaml"), 0);
  const auto csvs = with_ext(tmp / "backup", ".csv");
  ASSERT_EQ(csvs.size(), 2u);
  for (const auto& c : csvs) {
    const fs::path p = tmp / "backup" / (c.substr(0, c.size() - 4) + ".parquet");
    ASSERT_TRUE(fs::exists(p)) << p;
    expect_same_rows(parquet_rows(p), csv_rows(tmp / "backup" / c), p.string());
  }
  EXPECT_TRUE(visible_files(tmp / "parts").empty());
}

// Parquet only, killed after the Parquet temporary file was written but before its rename: the
// next run merges the same parts again into one complete archive.
TEST(ParquetArchive, ParquetOnlyKilledBeforeTheRenameIsMergedAgain) {
  TempDir tmp;
  write_file(tmp / "p.yaml", pipeline(tmp.path(), ", format: parquet"));
  EXPECT_EQ(run(tmp / "p.yaml", {{"FLOW_MERGE_ARCHIVE_CRASH_AT", "archive-written"}}), 128 + SIGKILL);
  EXPECT_TRUE(visible_files(tmp / "backup").empty());
  write_file(tmp / "q.yaml", pipeline(tmp.path(), ", format: parquet", 10));
  ASSERT_EQ(run(tmp / "q.yaml"), 0);
  const auto parquets = with_ext(tmp / "backup", ".parquet");
  ASSERT_EQ(parquets.size(), 1u);
  EXPECT_EQ(parquet_rows(tmp / "backup" / parquets[0]).size(), 20'010u);
  EXPECT_EQ(visible_files(tmp / "backup").size(), 1u);
  EXPECT_TRUE(visible_files(tmp / "parts").empty());
  for (const auto& f : flow::test::all_files(tmp / "backup")) EXPECT_FALSE(f.ends_with(".tmp")) << f;
}

std::string describe(const fs::path& p) {
  flow_duckdb::Database db("");
  flow_duckdb::Connection c(db);
  flow_duckdb::Result d;
  c.query("DESCRIBE SELECT * FROM read_parquet(" + flow_duckdb::literal(p.string()) + ")", d);
  std::string types;
  for (idx_t i = 0; i < d.rows(); ++i) types += d.str(0, i) + " " + d.str(1, i) + ";";
  return types;
}

// A value far past DuckDB's type-detection sample that does not fit the sampled type: the
// conversion detects over the whole file instead of failing.
TEST(ParquetConvert, ALateValueOfAWiderTypeStillConverts) {
  TempDir tmp;
  std::string csv = "id,v,when\n";
  for (int i = 0; i < 300'000; ++i) csv += std::to_string(i) + "," + std::to_string(i % 50) + ",2025-06-15 09:12:01\n";
  write_file(tmp / "a.csv", csv + "300000,1.5,2025-06-15 09:12:02\n");
  EXPECT_EQ(merge_archive::parquet::convert(tmp / "a.csv", tmp / "a.parquet", {}), 300'001u);
  EXPECT_EQ(describe(tmp / "a.parquet"), "id BIGINT;v DOUBLE;when TIMESTAMP;");
  EXPECT_EQ(flow::test::visible_files(tmp.path()), (std::vector<std::string>{"a.csv", "a.parquet"}));
  {
    flow_duckdb::Database db("");
    flow_duckdb::Connection c(db);
    flow_duckdb::Result r;
    c.query("SELECT v FROM read_parquet(" + flow_duckdb::literal((tmp / "a.parquet").string()) + ") WHERE id = 300000", r);
    ASSERT_EQ(r.rows(), 1u);
    EXPECT_EQ(r.dbl(0, 0), 1.5);  // not rounded
  }
  // Not even a number: text.
  write_file(tmp / "b.csv", csv + "300000,n/a,2025-06-15 09:12:02\n");
  EXPECT_EQ(merge_archive::parquet::convert(tmp / "b.csv", tmp / "b.parquet", {}), 300'001u);
  EXPECT_EQ(describe(tmp / "b.parquet"), "id BIGINT;v VARCHAR;when TIMESTAMP;");
}

TEST(ParquetConvert, GzipInputAndForcedTypes) {
  TempDir tmp;
  gzFile gz = gzopen((tmp / "a.csv.gz").c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  const std::string csv = "id,v\n1,2.5\n2,3.5\n";
  gzwrite(gz, csv.data(), static_cast<unsigned>(csv.size()));
  gzclose(gz);
  EXPECT_EQ(merge_archive::parquet::sibling(tmp / "a.csv.gz"), tmp / "a.parquet");
  EXPECT_EQ(merge_archive::parquet::convert(tmp / "a.csv.gz", tmp / "a.parquet", {{"id", "INTEGER"}}), 2u);
  EXPECT_EQ(describe(tmp / "a.parquet"), "id INTEGER;v DOUBLE;");
}

// Every column typed: read as given, without the sniffer.
TEST(ParquetConvert, EveryColumnTypedIsReadAsGiven) {
  TempDir tmp;
  write_file(tmp / "a.csv", "sensor_id,temperature,timestamp\n1,20,2025-06-15 09:12:01\n2,21.5,2025-06-15 09:12:02\n");
  EXPECT_EQ(merge_archive::parquet::convert(
                tmp / "a.csv", tmp / "a.parquet",
                {{"sensor_id", "INTEGER"}, {"temperature", "DOUBLE"}, {"timestamp", "TIMESTAMP"}}),
            2u);
  EXPECT_EQ(describe(tmp / "a.parquet"), "sensor_id INTEGER;temperature DOUBLE;timestamp TIMESTAMP;");
  // A value that does not fit a given type is an error, not a silent cast.
  write_file(tmp / "b.csv", "sensor_id,temperature\n1,x\n");
  EXPECT_THROW(merge_archive::parquet::convert(tmp / "b.csv", tmp / "b.parquet",
                                               {{"sensor_id", "INTEGER"}, {"temperature", "DOUBLE"}}),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(tmp / "b.parquet"));
}

TEST(ParquetConvert, AnUnreadableCsvIsAnErrorNamingBothFilesAndLeavesNothing) {
  TempDir tmp;
  write_file(tmp / "a.csv", "id,v\n1,2\n");
  try {
    merge_archive::parquet::convert(tmp / "a.csv", tmp / "a.parquet", {{"v", "NOSUCHTYPE"}});
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find((tmp / "a.parquet").string()), std::string::npos) << m;
    EXPECT_NE(m.find((tmp / "a.csv").string()), std::string::npos) << m;
  }
  EXPECT_EQ(flow::test::all_files(tmp.path()), (std::vector<std::string>{"a.csv"}));
}

TEST(ParquetArchive, UnknownFormatsAreNamed) {
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(),
                                "parts_dir: /tmp/x/parts\nbackup_dir: /tmp/x/backup\nformats: [csv, xml]\n");
  const auto errors = h.check();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("'xml'"), std::string::npos) << errors[0].message;
  flow::testing::StageHarness g(*flow_plugin_entry::descriptor(),
                                "parts_dir: /tmp/x/parts\nbackup_dir: /tmp/x/backup\nformat: parket\n");
  const auto e2 = g.check();
  ASSERT_EQ(e2.size(), 1u);
  EXPECT_NE(e2[0].message.find("did you mean 'parquet'"), std::string::npos) << e2[0].message;
}

}  // namespace

namespace {

// A Parquet file already named like this job's twin (left by another configuration) shifts the
// job's names instead of being taken for the twin.
TEST(ParquetArchive, AnExistingParquetFileOfTheTwinsNameIsLeftAlone) {
  TempDir tmp;
  fs::create_directories(tmp / "parts");
  fs::create_directories(tmp / "backup");
  write_file(tmp / "parts" / "part-20250615T090000Z-abcd-c0000-000000-0000.csv", "sensor_id,temperature\n1,2.5\n");
  write_file(tmp / "backup" / "sensor_data_20250615_091201.parquet", "old");
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(),
                                "parts_dir: " + (tmp / "parts").string() + "\nbackup_dir: " +
                                    (tmp / "backup").string() + "\nformats: [csv, parquet]\n");
  h.set_now(std::chrono::system_clock::time_point(std::chrono::seconds(1'749'978'721)));  // 2025-06-15 09:12:01
  h.open();
  h.finish();
  h.close();
  EXPECT_EQ(visible_files(tmp / "backup"),
            (std::vector<std::string>{"sensor_data_20250615_091201.parquet", "sensor_data_20250615_091201_1.csv",
                                      "sensor_data_20250615_091201_1.parquet"}));
  EXPECT_EQ(read_file(tmp / "backup" / "sensor_data_20250615_091201.parquet"), "old");
  EXPECT_EQ(describe(tmp / "backup" / "sensor_data_20250615_091201_1.parquet"), "sensor_id BIGINT;temperature DOUBLE;");
}

}  // namespace
