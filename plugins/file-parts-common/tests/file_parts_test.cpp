// The file-parts format: names round-trip and order, committed ends from manifest entries and
// archived-offsets.json, the directory lock naming its holder, the journal round-trip.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "flow_parts/checkpoint.hpp"
#include "flow_parts/disk_retry.hpp"
#include "flow_parts/file_parts.hpp"

namespace fs = std::filesystem;
using namespace flow::parts;

namespace {
struct Tmp {
  fs::path p = fs::temp_directory_path() / ("flow-file-parts-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
  Tmp() {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  ~Tmp() { fs::remove_all(p); }
};
}  // namespace

TEST(FileParts, NamesRoundTripAndOrderByRunCycleWindowFile) {
  const auto n = part_name("part", "20250615T090000Z-abcd", 2, 17, 3);
  EXPECT_EQ(n, "part-20250615T090000Z-abcd-c0002-000017-0003.csv");
  const auto k = parse_part_name(n);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->head, "part-20250615T090000Z-abcd");
  EXPECT_EQ(k->cycle, 2);
  EXPECT_EQ(k->window, 17);
  EXPECT_EQ(k->file, 3);
  EXPECT_LT(*parse_part_name(part_name("p", "r", 0, 9, 0)), *parse_part_name(part_name("p", "r", 0, 10, 0)));
  EXPECT_FALSE(parse_part_name(".part-r-c0000-000000-0000.csv"));
  EXPECT_FALSE(parse_part_name("part-r-c0000-00000-0000.csv"));
  EXPECT_FALSE(parse_part_name("notes.txt"));
  EXPECT_EQ(manifest_name(n), "part-20250615T090000Z-abcd-c0002-000017-0003.json");
}

TEST(FileParts, CommittedEndsAreTheHighestOverEntriesAndArchivedOffsets) {
  Tmp t;
  Manifest m;
  m.part = part_name("part", "r", 0, 0, 0);
  m.ranges = {{"t", 0, 0, 10}, {"t", 0, 10, 20}, {"t", 1, 5, 7}};
  fs::create_directories(commits_dir(t.p));
  write_manifest(commits_dir(t.p), m, false);
  std::ofstream(t.p / kArchivedOffsets) << R"({"version":1,"ranges":[{"source":"t","partition":1,"end":30},)"
                                        << R"({"source":"u","partition":0,"end":4}]})";
  const auto ends = committed_ends(t.p);
  EXPECT_EQ(ends.at({"t", 0}), 20);
  EXPECT_EQ(ends.at({"t", 1}), 30);
  EXPECT_EQ(ends.at({"u", 0}), 4);
  EXPECT_EQ(ends.size(), 3u);
  // The manifest entry lists the coalesced ranges.
  const auto r = read_ranges(commits_dir(t.p) / manifest_name(m.part));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (flow::PositionRange{"t", 0, 0, 20}));
}

// What merge-archive reads from an entry once: size, rows, header and ranges; the ranges' ends
// are then folded into archived-offsets.json by maximum, with what it already holds.
TEST(FileParts, ManifestEntryReadsBackAndItsEndsFoldIntoArchivedOffsets) {
  Tmp t;
  Manifest m;
  m.part = part_name("part", "r", 0, 0, 0);
  m.rows = 7;
  m.bytes = 123;
  m.header = "a,\"b\nc\",d";
  m.ranges = {{"t", 0, 0, 10}, {"u", 2, 3, 5}};
  const auto e = parse_manifest(manifest_json(m));
  EXPECT_EQ(e.rows, 7u);
  EXPECT_EQ(e.bytes, 123u);
  EXPECT_EQ(e.header, m.header);
  EXPECT_FALSE(parse_manifest(R"({"version":1,"ranges":[]})").header);
  std::ofstream(t.p / kArchivedOffsets) << R"({"version":1,"ranges":[{"source":"t","partition":0,"end":30},)"
                                        << R"({"source":"v","partition":0,"end":4}]})";
  record_archived_ranges(t.p, e.ranges);
  const auto ends = committed_ends(t.p);
  EXPECT_EQ(ends.at({"t", 0}), 30);  // the file's end is higher
  EXPECT_EQ(ends.at({"u", 2}), 5);
  EXPECT_EQ(ends.at({"v", 0}), 4);
  EXPECT_EQ(ends.size(), 3u);
}

TEST(FileParts, ASecondLockOnADirectoryFailsNamingTheHolder) {
  Tmp t;
  DirLock first(t.p, holder_text("run-1", "csv"));
  try {
    DirLock second(t.p, holder_text("run-2", "csv"));
    FAIL() << "the second lock was granted";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("is in use by flowctl pid " + std::to_string(::getpid())), std::string::npos) << msg;
    EXPECT_NE(msg.find("run run-1, stage 'csv'"), std::string::npos) << msg;
  }
  first.release();
  EXPECT_NO_THROW(DirLock(t.p, holder_text("run-3", "csv")));
}

TEST(FileParts, JournalRoundTripsAndABadOneIsNamed) {
  Tmp t;
  Job j{"archived", "sensor_data_20250615_090000.csv", {part_name("p", "r", 0, 1, 0)}, "/parts", "/ckpt", "/backup"};
  flow::io::atomic_write_file(t.p, "job.json", journal_json(j), false);
  const Job back = read_journal(t.p / "job.json");
  EXPECT_EQ(back.state, "archived");
  EXPECT_EQ(back.target, j.target);
  EXPECT_EQ(back.parts, j.parts);
  EXPECT_EQ(back.parts_dir, "/parts");
  std::ofstream(t.p / "bad.json") << R"({"state":"half","target":"x.csv","parts_dir":"/p","parts":[]})";
  try {
    read_journal(t.p / "bad.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  }
}

// Corrupt or foreign state (issue 15).
namespace {
std::string error_of(const fs::path& checkpoint) {
  try {
    committed_ends(checkpoint);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(FileParts, StrayFilesInCommitsAreNotReadAsEntries) {
  Tmp t;
  Manifest m;
  m.part = part_name("part", "r", 0, 0, 0);
  m.ranges = {{"t", 0, 0, 10}};
  fs::create_directories(commits_dir(t.p));
  write_manifest(commits_dir(t.p), m, false);
  std::ofstream(commits_dir(t.p) / "notes.json") << "not json at all";
  std::ofstream(commits_dir(t.p) / "README") << "hello";
  const auto ends = committed_ends(t.p);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends.at({"t", 0}), 10);
}

TEST(FileParts, DamagedManifestEntryIsNamedWithWhatToDo) {
  Tmp t;
  fs::create_directories(commits_dir(t.p));
  const auto entry = commits_dir(t.p) / manifest_name(part_name("part", "r", 0, 0, 0));
  for (const std::string& text :
       {std::string(R"({"version":1,"part":"x","ranges":[{"source":"t","parti)"), std::string("\x00\xff\x13", 3),
        std::string(""), std::string(R"({"part":"x","ranges":[]})"),
        std::string(R"({"version":1,"ranges":[{"source":"t","partition":0,"begin":9,"end":3}]})")}) {
    std::ofstream(entry, std::ios::binary | std::ios::trunc) << text;
    const auto what = error_of(t.p);
    EXPECT_NE(what.find(entry.string()), std::string::npos) << "for '" << text << "': " << what;
    EXPECT_NE(what.find("restore it from a backup, or remove it together with its part file"), std::string::npos)
        << what;
  }
}

TEST(FileParts, ArchivedOffsetsOfANewerVersionOrTruncatedIsNamed) {
  Tmp t;
  for (const std::string& text : {std::string(R"({"version":2,"ranges":[]})"), std::string(R"({"version":1,"ran)")}) {
    std::ofstream(t.p / kArchivedOffsets, std::ios::trunc) << text;
    const auto what = error_of(t.p);
    EXPECT_NE(what.find((t.p / kArchivedOffsets).string()), std::string::npos) << what;
    EXPECT_NE(what.find("duplicates in the archives"), std::string::npos) << what;
    if (text.find("\"version\":2") != std::string::npos) {
      EXPECT_NE(what.find("format version 2, but this flowctl reads version 1"), std::string::npos) << what;
    }
  }
}

// The pure readers (flow_parts/readers.hpp), also driven by the fuzz targets in tests/fuzz.
TEST(FileParts, ReadersThrowOnlyFormatErrorsSayingWhatIsWrong) {
  auto what = [](auto f) -> std::string {
    try {
      f();
    } catch (const FormatError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(what([] { parse_manifest("{\"version\":1,\"ranges\":[{\"source\":\"t\",\"partition\":4294967296,\"end\":1}]}"); })
                .find("outside the 32-bit range"),
            std::string::npos);
  EXPECT_NE(what([] { parse_manifest("[1,2]"); }).find("not a JSON object"), std::string::npos);
  EXPECT_NE(what([] { parse_archived_offsets("{\"version\":1}"); }).find("no \"ranges\" list"), std::string::npos);
  EXPECT_NE(what([] { parse_manifest("{\"version\":1,\"ranges\":[{\"source\":\"t\",\"partition\":0,\"begin\":\"x\",\"end\":1}]}"); })
                .find("no integer \"begin\""),
            std::string::npos);
  // A part name whose numbers overflow 64 bits is not a part's (it used to escape as out_of_range).
  EXPECT_FALSE(parse_part_name("p-r-c99999999999999999999-000000-0000.csv"));
  // Nor is a path (found by fuzz_merge_journal: merge-archive would delete outside parts_dir).
  EXPECT_FALSE(parse_part_name("x/../p-r-c0000-000000-0000.csv"));
  EXPECT_FALSE(parse_part_name(std::string("p\0-r-c0000-000000-0000.csv", 26)));
  EXPECT_NE(what([] { parse_journal(R"({"version":1,"state":"planned","target":"a.csv","parts_dir":"/p",)"
                                    R"("parts":["p-r-c0000-999999999999999999999-0000.csv"]})"); })
                .find("is not a part name"),
            std::string::npos);
  const auto m = parse_manifest(R"({"version":1,"bytes":12,"ranges":[{"source":"t","partition":2,"begin":1,"end":5}]})");
  ASSERT_EQ(m.ranges.size(), 1u);
  EXPECT_EQ(m.ranges[0], (flow::PositionRange{"t", 2, 1, 5}));
  EXPECT_EQ(m.bytes, 12u);
}

TEST(FileParts, PartScannerFindsTheHeaderOutsideQuotesWhateverTheChunks) {
  const std::string part = "a,\"b\nc\"\r\n1,\"x\ny\"\n2,z";
  for (std::size_t step = 1; step <= part.size(); ++step) {
    PartScanner s;
    std::string records;
    for (std::size_t i = 0; i < part.size(); i += step) records += s.feed(std::string_view(part).substr(i, step));
    ASSERT_TRUE(s.header_done());
    EXPECT_EQ(s.header(), "a,\"b\nc\"");
    EXPECT_EQ(records, "1,\"x\ny\"\n2,z");
    EXPECT_TRUE(s.finish());  // no final line feed
    EXPECT_EQ(s.rows(), 2u);
  }
  PartScanner torn;
  torn.feed("a,b");
  EXPECT_THROW(torn.finish(), FormatError);
  EXPECT_EQ(torn.header(), "a,b");
}

// The disk-full retry (flow_parts/disk_retry.hpp): a full disk is retried after `undo`, logged once
// when found and once when the write succeeds; other errors and the last retry fail as before.
namespace {
struct Lines : flow::Logger {
  std::vector<std::pair<flow::LogLevel, std::string>> lines;
  void log(flow::LogLevel l, std::string_view m) override { lines.emplace_back(l, std::string(m)); }
};
[[noreturn]] void full(int code = ENOSPC) { flow::io::throw_errno("cannot write", "/data/.p.tmp", code); }
}  // namespace

TEST(FileParts, DiskFullRetryHoldsUntilTheWriteSucceedsAndSaysSoTwice) {
  Lines log;
  DiskFullRetry retry(log, {}, "csv", 5, std::chrono::milliseconds(1));
  int calls = 0, undone = 0;
  retry.run([&] { if (++calls < 4) full(calls == 2 ? EDQUOT : ENOSPC); }, [&] { ++undone; });
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(undone, 3);
  ASSERT_EQ(log.lines.size(), 2u);
  EXPECT_EQ(log.lines[0].first, flow::LogLevel::Warn);
  EXPECT_NE(log.lines[0].second.find("disk full writing '/data/.p.tmp' (stage 'csv')"), std::string::npos)
      << log.lines[0].second;
  EXPECT_NE(log.lines[0].second.find("up to 5 times"), std::string::npos) << log.lines[0].second;
  EXPECT_NE(log.lines[1].second.find("disk space is back: '/data/.p.tmp' written (stage 'csv') after 3 retries"),
            std::string::npos)
      << log.lines[1].second;
}

TEST(FileParts, DiskFullRetryGivesUpWithTheErrorAndLeavesOtherErrorsAlone) {
  Lines log;
  DiskFullRetry retry(log, {}, "csv", 2, std::chrono::milliseconds(1));
  int calls = 0;
  try {
    retry.run([&] { ++calls; full(); });
    FAIL() << "no error after the last retry";
  } catch (const flow::io::IoError& e) {
    EXPECT_EQ(calls, 3);
    EXPECT_NE(std::string(e.what()).find("cannot write '/data/.p.tmp': No space left on device (still full after 2 "
                                         "retries"),
              std::string::npos)
        << e.what();
  }
  calls = 0;
  EXPECT_THROW(retry.run([&] { ++calls; full(EIO); }), flow::io::IoError);
  EXPECT_EQ(calls, 1);
  DiskFullRetry none(log, {}, "csv", 0, std::chrono::milliseconds(1));
  calls = 0;
  EXPECT_THROW(none.run([&] { ++calls; full(); }), flow::io::IoError);
  EXPECT_EQ(calls, 1);
  // An aborting run stops waiting.
  std::stop_source abort;
  abort.request_stop();
  DiskFullRetry aborting(log, abort.get_token(), "csv", 1000, std::chrono::hours(1));
  calls = 0;
  EXPECT_THROW(aborting.run([&] { ++calls; full(); }), flow::io::IoError);
  EXPECT_EQ(calls, 1);
}
