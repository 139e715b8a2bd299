// file-source in real `flowctl run` processes: file-source -> json-validator -> csv-window-sink,
// with files rotated, truncated and deleted while they are read, and a kill -9 and restart. The
// committed CSV parts are the output; every test counts each input line in them.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "support/files.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;

namespace {

using flow::test::eventually;
using flow::test::Process;
using flow::test::read_file;
using flow::test::TempDir;
using flow::test::write_file;

// Generous: sanitizer builds in CI run these a few times slower, several at once.
constexpr std::chrono::seconds kPatience{240};

bool have_plugins() {
  for (const char* p : {"json-validator", "csv-window-sink"})
    if (!fs::exists(fs::path(FLOW_PLUGIN_DIR) / ("libflow-" + std::string(p) + ".so"))) return false;
  return true;
}

std::string pipeline(const TempDir& d, const std::string& glob, const std::string& extra = "") {
  const std::string dir = d.path().string();
  return "name: file-test\nstages:\n"
         "  - id: src\n    plugin: file-source\n    config:\n"
         "      paths: ['" + dir + "/in/" + glob + "']\n"
         "      checkpoint_dir: " + dir + "/ckpt\n"
         "      poll_interval: 50ms\n      rotate_wait: 500ms\n" + (extra.empty() ? "      checkpoint_interval: 100ms\n" : extra) +
         "  - id: validate\n    plugin: json-validator\n    input: src\n    config: {schema: {n: int}, on_invalid: fail}\n"
         "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n    config: {path: " + dir +
         "/out, window: 200ms}\n";
}

void append_lines(const fs::path& p, int from, int to) {
  std::ofstream f(p, std::ios::app | std::ios::binary);
  for (int i = from; i < to; ++i) f << "{\"n\":" << i << "}\n";
}

// How often each n appears in the committed parts (visible *.csv files).
std::map<int, int> committed(const fs::path& out) {
  std::map<int, int> seen;
  for (const auto& name : flow::test::visible_files(out)) {
    if (!name.ends_with(".csv")) continue;
    std::istringstream in(read_file(out / name));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line))
      if (!line.empty()) ++seen[std::stoi(line)];
  }
  return seen;
}

bool all_present(const fs::path& out, int n) {
  const auto seen = committed(out);
  for (int i = 0; i < n; ++i)
    if (!seen.count(i)) return false;
  return true;
}

// Fails for a missing line; returns the number of duplicates.
int check_lines(const fs::path& out, int n) {
  const auto seen = committed(out);
  int missing = 0, dups = 0;
  for (int i = 0; i < n; ++i) {
    auto it = seen.find(i);
    if (it == seen.end()) ++missing;
    else dups += it->second - 1;
  }
  EXPECT_EQ(missing, 0) << "lines lost";
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(n)) << "lines that were never written";
  return dups;
}

std::vector<std::string> run_argv(const TempDir& d) {
  return {FLOW_FLOWCTL, "run", "-q", (d / "pipe.yaml").string()};
}

TEST(FilePipeline, RotationByRenameAndByTruncationWhileWriting) {
  if (!have_plugins()) GTEST_SKIP() << "json-validator and csv-window-sink not built";
  TempDir d;
  fs::create_directories(d / "in");
  write_file(d / "pipe.yaml", pipeline(d, "app.log"));
  Process p(run_argv(d), d / "run");
  const auto app = d / "in/app.log";
  append_lines(app, 0, 1000);  // appears after the start: read from its beginning
  ASSERT_TRUE(eventually([&] { return all_present(d / "out", 1000); }, kPatience)) << p.err();

  // Rotation by rename: the old writer still appends to the renamed file for a while.
  fs::rename(app, d / "in/app.log.1");
  append_lines(d / "in/app.log.1", 1000, 1100);
  append_lines(app, 1100, 2000);
  ASSERT_TRUE(eventually([&] { return all_present(d / "out", 2000); }, kPatience)) << p.err();

  // Rotation by truncation (copytruncate): shorter than before, so it is noticed.
  fs::resize_file(app, 0);
  append_lines(app, 2000, 2050);
  ASSERT_TRUE(eventually([&] { return all_present(d / "out", 2050); }, kPatience)) << p.err();
  ASSERT_TRUE(eventually([&] { return p.err().find("app.log.1' was rotated away") != std::string::npos; }, kPatience)) << p.err();

  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << p.err();
  EXPECT_EQ(check_lines(d / "out", 2050), 0) << "no crash, so no line may come twice";
  const std::string log = p.err();
  EXPECT_NE(log.find("app.log' was truncated"), std::string::npos) << log;
  EXPECT_NE(log.find("app.log.1' was rotated away"), std::string::npos) << log;
}

TEST(FilePipeline, FileDeletedWhileReadIsReadToItsEnd) {
  if (!have_plugins()) GTEST_SKIP() << "json-validator and csv-window-sink not built";
  TempDir d;
  fs::create_directories(d / "in");
  const int n = 1'000'000;
  append_lines(d / "in/big.log", 0, n);
  write_file(d / "pipe.yaml", pipeline(d, "*.log"));
  Process p(run_argv(d), d / "run");
  ASSERT_TRUE(eventually([&] { return !committed(d / "out").empty(); }, kPatience)) << p.err();
  const std::size_t before = committed(d / "out").size();
  fs::remove(d / "in/big.log");
  ASSERT_TRUE(eventually([&] { return all_present(d / "out", n); }, kPatience)) << p.err();
  ASSERT_TRUE(eventually([&] { return p.err().find("big.log' was deleted") != std::string::npos; }, kPatience)) << p.err();
  p.signal(SIGTERM);
  ASSERT_EQ(p.wait(std::chrono::seconds(60)), 0) << p.err();
  EXPECT_EQ(check_lines(d / "out", n), 0);
  std::cout << "lines committed when the file was deleted: " << before << " of " << n << "\n";
  RecordProperty("committed_at_delete", static_cast<int>(before));
}

// Kills the pipeline with SIGKILL once some parts are committed, restarts it while the file keeps
// growing, and returns the number of duplicated lines (after checking that none was lost).
// `sink_warned`: the restarted csv-window-sink found a part without its manifest entry (the kill
// came between the part's rename and its entry), whose records a source may read again.
int kill_and_restart(const TempDir& d, const std::string& extra, bool wait_checkpoint, bool& sink_warned) {
  fs::create_directories(d / "in");
  const int first = 1'000'000, total = 1'100'000;
  append_lines(d / "in/data.log", 0, first);
  write_file(d / "pipe.yaml", pipeline(d, "*.log", extra));
  std::size_t at_kill = 0;
  {
    Process p(run_argv(d), d / "run1");
    // The first manifest entry (cheap to poll): a part is committed, the file is still being read.
    // With its own checkpoint in use, also its first write (else the restart starts over).
    EXPECT_TRUE(eventually(
        [&] {
          return !flow::test::visible_files(d / "out/_checkpoint/commits").empty() &&
                 (!wait_checkpoint || fs::exists(d / "ckpt/src.positions.json"));
        },
        kPatience))
        << p.err();
    p.signal(SIGKILL);
    EXPECT_EQ(p.wait(std::chrono::seconds(30)), 128 + SIGKILL);
    at_kill = committed(d / "out").size();
  }
  Process p(run_argv(d), d / "run2");
  append_lines(d / "in/data.log", first, total);  // the file keeps growing across the restart
  EXPECT_TRUE(eventually([&] { return all_present(d / "out", total); }, kPatience)) << p.err();
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(60)), 0) << p.err();
  const std::string log = p.err();
  EXPECT_NE(log.find("data.log' at byte"), std::string::npos) << "the restart did not resume\n" << log;
  sink_warned = log.find("has no checkpoint manifest entry") != std::string::npos;
  const int dups = check_lines(d / "out", total);
  EXPECT_LE(dups, static_cast<int>(at_kill)) << "only what was committed before the kill may come again";
  std::cout << "committed before kill -9: " << at_kill << " of " << first << " lines; duplicates after restart: " << dups
            << (sink_warned ? " (a part without its manifest entry)" : "") << "\n";
  return dups;
}

TEST(FilePipeline, KillDash9AndRestartMidFileIsAtLeastOnceFromItsCheckpoint) {
  if (!have_plugins()) GTEST_SKIP() << "json-validator and csv-window-sink not built";
  TempDir d;
  bool warned = false;
  const int dups = kill_and_restart(d, "", true, warned);
  // What the sinks committed after the last checkpoint write may come again; nothing is lost.
  RecordProperty("duplicates", dups);
}

TEST(FilePipeline, KillDash9AndRestartMidFileIsExactlyOnceWithResumeFrom) {
  if (!have_plugins()) GTEST_SKIP() << "json-validator and csv-window-sink not built";
  TempDir d;
  bool warned = false;
  // No checkpoint of its own before the kill (the interval is an hour): without resume_from every
  // committed line would come again.
  const int dups = kill_and_restart(
      d, "      checkpoint_interval: 1h\n      resume_from: ['" + (d / "out/_checkpoint").string() + "']\n", false, warned);
  RecordProperty("duplicates", dups);
  if (!warned) {
    EXPECT_EQ(dups, 0) << "every line exactly once in the committed CSV";
  }
}

}  // namespace
