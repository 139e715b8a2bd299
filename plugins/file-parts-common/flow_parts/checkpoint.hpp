// Reading the file-parts checkpoint (manifest entries, archived offsets) and merge-archive's job
// journal from their files: the parsing is in flow_parts/readers.hpp (target flow_file_parts_read);
// this adds the file's name and what to do to every error.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow/delivery.hpp"
#include "flow_parts/file_parts.hpp"
#include "flow_parts/readers.hpp"

namespace flow::parts {

namespace detail {
// Reads `fd` to its end and closes it; throws naming `p` and the system error.
inline std::string read_and_close(int fd, const std::filesystem::path& p) {
  std::string out;
  char buf[64 << 10];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      io::throw_errno("cannot read", p, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}
}  // namespace detail

// The whole of a state file (they are small); throws naming the system error.
inline std::string read_state_file(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io::throw_errno("cannot open", p);
  return detail::read_and_close(fd, p);
}

// The same, or nullopt when the file does not exist.
inline std::optional<std::string> read_state_file_if_exists(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    io::throw_errno("cannot open", p);
  }
  return detail::read_and_close(fd, p);
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
    const std::string text = read_state_file(p);
    if (p.filename() == kArchivedOffsets) return parse_archived_offsets(text);
    return parse_manifest(text).ranges;
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read checkpoint file '" + p.string() + "': " + e.what() + "; " +
                             checkpoint_advice(p));
  }
}

// The size of its part a manifest entry records (nullopt when it records none): merge-archive
// checks the part against it.
inline std::optional<uint64_t> read_part_bytes(const std::filesystem::path& p) {
  try {
    return parse_manifest(read_state_file(p)).bytes;
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

// Adds the ends of `ranges` (those of the manifest entries merge-archive is about to delete) to
// <checkpoint>/archived-offsets.json, by maximum, so repeating it is harmless.
inline void record_archived_ranges(const std::filesystem::path& checkpoint, const std::vector<PositionRange>& ranges) {
  std::map<std::pair<std::string, int32_t>, int64_t> ends;
  auto add = [&](const std::vector<PositionRange>& list) {
    for (const auto& r : list) {
      auto [it, inserted] = ends.emplace(std::make_pair(r.source, r.partition), r.end);
      if (!inserted) it->second = std::max(it->second, r.end);
    }
  };
  add(ranges);
  const auto file = checkpoint / kArchivedOffsets;
  if (std::filesystem::exists(file)) add(read_ranges(file));
  std::vector<PositionRange> out;
  for (const auto& [key, end] : ends) out.push_back({key.first, key.second, end, end});
  const std::string j = archived_offsets_json(out);
  io::atomic_write_file(checkpoint, kArchivedOffsets, j, true);
}

// The same for the entries of `parts` still in <checkpoint>/commits, read from their files
// (nothing is written when none is left).
inline void record_archived_offsets(const std::filesystem::path& checkpoint, const std::vector<std::string>& parts) {
  std::vector<PositionRange> ranges;
  bool any = false;
  for (const auto& name : parts) {
    const auto m = commits_dir(checkpoint) / manifest_name(name);
    if (std::filesystem::exists(m)) {
      const auto r = read_ranges(m);
      ranges.insert(ranges.end(), r.begin(), r.end());
      any = true;
    }
  }
  if (any) record_archived_ranges(checkpoint, ranges);
}

inline Job read_journal(const std::filesystem::path& p) {
  try {
    return parse_journal(read_state_file(p));
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot read merge journal '" + p.string() + "': " + e.what() +
                             "; if the archive it names is in backup_dir, its parts are in that archive: remove them and their manifest "
                             "entries, then this file; otherwise just remove this file. Nothing was changed");
  }
}

}  // namespace flow::parts
