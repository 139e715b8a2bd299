// merge-archive's archived-offsets.json reader (flow_parts/readers.hpp, parse_archived_offsets),
// read with the manifest entries for every committed end. Only FormatError escapes, with a
// message; accepted ends are sane and read back the same after archived_offsets_json.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "flow_parts/readers.hpp"

using namespace flow::parts;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<flow::PositionRange> ends;
  try {
    ends = parse_archived_offsets(in);
  } catch (const FormatError& err) {
    if (std::string_view(err.what()).empty()) std::abort();
    return 0;
  }
  for (auto& r : ends) {
    if (r.begin < 0 || r.end < r.begin) std::abort();
    r.begin = r.end;  // the file keeps ends only
  }
  if (parse_archived_offsets(archived_offsets_json(ends)) != ends) std::abort();
  return 0;
}
