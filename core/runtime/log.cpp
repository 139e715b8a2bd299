#include "runtime/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace flow::runtime {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::mutex g_mu;
const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO ";
    case LogLevel::Warn: return "WARN ";
    case LogLevel::Error: return "ERROR";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel log_level() { return static_cast<LogLevel>(g_level.load()); }

bool parse_log_level(std::string_view t, LogLevel& out) {
  if (t == "debug") out = LogLevel::Debug;
  else if (t == "info") out = LogLevel::Info;
  else if (t == "warn" || t == "warning") out = LogLevel::Warn;
  else if (t == "error") out = LogLevel::Error;
  else return false;
  return true;
}

void write_log(LogLevel level, std::string_view scope, std::string_view message) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::string line = fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z {} [{}] {}\n",
                                       std::chrono::floor<std::chrono::seconds>(now), ms, level_name(level), scope, message);
  std::lock_guard lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace flow::runtime
