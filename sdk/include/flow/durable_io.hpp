// Durable files for sinks: write everything, fsync the file, rename into place, fsync the
// directory (a rename is only durable after that). Header-only POSIX helpers; errors throw
// std::runtime_error naming the path and the system error.
#pragma once

#include "flow/text.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace flow::io {

// A failed system call on a file: the message names the file and the system error; code() and
// path() let a sink tell a full disk (ENOSPC, EDQUOT) from other errors.
class IoError : public std::runtime_error {
 public:
  IoError(const std::string& message, std::filesystem::path path, int code)
      : std::runtime_error(message), path_(std::move(path)), code_(code) {}
  int code() const { return code_; }
  const std::filesystem::path& path() const { return path_; }
  bool disk_full() const { return code_ == ENOSPC || code_ == EDQUOT; }

 private:
  std::filesystem::path path_;
  int code_;
};

[[noreturn]] inline void throw_errno(const std::string& what, const std::filesystem::path& path, int err = errno) {
  throw IoError(what + " '" + path.string() + "': " + std::strerror(err), path, err);
}

inline void write_all(int fd, std::string_view data, const std::filesystem::path& path) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

inline void fsync_fd(int fd, const std::filesystem::path& path) {
  if (::fsync(fd) != 0) throw_errno("cannot fsync", path);
}

inline void fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw_errno("cannot fsync directory", dir, err);
}

inline void rename_file(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) throw_errno("cannot rename '" + from.string() + "' to", to);
}

// Writes `content` as dir/name through dir/.name.tmp; readers see the old file or the whole new one.
inline void atomic_write_file(const std::filesystem::path& dir, const std::string& name, std::string_view content,
                              bool sync) {
  const auto tmp = dir / ("." + name + ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("cannot create", tmp);
  try {
    write_all(fd, content, tmp);
    if (sync) fsync_fd(fd, tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) throw_errno("cannot close", tmp);
  rename_file(tmp, dir / name);
  if (sync) fsync_dir(dir);
}

// Pre-flight check at open(): a directory a stage will write to (`what`: "output", "checkpoint",
// ...) must take a new file now, so a permission or read-only problem stops the run before it
// consumes anything instead of at the first commit. Creates and removes a hidden probe file
// (access(2) would miss ACLs, read-only mounts and user namespaces).
inline void check_writable_dir(const std::filesystem::path& dir, const std::string& what) {
  const auto probe = dir / (".flow-write-probe-" + std::to_string(::getpid()));
  ::unlink(probe.c_str());  // one left by a crashed process with the same pid
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    throw IoError("cannot write to " + what + " directory '" + dir.string() + "': " + std::strerror(err) +
                      " (check its owner and permissions)", dir, err);
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

// JSON string literals for manifests: names and sources may hold any character.
using flow::append_json_string;

}  // namespace flow::io
