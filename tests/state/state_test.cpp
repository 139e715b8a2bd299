// Corrupt or foreign state met by real `flowctl run`s (issue 15): each damaged file stops the run
// with exit 1 naming the file and what to do (never a crash), and nothing committed is touched;
// files that are not Flow's are left alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/process.hpp"

namespace {

namespace fs = std::filesystem;
using flow::test::Process;
using flow::test::read_file;
using flow::test::TempDir;
using flow::test::visible_files;
using flow::test::write_file;
using namespace std::chrono_literals;

// sim -> validate -> csv (-> archive when `archive`).
std::string pipeline(const fs::path& d, bool archive, int records = 3000) {
  std::string y = "name: state\nstages:\n"
                  "  - id: sim\n    plugin: sensor-simulator\n"
                  "    config: {sensors: 5, rate: 0, seed: 7, max_records: " + std::to_string(records) +
                  ", start_time: \"2025-06-15 09:12:01\", batch_size: 100}\n"
                  "  - id: validate\n    plugin: json-validator\n    input: sim\n"
                  "    config:\n      on_invalid: fail\n      schema: {sensor_id: int, temperature: float}\n"
                  "  - id: csv\n    plugin: csv-window-sink\n    input: validate\n"
                  "    config: {path: " + (d / "parts").string() + ", checkpoint_dir: " + (d / "ckpt").string() +
                  ", window: 1s}\n";
  if (archive)
    y += "  - id: archive\n    plugin: merge-archive\n    input: csv\n"
         "    config: {parts_dir: " + (d / "parts").string() + ", checkpoint_dir: " + (d / "ckpt").string() +
         ", backup_dir: " + (d / "backup").string() + "}\n";
  return y;
}

struct Run {
  int rc = -1;
  std::string err;
};
Run run(const TempDir& dir, const std::string& yaml, const std::string& tag) {
  write_file(dir / (tag + ".yaml"), yaml);
  Process p({FLOW_FLOWCTL, "--plugin-path", FLOW_PLUGIN_DIR, "run", (dir / (tag + ".yaml")).string()}, dir / tag);
  const auto rc = p.wait(120s);
  return {rc ? *rc : -1, p.err()};
}

std::vector<std::string> parts_of(const fs::path& d) {
  auto v = visible_files(d);
  std::erase_if(v, [](const std::string& n) { return !n.ends_with(".csv"); });
  return v;
}

// Data rows over every archive under backup (one header line per archive).
std::size_t archived_rows(const fs::path& backup) {
  std::size_t n = 0;
  for (const auto& f : visible_files(backup)) {
    const auto text = read_file(backup / f);
    n += static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) - 1;
  }
  return n;
}

TEST(State, TruncatedManifestEntryFailsTheNextRunNamingIt) {
  TempDir dir;
  auto first = run(dir, pipeline(dir.path(), false), "first");
  ASSERT_EQ(first.rc, 0) << first.err;
  const auto parts = parts_of(dir / "parts");
  ASSERT_FALSE(parts.empty());
  const auto entry = dir / "ckpt" / "commits" / (parts[0].substr(0, parts[0].size() - 4) + ".json");
  const auto text = read_file(entry);
  write_file(entry, text.substr(0, text.size() / 2));
  const auto before = read_file(dir / "parts" / parts[0]);

  auto second = run(dir, pipeline(dir.path(), false), "second");
  EXPECT_EQ(second.rc, 1) << second.err;
  EXPECT_NE(second.err.find(entry.string()), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("restore it from a backup"), std::string::npos) << second.err;
  EXPECT_EQ(read_file(dir / "parts" / parts[0]), before) << "the committed part was touched";
}

TEST(State, ArchivedOffsetsOfAnotherVersionFailsTheNextRunNamingIt) {
  TempDir dir;
  auto first = run(dir, pipeline(dir.path(), true), "first");
  ASSERT_EQ(first.rc, 0) << first.err;
  const auto file = dir / "ckpt" / "archived-offsets.json";
  auto text = read_file(file);
  ASSERT_NE(text.find("\"version\":1"), std::string::npos) << text;
  text.replace(text.find("\"version\":1"), 11, "\"version\":9");
  write_file(file, text);

  auto second = run(dir, pipeline(dir.path(), true), "second");
  EXPECT_EQ(second.rc, 1) << second.err;
  EXPECT_NE(second.err.find(file.string()), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("format version 9"), std::string::npos) << second.err;
  EXPECT_EQ(read_file(file), text) << "the file was rewritten";
}

TEST(State, TornCommittedPartStopsTheMergeAndTheAdvisedFixCompletes) {
  TempDir dir;
  auto first = run(dir, pipeline(dir.path(), false), "first");
  ASSERT_EQ(first.rc, 0) << first.err;
  const auto parts = parts_of(dir / "parts");
  ASSERT_FALSE(parts.empty());
  fs::copy(dir / "parts", dir / "parts.first");
  const auto torn = dir / "parts" / parts.back();
  const auto body = read_file(torn);
  write_file(torn, body.substr(0, body.size() - 3));

  auto second = run(dir, pipeline(dir.path(), true, 1000), "second");
  EXPECT_EQ(second.rc, 1) << second.err;
  EXPECT_NE(second.err.find(torn.string()), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("torn or changed after it was committed"), std::string::npos) << second.err;
  EXPECT_TRUE(fs::exists(torn));
  EXPECT_EQ(archived_rows(dir / "backup"), 0u) << "merged although a part was torn";

  // As the error says: remove the part and its entry, and run again: everything else is
  // archived (the second run's committed parts and the third's), once.
  fs::remove(torn);
  fs::remove(dir / "ckpt" / "commits" / (parts.back().substr(0, parts.back().size() - 4) + ".json"));
  auto third = run(dir, pipeline(dir.path(), true, 1000), "third");
  EXPECT_EQ(third.rc, 0) << third.err;
  EXPECT_TRUE(parts_of(dir / "parts").empty());
  std::size_t first_rows = 0;
  for (const auto& p : parts)
    if (p != parts.back()) {
      const auto text = read_file(dir / "parts.first" / p);
      first_rows += static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) - 1;
    }
  EXPECT_EQ(archived_rows(dir / "backup"), first_rows + 2000u);
}

TEST(State, StrayFilesInThePartsAndCommitsFoldersAreLeftAlone) {
  TempDir dir;
  fs::create_directories(dir / "parts");
  fs::create_directories(dir / "ckpt" / "commits");
  write_file(dir / "parts" / "notes.txt", "mine");
  write_file(dir / "parts" / "export.csv", "a,b\n1,2\n");
  write_file(dir / "ckpt" / "commits" / "notes.json", "{not json");
  auto r = run(dir, pipeline(dir.path(), true), "run");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(read_file(dir / "parts" / "notes.txt"), "mine");
  EXPECT_EQ(read_file(dir / "parts" / "export.csv"), "a,b\n1,2\n");
  EXPECT_EQ(read_file(dir / "ckpt" / "commits" / "notes.json"), "{not json");
  EXPECT_EQ(archived_rows(dir / "backup"), 3000u);
}

}  // namespace
