// merge-archive through the stage harness with real files; crashes are simulated by a hook that
// throws at each step, and by a child process killed with SIGKILL there.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "flow/testing/harness.hpp"
#include "merge_archive_hooks.hpp"
#include "test_util.hpp"

namespace flow_plugin_entry {
const flow::PluginDescriptor* descriptor();
}

namespace {

namespace fs = std::filesystem;
using csv_test::all_files;
using csv_test::read_file;
using csv_test::TempDir;
using csv_test::visible_files;
using csv_test::write_file;
using flow::testing::StageHarness;
using namespace std::chrono_literals;

const flow::PluginDescriptor& desc() { return *flow_plugin_entry::descriptor(); }

const std::string kHeader = "sensor,seq,temperature";

std::string part_name(int window, int file = 0, const std::string& run = "20250615T090000Z-abcd") {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-c0000-%06d-%04d.csv", window, file);
  return "part-" + run + buf;
}

struct CrashAt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class MergeArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    parts_ = tmp_.path() / "parts";
    commits_ = parts_ / "_checkpoint" / "commits";
    backup_ = tmp_.path() / "backup";
    fs::create_directories(commits_);
  }
  void TearDown() override { merge_archive::set_crash_hook(nullptr); }

  std::string config(const std::string& extra = "") const {
    return "parts_dir: " + parts_.string() + "\nbackup_dir: " + backup_.string() + "\n" + extra;
  }

  // A committed part with rows first..first+n-1 and its manifest entry (offsets = seq numbers).
  std::string make_part(int window, int first, int n, int file = 0, const std::string& header = kHeader) {
    const std::string name = part_name(window, file);
    std::string body = header + "\n";
    for (int i = first; i < first + n; ++i)
      body += "s" + std::to_string(i) + "," + std::to_string(i) + "," + std::to_string(i) + ".5\n";
    write_file(parts_ / name, body);
    write_file(commits_ / (name.substr(0, name.size() - 4) + ".json"),
               "{\"version\":1,\"part\":\"" + name + "\",\"rows\":" + std::to_string(n) +
                   ",\"ranges\":[{\"source\":\"sensors\",\"partition\":0,\"begin\":" + std::to_string(first) +
                   ",\"end\":" + std::to_string(first + n) + "}]}\n");
    all_rows_.resize(std::max<std::size_t>(all_rows_.size(), static_cast<std::size_t>(first + n)));
    return name;
  }

  // A committed part as csv-window-sink writes it: its entry records the part's size, rows and
  // header, so merge-archive copies its body without scanning it. `entry_header` differs from
  // the part's own header to stage a part changed after it was committed.
  std::string make_vouched_part(int window, int first, int n, const std::string& header = kHeader,
                                std::string entry_header = "") {
    const std::string name = part_name(window);
    std::string body = header + "\n" + expected_rows(first, n);
    write_file(parts_ / name, body);
    if (entry_header.empty()) entry_header = header;
    write_file(commits_ / (name.substr(0, name.size() - 4) + ".json"),
               "{\"version\":1,\"part\":\"" + name + "\",\"rows\":" + std::to_string(n) +
                   ",\"bytes\":" + std::to_string(body.size()) + ",\"header\":\"" + entry_header +
                   "\",\"ranges\":[{\"source\":\"sensors\",\"partition\":0,\"begin\":" + std::to_string(first) +
                   ",\"end\":" + std::to_string(first + n) + "}]}\n");
    return name;
  }

  flow::Batch events(const std::vector<std::string>& names) const {
    flow::Batch b(flow::file_event_schema());
    for (const auto& n : names) {
      b.column(0).append_string((parts_ / n).string());
      b.column(1).append_int64(0);
      b.column(2).append_int64(0);
      b.column(3).append_timestamp(0);
      b.column(4).append_timestamp(0);
      b.column(5).append_string(kHeader);
    }
    return b;
  }

  static std::string expected_rows(int first, int n) {
    std::string s;
    for (int i = first; i < first + n; ++i)
      s += "s" + std::to_string(i) + "," + std::to_string(i) + "," + std::to_string(i) + ".5\n";
    return s;
  }

  std::vector<std::string> archives() const { return visible_files(backup_); }

  TempDir tmp_;
  fs::path parts_, commits_, backup_;
  std::vector<int> all_rows_;
};

TEST_F(MergeArchiveTest, MergesPartsInWindowOrderWithOneHeader) {
  const auto p0 = make_part(0, 0, 3);
  const auto p1 = make_part(1, 3, 2);
  const auto p2 = make_part(1, 5, 4, 1);
  const auto p3 = make_part(12, 9, 1);  // window 12 sorts after 1 and 2
  write_file(parts_ / "notes.txt", "keep me");
  StageHarness h(desc(), config());
  h.open();
  h.push(events({p3, p1}));
  h.push(events({p0, p2}));
  EXPECT_TRUE(archives().empty()) << "merged before the end with every: 0";
  h.finish();

  ASSERT_EQ(archives(), std::vector<std::string>{"sensor_data_20250615_090000.csv"});
  EXPECT_EQ(read_file(backup_ / archives()[0]), kHeader + "\n" + expected_rows(0, 10));
  EXPECT_EQ(visible_files(parts_), std::vector<std::string>{"notes.txt"});
  EXPECT_TRUE(all_files(commits_).empty());
  EXPECT_EQ(h.counter("archives"), 1u);
  EXPECT_EQ(h.counter("rows_archived"), 10u);
  EXPECT_EQ(h.counter("parts_merged"), 4u);
  bool line = false, unknown = false;
  for (const auto& l : h.logs()) {
    line = line || (l.find((backup_ / archives()[0]).string()) != std::string::npos &&
                    l.find("10 rows") != std::string::npos && l.find("4 parts") != std::string::npos);
    unknown = unknown || l.find("notes.txt") != std::string::npos;
  }
  EXPECT_TRUE(line);
  EXPECT_TRUE(unknown);
  // The deleted entries' offsets survive in the summary.
  EXPECT_EQ(read_file(parts_ / "_checkpoint" / "archived-offsets.json"),
            "{\"version\":1,\"ranges\":[{\"source\":\"sensors\",\"partition\":0,\"end\":10}]}\n");
  // The job is done: its journal is gone.
  auto journal = all_files(backup_ / ".merge-journal");
  std::erase_if(journal, [](const std::string& f) { return f.ends_with(".lock"); });  // held while open
  EXPECT_TRUE(journal.empty()) << journal.front();
}

TEST_F(MergeArchiveTest, NothingAnnouncedWritesNothing) {
  StageHarness h(desc(), config());
  h.open();
  h.finish();
  EXPECT_TRUE(archives().empty());
  EXPECT_EQ(h.counter("archives"), 0u);
}

// Issue 14: a column added between runs leaves parts of two shapes; each shape gets its own
// archive with its own single header, and nothing is stuck.
TEST_F(MergeArchiveTest, PartsOfTwoHeadersGetOneArchiveEach) {
  const std::string wide = "sensor,seq,temperature,heat_index";
  const auto p0 = make_part(0, 0, 2);
  const auto p1 = make_part(1, 2, 3, 0, wide);
  const auto p2 = make_part(2, 5, 1);
  StageHarness h(desc(), config());
  h.open();
  h.push(events({p0, p1, p2}));
  h.finish();
  const auto names = archives();
  ASSERT_EQ(names.size(), 2u) << ::testing::PrintToString(names);
  std::string narrow_text, wide_text;
  for (const auto& n : names) {
    EXPECT_NE(n.find("sensor_data_20250615_090000_h"), std::string::npos) << n;
    const auto text = read_file(backup_ / n);
    (text.starts_with(wide + "\n") ? wide_text : narrow_text) = text;
  }
  EXPECT_NE(names[0], names[1]);
  EXPECT_EQ(narrow_text, kHeader + "\n" + expected_rows(0, 2) + expected_rows(5, 1));
  EXPECT_EQ(wide_text, wide + "\n" + expected_rows(2, 3));
  EXPECT_TRUE(visible_files(parts_).empty());
  EXPECT_TRUE(all_files(commits_).empty());
  EXPECT_EQ(h.counter("archives"), 2u);
  EXPECT_EQ(h.counter("rows_archived"), 6u);
  EXPECT_EQ(read_file(parts_ / "_checkpoint" / "archived-offsets.json"),
            "{\"version\":1,\"ranges\":[{\"source\":\"sensors\",\"partition\":0,\"end\":6}]}\n");
  bool said = false;
  for (const auto& l : h.logs()) said = said || l.find("2 different headers") != std::string::npos;
  EXPECT_TRUE(said);
}

// Corrupt state (issue 15): a committed part whose size differs from its manifest entry's (a
// torn last line) stops the merge naming both files, and nothing is merged or deleted.
TEST_F(MergeArchiveTest, TornPartStopsNamingItAndItsEntry) {
  const auto p0 = make_part(0, 0, 3);
  const auto body = read_file(parts_ / p0);
  const auto entry = commits_ / (p0.substr(0, p0.size() - 4) + ".json");
  write_file(entry, "{\"version\":1,\"part\":\"" + p0 + "\",\"rows\":3,\"bytes\":" + std::to_string(body.size()) +
                        ",\"ranges\":[{\"source\":\"sensors\",\"partition\":0,\"begin\":0,\"end\":3}]}\n");
  write_file(parts_ / p0, body.substr(0, body.size() - 4));  // the last line torn
  StageHarness h(desc(), config());
  h.open();
  h.push(events({p0}));
  try {
    h.finish();
    FAIL() << "merged a torn part";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find((parts_ / p0).string()), std::string::npos) << what;
    EXPECT_NE(what.find(entry.string()), std::string::npos) << what;
    EXPECT_NE(what.find("torn"), std::string::npos) << what;
  }
  EXPECT_EQ(visible_files(parts_), std::vector<std::string>{p0});
  EXPECT_TRUE(fs::exists(entry));
  EXPECT_TRUE(archives().empty());
}

// Parts whose entries vouch for them: small ones are copied from the bytes read with the
// header, large ones (over 256 KiB) in the kernel (read, for gzip); either way byte for byte,
// one header, rows from the entries, offsets from the entries read once.
TEST_F(MergeArchiveTest, VouchedPartsAreCopiedByteForByte) {
  for (const bool gzip : {false, true}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    fs::remove_all(parts_);
    fs::remove_all(backup_);
    fs::create_directories(commits_);
    const auto p0 = make_vouched_part(0, 0, 3);
    const auto p1 = make_vouched_part(1, 3, 20000);  // ~300 KiB
    const auto p2 = make_vouched_part(2, 20003, 0);  // a header only
    const auto p3 = make_vouched_part(3, 20003, 5);
    ASSERT_GT(fs::file_size(parts_ / p1), 256u << 10);
    StageHarness h(desc(), config(gzip ? "gzip: true\n" : ""));
    h.open();
    h.push(events({p0, p1, p2, p3}));
    h.finish();
    ASSERT_EQ(archives().size(), 1u);
    std::string text;
    if (gzip) {
      gzFile f = gzopen((backup_ / archives()[0]).c_str(), "rb");
      ASSERT_NE(f, nullptr);
      char buf[4096];
      int n;
      while ((n = gzread(f, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
      EXPECT_GE(n, 0);
      gzclose(f);
    } else {
      text = read_file(backup_ / archives()[0]);
    }
    EXPECT_EQ(text, kHeader + "\n" + expected_rows(0, 20008));
    EXPECT_EQ(h.counter("rows_archived"), 20008u);
    EXPECT_TRUE(visible_files(parts_).empty());
    EXPECT_TRUE(all_files(commits_).empty());
    EXPECT_EQ(read_file(parts_ / "_checkpoint" / "archived-offsets.json"),
              "{\"version\":1,\"ranges\":[{\"source\":\"sensors\",\"partition\":0,\"end\":20008}]}\n");
  }
}

// A vouched part torn after its commit, or of the same size but another header line than its
// entry says: the merge stops naming the part and the entry; nothing is merged or deleted, and
// no journal or temporary file is left.
TEST_F(MergeArchiveTest, VouchedPartThatChangedStopsNamingItAndItsEntry) {
  for (const bool torn : {true, false}) {
    SCOPED_TRACE(torn ? "torn" : "other header");
    fs::remove_all(parts_);
    fs::remove_all(backup_);
    fs::create_directories(commits_);
    const auto p0 = make_vouched_part(0, 0, 3);
    const auto p1 = torn ? make_vouched_part(1, 3, 3) : make_vouched_part(1, 3, 3, "sensor,seq,temperaturX", kHeader);
    const auto entry = commits_ / (p1.substr(0, p1.size() - 4) + ".json");
    const auto text = read_file(parts_ / p1);
    if (torn) write_file(parts_ / p1, text.substr(0, text.size() - 4));
    StageHarness h(desc(), config());
    h.open();
    h.push(events({p0, p1}));
    try {
      h.finish();
      ADD_FAILURE() << "merged a changed part";
    } catch (const std::exception& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find((parts_ / p1).string()), std::string::npos) << what;
      EXPECT_NE(what.find(entry.string()), std::string::npos) << what;
      EXPECT_NE(what.find(torn ? "torn" : "changed after it was committed"), std::string::npos) << what;
      EXPECT_NE(what.find("nothing was merged or deleted"), std::string::npos) << what;
    }
    EXPECT_EQ(visible_files(parts_).size(), 2u);
    EXPECT_EQ(all_files(commits_).size(), 2u);
    EXPECT_TRUE(all_files(backup_).empty() || all_files(backup_) == std::vector<std::string>{".merge-journal"})
        << ::testing::PrintToString(all_files(backup_));
    std::vector<std::string> journal;
    for (const auto& f : all_files(backup_ / ".merge-journal"))
      if (!f.ends_with(".lock")) journal.push_back(f);
    EXPECT_TRUE(journal.empty()) << ::testing::PrintToString(journal);
  }
}

// A vouched part announced but gone from disk: named, nothing deleted.
TEST_F(MergeArchiveTest, MissingVouchedPartIsAnErrorNamingIt) {
  const auto p0 = make_vouched_part(0, 0, 3);
  const auto p1 = make_vouched_part(1, 3, 3);
  fs::remove(parts_ / p1);
  StageHarness h(desc(), config());
  h.open();
  h.push(events({p0, p1}));
  try {
    h.finish();
    FAIL() << "merged without a part";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find((parts_ / p1).string() + "' is missing"), std::string::npos) << e.what();
  }
  EXPECT_EQ(visible_files(parts_), std::vector<std::string>{p0});
  EXPECT_TRUE(archives().empty());
}

// A garbage or truncated manifest entry, or one of a newer format: a clear error naming the file
// and what to do; nothing is merged or deleted.
TEST_F(MergeArchiveTest, BadManifestEntryStopsNamingItAndWhatToDo) {
  for (const std::string& bad : {std::string("{\"version\":1,\"part\":\"x"), std::string("\x01\x02garbage"),
                                std::string("{\"version\":2,\"bytes\":1,\"ranges\":[]}")}) {
    const auto p0 = make_part(0, 0, 2);
    const auto entry = commits_ / (p0.substr(0, p0.size() - 4) + ".json");
    write_file(entry, bad);
    StageHarness h(desc(), config());
    h.open();
    h.push(events({p0}));
    try {
      h.finish();
      ADD_FAILURE() << "merged with a bad manifest entry: " << bad;
    } catch (const std::exception& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(entry.string()), std::string::npos) << what;
      EXPECT_NE(what.find("restore it from a backup"), std::string::npos) << what;
      if (bad.find("\"version\":2") != std::string::npos) {
        EXPECT_NE(what.find("format version 2"), std::string::npos) << what;
      }
    }
    EXPECT_EQ(visible_files(parts_), std::vector<std::string>{p0});
    EXPECT_TRUE(archives().empty());
  }
}

TEST_F(MergeArchiveTest, JournalOfANewerVersionIsRefusedNamingIt) {
  make_part(0, 0, 2);
  fs::create_directories(backup_ / ".merge-journal");
  write_file(backup_ / ".merge-journal" / "job-new.json",
             "{\"version\":7,\"state\":\"planned\",\"parts_dir\":\"" + parts_.string() +
                 "\",\"target\":\"a.csv\",\"parts\":[]}\n");
  StageHarness h(desc(), config());
  try {
    h.open();
    FAIL() << "opened with a journal of another version";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("job-new.json"), std::string::npos) << what;
    EXPECT_NE(what.find("format version 7"), std::string::npos) << what;
  }
  EXPECT_EQ(visible_files(parts_).size(), 1u);
}

TEST_F(MergeArchiveTest, MissingAnnouncedPartIsAnErrorNamingIt) {
  const auto p0 = make_part(0, 0, 2);
  const auto gone = part_name(1);
  StageHarness h(desc(), config());
  h.open();
  h.push(events({p0, gone}));
  try {
    h.finish();
    FAIL() << "merged without an announced part";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(gone), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  EXPECT_EQ(visible_files(parts_), std::vector<std::string>{p0});
  EXPECT_TRUE(all_files(backup_).empty());
}

TEST_F(MergeArchiveTest, EventOutsidePartsDirIsRefused) {
  StageHarness h(desc(), config());
  h.open();
  flow::Batch b(flow::file_event_schema());
  b.column(0).append_string("/etc/" + part_name(0));
  for (std::size_t c = 1; c < 5; ++c) b.column(c).append_int64(0);
  b.column(5).append_string(kHeader);
  try {
    h.push(std::move(b));
    FAIL() << "accepted a part outside parts_dir";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/etc/"), std::string::npos) << e.what();
  }
}

TEST_F(MergeArchiveTest, GzipArchiveIsReadableWithZlib) {
  const auto p0 = make_part(0, 0, 500);
  const auto p1 = make_part(1, 500, 500);
  StageHarness h(desc(), config("gzip: true\n"));
  h.open();
  h.push(events({p0, p1}));
  h.finish();
  ASSERT_EQ(archives(), std::vector<std::string>{"sensor_data_20250615_090000.csv.gz"});
  const fs::path gz = backup_ / archives()[0];
  gzFile f = gzopen(gz.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string text;
  char buf[4096];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  EXPECT_GE(n, 0);
  gzclose(f);
  EXPECT_EQ(text, kHeader + "\n" + expected_rows(0, 1000));
  EXPECT_LT(fs::file_size(gz), text.size());
  EXPECT_TRUE(visible_files(parts_).empty());
}

TEST_F(MergeArchiveTest, NeverClobbersAnArchiveOfTheSameSecond) {
  fs::create_directories(backup_);
  write_file(backup_ / "sensor_data_20250615_090000.csv", "an older archive");
  for (int round = 0; round < 2; ++round) {
    const auto p = make_part(round, round * 2, 2);
    StageHarness h(desc(), config());
    h.open();
    h.push(events({p}));
    h.finish();
  }
  EXPECT_EQ(archives(), (std::vector<std::string>{"sensor_data_20250615_090000.csv", "sensor_data_20250615_090000_1.csv",
                                                  "sensor_data_20250615_090000_2.csv"}));
  EXPECT_EQ(read_file(backup_ / "sensor_data_20250615_090000.csv"), "an older archive");
  EXPECT_EQ(read_file(backup_ / "sensor_data_20250615_090000_1.csv"), kHeader + "\n" + expected_rows(0, 2));
  EXPECT_EQ(read_file(backup_ / "sensor_data_20250615_090000_2.csv"), kHeader + "\n" + expected_rows(2, 2));
}

TEST_F(MergeArchiveTest, MergesCommittedPartsLeftByAnEarlierRun) {
  make_part(0, 0, 2);
  make_part(1, 2, 2);
  write_file(parts_ / ".part-x-c0000-000002-0000.csv.tmp", "never committed");
  StageHarness h(desc(), config());
  h.open();
  const auto p2 = make_part(2, 4, 2);
  h.push(events({p2}));
  h.finish();
  ASSERT_EQ(archives().size(), 1u);
  EXPECT_EQ(read_file(backup_ / archives()[0]), kHeader + "\n" + expected_rows(0, 6));
  EXPECT_EQ(all_files(parts_), std::vector<std::string>{".part-x-c0000-000002-0000.csv.tmp"});
}

TEST_F(MergeArchiveTest, EveryMergesPeriodically) {
  StageHarness h(desc(), config("every: 10s\n"));
  h.open();
  h.push(events({make_part(0, 0, 2)}));
  h.advance(9s);
  EXPECT_TRUE(archives().empty());
  h.advance(1s);
  EXPECT_EQ(archives(), std::vector<std::string>{"sensor_data_20250615_090010.csv"});
  h.push(events({make_part(1, 2, 3)}));
  h.advance(10s);
  h.finish();  // nothing left
  EXPECT_EQ(archives(), (std::vector<std::string>{"sensor_data_20250615_090010.csv", "sensor_data_20250615_090020.csv"}));
  EXPECT_EQ(read_file(backup_ / "sensor_data_20250615_090020.csv"), kHeader + "\n" + expected_rows(2, 3));
  EXPECT_EQ(h.counter("archives"), 2u);
}

TEST_F(MergeArchiveTest, CountsRecordsNotLinesWhenFieldsHoldNewlines) {
  const std::string name = part_name(0);
  write_file(parts_ / name, "a,b\n\"x\ny\",1\n\"q\"\"\n\",2\nlast,3");  // no final line feed
  write_file(commits_ / (name.substr(0, name.size() - 4) + ".json"), "{\"version\":1,\"ranges\":[]}\n");
  StageHarness h(desc(), config());
  h.open();
  h.finish();
  EXPECT_EQ(h.counter("rows_archived"), 3u);
  ASSERT_EQ(archives().size(), 1u);
  EXPECT_EQ(read_file(backup_ / archives()[0]), "a,b\n\"x\ny\",1\n\"q\"\"\n\",2\nlast,3\n");
}

TEST_F(MergeArchiveTest, CheckRefusesDangerousDirectories) {
  auto errors_of = [](const std::string& yaml) { return StageHarness(desc(), yaml).check(); };
  const std::string p = parts_.string();
  EXPECT_TRUE(errors_of(config()).empty());
  struct Case {
    std::string yaml;
    std::string option;
    int line;
  };
  const std::vector<Case> cases = {
      {"parts_dir: " + p + "\nbackup_dir: " + p + "\n", "backup_dir", 2},
      {"parts_dir: " + p + "\nbackup_dir: " + p + "/./archive/\n", "backup_dir", 2},
      {"parts_dir: " + p + "/\nbackup_dir: " + p + "/../parts/old\n", "backup_dir", 2},
      {"parts_dir: " + p + "\nbackup_dir: " + p + "/_checkpoint/b\n", "backup_dir", 2},
      {"parts_dir: " + p + "\ncheckpoint_dir: /tmp/ck-x\nbackup_dir: /tmp/ck-x/sub\n", "backup_dir", 3},
      {"parts_dir: " + p + "\nbackup_dir: " + backup_.string() + "\njournal_dir: " + p + "/_checkpoint\n",
       "journal_dir", 3},
      {"parts_dir: /\nbackup_dir: " + backup_.string() + "\n", "parts_dir", 1},
      {"parts_dir: \"\"\nbackup_dir: " + backup_.string() + "\n", "parts_dir", 1},
  };
  for (const auto& c : cases) {
    const auto errors = errors_of(c.yaml);
    ASSERT_FALSE(errors.empty()) << c.yaml;
    EXPECT_NE(errors[0].message.find("'" + c.option + "'"), std::string::npos) << c.yaml << errors[0].message;
    EXPECT_EQ(errors[0].where.line, c.line) << c.yaml;
  }
  // A backup directory that merely shares a name prefix is fine.
  EXPECT_TRUE(errors_of("parts_dir: " + p + "\nbackup_dir: " + p + "-backup\n").empty());
}

TEST_F(MergeArchiveTest, OpenRefusesDangerousDirectoriesToo) {
  StageHarness h(desc(), "parts_dir: " + parts_.string() + "\nbackup_dir: " + parts_.string() + "/b\n");
  EXPECT_THROW(h.open(), std::runtime_error);
  EXPECT_FALSE(fs::exists(parts_ / "b"));
}

// Every crash point: a job interrupted there is finished by the next instance's open() and
// finish(), and the backup then holds every row exactly once.
class CrashPointTest : public MergeArchiveTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CrashPointTest, NextOpenFinishesTheJobWithoutLossOrDoubles) {
  const std::string point = GetParam();
  const std::vector<std::string> names = {make_part(0, 0, 3), make_part(1, 3, 3), make_part(2, 6, 3)};
  {
    int seen = 0;
    merge_archive::set_crash_hook([&](std::string_view at) {
      // "part-deleted" fires after each deletion: crash after the second one.
      if (at == point && (point != "part-deleted" || ++seen == 2)) throw CrashAt(point);
    });
    StageHarness h(desc(), config());
    h.open();
    h.push(events(names));
    EXPECT_THROW(h.finish(), CrashAt);
    merge_archive::set_crash_hook(nullptr);
  }
  // A restart in the same second (the worst case for names); the sink added one more part.
  const auto late = make_part(3, 9, 2);
  StageHarness h(desc(), config());
  h.open();
  h.push(events({late}));
  h.finish();

  std::string all;
  for (const auto& a : archives()) {
    const auto text = read_file(backup_ / a);
    ASSERT_EQ(text.rfind(kHeader + "\n", 0), 0u) << a;
    EXPECT_EQ(text.find(kHeader, 1), std::string::npos) << a << ": header twice";
    all += text.substr(kHeader.size() + 1);
  }
  EXPECT_EQ(all, expected_rows(0, 11)) << "rows lost or doubled; archives: " << archives().size();
  EXPECT_TRUE(visible_files(parts_).empty());
  EXPECT_TRUE(all_files(commits_).empty());
  for (const auto& f : all_files(backup_)) EXPECT_FALSE(f.ends_with(".tmp")) << f;
}

INSTANTIATE_TEST_SUITE_P(MergeArchive, CrashPointTest,
                         ::testing::Values("planned", "archive-written", "archive-renamed", "journal-archived",
                                           "part-deleted", "parts-deleted", "manifests-deleted"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// A real crash: a child process runs the merge and is killed with SIGKILL between two steps;
// the parent then recovers with a new instance.
class KillTest : public MergeArchiveTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(KillTest, SigkillBetweenStepsLosesAndDoublesNothing) {
  const std::string point = GetParam();
  const std::vector<std::string> names = {make_part(0, 0, 4), make_part(1, 4, 4), make_part(2, 8, 4)};
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    merge_archive::set_crash_hook([point](std::string_view at) {
      if (at == point) ::raise(SIGKILL);
    });
    try {
      StageHarness h(desc(), config());
      h.open();
      h.push(events(names));
      h.finish();
    } catch (...) {
    }
    ::_exit(0);  // reached only when the crash point was not
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child did not reach crash point " << point;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  StageHarness h(desc(), config());
  h.open();
  h.finish();
  std::string all;
  for (const auto& a : archives()) all += read_file(backup_ / a).substr(kHeader.size() + 1);
  EXPECT_EQ(all, expected_rows(0, 12));
  EXPECT_TRUE(visible_files(parts_).empty());
  EXPECT_TRUE(all_files(commits_).empty());
}

INSTANTIATE_TEST_SUITE_P(MergeArchive, KillTest,
                         ::testing::Values("archive-written", "archive-renamed", "part-deleted"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

std::string journal_text(const std::string& state, const fs::path& parts, const std::string& target,
                         const std::vector<std::string>& names) {
  std::string j = "{\"version\":1,\"state\":\"" + state + "\",\"parts_dir\":\"" + parts.string() +
                  "\",\"target\":\"" + target + "\",\"parts\":[";
  for (std::size_t i = 0; i < names.size(); ++i) j += (i ? ",\"" : "\"") + names[i] + "\"";
  return j + "]}\n";
}

TEST_F(MergeArchiveTest, HandWrittenArchivedJournalIsFinished) {
  // As the README documents it: the archive is in place, the journal says "archived", and the
  // crash came after the first part was deleted.
  const auto p0 = make_part(0, 0, 2);
  const auto p1 = make_part(1, 2, 2);
  fs::create_directories(backup_ / ".merge-journal");
  write_file(backup_ / "sensor_data_20250101_000000.csv", kHeader + "\n" + expected_rows(0, 4));
  write_file(backup_ / ".merge-journal" / "job-by-hand.json",
             journal_text("archived", parts_, "sensor_data_20250101_000000.csv", {p0, p1}));
  fs::remove(parts_ / p0);
  StageHarness h(desc(), config());
  h.open();
  EXPECT_TRUE(visible_files(parts_).empty());
  EXPECT_TRUE(all_files(commits_).empty());
  h.finish();
  EXPECT_EQ(archives(), std::vector<std::string>{"sensor_data_20250101_000000.csv"});
  EXPECT_FALSE(fs::exists(backup_ / ".merge-journal" / "job-by-hand.json"));
}

TEST_F(MergeArchiveTest, HandWrittenPlannedJournalMergesAgain) {
  const auto p0 = make_part(0, 0, 2);
  const auto p1 = make_part(1, 2, 2);
  fs::create_directories(backup_ / ".merge-journal");
  write_file(backup_ / ".sensor_data_20250101_000000.csv.tmp", kHeader + "\n" + expected_rows(0, 1));
  write_file(backup_ / ".merge-journal" / "job-by-hand.json",
             journal_text("planned", parts_, "sensor_data_20250101_000000.csv", {p0, p1}));
  StageHarness h(desc(), config());
  h.open();
  EXPECT_FALSE(fs::exists(backup_ / ".sensor_data_20250101_000000.csv.tmp"));
  h.finish();
  ASSERT_EQ(archives(), std::vector<std::string>{"sensor_data_20250615_090000.csv"});
  EXPECT_EQ(read_file(backup_ / archives()[0]), kHeader + "\n" + expected_rows(0, 4));
}

TEST_F(MergeArchiveTest, CorruptJournalStopsWithItsName) {
  make_part(0, 0, 2);
  fs::create_directories(backup_ / ".merge-journal");
  write_file(backup_ / ".merge-journal" / "job-bad.json", "{\"state\":");
  StageHarness h(desc(), config());
  try {
    h.open();
    FAIL() << "opened with a corrupt journal";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("job-bad.json"), std::string::npos) << e.what();
  }
  EXPECT_EQ(visible_files(parts_).size(), 1u);
}

TEST_F(MergeArchiveTest, JournalOfAnotherPartsDirIsLeftAlone) {
  fs::create_directories(backup_ / ".merge-journal");
  const std::string other = journal_text("archived", "/tmp/elsewhere", "x.csv", {part_name(0)});
  write_file(backup_ / ".merge-journal" / "job-other.json", other);
  const auto p0 = make_part(0, 0, 2);
  StageHarness h(desc(), config());
  h.open();
  h.finish();
  EXPECT_EQ(read_file(backup_ / ".merge-journal" / "job-other.json"), other);
  EXPECT_EQ(archives().size(), 1u);
}

}  // namespace
