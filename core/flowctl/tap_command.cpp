// flowctl tap STAGE[.OUTPUT]: the records passing one edge of a running pipeline, as JSON lines.
// It reads the pipeline's /tap stream (Server-Sent Events from `flowctl run --metrics-port`).
// The pipeline never waits for us: when we (or the network) are slower than the data, samples
// are skipped on the pipeline's side and we say how many, on stderr.
#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <optional>

#include "flowctl/commands.hpp"
#include "flowctl/tap_filter.hpp"

namespace flow::cli {

void register_tap_command(CLI::App& app, Globals& g) {
  struct Args {
    std::string target;
    std::string url;
    int port = 9464;
    std::size_t limit = 0;
    double rate = 0;
    std::string filter;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("tap", "Print the records passing a stage output of a running pipeline, as JSON lines");
  cmd->add_option("target", a->target, "STAGE or STAGE.OUTPUT (e.g. validate, validate.invalid)")->required();
  cmd->add_option("--url", a->url, "The pipeline's metrics address (default http://127.0.0.1:PORT)")->type_name("URL");
  cmd->add_option("--port", a->port, "The port given to `flowctl run --metrics-port` (default 9464)");
  cmd->add_option("--limit", a->limit, "Stop after N records (0 = until the pipeline ends or Ctrl-C)");
  cmd->add_option("--rate", a->rate, "Print at most this many records per second (others are skipped)");
  cmd->add_option("--filter", a->filter, "Only records where 'column op value' holds; op is == != < <= > >=")
      ->type_name("'COLUMN OP VALUE'");
  cmd->callback([&g, a] {
    std::optional<TapFilter> filter;
    if (!a->filter.empty()) {
      std::string err;
      filter = TapFilter::parse(a->filter, err);
      if (!filter) {
        std::fprintf(stderr, "flowctl: error: --filter '%s': %s\n", a->filter.c_str(), err.c_str());
        g.exit_code = kExitConfig;
        return;
      }
    }
    const std::string base = a->url.empty() ? fmt::format("http://127.0.0.1:{}", a->port) : a->url;
    httplib::Client client(base);
    client.set_read_timeout(std::chrono::seconds(30));  // the server sends a keep-alive every 250 ms
    std::size_t printed = 0;
    uint64_t dropped_total = 0;
    double tokens = a->rate;  // a token bucket for --rate
    auto last = std::chrono::steady_clock::now();
    std::string pending, event;  // SSE parsing state
    bool done = false;
    int status = 0;
    std::string error_body;
    auto handle_line = [&](const std::string& line) {
      if (line.starts_with("event: ")) event = line.substr(7);
      else if (line.starts_with("data: ")) {
        const std::string data = line.substr(6);
        if (event == "dropped") {
          const auto n = std::strtoull(data.c_str(), nullptr, 10);
          dropped_total += n;
          std::fprintf(stderr, "flowctl tap: %llu samples skipped (this reader was slower than the data; %llu in all)\n",
                       static_cast<unsigned long long>(n), static_cast<unsigned long long>(dropped_total));
          return;
        }
        if (filter && !filter->matches(data)) return;
        if (a->rate > 0) {
          const auto now = std::chrono::steady_clock::now();
          tokens = std::min(a->rate, tokens + a->rate * std::chrono::duration<double>(now - last).count());
          last = now;
          if (tokens < 1) return;
          tokens -= 1;
        }
        std::fwrite(data.data(), 1, data.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (a->limit && ++printed >= a->limit) done = true;
      } else if (line.empty()) {
        event.clear();
      }
    };
    auto res = client.Get(
        "/tap?stage=" + httplib::detail::encode_query_param(a->target),
        [&](const httplib::Response& r) {
          status = r.status;
          return true;
        },
        [&](const char* data, std::size_t n) {
          if (status != 200) {
            error_body.append(data, n);
            return true;
          }
          pending.append(data, n);
          std::size_t pos;
          while (!done && (pos = pending.find('\n')) != std::string::npos) {
            handle_line(pending.substr(0, pos));
            pending.erase(0, pos + 1);
          }
          return !done;
        });
    if (done) return;
    if (status != 200 && status != 0) {
      std::fprintf(stderr, "flowctl: error: %s: %s", base.c_str(), error_body.c_str());
      g.exit_code = kExitConfig;
    } else if (!res && res.error() != httplib::Error::Canceled && printed == 0 && status == 0) {
      std::fprintf(stderr, "flowctl: error: cannot reach %s (%s); is `flowctl run --metrics-port` running?\n", base.c_str(),
                   httplib::to_string(res.error()).c_str());
      g.exit_code = kExitRuntime;
    }
    // Otherwise the pipeline ended: the stream closed.
  });
}

}  // namespace flow::cli
