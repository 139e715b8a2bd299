// csv-window-sink through the stage harness, with real files in a temporary directory and the
// harness's fake clock driving the windows.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "flow/delivery.hpp"
#include "flow/testing/harness.hpp"
#include "test_util.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

namespace fs = std::filesystem;
using csv_test::parse_csv;
using csv_test::read_file;
using csv_test::TempDir;
using csv_test::visible_files;
using flow::testing::AckLog;
using flow::testing::StageHarness;
using namespace std::chrono_literals;

const flow::PluginDescriptor& desc() { return *flow_plugin_entry::descriptor(); }

flow::SchemaPtr sensor_schema() {
  static const auto s = flow::make_schema({{"sensor", flow::Type::String},
                                           {"ts", flow::Type::Timestamp},
                                           {"temperature", flow::Type::Float64},
                                           {"seq", flow::Type::Int64},
                                           {"ok", flow::Type::Bool}});
  return s;
}

// Rows first..first+n-1: sensor "s<i>", seq i, temperature i + 0.5.
flow::Batch sensor_batch(int64_t first, int64_t n, flow::Positions pos = {}) {
  flow::Batch b(sensor_schema());
  for (int64_t i = first; i < first + n; ++i) {
    b.column(0).append_string("s" + std::to_string(i));
    b.column(1).append_timestamp(1'750'000'000'000'000 + i * 1'000'000);
    b.column(2).append_double(static_cast<double>(i) + 0.5);
    b.column(3).append_int64(i);
    b.column(4).append_bool(i % 2 == 0);
  }
  b.positions() = std::move(pos);
  return b;
}

std::string config(const fs::path& dir, const std::string& extra = "") {
  return "path: " + dir.string() + "\nwindow: 5s\n" + extra;
}

// The seq column of every data row of the given parts, in order; checks each header.
std::vector<int64_t> seqs_of(const fs::path& dir, const std::vector<std::string>& parts) {
  std::vector<int64_t> out;
  for (const auto& p : parts) {
    const auto rows = parse_csv(read_file(dir / p));
    EXPECT_FALSE(rows.empty()) << p;
    if (rows.empty()) continue;
    EXPECT_EQ(rows[0], (std::vector<std::string>{"sensor", "ts", "temperature", "seq", "ok"})) << p;
    for (std::size_t i = 1; i < rows.size(); ++i) out.push_back(std::stoll(rows[i].at(3)));
  }
  return out;
}

std::vector<int64_t> iota(int64_t first, int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = first; i < first + n; ++i) v.push_back(i);
  return v;
}

TEST(CsvWindowSink, TwoWindowsMakeTwoPartsInOrder) {
  TempDir tmp;
  const auto dir = tmp.path() / "out";
  StageHarness h(desc(), config(dir));
  h.open();
  AckLog acks;
  h.push(sensor_batch(0, 10, acks.track(0, 10)));
  h.push(sensor_batch(10, 5, acks.track(10, 15)));
  h.advance(5s);
  h.push(sensor_batch(15, 7, acks.track(15, 22)));
  h.advance(5s);
  h.finish();

  const auto parts = visible_files(dir);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], "part-harness-run-c0000-000000-0000.csv");
  EXPECT_EQ(parts[1], "part-harness-run-c0000-000001-0000.csv");
  EXPECT_EQ(seqs_of(dir, {parts[0]}), iota(0, 15));
  EXPECT_EQ(seqs_of(dir, {parts[1]}), iota(15, 7));
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(h.counter("rows_written"), 22u);
  EXPECT_EQ(h.counter("parts_written"), 2u);
}

TEST(CsvWindowSink, FullRowContentIsWrittenAsRfc4180) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path()));
  h.open();
  flow::Batch b(flow::make_schema({{"s", flow::Type::String}, {"x", flow::Type::Float64}}));
  b.column(0).append_string("a,\"b\"\nc");
  b.column(1).append_double(0.1);
  b.column(0).append_null();
  b.column(1).append_null();
  h.push(std::move(b));
  h.finish();
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(read_file(tmp.path() / parts[0]), "s,x\n\"a,\"\"b\"\"\nc\",0.1\n,\n");
}

TEST(CsvWindowSink, EmptyWindowsWriteNothing) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path()));
  h.open();
  h.advance(30s);
  EXPECT_TRUE(visible_files(tmp.path()).empty());
  h.push(sensor_batch(0, 3));
  h.advance(5s);
  h.advance(30s);
  h.push(flow::Batch(sensor_schema()));  // an empty batch opens nothing either
  h.advance(10s);
  h.finish();
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0], "part-harness-run-c0000-000000-0000.csv");
  EXPECT_EQ(h.output().size(), 1u);
}

TEST(CsvWindowSink, MaxRowsSplitsAWindowIntoSeveralParts) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "max_rows: 3\n"));
  h.open();
  AckLog acks;
  h.push(sensor_batch(0, 7, acks.track(0, 7)));
  // Parts 0 and 1 are durable but batch [0,7) also lies in the third part, still open.
  EXPECT_EQ(visible_files(tmp.path()).size(), 2u);
  EXPECT_EQ(acks.acked_groups(), 0u);
  h.push(sensor_batch(7, 2, acks.track(7, 9)));
  h.advance(5s);
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "part-harness-run-c0000-000000-0000.csv");
  EXPECT_EQ(parts[1], "part-harness-run-c0000-000000-0001.csv");
  EXPECT_EQ(parts[2], "part-harness-run-c0000-000000-0002.csv");
  for (const auto& p : parts) EXPECT_EQ(seqs_of(tmp.path(), {p}).size(), 3u) << p;
  EXPECT_EQ(seqs_of(tmp.path(), parts), iota(0, 9));
  EXPECT_TRUE(acks.all_acked());
  // The split batch is listed in each part it has rows in.
  const auto m0 = read_file(tmp.path() / "_checkpoint/commits/part-harness-run-c0000-000000-0000.json");
  const auto m2 = read_file(tmp.path() / "_checkpoint/commits/part-harness-run-c0000-000000-0002.json");
  EXPECT_NE(m0.find("{\"source\":\"test\",\"partition\":0,\"begin\":0,\"end\":7}"), std::string::npos) << m0;
  EXPECT_NE(m2.find("{\"source\":\"test\",\"partition\":0,\"begin\":0,\"end\":9}"), std::string::npos) << m2;
}

TEST(CsvWindowSink, AcknowledgesOnlyAfterThePartIsRenamedIntoPlace) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path()));
  h.open();
  AckLog acks;
  // A second group whose callback looks at the directory at the moment of acknowledgement.
  auto seen = std::make_shared<std::vector<std::string>>();
  auto tmp_seen = std::make_shared<bool>(false);
  const fs::path dir = tmp.path();
  auto probe = flow::Positions::track({{"probe", 1, 0, 1}}, [seen, tmp_seen, dir](const auto&) {
    *seen = visible_files(dir);
    for (const auto& f : csv_test::all_files(dir))
      if (f.ends_with(".tmp")) *tmp_seen = true;
  });
  h.push(sensor_batch(0, 4, acks.track(0, 4)));
  h.push(sensor_batch(4, 4, std::move(probe)));
  h.advance(4s);
  EXPECT_EQ(acks.acked_groups(), 0u) << "acknowledged before the window closed";
  EXPECT_TRUE(visible_files(dir).empty()) << "a part is visible before its window closed";
  EXPECT_TRUE(seen->empty());
  h.advance(1s);
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(acks.acked(), (std::vector<flow::PositionRange>{{"test", 0, 0, 4}}));
  ASSERT_EQ(seen->size(), 1u) << "the probe was not acknowledged after the part was in place";
  EXPECT_EQ((*seen)[0], "part-harness-run-c0000-000000-0000.csv");
  EXPECT_FALSE(*tmp_seen);
}

TEST(CsvWindowSink, EmitsOneFileEventPerPart) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "max_rows: 4\n"));
  h.open();
  const auto t0 = h.now();
  h.push(sensor_batch(0, 6));
  h.advance(5s);
  h.push(sensor_batch(6, 1));
  h.finish();
  auto& events = h.output();
  ASSERT_EQ(events.size(), 3u);
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 3u);
  const int64_t start0 = std::chrono::duration_cast<std::chrono::microseconds>(t0.time_since_epoch()).count();
  const std::vector<int64_t> rows = {4, 2, 1};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& ev = events[i];
    ASSERT_EQ(*ev.schema(), *flow::file_event_schema());
    ASSERT_EQ(ev.num_rows(), 1u);
    const fs::path p(std::string(ev.column("path").string_at(0)));
    EXPECT_TRUE(p.is_absolute());
    EXPECT_EQ(p, tmp.path() / parts[i]);
    EXPECT_EQ(ev.column("rows").int64_at(0), rows[i]);
    EXPECT_EQ(ev.column("bytes").int64_at(0), static_cast<int64_t>(fs::file_size(p)));
    EXPECT_EQ(ev.column("header").string_at(0), "sensor,ts,temperature,seq,ok");
    const int64_t ws = i < 2 ? start0 : start0 + 5'000'000;
    EXPECT_EQ(ev.column("window_start").timestamp_at(0), ws);
    EXPECT_EQ(ev.column("window_end").timestamp_at(0), ws + 5'000'000);
  }
  EXPECT_EQ(h.counter("bytes_written"),
            fs::file_size(tmp.path() / parts[0]) + fs::file_size(tmp.path() / parts[1]) +
                fs::file_size(tmp.path() / parts[2]));
}

TEST(CsvWindowSink, FinishCommitsTheOpenWindow) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path()));
  h.open();
  AckLog acks;
  h.push(sensor_batch(0, 3, acks.track(0, 3)));
  h.advance(1s);
  EXPECT_TRUE(visible_files(tmp.path()).empty());
  h.finish();
  EXPECT_EQ(visible_files(tmp.path()).size(), 1u);
  EXPECT_TRUE(acks.all_acked());
}

TEST(CsvWindowSink, RemovesLeftoverTemporaryFilesOnOpen) {
  TempDir tmp;
  const auto commits = tmp.path() / "_checkpoint" / "commits";
  fs::create_directories(commits);
  csv_test::write_file(tmp.path() / ".part-old-c0000-000000-0000.csv.tmp", "half a part");
  csv_test::write_file(commits / ".part-old-c0000-000000-0000.json.tmp", "{\"ver");
  csv_test::write_file(tmp.path() / "notes.txt", "not ours");
  StageHarness h(desc(), config(tmp.path()));
  h.open();
  EXPECT_EQ(csv_test::all_files(tmp.path()), (std::vector<std::string>{".flow.lock", "notes.txt"}));  // + the lock
  EXPECT_TRUE(csv_test::all_files(commits).empty());
  bool logged = false;
  for (const auto& l : h.logs()) logged = logged || l.find(".part-old-c0000-000000-0000.csv.tmp") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST(CsvWindowSink, CheckpointManifestHoldsPartAndRanges) {
  TempDir tmp;
  const auto ckpt = tmp.path() / "ckpt";
  StageHarness h(desc(), config(tmp.path() / "out", "checkpoint_dir: " + ckpt.string() + "\n"));
  h.open();
  AckLog acks;
  h.push(sensor_batch(0, 5, acks.track(100, 105, 2, "sensors")));
  h.push(sensor_batch(5, 5, acks.track(105, 110, 2, "sensors")));
  h.push(sensor_batch(10, 1, acks.track(7, 8, 0, "sensors")));
  h.advance(5s);
  const auto entries = visible_files(ckpt / "commits");
  ASSERT_EQ(entries, std::vector<std::string>{"part-harness-run-c0000-000000-0000.json"});
  const auto m = read_file(ckpt / "commits" / entries[0]);
  EXPECT_NE(m.find("\"part\":\"part-harness-run-c0000-000000-0000.csv\""), std::string::npos) << m;
  EXPECT_NE(m.find("\"rows\":11"), std::string::npos) << m;
  EXPECT_NE(m.find("\"bytes\":" + std::to_string(fs::file_size(tmp.path() / "out" / "part-harness-run-c0000-000000-0000.csv"))),
            std::string::npos)
      << m;
  // Adjacent ranges of one partition are joined; partitions are listed in order.
  EXPECT_NE(m.find("\"ranges\":[{\"source\":\"sensors\",\"partition\":0,\"begin\":7,\"end\":8},"
                   "{\"source\":\"sensors\",\"partition\":2,\"begin\":100,\"end\":110}]"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("\"window_start\":\"2025-06-15T09:00:00Z\""), std::string::npos) << m;
}

TEST(CsvWindowSink, RestartWithTheSameRunContinuesNumbering) {
  TempDir tmp;
  {
    StageHarness h(desc(), config(tmp.path()));
    h.open();
    h.push(sensor_batch(0, 2));
    h.finish();
    h.close();
  }
  StageHarness h(desc(), config(tmp.path()));
  h.open();
  h.push(sensor_batch(2, 2));
  h.finish();
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1], "part-harness-run-c0000-000001-0000.csv");
  EXPECT_EQ(seqs_of(tmp.path(), parts), iota(0, 4));
}

TEST(CsvWindowSink, CycleAndPrefixAreInTheName) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "prefix: sensors\n"));
  h.set_cycle(3);
  h.open();
  h.push(sensor_batch(0, 1));
  h.finish();
  EXPECT_EQ(visible_files(tmp.path()), std::vector<std::string>{"sensors-harness-run-c0003-000000-0000.csv"});
}

TEST(CsvWindowSink, EscapesFormulaStringsButNotNumbers) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "escape_formulas: true\n"));
  h.open();
  flow::Batch b(flow::make_schema({{"s", flow::Type::String}, {"n", flow::Type::Int64}, {"x", flow::Type::Float64}}));
  b.column(0).append_string("=HYPERLINK(\"http://x\")");
  b.column(1).append_int64(-5);
  b.column(2).append_double(-1.5);
  h.push(std::move(b));
  h.finish();
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 1u);
  const auto rows = parse_csv(read_file(tmp.path() / parts[0]));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"'=HYPERLINK(\"http://x\")", "-5", "-1.5"}));
}

TEST(CsvWindowSink, FloatPrecisionRoundsFloatCellsOnly) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "float_precision: 2\n"));
  ASSERT_TRUE(h.check().empty());
  h.open();
  flow::Batch b(flow::make_schema({{"x", flow::Type::Float64}, {"n", flow::Type::Int64}}));
  b.column(0).append_double(20.320444444444448);
  b.column(1).append_int64(123456789);
  b.column(0).append_null();
  b.column(1).append_int64(-1);
  h.push(std::move(b));
  h.finish();
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(read_file(tmp.path() / parts[0]), "x,n\n20.32,123456789\n,-1\n");
}

TEST(CsvWindowSink, FloatPrecisionOutOfRangeIsRefusedNamingIt) {
  for (const char* bad : {"float_precision: 18\n", "float_precision: -2\n", "float_precision: two\n"}) {
    const auto errors = StageHarness(desc(), config(fs::path("/tmp/unused"), bad)).check();
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_NE(errors[0].message.find("float_precision"), std::string::npos) << errors[0].message;
  }
}

TEST(CsvWindowSink, FsyncOffStillWritesTheSameFiles) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "fsync: false\n"));
  h.open();
  h.push(sensor_batch(0, 3));
  h.finish();
  EXPECT_EQ(seqs_of(tmp.path(), visible_files(tmp.path())), iota(0, 3));
}

TEST(CsvWindowSink, LargeWindowIsWrittenInChunksAndComplete) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "fsync: false\n"));
  h.open();
  const int64_t n = 200'000;  // more than one 8 MiB chunk
  for (int64_t i = 0; i < n; i += 10'000) h.push(sensor_batch(i, 10'000));
  h.finish();
  const auto parts = visible_files(tmp.path());
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_GT(fs::file_size(tmp.path() / parts[0]), 8u << 20);
  EXPECT_EQ(seqs_of(tmp.path(), parts), iota(0, n));
}

TEST(CsvWindowSink, CheckRefusesBadOptions) {
  {
    StageHarness h(desc(), "path: \"\"\n");
    const auto errors = h.check();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].message.find("'path'"), std::string::npos);
    EXPECT_EQ(errors[0].where.line, 1);
  }
  {
    StageHarness h(desc(), "path: /tmp/x\nprefix: ../evil\n");
    const auto errors = h.check();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].message.find("'prefix'"), std::string::npos);
    EXPECT_EQ(errors[0].where.line, 2);
  }
  {
    StageHarness h(desc(), "window: 5s\n");
    const auto errors = h.check();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].message.find("missing required option 'path'"), std::string::npos);
  }
  {
    StageHarness h(desc(), "path: /tmp/x\nwindow: 0\n");
    EXPECT_EQ(h.check().size(), 1u);
  }
}

TEST(CsvWindowSink, OpenFailsWithThePathWhenItIsAFile) {
  TempDir tmp;
  csv_test::write_file(tmp.path() / "file", "x");
  StageHarness h(desc(), config(tmp.path() / "file"));
  try {
    h.open();
    FAIL() << "open() accepted a file as directory";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find((tmp.path() / "file").string()), std::string::npos) << e.what();
  }
}

}  // namespace

namespace {
// Throughput figure, not a check (run with --gtest_also_run_disabled_tests): 10M sensor rows
// in 10k-row batches, fsync off, one window.
TEST(CsvWindowSinkBench, DISABLED_TenMillionSensorRows) {
  TempDir tmp;
  StageHarness h(desc(), config(tmp.path(), "fsync: false\n"));
  h.open();
  std::vector<flow::Batch> batches;
  for (int i = 0; i < 10; ++i) batches.push_back(sensor_batch(i * 10'000, 10'000));
  const auto t0 = std::chrono::steady_clock::now();
  for (int round = 0; round < 100; ++round)
    for (const auto& b : batches) h.push(b.clone());
  h.finish();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto bytes = fs::file_size(tmp.path() / visible_files(tmp.path()).at(0));
  std::printf("10M rows, %.1f MB in %.2fs: %.1f M rows/s, %.0f MB/s\n", bytes / 1e6, s, 10.0 / s, bytes / 1e6 / s);
}
}  // namespace

// Exactly-once (docs/architecture.md): a restarted sink removes a part that has no manifest
// entry, publishes its committed end, and skips a replayed batch it already committed.
namespace {
std::shared_ptr<flow::DeliveryRegistry> replaying_registry(StageHarness& h) {
  auto reg = h.context().shared<flow::DeliveryRegistry>(flow::kDeliveryKey,
                                                        [] { return std::make_shared<flow::DeliveryRegistry>(); });
  reg->set_sinks_of("src", {{h.context().stage_id(), "csv-window-sink"}});
  reg->mark_replayable("test");
  return reg;
}
}  // namespace

TEST(CsvWindowSink, RestartRemovesUncommittedPartsAndSkipsCommittedReplays) {
  TempDir tmp;
  const auto dir = tmp.path() / "out";
  {
    StageHarness h(desc(), config(dir));
    replaying_registry(h);
    h.open();
    AckLog acks;
    h.push(sensor_batch(0, 10, acks.track(0, 10)));
    h.advance(5s);
    ASSERT_EQ(visible_files(dir).size(), 1u);
    EXPECT_TRUE(acks.all_acked());
    h.finish();
  }
  // A crash between a part's rename and its manifest entry leaves a part without an entry.
  const std::string orphan = "part-crashed-c0000-000000-0000.csv";
  csv_test::write_file(dir / orphan, "sensor,ts,temperature,seq,ok\ns99,x,1,99,true\n");

  StageHarness h(desc(), config(dir));
  auto reg = replaying_registry(h);
  h.open();
  EXPECT_FALSE(fs::exists(dir / orphan)) << "an uncommitted part must not survive a restart";
  const auto ends = reg->committed(h.context().stage_id());
  ASSERT_TRUE(ends);
  EXPECT_EQ(ends->at({"test", 0}), 10);
  AckLog acks;
  h.push(sensor_batch(0, 10, acks.track(0, 10)));   // the replay of what is committed: skipped
  h.push(sensor_batch(10, 5, acks.track(10, 15)));  // new
  h.finish();
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(seqs_of(dir, visible_files(dir)), iota(0, 15));
  EXPECT_EQ(h.counter("replayed_records_skipped"), 10u);
  EXPECT_EQ(reg->committed(h.context().stage_id())->at({"test", 0}), 15);
}

// Without a source that resumes from the sink, a "replay" is new data (a counter restarting at 0).
TEST(CsvWindowSink, PositionsOfOtherSourcesAreNeverSkipped) {
  TempDir tmp;
  const auto dir = tmp.path() / "out";
  for (int run = 0; run < 2; ++run) {
    StageHarness h(desc(), config(dir));
    h.open();
    h.push(sensor_batch(0, 3, AckLog().track(0, 3)));
    h.finish();
  }
  EXPECT_EQ(seqs_of(dir, visible_files(dir)).size(), 6u);
}
