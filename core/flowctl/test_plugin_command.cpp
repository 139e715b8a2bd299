// flowctl test-plugin LIBRARY [--config sample.yaml] [--filter REGEX]: the conformance suite
// (sdk/conformance) against any plugin library. One line per check, then "N passed, M failed".
#include <fstream>
#include <regex>
#include <sstream>

#include "flow/conformance/conformance.hpp"
#include "flowctl/commands.hpp"
#include "host/plugin_loader.hpp"

namespace flow::cli {

namespace {
struct TestPluginArgs {
  std::string library;
  std::string config;
  std::string filter;
  double timeout = 20;
};
}  // namespace

void register_test_plugin_command(CLI::App& app, Globals& g) {
  auto args = std::make_shared<TestPluginArgs>();
  auto* cmd = app.add_subcommand("test-plugin", "Run the plugin conformance suite against a plugin library");
  cmd->add_option("library", args->library, "Path to libflow-<name>.so, or a plugin name on the search path")->required();
  cmd->add_option("--config", args->config,
                  "Sample config: a YAML map of the stage's options; ${TMPDIR} becomes a fresh temporary directory "
                  "(default: the plugin's own example)")
      ->check(CLI::ExistingFile)
      ->type_name("FILE");
  cmd->add_option("--filter", args->filter, "Run only the checks whose name matches this regular expression")->type_name("REGEX");
  cmd->add_option("--timeout", args->timeout, "Seconds one check may run before it counts as hung (default 20)")
      ->check(CLI::Range(0.1, 3600.0))
      ->type_name("SECONDS");
  cmd->footer(
      "Prints one line per check (PASS name / FAIL name: expected ..., saw ... / SKIP name: reason) and closes with\n"
      "\"N passed, M failed\". Exit 0 when no check failed, 1 otherwise, 2 for usage errors.");
  cmd->callback([&g, args] {
    conformance::Options options;
    std::string library = args->library;
    if (library.find('/') == std::string::npos && !library.ends_with(".so")) {
      // A plugin name: resolve it on the search path as `plugins describe` does.
      bool found = false;
      for (const auto& dir : loader::default_search_path(g.plugin_paths)) {
        auto p = dir / ("libflow-" + library + ".so");
        if (std::filesystem::exists(p)) {
          library = p.string();
          found = true;
          break;
        }
      }
      if (!found) {
        std::fprintf(stderr, "flowctl: error: unknown plugin '%s': no libflow-%s.so on the plugin search path\n",
                     args->library.c_str(), args->library.c_str());
        g.exit_code = kExitConfig;
        return;
      }
    }
    if (!std::filesystem::exists(library)) {
      std::fprintf(stderr, "flowctl: error: %s: no such plugin library\n", library.c_str());
      g.exit_code = kExitConfig;
      return;
    }
    options.library = library;
    if (args->config.empty()) {
      // No --config: the plugin's own example. A library that does not load is left to the
      // suite, whose first checks report the failed step.
      try {
        const auto plugin = loader::load_plugin_file(library);
        options.sample_yaml = plugin->descriptor().example;
        if (!options.sample_yaml.empty()) std::printf("config: the plugin's example\n");
      } catch (const std::exception&) {
      }
    } else {
      std::ifstream in(args->config);
      std::stringstream ss;
      ss << in.rdbuf();
      if (!in) {
        std::fprintf(stderr, "flowctl: error: %s: cannot read the sample config\n", args->config.c_str());
        g.exit_code = kExitConfig;
        return;
      }
      options.sample_yaml = ss.str();
    }
    try {
      if (!args->filter.empty()) (void)std::regex(args->filter);
    } catch (const std::regex_error& e) {
      std::fprintf(stderr, "flowctl: error: --filter '%s': %s\n", args->filter.c_str(), e.what());
      g.exit_code = kExitConfig;
      return;
    }
    options.filter = args->filter;
    options.check_timeout = std::chrono::milliseconds(static_cast<int64_t>(args->timeout * 1000));
    conformance::Suite suite(options);
    const auto results = suite.run();
    const std::size_t failed = conformance::print_report(results, stdout);
    g.exit_code = failed == 0 ? kExitOk : kExitRuntime;
  });
}

}  // namespace flow::cli
