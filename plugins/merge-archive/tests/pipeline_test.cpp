// csv-window-sink -> merge-archive in a real `flowctl run`, including a process killed with
// SIGKILL in the middle of the merge (FLOW_MERGE_ARCHIVE_CRASH_AT) and the recovering run.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using csv_test::read_file;
using csv_test::TempDir;
using csv_test::visible_files;
using csv_test::write_file;

const fs::path kCounterSource = fs::path(FLOW_PLUGIN_DIR) / "../../../test-plugins/libflow-test.counter-source.so";

std::string pipeline(const fs::path& root, int count) {
  return "name: csv-merge\nstages:\n"
         "  - id: src\n    plugin: " + fs::weakly_canonical(kCounterSource).string() +
         "\n    config: {count: " + std::to_string(count) + ", batch_size: 1000}\n"
         "  - id: csv\n    plugin: csv-window-sink\n    input: src\n"
         "    config: {path: " + (root / "parts").string() + ", max_rows: 30000}\n"
         "  - id: merge\n    plugin: merge-archive\n    input: csv\n"
         "    config: {parts_dir: " + (root / "parts").string() + ", backup_dir: " + (root / "backup").string() + "}\n";
}

// Runs flowctl; returns the shell's wait status.
int run(const fs::path& yaml, const std::string& env = "") {
  const std::string cmd = env + " " + FLOW_FLOWCTL + " run -q " + yaml.string() + " > " + yaml.string() + ".log 2>&1";
  return std::system(cmd.c_str());
}

bool killed(int status) {
  return (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
         (WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGKILL);
}

// Data rows of every archive, in name order (each must start with the header "n").
std::vector<std::string> archived_rows(const fs::path& backup) {
  std::vector<std::string> rows;
  for (const auto& a : visible_files(backup)) {
    std::istringstream in(read_file(backup / a));
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "n") << a;
    while (std::getline(in, line)) rows.push_back(line);
  }
  return rows;
}

std::vector<std::string> numbers(int first, int n) {
  std::vector<std::string> v;
  for (int i = first; i < first + n; ++i) v.push_back(std::to_string(i));
  return v;
}

TEST(CsvMergePipeline, EveryRecordEndsUpInOneArchive) {
  ASSERT_TRUE(fs::exists(kCounterSource)) << kCounterSource;
  TempDir tmp;
  write_file(tmp.path() / "p.yaml", pipeline(tmp.path(), 100'000));
  const int status = run(tmp.path() / "p.yaml");
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(tmp.path() / "p.yaml.log");
  EXPECT_EQ(archived_rows(tmp.path() / "backup"), numbers(0, 100'000));
  EXPECT_EQ(visible_files(tmp.path() / "backup").size(), 1u);
  EXPECT_TRUE(visible_files(tmp.path() / "parts").empty());
  EXPECT_TRUE(visible_files(tmp.path() / "parts" / "_checkpoint" / "commits").empty());
}

TEST(CsvMergePipeline, KilledDuringTheMergeTheNextRunFinishesIt) {
  ASSERT_TRUE(fs::exists(kCounterSource)) << kCounterSource;
  TempDir tmp;
  write_file(tmp.path() / "p.yaml", pipeline(tmp.path(), 100'000));
  const int status = run(tmp.path() / "p.yaml", "FLOW_MERGE_ARCHIVE_CRASH_AT=part-deleted");
  ASSERT_TRUE(killed(status)) << status << "\n" << read_file(tmp.path() / "p.yaml.log");
  // The archive is in place, one part is gone, three (of four) are still there.
  EXPECT_EQ(visible_files(tmp.path() / "parts").size(), 3u);

  write_file(tmp.path() / "q.yaml", pipeline(tmp.path(), 1));  // the next run adds one record "0"
  const int again = run(tmp.path() / "q.yaml");
  ASSERT_TRUE(WIFEXITED(again) && WEXITSTATUS(again) == 0) << read_file(tmp.path() / "q.yaml.log");
  auto expected = numbers(0, 100'000);
  expected.push_back("0");
  EXPECT_EQ(archived_rows(tmp.path() / "backup"), expected);
  EXPECT_TRUE(visible_files(tmp.path() / "parts").empty());
  EXPECT_NE(read_file(tmp.path() / "q.yaml.log").find("finished interrupted archive job"), std::string::npos);
}

}  // namespace
