// stdin-source: real pipes into a real `flowctl run`, and the conformance suite.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <cstdlib>
#include <string>

#include "flow/conformance/gtest.hpp"
#include "flow/testing/harness.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

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

// A line reaches the output while the writer keeps the pipe open (a slow producer such as
// `kcat -C` without -e), and closing the pipe ends the run with exit code 0.
TEST(StdinSource, LinesFlowBeforeEndOfInputAndClosingThePipeEndsTheRun) {
  if (!have_stdout_sink()) GTEST_SKIP() << "stdout-sink not built";
  TempDir d;
  write_file(d / "pipe.yaml", kPipe);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string out = (d / "out").string(), err = (d / "err").string(), yaml = (d / "pipe.yaml").string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[0], 0);
    ::close(fds[0]);
    ::close(fds[1]);
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execl(FLOW_FLOWCTL, FLOW_FLOWCTL, "run", "-q", yaml.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[0]);
  ASSERT_EQ(::write(fds[1], "{\"n\":1}\n", 8), 8);
  EXPECT_TRUE(flow::test::eventually([&] { return read_file(d / "out").find("\"offset\":0") != std::string::npos; }))
      << read_file(d / "err");
  ASSERT_EQ(::write(fds[1], "{\"n\":2}\n", 8), 8);
  ::close(fds[1]);  // end of input
  int status = 0;
  bool exited = flow::test::eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; });
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ASSERT_TRUE(exited) << "flowctl did not end after the end of its input\n" << read_file(d / "err");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(d / "err");
  const std::string text = read_file(d / "out");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("\"offset\":8"), std::string::npos) << text;
}

TEST(StdinSource, ConfigErrors) {
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "format: xml\n").check().empty());
  EXPECT_FALSE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "batch_size: 0\n").check().empty());
  EXPECT_TRUE(flow::testing::StageHarness(*flow_plugin_entry::descriptor(), "").check().empty());
}

}  // namespace

FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "format: lines\n");
