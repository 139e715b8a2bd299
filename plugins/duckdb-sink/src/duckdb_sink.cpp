// duckdb-sink: appends records to a table of a DuckDB database file through the appender API,
// one transaction per window. The transaction also stores the source positions it covers (table
// flow_positions), so after a crash and a replay from an earlier position the records already
// committed are skipped: nothing is written twice, and positions are acknowledged only after
// COMMIT, so nothing is lost.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "duckdb_db.hpp"
#include "flow/flow.hpp"

namespace {

using flow_duckdb::ident;
using flow_duckdb::literal;

// FLOW_DUCKDB_SINK_CRASH_AT=<point>[:<n>] kills the process with SIGKILL at the n-th (default
// first) passage through <point> ("before-commit", "after-commit"): for fault tests.
void crash_point(const char* point, int64_t passage) {
  const char* at = std::getenv("FLOW_DUCKDB_SINK_CRASH_AT");
  if (!at) return;
  std::string want = at;
  int64_t n = 1;
  if (const auto colon = want.find(':'); colon != std::string::npos) {
    n = std::atoll(want.c_str() + colon + 1);
    want.resize(colon);
  }
  if (want == point && passage == n) std::raise(SIGKILL);
}

// Half-open intervals [begin, end), sorted and disjoint.
using Intervals = std::vector<std::pair<int64_t, int64_t>>;

void add_interval(Intervals& set, int64_t b, int64_t e) {
  if (b >= e) return;
  set.emplace_back(b, e);
  std::sort(set.begin(), set.end());
  Intervals out;
  for (const auto& iv : set) {
    if (!out.empty() && iv.first <= out.back().second) out.back().second = std::max(out.back().second, iv.second);
    else out.push_back(iv);
  }
  set = std::move(out);
}

int64_t covered(const Intervals& set, int64_t b, int64_t e) {
  int64_t n = 0;
  for (const auto& [sb, se] : set) n += std::max<int64_t>(0, std::min(e, se) - std::max(b, sb));
  return n;
}

bool contains(const Intervals& set, int64_t x) {
  auto it = std::upper_bound(set.begin(), set.end(), std::make_pair(x, INT64_MAX));
  return it != set.begin() && x < std::prev(it)->second;
}

using Key = std::pair<std::string, int32_t>;  // source, partition

class DuckdbSink : public flow::Processor {
 public:
  struct Options {
    std::string path;
    std::string table = "readings";
    flow::Duration window{5000};
    int64_t max_rows = 1'000'000;
    bool skip_committed = true;
    bool hold_open = true;
    flow::Duration lock_timeout{60'000};
  };

  static flow::PluginInfo info() {
    return {.name = "duckdb-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
            .description = "Appends records to a DuckDB table, one transaction per window, with the source positions it covers",
            .main_output = false};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "path: ${TMPDIR}/readings.duckdb\ntable: readings\nwindow: 5s\n"; }
  // Its conformance input: it takes rows of any schema, so rows of every column type.
  static flow::Batch sample_input(const Options&, const flow::SampleRequest& r) { return flow::sample_rows_of_every_type(r); }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("path", &Options::path, "DuckDB database file (created if missing)").required();
    t.add("table", &Options::table, "Table the records are appended to (created from the input's columns if missing)");
    t.add("window", &Options::window, "Commit a transaction this often").min(0.001);
    t.add("max_rows", &Options::max_rows, "Commit sooner when a window holds this many rows (bounds memory)").min(1);
    t.add("skip_committed", &Options::skip_committed,
          "Skip records whose source position is already committed (exactly-once across restarts of a "
          "replaying source); turn off for sources that restart their positions with every run");
    t.add("hold_open", &Options::hold_open,
          "Keep the database open for the whole run; false = open it only to commit each window, so other "
          "processes can query the file in between (DuckDB allows one writer or many readers)");
    t.add("lock_timeout", &Options::lock_timeout,
          "How long to wait for the database file while another process holds it, before failing");
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    auto where = [&](const char* key) {
      const flow::Value* v = config.find(key);
      return v ? v->location() : config.location();
    };
    if (o.path.empty()) errors.push_back({where("path"), "option 'path': must not be empty"});
    if (o.table.empty()) errors.push_back({where("table"), "option 'table': must not be empty"});
    if (o.table == kPositionsTable)
      errors.push_back({where("table"), "option 'table': '" + o.table + "' is the sink's own positions table"});
  }

  explicit DuckdbSink(Options o) : o_(std::move(o)) {}

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    rows_written_ = &ctx.counter("rows_written");
    rows_skipped_ = &ctx.counter("rows_skipped");
    transactions_ = &ctx.counter("transactions");
    connect();
    conn_->exec("CREATE TABLE IF NOT EXISTS " + std::string(kPositionsTable) +
                " (\"table\" VARCHAR, source VARCHAR, \"partition\" INTEGER, \"begin\" BIGINT, \"end\" BIGINT, "
                "committed_at TIMESTAMP)");
    flow_duckdb::Result r;
    conn_->query("SELECT source, \"partition\", \"begin\", \"end\" FROM " + std::string(kPositionsTable) +
                     " WHERE \"table\" = " + literal(o_.table),
                 r);
    for (idx_t i = 0; i < r.rows(); ++i)
      add_interval(committed_[{r.str(0, i), static_cast<int32_t>(r.int64(1, i))}], r.int64(2, i), r.int64(3, i));
    if (!committed_.empty())
      ctx.log().info("table '" + o_.table + "' in '" + o_.path + "' has committed positions of " +
                     std::to_string(committed_.size()) + " source partition(s); records at those positions are " +
                     (o_.skip_committed ? "skipped" : "written again (skip_committed: false)"));
    if (!o_.hold_open) release();
    window_start_ = ctx.now();
  }

  std::chrono::milliseconds timer_interval() const override {
    return std::min<std::chrono::milliseconds>(o_.window, std::chrono::milliseconds(200));
  }

  void process(flow::Batch batch, flow::Emitter&) override {
    const auto ranges = batch.positions().ranges();
    const std::size_t n = batch.num_rows();
    std::vector<bool> keep;     // empty = keep every row
    if (o_.skip_committed && n > 0 && !ranges.empty()) {
      int64_t total = 0, done = 0;
      for (const auto& r : ranges) {
        total += r.end - r.begin;
        auto it = committed_.find({r.source, r.partition});
        if (it != committed_.end()) done += covered(it->second, r.begin, r.end);
      }
      if (done > 0 && done == total) {
        // Committed by an earlier run: nothing to write, and the positions are durable already.
        rows_skipped_->add(n);
        note_skip(n);
        batch.positions().ack();
        return;
      }
      if (done > 0) {
        const auto& r = ranges.front();
        if (ranges.size() == 1 && static_cast<int64_t>(n) == r.end - r.begin) {
          const auto& set = committed_.at({r.source, r.partition});
          keep.resize(n);
          std::size_t skipped = 0;
          for (std::size_t i = 0; i < n; ++i) {
            keep[i] = !contains(set, r.begin + static_cast<int64_t>(i));
            skipped += keep[i] ? 0 : 1;
          }
          rows_skipped_->add(skipped);
          note_skip(skipped);
        } else if (!warned_unsure_) {
          warned_unsure_ = true;
          ctx_->log().warn("a batch is partly committed, but its rows do not map one-to-one onto its positions "
                           "(a transform dropped or split records): it is written whole, so some of its rows may "
                           "appear twice; counted in rows_maybe_repeated");
        }
        if (keep.empty()) ctx_->counter("rows_maybe_repeated").add(n);
      }
    }
    for (const auto& r : ranges) pending_ranges_.push_back(r);
    positions_.append(std::move(batch.positions()));
    if (n > 0) {
      if (keep.empty()) {
        pending_rows_ += n;
        pending_.push_back(std::move(batch));
      } else {
        flow::Batch kept(batch.schema());
        for (std::size_t i = 0; i < n; ++i)
          if (keep[i])
            for (std::size_t c = 0; c < kept.num_columns(); ++c) kept.column(c).append_from(batch.column(c), i);
        pending_rows_ += kept.num_rows();
        if (!kept.empty()) pending_.push_back(std::move(kept));
      }
    }
    if (pending_rows_ >= static_cast<std::size_t>(o_.max_rows)) commit();
  }

  void on_timer(flow::Emitter&) override {
    if (ctx_->now() - window_start_ >= o_.window) commit();
  }

  void finish(flow::Emitter&) override { commit(); }

  void close() override {
    // Uncommitted rows are rolled back by DuckDB (closing, or a crash, discards the transaction);
    // their positions are forgotten, so a replaying source delivers them again.
    appender_.reset();
    release();
  }

 private:
  static constexpr const char* kPositionsTable = "flow_positions";

  void note_skip(std::size_t n) {
    if (n == 0 || told_skip_) return;
    told_skip_ = true;
    ctx_->log().info("skipping records whose positions are already committed in table '" + o_.table +
                     "' (a replay after a restart); see the counter rows_skipped");
  }

  // Opens the database, waiting while another process holds its lock.
  void connect() {
    if (db_) return;
    const auto deadline = std::chrono::steady_clock::now() + o_.lock_timeout;
    bool told = false;
    for (;;) {
      try {
        db_ = std::make_unique<flow_duckdb::Database>(o_.path);
        conn_ = std::make_unique<flow_duckdb::Connection>(*db_);
        return;
      } catch (const flow_duckdb::Error& e) {
        const std::string msg = e.what();
        if (msg.find("lock") == std::string::npos || std::chrono::steady_clock::now() >= deadline ||
            ctx_->stop_requested())
          throw std::runtime_error(msg + (msg.find("lock") != std::string::npos
                                              ? " (another process holds the file; waited lock_timeout)"
                                              : ""));
        if (!told) {
          told = true;
          ctx_->log().info("waiting for the database file '" + o_.path + "', held by another process");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  void release() {
    conn_.reset();
    db_.reset();
  }

  // Creates the table from the input's columns, or checks that the existing one matches them.
  void ensure_table(const flow::Schema& schema) {
    if (table_checked_ && *table_schema_ == schema) return;
    flow_duckdb::Result r;
    conn_->query("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'main' AND "
                 "table_name = " + literal(o_.table) + " ORDER BY ordinal_position",
                 r);
    std::string want, have;
    for (const auto& f : schema.fields())
      want += (want.empty() ? "" : ", ") + f.name + " " + flow_duckdb::sql_type(f.type);
    for (idx_t i = 0; i < r.rows(); ++i) have += (have.empty() ? "" : ", ") + r.str(0, i) + " " + r.str(1, i);
    if (r.rows() == 0) {
      std::string ddl = "CREATE TABLE " + ident(o_.table) + " (";
      for (std::size_t i = 0; i < schema.size(); ++i)
        ddl += (i ? ", " : "") + ident(schema.field(i).name) + " " + flow_duckdb::sql_type(schema.field(i).type);
      conn_->exec(ddl + ")");
    } else if (have != want) {
      throw std::runtime_error("table '" + o_.table + "' in '" + o_.path + "' has columns (" + have +
                               ") but the input has (" + want + "); use another table or database");
    }
    table_checked_ = true;
    table_schema_ = std::make_shared<flow::Schema>(schema);
  }

  void append(const flow::Batch& b) {
    auto& a = *appender_;
    const std::size_t cols = b.num_columns();
    for (std::size_t i = 0; i < b.num_rows(); ++i) {
      for (std::size_t c = 0; c < cols; ++c) {
        const auto& col = b.column(c);
        if (col.is_null(i)) {
          a.null();
          continue;
        }
        switch (col.type()) {
          case flow::Type::Int64: a.int64(col.int64_at(i)); break;
          case flow::Type::Float64: a.dbl(col.double_at(i)); break;
          case flow::Type::Bool: a.boolean(col.bool_at(i)); break;
          case flow::Type::String: a.varchar(col.string_at(i)); break;
          case flow::Type::Timestamp: a.timestamp(col.timestamp_at(i)); break;
        }
      }
      a.end_row();
    }
  }

  void commit() {
    window_start_ = ctx_->now();
    if (pending_.empty() && pending_ranges_.empty()) {
      positions_.ack();
      return;
    }
    connect();
    auto committed = committed_;
    std::map<Key, bool> touched;
    for (const auto& r : pending_ranges_) {
      add_interval(committed[{r.source, r.partition}], r.begin, r.end);
      touched[{r.source, r.partition}] = true;
    }
    conn_->exec("BEGIN TRANSACTION");
    try {
      if (!pending_.empty()) {
        for (const auto& b : pending_) {
          ensure_table(*b.schema());
          if (!appender_) appender_ = std::make_unique<flow_duckdb::Appender>(*conn_, o_.table);
          append(b);
        }
        appender_->close();
        appender_.reset();
      }
      // The positions of this transaction, merged with the earlier ones (one row per interval).
      const std::string pt = kPositionsTable;
      for (const auto& [key, _] : touched) {
        conn_->exec("DELETE FROM " + pt + " WHERE \"table\" = " + literal(o_.table) + " AND source = " +
                    literal(key.first) + " AND \"partition\" = " + std::to_string(key.second));
        std::string ins = "INSERT INTO " + pt + " VALUES ";
        bool first = true;
        for (const auto& [b, e] : committed[key]) {
          ins += (first ? "(" : ", (") + literal(o_.table) + ", " + literal(key.first) + ", " +
                 std::to_string(key.second) + ", " + std::to_string(b) + ", " + std::to_string(e) +
                 ", now()::TIMESTAMP)";
          first = false;
        }
        if (!first) conn_->exec(ins);
      }
      crash_point("before-commit", transactions_->value() + 1);
      conn_->exec("COMMIT");
    } catch (...) {
      appender_.reset();
      try {
        conn_->exec("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
    committed_ = std::move(committed);
    transactions_->add();
    rows_written_->add(pending_rows_);
    crash_point("after-commit", static_cast<int64_t>(transactions_->value()));
    // Committed (DuckDB fsyncs its write-ahead log at COMMIT): only now are these delivered.
    positions_.ack();
    pending_.clear();
    pending_ranges_.clear();
    pending_rows_ = 0;
    if (!o_.hold_open) release();
  }

  Options o_;
  flow::Context* ctx_ = nullptr;
  flow::Counter* rows_written_ = nullptr;
  flow::Counter* rows_skipped_ = nullptr;
  flow::Counter* transactions_ = nullptr;
  std::unique_ptr<flow_duckdb::Database> db_;
  std::unique_ptr<flow_duckdb::Connection> conn_;
  std::unique_ptr<flow_duckdb::Appender> appender_;
  bool table_checked_ = false;
  std::shared_ptr<flow::Schema> table_schema_;
  std::map<Key, Intervals> committed_;
  std::vector<flow::Batch> pending_;
  std::vector<flow::PositionRange> pending_ranges_;
  std::size_t pending_rows_ = 0;
  flow::Positions positions_;
  std::chrono::system_clock::time_point window_start_;
  bool warned_unsure_ = false, told_skip_ = false;
};

}  // namespace

FLOW_PLUGIN(DuckdbSink)
