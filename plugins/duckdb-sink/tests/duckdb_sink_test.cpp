// duckdb-sink: through the stage harness (positions, skipping, schema checks) and through real
// `flowctl run` processes killed with SIGKILL mid-run, then restarted: every source position must
// be in the table exactly once. The table is read back with DuckDB itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "duckdb_db.hpp"
#include "flow/conformance/gtest.hpp"
#include "flow/testing/harness.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

namespace fs = std::filesystem;
using flow::test::eventually;
using flow::test::Process;
using flow::test::read_file;
using flow::test::TempDir;
using flow::test::write_file;
using flow::testing::AckLog;
using flow::testing::StageHarness;
using namespace std::chrono_literals;

FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "path: ${TMPDIR}/c.duckdb\nwindow: 100ms\n");

const flow::PluginDescriptor& desc() { return *flow_plugin_entry::descriptor(); }
const fs::path kCounterSource = fs::path(FLOW_PLUGIN_DIR) / "../../../test-plugins/libflow-test.counter-source.so";

flow::Batch numbers(int64_t begin, int64_t end, AckLog* acks) {
  flow::Batch b(flow::make_schema({{"n", flow::Type::Int64}, {"t", flow::Type::Timestamp}, {"s", flow::Type::String}}));
  for (int64_t i = begin; i < end; ++i) {
    b.column(0).append_int64(i);
    b.column(1).append_timestamp(1'750'000'000'000'000 + i);
    b.column(2).append_string("v" + std::to_string(i));
  }
  if (acks) b.positions() = acks->track(begin, end);
  return b;
}

// n -> how many rows have it; read with a read-only connection.
std::map<int64_t, int64_t> counts(const fs::path& db, const std::string& table = "readings") {
  flow_duckdb::Database d(db.string(), true);
  flow_duckdb::Connection c(d);
  flow_duckdb::Result r;
  c.query("SELECT n, count(*) FROM " + table + " GROUP BY n ORDER BY n", r);
  std::map<int64_t, int64_t> out;
  for (idx_t i = 0; i < r.rows(); ++i) out[r.int64(0, i)] = r.int64(1, i);
  return out;
}

// Positions with a count other than one, and the missing ones of [0, total).
std::string exactly_once(const std::map<int64_t, int64_t>& c, int64_t total) {
  std::string bad;
  int64_t shown = 0;
  for (int64_t n = 0; n < total && shown < 10; ++n) {
    auto it = c.find(n);
    const int64_t k = it == c.end() ? 0 : it->second;
    if (k != 1) {
      bad += " n=" + std::to_string(n) + ":" + std::to_string(k);
      ++shown;
    }
  }
  if (!c.empty() && c.rbegin()->first >= total) bad += " beyond the end: " + std::to_string(c.rbegin()->first);
  return bad;
}

TEST(DuckdbSink, CommitsPerWindowWithTypedColumnsAndAcksAfterCommit) {
  TempDir tmp;
  StageHarness h(desc(), "path: " + (tmp / "t.duckdb").string() + "\nwindow: 1s\n");
  h.open();
  AckLog acks;
  h.push(numbers(0, 100, &acks));
  h.push(numbers(100, 250, &acks));
  EXPECT_EQ(acks.acked_groups(), 0u);  // nothing committed yet
  h.advance(1s);
  EXPECT_EQ(acks.acked_groups(), 2u);
  EXPECT_EQ(h.counter("transactions"), 1u);
  h.push(numbers(250, 300, &acks));
  h.finish();
  h.close();
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(exactly_once(counts(tmp / "t.duckdb"), 300), "");

  flow_duckdb::Database d((tmp / "t.duckdb").string(), true);
  flow_duckdb::Connection c(d);
  flow_duckdb::Result r;
  c.query("SELECT n, t, s FROM readings WHERE n = 7", r);
  ASSERT_EQ(r.rows(), 1u);
  EXPECT_EQ(r.type(0), DUCKDB_TYPE_BIGINT);
  EXPECT_EQ(r.type(1), DUCKDB_TYPE_TIMESTAMP);
  EXPECT_EQ(r.type(2), DUCKDB_TYPE_VARCHAR);
  EXPECT_EQ(r.str(1, 0), "2025-06-15 15:06:40.000007");
  EXPECT_EQ(r.str(2, 0), "v7");
  flow_duckdb::Result p;
  c.query("SELECT source, \"begin\", \"end\" FROM flow_positions WHERE \"table\" = 'readings'", p);
  ASSERT_EQ(p.rows(), 1u);  // adjacent ranges are kept as one
  EXPECT_EQ(p.int64(1, 0), 0);
  EXPECT_EQ(p.int64(2, 0), 300);
}

TEST(DuckdbSink, ARestartSkipsWhatIsCommittedEvenInsideABatch) {
  TempDir tmp;
  const std::string cfg = "path: " + (tmp / "t.duckdb").string() + "\n";
  {
    StageHarness h(desc(), cfg);
    h.open();
    AckLog a;
    h.push(numbers(0, 150, nullptr));  // no positions: never skipped
    h.push(numbers(150, 160, &a));
    h.finish();
    h.close();
  }
  // A replay from 100 in batches cut differently: 100..149 and 150..159 are committed.
  StageHarness h(desc(), cfg);
  h.open();
  AckLog acks;
  h.push(numbers(150, 160, &acks));  // wholly committed: acknowledged at once
  EXPECT_EQ(acks.acked_groups(), 1u);
  h.push(numbers(155, 200, &acks));  // partly committed: rows 155..159 skipped
  h.finish();
  h.close();
  EXPECT_TRUE(acks.all_acked());
  EXPECT_EQ(h.counter("rows_skipped"), 15u);
  EXPECT_EQ(h.counter("rows_written"), 40u);
  EXPECT_EQ(exactly_once(counts(tmp / "t.duckdb"), 200), "");
}

TEST(DuckdbSink, SkipCommittedOffWritesAgain) {
  TempDir tmp;
  const std::string cfg = "path: " + (tmp / "t.duckdb").string() + "\nskip_committed: false\n";
  for (int run = 0; run < 2; ++run) {
    StageHarness h(desc(), cfg);
    h.open();
    AckLog acks;
    h.push(numbers(0, 10, &acks));
    h.finish();
    h.close();
  }
  for (const auto& [n, k] : counts(tmp / "t.duckdb")) EXPECT_EQ(k, 2) << n;
}

TEST(DuckdbSink, AnExistingTableWithOtherColumnsIsAClearError) {
  TempDir tmp;
  const fs::path db = tmp / "t.duckdb";
  {
    flow_duckdb::Database d(db.string());
    flow_duckdb::Connection c(d);
    c.exec("CREATE TABLE readings (n VARCHAR)");
  }
  StageHarness h(desc(), "path: " + db.string() + "\n");
  h.open();
  AckLog acks;
  h.push(numbers(0, 10, &acks));
  try {
    h.finish();
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("table 'readings'"), std::string::npos) << m;
    EXPECT_NE(m.find("n VARCHAR"), std::string::npos) << m;
    EXPECT_NE(m.find("n BIGINT"), std::string::npos) << m;
  }
  h.close();
  EXPECT_EQ(acks.acked_groups(), 0u);  // nothing was delivered
}

TEST(DuckdbSink, ConfigErrorsNameTheOption) {
  StageHarness h(desc(), "path: ''\ntable: flow_positions\n");
  const auto errors = h.check();
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].message.find("'path'"), std::string::npos);
  EXPECT_NE(errors[1].message.find("positions table"), std::string::npos);
}

// --- real processes ------------------------------------------------------------------------

std::string pipeline(const fs::path& db, int64_t count, const std::string& pause, const std::string& sink_extra) {
  return "name: duckdb-kill\nstages:\n"
         "  - id: src\n    plugin: " + fs::weakly_canonical(kCounterSource).string() +
         "\n    config: {count: " + std::to_string(count) + ", batch_size: 1000, pause: " + pause + "}\n"
         "  - id: db\n    plugin: duckdb-sink\n    input: src\n"
         "    config: {path: " + db.string() + ", window: 50ms" + sink_extra + "}\n";
}

int run_flowctl(const fs::path& yaml, std::vector<std::pair<std::string, std::string>> env = {}) {
  Process p({FLOW_FLOWCTL, "run", "-q", yaml.string()}, yaml.string() + ".log", std::move(env));
  const auto rc = p.wait(5min);
  EXPECT_TRUE(rc.has_value()) << "flowctl hung";
  if (rc && *rc != 0 && *rc != 128 + SIGKILL) ADD_FAILURE() << read_file(yaml.string() + ".log.err");
  return rc.value_or(-1);
}

class CrashPoint : public ::testing::TestWithParam<const char*> {};

// Killed at the third commit (before it, or after it but before the acknowledgement), then run
// again: the replayed records already committed are skipped, the rest written once.
TEST_P(CrashPoint, KilledAtACommitThenRestartedWritesEachPositionOnce) {
  ASSERT_TRUE(fs::exists(kCounterSource));
  TempDir tmp;
  const fs::path db = tmp / "k.duckdb";
  write_file(tmp / "p.yaml", pipeline(db, 200'000, "0s", ", max_rows: 30000"));
  EXPECT_EQ(run_flowctl(tmp / "p.yaml", {{"FLOW_DUCKDB_SINK_CRASH_AT", std::string(GetParam()) + ":3"}}),
            128 + SIGKILL);
  const auto before = counts(db);
  EXPECT_EQ(before.size(), std::string(GetParam()) == "before-commit" ? 60'000u : 90'000u);
  EXPECT_EQ(run_flowctl(tmp / "p.yaml"), 0);
  EXPECT_EQ(exactly_once(counts(db), 200'000), "");
  EXPECT_NE(read_file(tmp / "p.yaml.log.err").find("skipping records"), std::string::npos);
}
INSTANTIATE_TEST_SUITE_P(DuckdbSink, CrashPoint, ::testing::Values("before-commit", "after-commit"));

// kill -9 from outside at an arbitrary moment, while another process (this test) queries the
// file between the sink's windows (hold_open: false); then restarted.
TEST(DuckdbSinkProcess, KillNineMidRunWhileAnotherProcessQueriesThenRestart) {
  ASSERT_TRUE(fs::exists(kCounterSource));
  TempDir tmp;
  const fs::path db = tmp / "k.duckdb";
  const int64_t total = 400'000;
  write_file(tmp / "slow.yaml", pipeline(db, total, "2ms", ", hold_open: false"));
  int64_t seen_live = 0;
  {
    Process p({FLOW_FLOWCTL, "run", "-q", (tmp / "slow.yaml").string()}, tmp / "slow.log");
    // Query the live file from this process (read-only; retried while the sink holds it).
    ASSERT_TRUE(eventually([&] {
      try {
        flow_duckdb::Database d(db.string(), true);
        flow_duckdb::Connection c(d);
        flow_duckdb::Result r;
        c.query("SELECT count(*) FROM readings", r);
        seen_live = r.int64(0, 0);
      } catch (const flow_duckdb::Error&) {
        // locked by the sink, or the table does not exist yet
      }
      return seen_live >= 50'000;
    }, 120s)) << read_file(tmp / "slow.log.err");
    EXPECT_FALSE(p.wait(0ms).has_value()) << "the run ended before the kill";
    p.signal(SIGKILL);
    EXPECT_EQ(p.wait(30s), 128 + SIGKILL);
  }
  EXPECT_LT(seen_live, total);
  const auto before = counts(db);
  EXPECT_GE(static_cast<int64_t>(before.size()), seen_live);
  EXPECT_LT(static_cast<int64_t>(before.size()), total);
  write_file(tmp / "fast.yaml", pipeline(db, total, "0s", ", hold_open: false"));
  EXPECT_EQ(run_flowctl(tmp / "fast.yaml"), 0);
  EXPECT_EQ(exactly_once(counts(db), total), "");
}

}  // namespace

namespace {

// The IoT stream: sensor-simulator (a fixed seed and start time, so a restart replays the same
// readings at the same positions) -> json-validator -> duckdb-sink, killed right after its
// second commit, then run again: every reading, keyed by (sensor_id, timestamp), once.
TEST(DuckdbSinkProcess, IotStreamKilledAfterACommitThenRestartedHasEveryReadingOnce) {
  for (const char* p : {"libflow-sensor-simulator.so", "libflow-json-validator.so"})
    if (!fs::exists(fs::path(FLOW_PLUGIN_DIR) / p)) GTEST_SKIP() << p << " is not built";
  TempDir tmp;
  const fs::path db = tmp / "iot.duckdb";
  write_file(tmp / "p.yaml",
             "name: iot-duckdb\nstages:\n"
             "  - id: sim\n    plugin: sensor-simulator\n"
             "    config: {sensors: 1000, rate: 1, max_records: 5000, seed: 7, start_time: '2025-06-15 09:12:01', "
             "batch_size: 300}\n"
             "  - id: validate\n    plugin: json-validator\n    input: sim\n"
             "    config:\n      schema:\n        sensor_id: int\n        temperature: float\n"
             "        humidity: float\n        timestamp: timestamp\n"
             "  - id: db\n    plugin: duckdb-sink\n    input: validate\n"
             "    config: {path: " + db.string() + ", window: 200ms}\n");
  EXPECT_EQ(run_flowctl(tmp / "p.yaml", {{"FLOW_DUCKDB_SINK_CRASH_AT", "after-commit:2"}}), 128 + SIGKILL);
  auto stats = [&] {
    flow_duckdb::Database d(db.string(), true);
    flow_duckdb::Connection c(d);
    flow_duckdb::Result r;
    c.query("SELECT count(*), count(DISTINCT (sensor_id, timestamp)), "
            "(SELECT coalesce(max(k), 0) FROM (SELECT count(*) AS k FROM readings GROUP BY sensor_id, timestamp)) "
            "FROM readings",
            r);
    return std::vector<int64_t>{r.int64(0, 0), r.int64(1, 0), r.int64(2, 0)};
  };
  const auto before = stats();
  EXPECT_GT(before[0], 0);
  EXPECT_LT(before[0], 5000);
  EXPECT_EQ(run_flowctl(tmp / "p.yaml"), 0);
  EXPECT_EQ(stats(), (std::vector<int64_t>{5000, 5000, 1}));  // rows, distinct readings, most copies
}

}  // namespace
