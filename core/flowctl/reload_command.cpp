// flowctl reload: asks a running pipeline (`flowctl run --metrics-port P`) to re-read its file,
// like SIGHUP, and prints what it did. POST /reload answers once the reload was applied or
// refused; exit 0 when applied, 1 with the errors (file:line:column) when the file is invalid
// or the reload was refused: the pipeline then goes on unchanged.
#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>

#include "flowctl/commands.hpp"

namespace flow::cli {

void register_reload_command(CLI::App& app, Globals& g) {
  struct Args {
    std::string url;
    int port = 9464;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("reload", "Make a running pipeline re-read its file (as SIGHUP does) and print what changed");
  auto* url = cmd->add_option("--url", a->url, "The pipeline's metrics address (default http://127.0.0.1:PORT)")->type_name("URL");
  cmd->add_option("--metrics-port,--port", a->port, "The port given to `flowctl run --metrics-port` (default 9464)")
      ->excludes(url);
  cmd->callback([&g, a] {
    const std::string base = a->url.empty() ? fmt::format("http://127.0.0.1:{}", a->port) : a->url;
    httplib::Client client(base);
    client.set_connection_timeout(std::chrono::seconds(5));
    client.set_read_timeout(std::chrono::minutes(5));  // the answer comes once the changed stages have drained
    auto res = client.Post("/reload");
    if (!res) {
      std::fprintf(stderr, "flowctl: error: cannot reach %s: %s\n", base.c_str(), httplib::to_string(res.error()).c_str());
      g.exit_code = kExitRuntime;
      return;
    }
    if (res->status / 100 == 2) {
      std::fputs(res->body.c_str(), stdout);
      return;
    }
    std::fputs(res->body.c_str(), stderr);
    if (res->status == 404) std::fprintf(stderr, "flowctl: error: %s does not serve /reload (an older flowctl?)\n", base.c_str());
    g.exit_code = kExitRuntime;
  });
}

}  // namespace flow::cli
