// stdin-source: real pipes into a real `flowctl run`, and the conformance suite.
#include <gtest/gtest.h>
#include <sys/wait.h>

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

// Runs `cmd` as a bash script (no quoting through system()'s sh).
int shell(const TempDir& d, const std::string& cmd) {
  write_file(d / "cmd.sh", cmd + "\n");
  const int st = std::system(("bash " + (d / "cmd.sh").string()).c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool have_stdout_sink() {
  return std::filesystem::exists(std::filesystem::path(FLOW_PLUGIN_DIR) / "libflow-stdout-sink.so");
}

const char* kPipe = R"(name: stdin-to-stdout
stages:
  - id: in
    plugin: stdin-source
    config: {format: json}
  - id: out
    plugin: stdout-sink
    input: in
    config: {format: json}
)";

TEST(StdinSource, PrintfIntoFlowctlRunEndsCleanlyAtEndOfInput) {
  if (!have_stdout_sink()) GTEST_SKIP() << "stdout-sink not built";
  TempDir d;
  write_file(d / "pipe.yaml", kPipe);
  // The last line has no newline: end of input completes it.
  const int rc = shell(d, R"(printf '{"n":1}\n\n{"n":2}\r\n{"n":3}' | )" + std::string(FLOW_FLOWCTL) +
                       " run " + (d / "pipe.yaml").string() + " > " + (d / "out").string() + " 2> " +
                       (d / "err").string());
  EXPECT_EQ(rc, 0) << read_file(d / "err");
  const std::string out = read_file(d / "out");
  EXPECT_EQ(out,
            "{\"key\":null,\"value\":\"{\\\"n\\\":1}\",\"topic\":\"stdin\",\"partition\":0,\"offset\":0,\"timestamp\":null}\n"
            "{\"key\":null,\"value\":\"{\\\"n\\\":2}\",\"topic\":\"stdin\",\"partition\":0,\"offset\":9,\"timestamp\":null}\n"
            "{\"key\":null,\"value\":\"{\\\"n\\\":3}\",\"topic\":\"stdin\",\"partition\":0,\"offset\":18,\"timestamp\":null}\n");
  EXPECT_NE(read_file(d / "err").find("end of standard input after 3 line(s)"), std::string::npos) << read_file(d / "err");
}

TEST(StdinSource, LargeInputThroughAPipe) {
  if (!have_stdout_sink()) GTEST_SKIP() << "stdout-sink not built";
  TempDir d;
  write_file(d / "pipe.yaml", kPipe);
  const int rc = shell(d, "seq 1 200000 | " + std::string(FLOW_FLOWCTL) + " run -q " + (d / "pipe.yaml").string() +
                       " | wc -l > " + (d / "count").string());
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(std::atoi(read_file(d / "count").c_str()), 200000);
}

TEST(StdinSource, ConfigErrors) {
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "format: xml\n").check().empty());
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "batch_size: 0\n").check().empty());
  EXPECT_TRUE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "").check().empty());
}

}  // namespace

FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "format: lines\n");
