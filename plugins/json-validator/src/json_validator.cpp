// json-validator: raw JSON messages in, typed columns out; every rejected record leaves with a
// reason (dead letters on output "invalid"), is dropped, or fails the pipeline.
#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "flow/flow.hpp"
#include "record_validator.hpp"

namespace {

using json_validator::FieldType;
using json_validator::Reason;

using flow::dead_letter_schema;  // the shared shape, so one rejects sink takes every stage's

// A JSON value that `f` accepts, varying with `i`.
std::string sample_value(const json_validator::FieldSpec& f, int64_t i, int64_t micros) {
  switch (f.type) {
    case FieldType::Int: {
      if (!f.allowed_ints.empty()) return std::to_string(f.allowed_ints[static_cast<std::size_t>(i) % f.allowed_ints.size()]);
      const int64_t lo = f.min_int.value_or(1), hi = f.max_int.value_or(lo + 9);
      return std::to_string(lo + (hi > lo ? i % (hi - lo + 1) : 0));
    }
    case FieldType::Float: {
      if (!f.allowed_floats.empty()) return flow::format_double(f.allowed_floats[static_cast<std::size_t>(i) % f.allowed_floats.size()]);
      const double lo = f.min.value_or(15.0), hi = f.max.value_or(lo + 20.0);
      return flow::format_double(lo + (hi - lo) * static_cast<double>(i % 100) / 100.0);
    }
    case FieldType::String:
      if (!f.allowed_strings.empty()) return flow::json_string(f.allowed_strings[static_cast<std::size_t>(i) % f.allowed_strings.size()]);
      return flow::json_string("sample-" + std::to_string(i));
    case FieldType::Bool:
      if (!f.allowed_bools.empty()) return f.allowed_bools[static_cast<std::size_t>(i) % f.allowed_bools.size()] ? "true" : "false";
      return i % 2 ? "true" : "false";
    case FieldType::Timestamp: {
      // strftime knows every directive of the format but %f (fraction digits).
      std::string format = f.format.text();
      for (std::size_t at; (at = format.find("%f")) != std::string::npos;) format.replace(at, 2, "000");
      const std::time_t secs = static_cast<std::time_t>(micros / 1'000'000);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      char buf[128];
      const std::size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
      return flow::json_string(std::string_view(buf, n));
    }
  }
  return "null";
}

class JsonValidator : public flow::Processor {
 public:
  struct Options {
    std::string field = "value";
    flow::Value schema;
    std::string extra_fields = "ignore";
    std::string on_invalid = "dead-letter";
    flow::ByteSize max_message_bytes{1024 * 1024};
    int64_t threads = 1;
  };

  static flow::PluginInfo info() {
    return {"json-validator", "1.0.0", flow::StageKind::Transform,
            "Validates JSON messages against a typed schema: valid ones become typed columns, invalid ones "
            "leave with a reason on output 'invalid'",
            {"invalid"}};
  }
  // A config its own check accepts: `flowctl plugins describe`, the README and test-plugin use it.
  static const char* example() { return "schema:\n  sensor_id: int\n  temperature: float\n  humidity: float\n  timestamp: timestamp\n"; }

  static void declare(flow::OptionTable<Options>& t) {
    t.add("field", &Options::field, "Input column holding the JSON message");
    t.add("schema", &Options::schema,
          "Map, in order, of field name -> type (int, float, string, bool, timestamp) or "
          "{type, required (default true), min, max, allowed: [...], format (timestamps, default "
          "\"%Y-%m-%d %H:%M:%S\")}; the output columns, in this order")
        .required();
    t.add("extra_fields", &Options::extra_fields, "Keys not in the schema: ignore them, or reject the record")
        .one_of({"ignore", "reject"});
    t.add("on_invalid", &Options::on_invalid,
          "Invalid records: drop (counted and acknowledged), dead-letter (to output 'invalid' with "
          "raw, reason, message, source, partition, offset), or fail the pipeline")
        .one_of({"drop", "dead-letter", "fail"});
    t.add("max_message_bytes", &Options::max_message_bytes, "Longer messages are rejected as 'oversize'")
        .min(1);
    t.add("threads", &Options::threads,
          "Threads validating each batch: the stage's own and threads - 1 helpers, taking chunks of the "
          "batch's rows in turn (joined in order, so the output is the same); 0 = 2 on a machine with "
          "2 or more cores, else 1. More than 1 helps when this stage is a pipeline's slowest and "
          "cores are idle")
        .range(0, 64);
  }

  static void check(const Options& o, const flow::Value& config, std::vector<flow::ConfigError>& errors) {
    if (o.field.empty()) {
      const flow::Value* v = config.find("field");
      errors.push_back({v ? v->location() : config.location(), "option 'field': must not be empty"});
    }
    (void)json_validator::parse_schema(o.schema, errors);
  }

  // Its conformance input: messages that satisfy the configured schema (bounds, allowed values,
  // timestamp formats), in the `field` column of Kafka-shaped rows.
  static flow::Batch sample_input(const Options& o, const flow::SampleRequest& r) {
    std::vector<flow::ConfigError> errors;
    const auto fields = json_validator::parse_schema(o.schema, errors);
    if (!errors.empty()) throw std::runtime_error(errors.front().message);
    const flow::SchemaPtr schema = o.field == "value" ? flow::raw_message_schema() : flow::make_schema({{o.field, flow::Type::String}});
    flow::Batch b(schema);
    const std::size_t col = *schema->index_of(o.field);
    for (std::size_t k = 0; k < r.rows; ++k) {
      const int64_t i = r.first + static_cast<int64_t>(k);
      std::string json = "{";
      for (const auto& f : fields) {
        if (json.size() > 1) json += ',';
        json += flow::json_string(f.name) + ':' + sample_value(f, i, r.now_us + i * 1000);
      }
      json += '}';
      for (std::size_t c = 0; c < b.num_columns(); ++c) {
        auto& column = b.column(c);
        if (c == col) column.append_string(json);
        else if (column.type() == flow::Type::String) column.append_string("conformance");
        else column.append_int64(c == 4 ? i : (c == 5 ? r.now_us + i * 1000 : 0));
      }
    }
    return b;
  }

  // Declared wiring: `flowctl validate` checks the input edge and what readers of the output need.
  static std::vector<flow::ColumnSpec> input_columns(const Options& o) { return {{o.field, flow::Type::String}}; }
  static std::optional<flow::Schema> output_schema(const Options& o) {
    std::vector<flow::ConfigError> errors;
    auto fields = json_validator::parse_schema(o.schema, errors);
    if (!errors.empty()) return std::nullopt;
    return *json_validator::output_schema(fields);
  }

  explicit JsonValidator(Options o)
      : o_(std::move(o)), validator_(make_validator(o_)), out_schema_(json_validator::output_schema(validator_.fields())) {
    mode_ = o_.on_invalid == "drop" ? Mode::Drop : o_.on_invalid == "fail" ? Mode::Fail : Mode::DeadLetter;
    // The output columns grouped by how a value is appended: int64 and timestamp (one
    // storage), float64, string, bool.
    const auto group_of = [](FieldType t) -> std::size_t {
      switch (t) {
        case FieldType::Int:
        case FieldType::Timestamp: return 0;
        case FieldType::Float: return 1;
        case FieldType::String: return 2;
        case FieldType::Bool: return 3;
      }
      return 0;
    };
    const auto& fields = validator_.fields();
    for (std::size_t g = 0; g < group_sizes_.size(); ++g)
      for (std::size_t f = 0; f < fields.size(); ++f)
        if (group_of(fields[f].type) == g) {
          grouped_fields_.push_back(f);
          ++group_sizes_[g];
        }
  }

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    log_ = &ctx.log();
    helpers_.clear();
    for (int64_t t = 1; t < thread_count(o_.threads); ++t) {
      const std::string suffix = "+" + std::to_string(t);  // "validate+1": kept whole when the id is cut
      helpers_.push_back(
          std::make_unique<Helper>(*this, make_validator(o_), ctx.stage_id().substr(0, 15 - suffix.size()) + suffix));
    }
  }

  void close() override { helpers_.clear(); }

  void process(flow::Batch in, flow::Emitter& out) override {
    if (!in.schema() || in.empty()) {
      in.positions().ack();  // no record to deliver
      return;
    }
    const flow::Schema& schema = *in.schema();
    const auto value_index = schema.index_of(o_.field);
    if (!value_index || schema.field(*value_index).type != flow::Type::String)
      throw std::runtime_error("input batch has no string column '" + o_.field + "' (option 'field'); its columns: " +
                               column_list(schema));
    const flow::Column& values = in.column(*value_index);
    const flow::Column* topic = typed_column(in, "topic", flow::Type::String);
    const flow::Column* partition = typed_column(in, "partition", flow::Type::Int64);
    const flow::Column* offset = typed_column(in, "offset", flow::Type::Int64);

    const std::size_t rows = in.num_rows();
    const bool dead_letter = mode_ == Mode::DeadLetter && out.connected("invalid");
    if (mode_ == Mode::DeadLetter && !dead_letter && !warned_unconnected_) {
      warned_unconnected_ = true;
      log_->warn("output 'invalid' is not connected: invalid records are counted and dropped");
    }

    // With `threads` > 1 the rows are cut into chunks that this thread and the helpers take in
    // turn; the chunks are joined in row order, so the output is the same batch.
    const Rows job{&values, topic, partition, offset, dead_letter};
    const std::size_t chunks =
        helpers_.empty() ? 1
                         : std::max<std::size_t>(1, std::min(kChunksPerThread * (helpers_.size() + 1), rows / kMinRowsPerChunk));
    Part& mine = main_part_;
    if (chunks == 1) {
      validate_rows(validator_, job, 0, rows, mine);
    } else {
      if (chunk_parts_.size() < chunks) chunk_parts_.resize(chunks);
      auto work = std::make_shared<Work>(job, rows, chunks, chunk_parts_.data());
      for (auto& h : helpers_) h->start(work);
      work->run(*this, validator_);
      work->wait_all_done();
      mine = std::move(chunk_parts_[0]);
    }

    flow::Batch valid = std::move(mine.valid);
    flow::Batch dead = std::move(mine.dead);
    if (mine.error) std::rethrow_exception(std::exchange(mine.error, nullptr));
    const Part* failed = mine.failure ? &mine : nullptr;
    for (std::size_t c = 1; c < chunks; ++c) {
      Part& p = chunk_parts_[c];
      if (p.error) std::rethrow_exception(std::exchange(p.error, nullptr));
      if (!failed && p.failure) failed = &p;
      if (failed) continue;  // the run fails below: nothing to join
      valid.append_rows(p.valid);
      if (p.dead.schema()) {
        if (!dead.schema()) dead = std::move(p.dead);
        else dead.append_rows(p.dead);
      }
      for (std::size_t r = 0; r < json_validator::kReasonCount; ++r) mine.reasons[r] += std::exchange(p.reasons[r], 0);
    }
    for (std::size_t r = 0; r < json_validator::kReasonCount; ++r)
      if (const uint32_t n = std::exchange(mine.reasons[r], 0)) count(static_cast<Reason>(r), n);
    if (failed)
      throw std::runtime_error("invalid record at " + where(failed->failure->row, topic, partition, offset) + ": " +
                               std::string(json_validator::reason_name(failed->failure->reason)) + ": " +
                               failed->failure->message);

    // Positions travel with what leaves; records dropped on purpose are covered by the batch
    // that carries the rest of their group, or acknowledged here when nothing leaves.
    const bool has_valid = !valid.empty();
    const bool has_dead = dead.schema() && !dead.empty();
    if (has_valid && has_dead) {
      valid.positions() = std::move(in.positions());
      dead.positions() = valid.positions().share();
    } else if (has_valid) {
      valid.positions() = std::move(in.positions());
    } else if (has_dead) {
      dead.positions() = std::move(in.positions());
    } else {
      in.positions().ack();
    }
    if (has_valid && !out.emit(std::move(valid))) return;
    if (has_dead) out.emit(std::move(dead), "invalid");
  }

 private:
  enum class Mode { Drop, DeadLetter, Fail };

  // A batch's input columns, as each share of its rows reads them.
  struct Rows {
    const flow::Column* values;
    const flow::Column* topic;
    const flow::Column* partition;
    const flow::Column* offset;
    bool dead_letter;
  };
  struct Failure {
    std::size_t row;
    Reason reason;
    std::string message;
  };
  // What one share of a batch's rows gave: valid rows, dead letters, counts by reason, and with
  // on_invalid: fail the first invalid row.
  struct Part {
    flow::Batch valid, dead;
    std::array<uint32_t, json_validator::kReasonCount> reasons{};
    std::optional<Failure> failure;
    std::exception_ptr error;  // a helper's unexpected exception, rethrown by the stage thread
  };
  // Below this many rows a chunk is not worth a hand-off to another thread; a few chunks per
  // thread let the others take over the work of a thread the scheduler runs late.
  static constexpr std::size_t kMinRowsPerChunk = 128;
  static constexpr std::size_t kChunksPerThread = 4;

  // One batch's chunks, taken in turn by the stage thread and its helpers. Shared: a helper that
  // wakes after the batch is done still looks at the counter (and finds no chunk left).
  struct Work {
    Work(const Rows& j, std::size_t r, std::size_t n, Part* p) : job(j), rows(r), chunks(n), parts(p) {}
    // Validates chunks until none is left.
    void run(const JsonValidator& stage, json_validator::RecordValidator& v) {
      for (;;) {
        const std::size_t c = next.fetch_add(1);
        if (c >= chunks) return;
        Part& part = parts[c];
        try {
          part.error = nullptr;
          part.reasons = {};
          stage.validate_rows(v, job, rows * c / chunks, rows * (c + 1) / chunks, part);
        } catch (...) {
          part.error = std::current_exception();
        }
        if (done.fetch_add(1) + 1 == chunks) done.notify_all();
      }
    }
    void wait_all_done() {
      for (std::size_t d = done.load(); d != chunks; d = done.load()) done.wait(d);
    }
    const Rows job;
    const std::size_t rows, chunks;
    Part* const parts;  // chunk_parts_: touched only by whoever took a chunk
    std::atomic<std::size_t> next{0}, done{0};
  };

  // Validates rows [begin, end) of `job` into `part` (which starts empty).
  void validate_rows(json_validator::RecordValidator& v, const Rows& job, std::size_t begin, std::size_t end,
                     Part& part) const {
    part.valid = flow::Batch(out_schema_);
    part.dead = flow::Batch();
    part.failure.reset();
    const std::size_t rows = end - begin;
    std::vector<flow::Column*> columns;
    columns.reserve(part.valid.num_columns());
    for (std::size_t c = 0; c < part.valid.num_columns(); ++c) {
      part.valid.column(c).reserve(rows, rows * 16);
      columns.push_back(&part.valid.column(c));
    }
    // Each output column with its field's slot, in groups by how a value is appended (one loop
    // per group, no switch per field; unchecked appends: each column has its field's type).
    // Plain pointers: appending to a column writes memory the compiler cannot tell apart from
    // the vectors, so through them it would reload each one for every field.
    struct Out {
      flow::Column* column;
      const json_validator::Slot* slot;
    };
    const json_validator::Slot* sl = v.slots().data();
    std::vector<Out> outs;
    outs.reserve(grouped_fields_.size());
    for (const std::size_t f : grouped_fields_) outs.push_back(Out{columns[f], sl + f});
    const auto [ni, nd, ns, nb] = group_sizes_;
    const Out *ints = outs.data(), *floats = ints + ni, *strings = floats + nd, *bools = strings + ns;
    // Messages are read where they lie in the column: the bytes after one (the next messages)
    // are its parser padding, so only the last few are copied.
    const flow::Column& values = *job.values;
    const std::string& chars = values.chars();
    const uint32_t* offsets = values.offsets().data();
    // Each row's verdict, in row order (validate_rows() may judge several rows in one pass).
    struct Sink {
      const JsonValidator& stage;
      json_validator::RecordValidator& v;
      const Rows& job;
      Part& part;
      std::size_t rows, ni, nd, ns, nb;
      const Out *ints, *floats, *strings, *bools;
      const std::string& chars;
      const uint32_t* offsets;
    } sink{*this, v, job, part, rows, ni, nd, ns, nb, ints, floats, strings, bools, chars, offsets};
    auto on_row = [](void* p, std::size_t i, bool valid) {
      Sink& k = *static_cast<Sink*>(p);
      if (valid) {
        for (std::size_t g = 0; g < k.ni; ++g) {
          if (k.ints[g].slot->present) k.ints[g].column->append_int64_unchecked(k.ints[g].slot->i);
          else k.ints[g].column->append_null();
        }
        for (std::size_t g = 0; g < k.nd; ++g) {
          if (k.floats[g].slot->present) k.floats[g].column->append_double_unchecked(k.floats[g].slot->d);
          else k.floats[g].column->append_null();
        }
        for (std::size_t g = 0; g < k.ns; ++g) {
          if (k.strings[g].slot->present) k.strings[g].column->append_string_unchecked(k.strings[g].slot->s);
          else k.strings[g].column->append_null();
        }
        for (std::size_t g = 0; g < k.nb; ++g) {
          if (k.bools[g].slot->present) k.bools[g].column->append_bool_unchecked(k.bools[g].slot->b);
          else k.bools[g].column->append_null();
        }
        return true;
      }
      const Reason reason = k.v.reason();
      ++k.part.reasons[static_cast<std::size_t>(reason)];
      if (k.stage.mode_ == Mode::Fail) {
        k.part.failure = Failure{i, reason, k.v.message()};
        return false;
      }
      if (!k.job.dead_letter) return true;
      flow::Batch& dead = k.part.dead;
      if (!dead.schema()) {
        dead = flow::Batch(dead_letter_schema());
        dead.column(0).reserve(k.rows, 0);
      }
      dead.column(0).append_string(std::string_view(k.chars.data() + k.offsets[i], k.offsets[i + 1] - k.offsets[i]));
      dead.column(1).append_string(json_validator::reason_name(reason));
      dead.column(2).append_string(k.v.message());
      dead.column(3).append_string(k.job.topic ? k.job.topic->string_at(i) : std::string_view());
      if (k.job.partition) dead.column(4).append_int64(k.job.partition->int64_at(i));
      else dead.column(4).append_null();
      if (k.job.offset) dead.column(5).append_int64(k.job.offset->int64_at(i));
      else dead.column(5).append_null();
      return true;
    };
    v.validate_rows(chars.data(), chars.size(), offsets, begin, end, on_row, &sink);
  }

  // A thread with its own RecordValidator that takes chunks of each batch it is told about.
  class Helper {
   public:
    // name: the thread's name for top -H and perf (the stage id and "+N", cut to Linux's 15 bytes).
    Helper(const JsonValidator& stage, json_validator::RecordValidator v, const std::string& name)
        : stage_(stage), validator_(std::move(v)), thread_([this] { loop(); }) {
      ::pthread_setname_np(thread_.native_handle(), name.c_str());
    }
    ~Helper() {
      {
        std::lock_guard lock(mu_);
        quit_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
    // Not waited for: the stage thread waits until every chunk is done, whoever took it.
    void start(std::shared_ptr<Work> work) {
      {
        std::lock_guard lock(mu_);
        work_ = std::move(work);
      }
      cv_.notify_all();
    }

   private:
    void loop() {
      std::unique_lock lock(mu_);
      for (;;) {
        cv_.wait(lock, [&] { return work_ || quit_; });
        if (quit_) return;
        std::shared_ptr<Work> work = std::move(work_);
        lock.unlock();
        work->run(stage_, validator_);
        work.reset();
        lock.lock();
      }
    }
    const JsonValidator& stage_;
    json_validator::RecordValidator validator_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::shared_ptr<Work> work_;  // the batch to help with, until taken
    bool quit_ = false;
    std::thread thread_;  // last: starts after the members it uses
  };

  // Counters are made on first use, so the run summary lists only the reasons that occurred.
  void count(Reason reason, uint64_t n) {
    flow::Counter*& c = counters_[static_cast<std::size_t>(reason)];
    if (!c) c = &ctx_->counter("invalid_records", {{"reason", std::string(json_validator::reason_name(reason))}});
    c->add(n);
  }

  // threads: 0 is one helper where there is a second core. Not the default: in the IoT pipeline
  // on 2 cores, under SCHED_BATCH, the other stages keep the second core busy and a helper only
  // adds CPU (docs/architecture.md, "The local pipeline, fifth round").
  static int64_t thread_count(int64_t option) {
    if (option > 0) return option;
    return std::thread::hardware_concurrency() >= 2 ? 2 : 1;
  }

  static json_validator::RecordValidator make_validator(const Options& o) {
    std::vector<flow::ConfigError> errors;
    auto fields = json_validator::parse_schema(o.schema, errors);
    if (!errors.empty()) throw flow::ConfigException(errors.front().where, errors.front().message);
    return json_validator::RecordValidator(std::move(fields), o.extra_fields == "reject",
                                           static_cast<std::size_t>(o.max_message_bytes.bytes));
  }

  static const flow::Column* typed_column(const flow::Batch& b, std::string_view name, flow::Type type) {
    const auto i = b.schema()->index_of(name);
    return i && b.schema()->field(*i).type == type ? &b.column(*i) : nullptr;
  }

  static std::string column_list(const flow::Schema& s) {
    std::string out;
    for (const auto& f : s.fields()) out += (out.empty() ? "" : ", ") + f.name + " (" + flow::type_name(f.type) + ")";
    return out.empty() ? "none" : out;
  }

  static std::string where(std::size_t row, const flow::Column* topic, const flow::Column* partition,
                           const flow::Column* offset) {
    if (!partition && !offset) return "row " + std::to_string(row) + " of its batch";
    std::string w;
    if (topic) w += "topic '" + std::string(topic->string_at(row)) + "' ";
    if (partition) w += "partition " + std::to_string(partition->int64_at(row)) + " ";
    if (offset) w += "offset " + std::to_string(offset->int64_at(row));
    if (!w.empty() && w.back() == ' ') w.pop_back();
    return w;
  }

  Options o_;
  json_validator::RecordValidator validator_;
  flow::SchemaPtr out_schema_;
  Mode mode_ = Mode::DeadLetter;
  std::array<flow::Counter*, json_validator::kReasonCount> counters_{};
  flow::Context* ctx_ = nullptr;
  flow::Logger* log_ = nullptr;
  bool warned_unconnected_ = false;
  // The output columns' indexes, grouped (int64/timestamp, float64, string, bool), and the
  // size of each group.
  std::vector<std::size_t> grouped_fields_;
  std::array<std::size_t, 4> group_sizes_{};
  Part main_part_;
  std::vector<Part> chunk_parts_;                 // with helpers: one per chunk of a batch
  std::vector<std::unique_ptr<Helper>> helpers_;  // threads - 1, started by open()
};

}  // namespace

FLOW_PLUGIN(JsonValidator)
