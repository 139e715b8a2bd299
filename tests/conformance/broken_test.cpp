// `flowctl test-plugin` against deliberately broken plugins (broken/*.cpp): each must fail exactly
// the checks it violates, with the closing "N passed, M failed" line and exit code 1; the
// well-behaved reference passes everything with exit code 0. Runs the real flowctl process.
#include <gtest/gtest.h>

#include "flow/plugin.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

struct FlowctlRun {
  int exit_code = -1;
  std::string out;
  std::set<std::string> failed, passed;
  std::string closing;
};

FlowctlRun run_flowctl(const std::string& args) {
  FlowctlRun r;
  const std::string cmd = std::string(FLOW_FLOWCTL) + " " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) r.out += buf;
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::istringstream lines(r.out);
  std::string line;
  const std::regex fail_re(R"(^FAIL ([a-z.-]+): expected .+, saw .+$)");
  const std::regex pass_re(R"(^PASS ([a-z.-]+)$)");
  const std::regex closing_re(R"(^\d+ passed, \d+ failed(, \d+ skipped)?$)");
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, fail_re)) r.failed.insert(m[1]);
    else if (std::regex_match(line, m, pass_re)) r.passed.insert(m[1]);
    else if (std::regex_match(line, closing_re)) r.closing = line;
  }
  return r;
}

std::string lib(const std::string& name) {
  return std::string(FLOW_CONFORMANCE_PLUGIN_DIR) + "/libflow-broken." + name + ".so";
}

struct Case {
  std::string plugin;
  std::set<std::string> expected_failures;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.plugin; }

class BrokenPlugin : public ::testing::TestWithParam<Case> {};

TEST_P(BrokenPlugin, FailsExactlyItsChecks) {
  const Case& c = GetParam();
  // A short hang limit: hangs-on-large is killed after it.
  const FlowctlRun r = run_flowctl("test-plugin " + lib(c.plugin) + " --timeout 5");
  SCOPED_TRACE(r.out);
  EXPECT_EQ(r.failed, c.expected_failures);
  EXPECT_FALSE(r.closing.empty()) << "no closing 'N passed, M failed' line";
  EXPECT_EQ(r.closing.rfind(std::to_string(r.passed.size()) + " passed, " + std::to_string(r.failed.size()) + " failed", 0), 0u)
      << r.closing;
  EXPECT_EQ(r.exit_code, c.expected_failures.empty() ? 0 : 1);
}

INSTANTIATE_TEST_SUITE_P(
    Conformance, BrokenPlugin,
    ::testing::Values(Case{"good-transform", {}}, Case{"wrong-abi", {"load.abi"}},
                      Case{"no-descriptor", {"load.entry-point"}}, Case{"throwing-factory", {"config.sample"}},
                      Case{"undocumented-option", {"descriptor.options-documented"}},
                      Case{"bad-default", {"descriptor.defaults"}},
                      Case{"ignores-stop", {"lifecycle.stop-idle", "lifecycle.stop-blocked", "data.source-batches"}},
                      Case{"never-acks", {"ack.exactly-once"}}, Case{"own-input-never-acks", {"ack.exactly-once"}},
                      Case{"forwards-and-acks", {"ack.handed-on"}},
                      Case{"crash-on-bad-bytes", {"data.random-bytes", "data.malformed-records"}},
                      Case{"hangs-on-large", {"data.large-batch"}}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = info.param.plugin;
      for (auto& ch : n)
        if (ch == '-') ch = '_';
      return n;
    });

TEST(TestPluginCommand, ReportsWhatTheFailureSaw) {
  const FlowctlRun abi = run_flowctl("test-plugin " + lib("wrong-abi"));
  EXPECT_NE(abi.out.find("FAIL load.abi: expected ABI " + std::to_string(flow::kAbiVersion)), std::string::npos) << abi.out;
  EXPECT_NE(abi.out.find("built for Flow plugin ABI " + std::to_string(flow::kAbiVersion + 41)), std::string::npos) << abi.out;
  const FlowctlRun crash = run_flowctl("test-plugin " + lib("crash-on-bad-bytes") + " --filter random");
  // A segfault: signal 11, or 6 when AddressSanitizer catches it first and aborts.
  EXPECT_TRUE(crash.out.find("died from signal 11 (Segmentation fault)") != std::string::npos ||
              crash.out.find("died from signal 6 (Aborted)") != std::string::npos)
      << crash.out;
  const FlowctlRun throwing = run_flowctl("test-plugin " + lib("throwing-factory") + " --filter config.sample");
  EXPECT_NE(throwing.out.find("broken on purpose: cannot reach the device"), std::string::npos) << throwing.out;
}

TEST(TestPluginCommand, FilterSelectsChecks) {
  const FlowctlRun r = run_flowctl("test-plugin " + lib("good-transform") + " --filter '^descriptor\\.'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.passed.size(), 5u) << r.out;
  EXPECT_EQ(r.closing, "5 passed, 0 failed");
}

TEST(TestPluginCommand, SampleConfigIsUsedAndRejectedWhenInvalid) {
  char path[] = "/tmp/flow-conformance-sample-XXXXXX.yaml";
  const int fd = ::mkstemps(path, 5);
  ASSERT_GE(fd, 0);
  const std::string text = "batch_limit: 5000\n";  // out of its range [1, 1000]
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  const FlowctlRun r = run_flowctl("test-plugin " + lib("good-transform") + " --config " + path);
  ::unlink(path);
  EXPECT_EQ(r.failed, std::set<std::string>{"config.sample"}) << r.out;
  EXPECT_NE(r.out.find("batch_limit"), std::string::npos) << r.out;
  EXPECT_EQ(r.exit_code, 1);
}

TEST(TestPluginCommand, UsageErrorsExitTwo) {
  EXPECT_EQ(run_flowctl("test-plugin").exit_code, 2);
  EXPECT_EQ(run_flowctl("test-plugin /nonexistent/libflow-x.so").exit_code, 2);
  EXPECT_EQ(run_flowctl("test-plugin " + lib("good-transform") + " --filter '('").exit_code, 2);
  EXPECT_EQ(run_flowctl("test-plugin no-such-plugin-name").exit_code, 2);
}

}  // namespace
