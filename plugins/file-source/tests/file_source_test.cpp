// file-source through the stage harness: real files in a temporary directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include <string>
#include <vector>

#include "flow/conformance/gtest.hpp"
#include "flow/testing/harness.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

using flow::testing::StageHarness;
using flow::test::read_file;
using flow::test::TempDir;
using flow::test::write_file;

std::string cfg(const TempDir& d, const std::string& extra = "") {
  return "paths: ['" + (d / "in").string() + "/*.log']\ncheckpoint_dir: " + (d / "ckpt").string() +
         "\nexit_at_end: true\n" + extra;
}

std::vector<std::string> values(StageHarness& h, const std::string& output = "", std::size_t col = 1) {
  std::vector<std::string> v;
  for (auto& b : h.output(output))
    for (std::size_t i = 0; i < b.num_rows(); ++i) v.emplace_back(b.column(col).string_at(i));
  return v;
}

void ack_all(StageHarness& h, const std::string& output = "") {
  for (auto& b : h.output(output)) b.positions().ack();
}

TEST(FileSource, ReadsMatchedFilesAndResumesFromTheCheckpoint) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  write_file(d / "in/a.log", "{\"n\":1}\n\n{\"n\":2}\r\n");
  write_file(d / "in/b.txt", "not matched\n");
  {
    StageHarness h(*flow_plugin_entry::descriptor(), cfg(d));
    h.open();
    h.run_source();
    EXPECT_EQ(values(h), (std::vector<std::string>{"{\"n\":1}", "{\"n\":2}"}));
    auto& b = h.output()[0];
    EXPECT_EQ(b.column(2).string_at(0), (d / "in/a.log").string());  // topic: the file
    EXPECT_EQ(b.column(4).int64_at(1), 9);                           // offset: the line's first byte
    const auto ranges = b.positions().ranges();
    ASSERT_EQ(ranges.size(), 1u);
    EXPECT_EQ(ranges[0].begin, 0);
    EXPECT_EQ(ranges[0].end, 18);  // the blank line is covered too
    EXPECT_EQ(ranges[0].source.rfind("stage-under-test:", 0), 0u) << ranges[0].source;
    ack_all(h);
    h.close();
  }
  const std::string ckpt = read_file(d / "ckpt/stage-under-test.positions.json");
  EXPECT_NE(ckpt.find("\"offset\":18"), std::string::npos) << ckpt;

  // Appended lines only, after a restart.
  {
    std::ofstream f(d / "in/a.log", std::ios::app);
    f << "{\"n\":3}\n";
  }
  StageHarness h(*flow_plugin_entry::descriptor(), cfg(d));
  h.open();
  h.run_source();
  EXPECT_EQ(values(h), (std::vector<std::string>{"{\"n\":3}"}));
  h.close();  // not acknowledged: the checkpoint stays at 18
  EXPECT_NE(read_file(d / "ckpt/stage-under-test.positions.json").find("\"offset\":18"), std::string::npos);
}

// One run that acknowledges everything it read; returns the lines.
std::vector<std::string> run_and_ack(const TempDir& d, std::vector<flow::PositionRange>* ranges = nullptr) {
  StageHarness h(*flow_plugin_entry::descriptor(), cfg(d, "format: lines\n"));
  h.open();
  h.run_source();
  auto v = values(h);
  if (ranges)
    for (auto& b : h.output())
      for (auto& r : b.positions().ranges()) ranges->push_back(r);
  ack_all(h);
  h.close();
  return v;
}

TEST(FileSource, ChangedWhileStoppedIsReadFromTheBeginningUnderANewGeneration) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  write_file(d / "in/a.log", "first\nsecond\n");
  EXPECT_EQ(run_and_ack(d), (std::vector<std::string>{"first", "second"}));
  // Truncated and rewritten shorter while Flow was not running (same inode).
  std::filesystem::resize_file(d / "in/a.log", 0);
  {
    std::ofstream f(d / "in/a.log", std::ios::app);
    f << "new\n";
  }
  std::vector<flow::PositionRange> ranges;
  EXPECT_EQ(run_and_ack(d, &ranges), (std::vector<std::string>{"new"}));
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].partition, 1);  // generation 1: offsets restart at 0 without mixing
  EXPECT_EQ(ranges[0].begin, 0);
  // Rewritten in place, longer, with other first bytes (as a reused inode would be).
  write_file(d / "in/a.log", "NEW\nmore lines\n");
  ranges.clear();
  EXPECT_EQ(run_and_ack(d, &ranges), (std::vector<std::string>{"NEW", "more lines"}));
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].partition, 2);
  EXPECT_TRUE(run_and_ack(d).empty());  // and resumed normally afterwards
}

TEST(FileSource, ResumeFromSinksManifestsGoesPastItsOwnCheckpoint) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  write_file(d / "in/a.log", "1\n2\n");
  EXPECT_EQ(run_and_ack(d), (std::vector<std::string>{"1", "2"}));  // checkpoint: byte 4
  {
    std::ofstream f(d / "in/a.log", std::ios::app);
    f << "3\n4\n";
  }
  struct stat st{};
  ASSERT_EQ(::stat((d / "in/a.log").c_str(), &st), 0);
  const std::string source = "stage-under-test:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  // A sink committed through "3\n" (byte 6) before a crash the checkpoint did not see.
  std::filesystem::create_directories(d / "sink/commits");
  write_file(d / "sink/commits/part-1.json",
             R"({"version":1,"ranges":[{"source":")" + source + R"(","partition":0,"begin":0,"end":6},)"
             R"({"source":"other:1:2","partition":0,"begin":0,"end":99}]})");
  std::filesystem::create_directories(d / "empty-sink");
  for (const auto& [dirs, want] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           // A second sink with no entry for the file: only its own checkpoint is trusted.
           {"['" + (d / "sink").string() + "', '" + (d / "empty-sink").string() + "']", {"3", "4"}},
           // (the run above acknowledged nothing: the checkpoint is still at byte 4)
           {"['" + (d / "sink").string() + "']", {"4"}}}) {
    StageHarness h(*flow_plugin_entry::descriptor(), cfg(d, "format: lines\nresume_from: " + dirs + "\n"));
    h.open();
    h.run_source();
    EXPECT_EQ(values(h), want) << dirs;
    h.close();  // not acknowledged
  }
}

TEST(FileSource, CheckpointEntriesOfFilesGoneFromTheirPathAreDropped) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  write_file(d / "in/a.log", "1\n");
  EXPECT_EQ(run_and_ack(d), (std::vector<std::string>{"1"}));
  const auto ckpt = d / "ckpt/stage-under-test.positions.json";
  auto run_other_glob = [&] {  // matches nothing: a.log is not seen in this run
    StageHarness h(*flow_plugin_entry::descriptor(),
                   "paths: ['" + (d / "in").string() + "/*.txt']\ncheckpoint_dir: " + (d / "ckpt").string() +
                       "\nexit_at_end: true\ncheckpoint_interval: 10ms\n");
    h.open();
    h.run_source();
    h.close();
  };
  run_other_glob();
  EXPECT_NE(read_file(ckpt).find("a.log"), std::string::npos) << "still at its path: kept";
  std::filesystem::rename(d / "in/a.log", d / "in/a.old");
  run_other_glob();
  EXPECT_EQ(read_file(ckpt).find("a.log"), std::string::npos) << "gone from its path: dropped\n" << read_file(ckpt);
}

TEST(FileSource, UnacknowledgedRecordsAreReadAgain) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  write_file(d / "in/a.log", "1\n2\n3\n");
  for (int round = 0; round < 2; ++round) {
    StageHarness h(*flow_plugin_entry::descriptor(), cfg(d, "format: lines\n"));
    h.open();
    h.run_source();
    EXPECT_EQ(values(h), (std::vector<std::string>{"1", "2", "3"})) << "round " << round;
    h.close();
  }
}

TEST(FileSource, TornLastLineWaitsForItsNewline) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  write_file(d / "in/a.log", "one\ntw");
  StageHarness h(*flow_plugin_entry::descriptor(),
                 "paths: ['" + (d / "in").string() + "/*.log']\nformat: lines\n");
  h.open();
  h.run_source(1);  // follows the file: returns after the first batch
  EXPECT_EQ(values(h), (std::vector<std::string>{"one"}));
  h.close();

  // With exit_at_end the file is complete: its unterminated last line is emitted.
  StageHarness e(*flow_plugin_entry::descriptor(), cfg(d, "format: lines\n"));
  e.open();
  e.run_source();
  EXPECT_EQ(values(e), (std::vector<std::string>{"one", "tw"}));
  e.close();
}

TEST(FileSource, OversizeAndBadEncodingAreDeadLetteredWithFileAndOffset) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  const std::string longline(100, 'x');
  write_file(d / "in/a.log", "ok\n" + longline + "\nbad\xff\xfe\nfine\n");
  StageHarness h(*flow_plugin_entry::descriptor(), cfg(d, "format: lines\nmax_line_size: 50\nread_buffer: 4096\n"));
  h.open();
  h.run_source();
  EXPECT_EQ(values(h), (std::vector<std::string>{"ok", "fine"}));
  EXPECT_EQ(values(h, "invalid", 1), (std::vector<std::string>{"oversize", "encoding"}));
  const auto msgs = values(h, "invalid", 2);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_NE(msgs[0].find("a.log' byte 3: line of 100 bytes"), std::string::npos) << msgs[0];
  EXPECT_NE(msgs[1].find("a.log' byte 104: invalid UTF-8"), std::string::npos) << msgs[1];
  EXPECT_EQ(h.output("invalid")[0].column(5).int64_at(1), 104);
  EXPECT_EQ(h.counter("dead_lettered"), 2u);
  // Every byte is covered by exactly one of the two outputs' positions.
  int64_t covered = 0;
  for (const char* o : {"", "invalid"})
    for (auto& b : h.output(o))
      for (auto& r : b.positions().ranges()) covered += r.end - r.begin;
  EXPECT_EQ(covered, static_cast<int64_t>(read_file(d / "in/a.log").size()));
  h.close();
}

// With inotify (woken by the directory event) and without it (found by polling).
class FileSourceWatch : public ::testing::TestWithParam<bool> {};

TEST_P(FileSourceWatch, StartEndSkipsExistingContentButReadsNewFiles) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  write_file(d / "in/old.log", "old\n");
  StageHarness h(*flow_plugin_entry::descriptor(),
                 "paths: ['" + (d / "in").string() + "/*.log']\nformat: lines\nstart: end\npoll_interval: 20ms\n"
                 "checkpoint_interval: 10ms\ncheckpoint_dir: " + (d / "ckpt").string() + "\ninotify: " +
                     (GetParam() ? "true" : "false") + "\n");
  h.open();
  std::thread writer([&] {
    // The first checkpoint comes after the startup scan: only then is the new file "later".
    flow::test::eventually([&] { return std::filesystem::exists(d / "ckpt/stage-under-test.positions.json"); });
    write_file(d / "in/.new.tmp", "new\n");
    std::filesystem::rename(d / "in/.new.tmp", d / "in/new.log");
  });
  h.run_source(1);
  writer.join();
  EXPECT_EQ(values(h), (std::vector<std::string>{"new"}));
  h.close();
}

INSTANTIATE_TEST_SUITE_P(Inotify, FileSourceWatch, ::testing::Bool());

TEST(FileSource, SmallBatchesUnderBackpressure) {
  TempDir d;
  std::filesystem::create_directories(d / "in");
  std::string text;
  for (int i = 0; i < 10000; ++i) text += std::to_string(i) + "\n";
  write_file(d / "in/a.log", text);
  StageHarness h(*flow_plugin_entry::descriptor(), cfg(d, "format: lines\nbatch_size: 100\n"));
  h.open();
  h.run_source();
  EXPECT_EQ(h.output_rows(), 10000u);
  for (auto& b : h.output()) EXPECT_LE(b.num_rows(), 100u);
  h.close();
}

TEST(FileSource, ConfigErrors) {
  EXPECT_FALSE(StageHarness(*flow_plugin_entry::descriptor(), "format: json\n").check().empty());  // no paths
  EXPECT_FALSE(StageHarness(*flow_plugin_entry::descriptor(), "paths: [a]\nformat: xml\n").check().empty());
  EXPECT_FALSE(StageHarness(*flow_plugin_entry::descriptor(), "paths: [a]\nstrat: end\n").check().empty());
  EXPECT_TRUE(StageHarness(*flow_plugin_entry::descriptor(), "paths: [a]\n").check().empty());
}

TEST(FileSource, CorruptCheckpointIsAClearError) {
  TempDir d;
  std::filesystem::create_directories(d / "ckpt");
  write_file(d / "ckpt/stage-under-test.positions.json", "{not json");
  StageHarness h(*flow_plugin_entry::descriptor(), cfg(d));
  try {
    h.open();
    FAIL() << "open accepted a corrupt checkpoint";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("stage-under-test.positions.json"), std::string::npos) << e.what();
  }
  h.close();
  EXPECT_EQ(read_file(d / "ckpt/stage-under-test.positions.json"), "{not json") << "left for the operator to look at";
}

}  // namespace

FLOW_CONFORMANCE_TESTS(FLOW_PLUGIN_FILE, "paths: ['${TMPDIR}/*.log']\ncheckpoint_dir: ${TMPDIR}/ckpt\n");
