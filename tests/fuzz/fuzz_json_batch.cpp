// A whole batch through the json-validator stage (the input split at '\n' into records): never a
// crash, and every record ends in exactly one place, valid output or a dead letter. And the
// records laid out as a column and validated together (RecordValidator::validate_rows, which
// walks windows of rows as one document stream) get the verdict, reason, message and values
// each gets alone.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "flow/testing/harness.hpp"
#include "record_validator.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

const char* kConfig = R"(
schema:
  sensor_id: {type: int, min: 1}
  temperature: {type: float, min: -20, max: 50}
  timestamp: timestamp
  status: {type: string, required: false, allowed: [ok, degraded]}
max_message_bytes: 256
)";

json_validator::RecordValidator* make_validator() {
  std::vector<flow::ConfigError> errors;
  const flow::Value config = flow::testing::yaml(kConfig);
  auto fields = json_validator::parse_schema(*config.find("schema"), errors);
  if (!errors.empty()) std::abort();
  return new json_validator::RecordValidator(std::move(fields), /*reject_extra_fields=*/false, 256);
}

struct Rows {
  json_validator::RecordValidator* alone;
  json_validator::RecordValidator* together;
  const std::vector<std::string>* records;
  std::size_t next = 0;
};

// validate_rows()' verdict on row r against the row validated alone.
bool check_row(void* p, std::size_t r, bool valid) {
  auto& c = *static_cast<Rows*>(p);
  if (r != c.next++) std::abort();  // in order, each once
  const auto& t = *c.together;
  // The together-validator's slots are overwritten by the next validate(): copy them first.
  const std::vector<json_validator::Slot> slots = t.slots();
  std::vector<std::string> texts;
  for (std::size_t f = 0; valid && f < slots.size(); ++f) {  // only a valid row's strings hold its text
    const auto type = t.fields()[f].type;
    const bool text = type == json_validator::FieldType::String || type == json_validator::FieldType::Timestamp;
    texts.emplace_back(slots[f].present && text ? slots[f].s : std::string_view());
  }
  const json_validator::Reason reason = t.reason();
  const std::string message = t.message();
  auto& a = *c.alone;
  if (a.validate((*c.records)[r]) != valid) std::abort();
  if (!valid) {
    if (a.reason() != reason || a.message() != message) std::abort();
    return true;
  }
  for (std::size_t f = 0; f < slots.size(); ++f) {
    const auto &x = slots[f], &y = a.slots()[f];
    if (x.present != y.present) std::abort();
    if (!x.present) continue;
    switch (t.fields()[f].type) {
      case json_validator::FieldType::Int: if (x.i != y.i) std::abort(); break;
      case json_validator::FieldType::Float: if (std::memcmp(&x.d, &y.d, sizeof x.d) != 0) std::abort(); break;
      case json_validator::FieldType::Bool: if (x.b != y.b) std::abort(); break;
      case json_validator::FieldType::String: if (texts[f] != y.s) std::abort(); break;
      case json_validator::FieldType::Timestamp: if (x.i != y.i || texts[f] != y.s) std::abort(); break;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> records;
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') records.push_back(std::move(cur)), cur.clear();
    else cur.push_back(static_cast<char>(data[i]));
  }
  records.push_back(std::move(cur));
  {
    static json_validator::RecordValidator* alone = make_validator();
    static json_validator::RecordValidator* together = make_validator();
    std::string chars;
    std::vector<uint32_t> offsets{0};
    for (const auto& r : records) {
      chars += r;
      offsets.push_back(static_cast<uint32_t>(chars.size()));
    }
    // Padding after the last row only sometimes: a column has none (its last rows go alone).
    const std::size_t readable = chars.size() + (size % 2 ? 64 : 0);
    chars.resize(readable, ' ');
    Rows rows{alone, together, &records};
    if (!together->validate_rows(chars.data(), readable, offsets.data(), 0, records.size(), check_row, &rows))
      std::abort();
    if (rows.next != records.size()) std::abort();
  }
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), kConfig);
  h.open();
  flow::testing::AckLog acks;
  h.push(flow::testing::raw_batch(records, acks.track(0, static_cast<int64_t>(records.size()))));
  h.finish();
  std::size_t out = h.output_rows() + h.output_rows("invalid");
  if (out != records.size()) std::abort();
  for (auto& b : h.output()) b.positions().ack();
  for (auto& b : h.output("invalid")) b.positions().ack();
  if (!acks.all_acked()) std::abort();
  h.close();
  return 0;
}
