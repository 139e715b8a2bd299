// csv-window-sink's manifest entry reader (flow_parts/readers.hpp, parse_manifest), which every
// sink's open() and merge-archive run over <checkpoint>/commits. Beyond "no crash": only
// FormatError escapes, with a message; an accepted entry has sane ranges and reads back the same
// after being written again (manifest_json coalesces ranges, so compare coalesced), header too.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "flow_parts/file_parts.hpp"
#include "flow_parts/readers.hpp"

using namespace flow::parts;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  ManifestEntry e;
  try {
    e = parse_manifest(in);
  } catch (const FormatError& err) {
    if (std::string_view(err.what()).empty()) std::abort();
    return 0;
  }
  for (const auto& r : e.ranges)
    if (r.begin < 0 || r.end < r.begin) std::abort();
  Manifest m;
  m.part = "p-r-c0000-000000-0000.csv";
  m.bytes = e.bytes.value_or(0);
  m.ranges = e.ranges;
  m.header = e.header.value_or("");
  const ManifestEntry back = parse_manifest(manifest_json(m));  // must not throw
  if (back.ranges != coalesce(e.ranges) || back.bytes != m.bytes) std::abort();
  // The header line (merge-archive checks each part's against it) survives byte for byte: the
  // parser only accepts valid UTF-8, which the writer's escaping keeps as it is.
  if (e.header && back.header != e.header) std::abort();
  return 0;
}
