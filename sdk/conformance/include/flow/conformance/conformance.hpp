// The plugin conformance suite: checks that any plugin library can be run against, each a plain
// function returning a CheckResult. `flowctl test-plugin` prints them; flow/conformance/gtest.hpp
// turns them into GoogleTest tests for a plugin's own test binary.
//
// Checks that run plugin code run in a forked child process with a time limit, so a stage that
// crashes or hangs is reported (with the signal, or as hung) instead of taking the suite down.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace flow::conformance {

enum class Status { Pass, Fail, Skip };

struct CheckResult {
  std::string name;
  Status status = Status::Pass;
  std::string expected;  // what the check wanted (for a failure or a skip reason)
  std::string saw;       // what it found

  bool passed() const { return status == Status::Pass; }
  bool failed() const { return status == Status::Fail; }
  bool skipped() const { return status == Status::Skip; }
};

struct Options {
  std::string library;      // path to libflow-<name>.so
  std::string sample_yaml;  // the stage's config as YAML (a map, or empty for none);
                            // every "${TMPDIR}" is replaced with a fresh temporary directory
  std::string filter;       // ECMAScript regex matched against check names; empty = every check
  // Bound on one check running in its child process; past it the child is killed (hung).
  std::chrono::milliseconds check_timeout{20'000};
  // How long a source may take to return from run() after stop is requested.
  std::chrono::milliseconds stop_bound{5'000};
  std::size_t large_batch_rows = 100'000;
};

// Every check name in run order, for any plugin kind (checks that do not apply to a plugin's
// kind are skipped).
const std::vector<std::string>& check_names();

class Suite {
 public:
  explicit Suite(Options options);
  ~Suite();
  Suite(const Suite&) = delete;
  Suite& operator=(const Suite&) = delete;

  // Every check matching the filter. A check whose prerequisite failed (the library does not
  // load, the sample config is rejected) is skipped, naming that prerequisite.
  std::vector<CheckResult> run();
  // One check by name (prerequisites are run, cached, first).
  CheckResult run_one(const std::string& name);

 private:
  struct Impl;
  Impl* impl_;
};

// "PASS name", "FAIL name: expected ..., saw ...", "SKIP name: ...".
std::string format_result(const CheckResult& r);
// Prints every result line and the closing "N passed, M failed" line (", K skipped" appended
// when K > 0); returns the number of failures.
std::size_t print_report(const std::vector<CheckResult>& results, std::FILE* out);

}  // namespace flow::conformance
