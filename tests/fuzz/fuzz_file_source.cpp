// file-source's reader and checkpoint: the input is "<positions file>\x00<log file>" (no NUL:
// all of it is the log file). The stage reads the file to its end (exit_at_end) resuming from
// that checkpoint. Never a crash or hang: either it fails with a message naming the checkpoint,
// or every line it emits is a line of the file.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "flow/testing/harness.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace fs = std::filesystem;

namespace {
void write(const fs::path& p, std::string_view s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(s.data(), static_cast<std::streamsize>(s.size()));
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path dir = [] {
    char tmpl[] = "/tmp/flow-fuzz-file-source-XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    return fs::path(tmpl);
  }();
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto nul = in.find('\0');
  const std::string_view ckpt = nul == std::string_view::npos ? std::string_view() : in.substr(0, nul);
  const std::string_view log = nul == std::string_view::npos ? in : in.substr(nul + 1);
  fs::remove_all(dir / "ckpt");
  fs::create_directories(dir / "ckpt");
  fs::create_directories(dir / "in");
  write(dir / "in/a.log", log);
  if (nul != std::string_view::npos)
    write(dir / "ckpt" / (std::string(flow::testing::kStageId) + ".positions.json"), ckpt);

  const std::string cfg = "paths: ['" + (dir / "in").string() + "/*.log']\ncheckpoint_dir: " + (dir / "ckpt").string() +
                          "\nexit_at_end: true\nformat: lines\nmax_line_size: 64\nread_buffer: 4KiB\n"
                          "inotify: false\n";
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), cfg);
  try {
    h.open();
    h.run_source();
  } catch (const std::exception& e) {
    if (std::string_view(e.what()).empty()) std::abort();
    return 0;
  }
  const std::string whole(log);
  for (auto& b : h.output()) {
    for (std::size_t i = 0; i < b.num_rows(); ++i) {
      const auto line = b.column(1).string_at(i);
      if (line.size() > 64 || whole.find(line) == std::string::npos) std::abort();
    }
    b.positions().ack();
  }
  for (auto& b : h.output("invalid")) b.positions().ack();
  try {
    h.close();
  } catch (const std::exception&) {
  }
  return 0;
}
