// The readers of the file-parts state, as pure functions over a file's bytes (no file access),
// so that each can be fuzzed (tests/fuzz): manifest entries, archived-offsets.json, merge-archive's
// job journal, and merge-archive's part-file reader. A reader returns what the file says or
// throws FormatError saying what is wrong; callers (flow_parts/checkpoint.hpp) add the file's
// name and what to do. simdjson stays inside readers.cpp (target flow_file_parts_read).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "flow/positions.hpp"

namespace flow::parts {

// The one format version of manifest entries, archived-offsets.json and merge journals.
inline constexpr int64_t kFormatVersion = 1;

// A state file that is not what it should be (truncated, garbage, another format version).
// The only exception the readers throw.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the readers take from a manifest entry: the input ranges its part holds and, when it
// records them, the part's size, record count and header line (merge-archive checks the part
// against them).
struct ManifestEntry {
  std::vector<PositionRange> ranges;
  std::optional<uint64_t> bytes, rows;  // the part's size and record count
  std::optional<std::string> header;
};
ManifestEntry parse_manifest(std::string_view text);

// archived-offsets.json: per (source, partition) the highest archived end ("begin" = "end").
std::vector<PositionRange> parse_archived_offsets(std::string_view text);
std::string archived_offsets_json(const std::vector<PositionRange>& ends);

// merge-archive's journal of one job: planned -> archived -> cleaned.
struct Job {
  std::string state;  // planned, archived, cleaned
  std::string target;
  std::vector<std::string> parts;
  std::string parts_dir, checkpoint_dir, backup_dir;
};
std::string journal_json(const Job& job);
Job parse_journal(std::string_view text);

// merge-archive's reader of one part file, fed in chunks of any size: finds the header line
// (the first line feed outside double quotes; a final CR dropped) and counts the record lines
// after it. Chunking does not change the outcome.
class PartScanner {
 public:
  // The next bytes of the part; returns the part of `chunk` after the header line.
  std::string_view feed(std::string_view chunk);
  bool header_done() const { return !in_header_; }
  // The header line so far (complete once header_done()), without a final CR.
  std::string header() const;
  uint64_t rows() const { return rows_; }
  // At the end of the part: throws FormatError without a complete header line; returns true when
  // the records lack their final line feed (the caller adds one; it is counted as a row).
  bool finish();

 private:
  std::string header_;
  bool in_header_ = true, in_quotes_ = false;
  char last_ = '\n';
  uint64_t rows_ = 0;
};

}  // namespace flow::parts
