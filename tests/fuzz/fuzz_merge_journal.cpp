// merge-archive's job journal reader (flow_parts/readers.hpp, parse_journal), which decides at
// open() what an interrupted job deletes. Only FormatError escapes, with a message; an accepted
// journal has a known state, a plain file name as target, only part names in parts, and reads
// back the same after journal_json.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "flow_parts/file_parts.hpp"
#include "flow_parts/readers.hpp"

using namespace flow::parts;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  Job j;
  try {
    j = parse_journal(in);
  } catch (const FormatError& err) {
    if (std::string_view(err.what()).empty()) std::abort();
    return 0;
  }
  if (j.state != "planned" && j.state != "archived" && j.state != "cleaned") std::abort();
  if (j.target.empty() || j.target.front() == '.' || j.target.find('/') != std::string::npos) std::abort();
  for (const auto& p : j.parts)
    if (!parse_part_name(p) || p.find('/') != std::string::npos) std::abort();
  const Job back = parse_journal(journal_json(j));
  if (back.state != j.state || back.target != j.target || back.parts != j.parts || back.parts_dir != j.parts_dir ||
      back.checkpoint_dir != j.checkpoint_dir || back.backup_dir != j.backup_dir)
    std::abort();
  return 0;
}
