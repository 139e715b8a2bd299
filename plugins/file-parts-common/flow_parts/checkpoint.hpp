// Reading the file-parts checkpoint (manifest entries, archived offsets) and merge-archive's job
// journal. Needs simdjson (target flow_file_parts_read).
#pragma once

#include <simdjson.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "flow/delivery.hpp"
#include "flow_parts/file_parts.hpp"

namespace flow::parts {

// The ranges a manifest entry (or archived-offsets.json, whose entries have no "begin") lists.
inline std::vector<PositionRange> read_ranges(const std::filesystem::path& p) {
  try {
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.load(p.string());
    std::vector<PositionRange> out;
    for (auto r : doc["ranges"].get_array()) {
      PositionRange x;
      x.source = std::string(std::string_view(r["source"]));
      x.partition = static_cast<int32_t>(int64_t(r["partition"]));
      x.end = r["end"];
      int64_t begin = 0;
      x.begin = r["begin"].get(begin) == simdjson::SUCCESS ? begin : x.end;
      out.push_back(std::move(x));
    }
    return out;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read checkpoint file '" + p.string() + "': " + e.what());
  }
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
      if (e.is_regular_file() && !name.starts_with(".") && name.ends_with(".json")) add(e.path());
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
                             " (inspect or remove it; nothing was changed)");
  }
}

}  // namespace flow::parts
