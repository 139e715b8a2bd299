// stdout-sink: formats through the harness (fd 1 redirected to a file), and a real
// `flowctl run ... | head -1` for a reader that goes away.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "flow/conformance/gtest.hpp"
#include "flow/testing/harness.hpp"
#include "support/files.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

using flow::test::read_file;
using flow::test::TempDir;
using flow::test::write_file;

// Runs `body` with fd 1 going to `path`.
template <class F>
void with_stdout(const std::filesystem::path& path, F body) {
  std::fflush(stdout);
  const int saved = ::dup(1);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ::dup2(fd, 1);
  ::close(fd);
  body();
  ::dup2(saved, 1);
  ::close(saved);
}

flow::Batch typed_batch(flow::testing::AckLog& acks) {
  flow::Batch b(flow::make_schema({{"id", flow::Type::Int64},
                                   {"name", flow::Type::String},
                                   {"t", flow::Type::Float64},
                                   {"ok", flow::Type::Bool},
                                   {"at", flow::Type::Timestamp}}));
  b.column(0).append_int64(7);
  b.column(1).append_string("a \"quoted\", name\n");
  b.column(2).append_double(21.5);
  b.column(3).append_bool(true);
  b.column(4).append_timestamp(1749978721'500000);
  b.column(0).append_int64(-1);
  b.column(1).append_null();
  b.column(2).append_double(std::nan(""));
  b.column(3).append_bool(false);
  b.column(4).append_timestamp(1749978721'000000);
  b.positions() = acks.track(0, 2);
  return b;
}

TEST(StdoutSink, JsonLines) {
  TempDir d;
  flow::testing::AckLog acks;
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "format: json\n");
  h.open();
  with_stdout(d / "out", [&] { h.push(typed_batch(acks)); });
  h.finish();
  h.close();
  EXPECT_EQ(read_file(d / "out"),
            "{\"id\":7,\"name\":\"a \\\"quoted\\\", name\\n\",\"t\":21.5,\"ok\":true,\"at\":\"2025-06-15T09:12:01.500000Z\"}\n"
            "{\"id\":-1,\"name\":null,\"t\":null,\"ok\":false,\"at\":\"2025-06-15T09:12:01Z\"}\n");
  EXPECT_TRUE(acks.all_acked());
}

TEST(StdoutSink, CsvWithHeader) {
  TempDir d;
  flow::testing::AckLog acks;
  flow::testing::StageHarness h(*flow_plugin_entry::descriptor(), "format: csv\n");
  h.open();
  with_stdout(d / "out", [&] { h.push(typed_batch(acks)); });
  h.close();
  EXPECT_EQ(read_file(d / "out"),
            "id,name,t,ok,at\n"
            "7,\"a \"\"quoted\"\", name\n\",21.5,true,2025-06-15T09:12:01.500000Z\n"
            "-1,,NaN,false,2025-06-15T09:12:01Z\n");
  EXPECT_TRUE(acks.all_acked());
}

// Runs `cmd` as a bash script (no quoting through system()'s sh).
int shell(const TempDir& d, const std::string& cmd) {
  write_file(d / "cmd.sh", cmd + "\n");
  const int st = std::system(("bash " + (d / "cmd.sh").string()).c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(StdoutSink, ReaderClosingThePipeEndsTheRunWithExitCode1) {
  if (!std::filesystem::exists(std::filesystem::path(FLOW_PLUGIN_DIR) / "libflow-file-source.so"))
    GTEST_SKIP() << "file-source not built";
  TempDir d;
  std::string text;
  for (int i = 0; i < 300000; ++i) text += "{\"n\":" + std::to_string(i) + "}\n";
  write_file(d / "big.log", text);
  write_file(d / "pipe.yaml", "name: to-head\nstages:\n"
                              "  - id: in\n    plugin: file-source\n    config: {paths: ['" + (d / "big.log").string() +
                                  "'], exit_at_end: true}\n"
                              "  - id: out\n    plugin: stdout-sink\n    input: in\n");
  // PIPESTATUS[0]: flowctl's own exit code, not head's.
  const int rc = shell(d, std::string(FLOW_FLOWCTL) + " run -q " + (d / "pipe.yaml").string() + " 2> " +
                       (d / "err").string() + " | head -1 > " + (d / "first").string() +
                       "; exit ${PIPESTATUS[0]}");
  const std::string err = read_file(d / "err");
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find("stage 'out' failed: stdout was closed by its reader (EPIPE)"), std::string::npos) << err;
  const std::string first = read_file(d / "first");
  EXPECT_TRUE(first.starts_with(R"({"key":null,"value":"{\"n\":0}",)")) << first;
}

TEST(StdoutSink, ConfigErrors) {
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "format: xml\n").check().empty());
  EXPECT_TRUE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "").check().empty());
}

}  // namespace

FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "format: json\n");
