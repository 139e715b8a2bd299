// json-validator: raw JSON messages in, typed columns out; every rejected record leaves with a
// reason (dead letters on output "invalid"), is dropped, or fails the pipeline.
#include <array>
#include <ctime>
#include <stdexcept>
#include <string>
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
  }

  void open(flow::Context& ctx) override {
    ctx_ = &ctx;
    log_ = &ctx.log();
  }

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

    flow::Batch valid(out_schema_);
    columns_.clear();
    for (std::size_t c = 0; c < valid.num_columns(); ++c) {
      valid.column(c).reserve(rows, rows * 16);
      columns_.push_back(&valid.column(c));
    }
    flow::Batch dead;
    const auto& fields = validator_.fields();
    const auto& slots = validator_.slots();

    // Messages are read where they lie in the column: the bytes after one (the next messages)
    // are its parser padding, so only the last few are copied.
    const std::string& chars = values.chars();
    const uint32_t* offsets = values.offsets().data();
    for (std::size_t i = 0; i < rows; ++i) {
      const bool null = values.is_null(i);
      const std::string_view raw =
          null ? std::string_view() : std::string_view(chars.data() + offsets[i], offsets[i + 1] - offsets[i]);
      if (validator_.validate(raw, null ? 0 : chars.size() - offsets[i])) {
        for (std::size_t f = 0; f < fields.size(); ++f) {
          const json_validator::Slot& s = slots[f];
          flow::Column& c = *columns_[f];
          if (!s.present) {
            c.append_null();
            continue;
          }
          switch (fields[f].type) {
            case FieldType::Int: c.append_int64(s.i); break;
            case FieldType::Float: c.append_double(s.d); break;
            case FieldType::String: c.append_string(s.s); break;
            case FieldType::Bool: c.append_bool(s.b); break;
            case FieldType::Timestamp: c.append_timestamp(s.i); break;
          }
        }
        continue;
      }
      const Reason reason = validator_.reason();
      count(reason);
      if (mode_ == Mode::Fail)
        throw std::runtime_error("invalid record at " + where(i, topic, partition, offset) + ": " +
                                 std::string(json_validator::reason_name(reason)) + ": " + validator_.message());
      if (!dead_letter) continue;
      if (!dead.schema()) {
        dead = flow::Batch(dead_letter_schema());
        dead.column(0).reserve(rows, 0);
      }
      dead.column(0).append_string(raw);
      dead.column(1).append_string(json_validator::reason_name(reason));
      dead.column(2).append_string(validator_.message());
      dead.column(3).append_string(topic ? topic->string_at(i) : std::string_view());
      if (partition) dead.column(4).append_int64(partition->int64_at(i));
      else dead.column(4).append_null();
      if (offset) dead.column(5).append_int64(offset->int64_at(i));
      else dead.column(5).append_null();
    }

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

  // Counters are made on first use, so the run summary lists only the reasons that occurred.
  void count(Reason reason) {
    flow::Counter*& c = counters_[static_cast<std::size_t>(reason)];
    if (!c) c = &ctx_->counter("invalid_records", {{"reason", std::string(json_validator::reason_name(reason))}});
    c->add();
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
  std::vector<flow::Column*> columns_;
};

}  // namespace

FLOW_PLUGIN(JsonValidator)
