// The conformance suite as GoogleTest tests, one test per check, for a plugin's own test binary:
//
//   #include "flow/conformance/gtest.hpp"
//   FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "threshold: 30\n");
//
// registers Conformance.<check> tests (dots in check names become underscores). A check that
// does not apply to the plugin's kind, or whose prerequisite failed, is reported as skipped.
// Link flow::conformance and GTest.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "flow/conformance/conformance.hpp"

namespace flow::conformance {

namespace detail {

inline std::string test_name(std::string check) {
  for (auto& c : check)
    if (c == '.' || c == '-') c = '_';
  return check;
}

// One Suite per (library, config), shared by its tests so prerequisites run once.
inline Suite& shared_suite(const Options& options) {
  static std::map<std::string, std::unique_ptr<Suite>> suites;
  auto& s = suites[options.library + '\n' + options.sample_yaml];
  if (!s) s = std::make_unique<Suite>(options);
  return *s;
}

class CheckTest : public ::testing::Test {
 public:
  CheckTest(Options options, std::string check) : options_(std::move(options)), check_(std::move(check)) {}
  void TestBody() override {
    const CheckResult r = shared_suite(options_).run_one(check_);
    if (r.skipped()) GTEST_SKIP() << r.expected;
    EXPECT_TRUE(r.passed()) << format_result(r);
  }

 private:
  Options options_;
  std::string check_;
};

}  // namespace detail

// Registers one test per check under `suite_name`; returns true (for static initialisers).
inline bool register_tests(Options options, const std::string& suite_name = "Conformance") {
  for (const auto& check : check_names()) {
    ::testing::RegisterTest(suite_name.c_str(), detail::test_name(check).c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [options, check]() -> ::testing::Test* { return new detail::CheckTest(options, check); });
  }
  return true;
}

inline bool register_tests(const std::string& library_path, const std::string& sample_config_yaml) {
  Options options;
  options.library = library_path;
  options.sample_yaml = sample_config_yaml;
  return register_tests(options);
}

}  // namespace flow::conformance

#define FLOW_CONFORMANCE_CONCAT2(a, b) a##b
#define FLOW_CONFORMANCE_CONCAT(a, b) FLOW_CONFORMANCE_CONCAT2(a, b)
// Registers the conformance tests for the plugin library at `library_path` with its sample config.
#define FLOW_CONFORMANCE_TESTS(library_path, sample_config_yaml)                                  \
  [[maybe_unused]] static const bool FLOW_CONFORMANCE_CONCAT(flow_conformance_registered_, __LINE__) = \
      ::flow::conformance::register_tests((library_path), (sample_config_yaml))
