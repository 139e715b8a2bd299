// merge-archive's part-file reader (flow_parts/readers.hpp, PartScanner): the first byte picks a
// chunk size, the rest is the part. Beyond "no crash": any chunking gives what one whole read
// gives; header + line feed + records is the part (a CR before that line feed dropped); without
// quotes, the row count is the number of lines after the header.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "flow_parts/readers.hpp"

using namespace flow::parts;

namespace {
struct Outcome {
  bool header_done = false, complete = false, added_lf = false;
  std::string header, records;
  uint64_t rows = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome scan(std::string_view part, std::size_t step) {
  PartScanner s;
  Outcome o;
  for (std::size_t i = 0; i < part.size(); i += step) o.records += s.feed(part.substr(i, step));
  o.header_done = s.header_done();
  o.header = s.header();
  try {
    o.added_lf = s.finish();
    o.complete = true;
  } catch (const FormatError& e) {
    if (std::string_view(e.what()).empty()) std::abort();
  }
  o.rows = s.rows();
  return o;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 64;
  const std::string_view part(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Outcome whole = scan(part, std::max<std::size_t>(part.size(), 1));
  if (!(scan(part, step) == whole)) std::abort();
  if (whole.complete != whole.header_done) std::abort();
  if (!whole.complete) {
    if (!whole.records.empty() || whole.rows != 0) std::abort();
    return 0;
  }
  const std::size_t hl = part.size() - whole.records.size() - 1;  // header line without its LF
  if (part[hl] != '\n' || part.substr(hl + 1) != whole.records) std::abort();
  const std::string_view raw = part.substr(0, hl);
  if (raw != whole.header && raw != whole.header + "\r") std::abort();
  if (whole.added_lf != (!whole.records.empty() && whole.records.back() != '\n')) std::abort();
  if (part.find('"') == std::string_view::npos) {
    const auto lines = static_cast<uint64_t>(std::count(whole.records.begin(), whole.records.end(), '\n'));
    if (whole.rows != lines + (whole.added_lf ? 1 : 0)) std::abort();
  }
  return 0;
}
