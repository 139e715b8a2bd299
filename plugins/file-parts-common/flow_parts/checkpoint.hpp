// Reading the file-parts checkpoint (manifest entries, archived offsets) and merge-archive's job
// journal. Needs simdjson (target flow_file_parts_read).
#pragma once

#include <simdjson.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow/delivery.hpp"
#include "flow_parts/file_parts.hpp"

namespace flow::parts {

// The one format version of manifest entries, archived-offsets.json and merge journals.
inline constexpr int64_t kFormatVersion = 1;

// Refuses a file of another format (a newer Flow's, or no Flow file at all) before reading it.
inline void check_version(simdjson::dom::element doc) {
  int64_t v = 0;
  if (doc["version"].get(v) != simdjson::SUCCESS)
    throw std::runtime_error("it has no numeric \"version\" field, so it is not a Flow checkpoint file");
  if (v != kFormatVersion)
    throw std::runtime_error("it is format version " + std::to_string(v) + ", but this flowctl reads version " +
                             std::to_string(kFormatVersion) + " (written by another Flow version: run that version)");
}

// What to do about a damaged checkpoint file, by its kind.
inline std::string checkpoint_advice(const std::filesystem::path& p) {
  if (p.filename() == kArchivedOffsets)
    return "restore it from a backup; removing it loses nothing but makes replaying sources deliver again what "
           "merge-archive has already archived (duplicates in the archives)";
  return "restore it from a backup, or remove it together with its part file '" + p.stem().string() +
         ".csv' so that the part's records are delivered again; nothing was changed";
}

// The ranges a manifest entry (or archived-offsets.json, whose entries have no "begin") lists.
inline std::vector<PositionRange> read_ranges(const std::filesystem::path& p) {
  try {
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.load(p.string());
    check_version(doc);
    std::vector<PositionRange> out;
    for (auto r : doc["ranges"].get_array()) {
      PositionRange x;
      x.source = std::string(std::string_view(r["source"]));
      x.partition = static_cast<int32_t>(int64_t(r["partition"]));
      x.end = r["end"];
      int64_t begin = 0;
      x.begin = r["begin"].get(begin) == simdjson::SUCCESS ? begin : x.end;
      if (x.end < 0 || x.begin < 0 || x.begin > x.end)
        throw std::runtime_error("bad range [" + std::to_string(x.begin) + ", " + std::to_string(x.end) + ")");
      out.push_back(std::move(x));
    }
    return out;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read checkpoint file '" + p.string() + "': " + e.what() + "; " +
                             checkpoint_advice(p));
  }
}

// The size of its part a manifest entry records (nullopt when it records none): merge-archive
// checks the part against it.
inline std::optional<uint64_t> read_part_bytes(const std::filesystem::path& p) {
  try {
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.load(p.string());
    check_version(doc);
    uint64_t bytes = 0;
    if (doc["bytes"].get(bytes) != simdjson::SUCCESS) return std::nullopt;
    return bytes;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read checkpoint file '" + p.string() + "': " + e.what() + "; " +
                             checkpoint_advice(p));
  }
}

// Whether a file in <checkpoint>/commits is a manifest entry (others are not Flow's: left alone).
inline bool is_manifest_name(const std::string& name) {
  return !name.starts_with(".") && name.ends_with(".json") &&
         parse_part_name(name.substr(0, name.size() - 5) + ".csv").has_value();
}

// Per (source, partition), the end of everything committed: the highest end over the manifest
// entries in <checkpoint>/commits and archived-offsets.json. A sink's batches arrive in the order
// its source emitted them and each part holds whole batches, so below that end everything meant
// for the sink is committed and at or after it nothing is.
inline DeliveryRegistry::Ends committed_ends(const std::filesystem::path& checkpoint) {
  DeliveryRegistry::Ends ends;
  auto add = [&](const std::filesystem::path& p) {
    for (const auto& r : read_ranges(p)) {
      auto [it, inserted] = ends.emplace(DeliveryRegistry::Key{r.source, r.partition}, r.end);
      if (!inserted) it->second = std::max(it->second, r.end);
    }
  };
  const auto commits = commits_dir(checkpoint);
  if (std::filesystem::is_directory(commits))
    for (const auto& e : std::filesystem::directory_iterator(commits)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && is_manifest_name(name)) add(e.path());
    }
  if (std::filesystem::exists(checkpoint / kArchivedOffsets)) add(checkpoint / kArchivedOffsets);
  return ends;
}

// Adds the ends of the given manifest entries to <checkpoint>/archived-offsets.json (by maximum,
// so repeating it is harmless), before merge-archive deletes those entries.
inline void record_archived_offsets(const std::filesystem::path& checkpoint, const std::vector<std::string>& parts) {
  std::map<std::pair<std::string, int32_t>, int64_t> ends;
  auto add = [&](const std::filesystem::path& p) {
    for (const auto& r : read_ranges(p)) {
      auto [it, inserted] = ends.emplace(std::make_pair(r.source, r.partition), r.end);
      if (!inserted) it->second = std::max(it->second, r.end);
    }
  };
  bool any = false;
  for (const auto& name : parts) {
    const auto m = commits_dir(checkpoint) / manifest_name(name);
    if (std::filesystem::exists(m)) {
      add(m);
      any = true;
    }
  }
  if (!any) return;
  const auto file = checkpoint / kArchivedOffsets;
  if (std::filesystem::exists(file)) add(file);
  std::string j = "{\"version\":1,\"ranges\":[";
  bool first = true;
  for (const auto& [key, end] : ends) {
    if (!first) j += ",";
    first = false;
    j += "{\"source\":";
    io::append_json_string(j, key.first);
    j += ",\"partition\":" + std::to_string(key.second) + ",\"end\":" + std::to_string(end) + "}";
  }
  j += "]}\n";
  io::atomic_write_file(checkpoint, kArchivedOffsets, j, true);
}

// merge-archive's journal of one job: planned -> archived -> cleaned.
struct Job {
  std::string state;  // planned, archived, cleaned
  std::string target;
  std::vector<std::string> parts;
  std::string parts_dir, checkpoint_dir, backup_dir;
};

inline std::string journal_json(const Job& job) {
  std::string j = "{\"version\":1,\"state\":\"" + job.state + "\",\"parts_dir\":";
  io::append_json_string(j, job.parts_dir);
  j += ",\"checkpoint_dir\":";
  io::append_json_string(j, job.checkpoint_dir);
  j += ",\"backup_dir\":";
  io::append_json_string(j, job.backup_dir);
  j += ",\"target\":";
  io::append_json_string(j, job.target);
  j += ",\"parts\":[";
  for (std::size_t i = 0; i < job.parts.size(); ++i) {
    if (i) j += ",";
    io::append_json_string(j, job.parts[i]);
  }
  j += "]}\n";
  return j;
}

inline Job read_journal(const std::filesystem::path& p) {
  try {
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.load(p.string());
    check_version(doc);
    Job job;
    job.state = std::string(std::string_view(doc["state"]));
    job.target = std::string(std::string_view(doc["target"]));
    job.parts_dir = std::string(std::string_view(doc["parts_dir"]));
    for (auto v : doc["parts"].get_array()) {
      std::string name{std::string_view(v)};
      if (!parse_part_name(name)) throw std::runtime_error("'" + name + "' is not a part name");
      job.parts.push_back(std::move(name));
    }
    if (job.target.empty() || job.target.find('/') != std::string::npos || job.target.front() == '.')
      throw std::runtime_error("bad target '" + job.target + "'");
    if (job.state != "planned" && job.state != "archived" && job.state != "cleaned")
      throw std::runtime_error("unknown state '" + job.state + "'");
    return job;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read merge journal '" + p.string() + "': " + e.what() +
                             "; if the archive it names is in backup_dir, its parts are in that archive: remove them and their manifest "
                             "entries, then this file; otherwise just remove this file. Nothing was changed");
  }
}

}  // namespace flow::parts
