// One message through json-validator's RecordValidator: never a crash; a valid record has every
// required field; a rejected one has a reason and a message; and the on-demand fast path (when
// this CPU has it) and the DOM path agree on the verdict, the reason and the message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "flow/testing/harness.hpp"
#include "record_validator.hpp"

namespace {

json_validator::RecordValidator* make_validator() {
  std::vector<flow::ConfigError> errors;
  auto schema = flow::testing::yaml(R"(
sensor_id: {type: int, min: 1, max: 100000}
temperature: {type: float, min: -50, max: 100}
humidity: {type: float, required: false}
timestamp: timestamp
status: {type: string, required: false, allowed: [ok, degraded]}
active: {type: bool, required: false}
level: {type: int, required: false, allowed: [1, 2, 3]}
)");
  auto fields = json_validator::parse_schema(schema, errors);
  if (!errors.empty()) std::abort();
  return new json_validator::RecordValidator(std::move(fields), /*reject_extra_fields=*/false, 4096);
}

json_validator::RecordValidator& validator() {
  static json_validator::RecordValidator* v = make_validator();
  return *v;
}

json_validator::RecordValidator& dom_validator() {
  static json_validator::RecordValidator* v = [] {
    auto* d = make_validator();
    d->use_fast_path(false);
    return d;
  }();
  return *v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& v = validator();
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  if (v.validate(raw)) {
    for (std::size_t f = 0; f < v.fields().size(); ++f)
      if (v.fields()[f].required && !v.slots()[f].present) std::abort();
  } else if (v.message().empty()) {
    std::abort();
  }
  auto& d = dom_validator();
  const bool ok = v.message().empty();
  if (d.validate(raw) != ok || (!ok && (d.reason() != v.reason() || d.message() != v.message()))) std::abort();
  return 0;
}
