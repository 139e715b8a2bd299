#include "parquet_archive.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <stdexcept>
#include <vector>

#include "flow/durable_io.hpp"

#ifdef FLOW_HAVE_DUCKDB
#include "duckdb_db.hpp"
#endif

namespace fs = std::filesystem;

namespace merge_archive::parquet {

namespace {
constexpr const char* kTmpSuffix = ".tmp.parquet";
}  // namespace

fs::path sibling(const fs::path& csv_archive) {
  std::string name = csv_archive.filename().string();
  for (const char* ext : {".csv.gz", ".csv"})
    if (name.ends_with(ext)) {
      name.resize(name.size() - std::string(ext).size());
      break;
    }
  return csv_archive.parent_path() / (name + ".parquet");
}

void remove_leftovers(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(".") && name.ends_with(kTmpSuffix)) fs::remove(e.path(), ec);
  }
}

#ifdef FLOW_HAVE_DUCKDB
namespace {

// The column names of the header line (plain or gzip); empty when they are quoted (then the
// sniffer reads them).
std::vector<std::string> header(const fs::path& p) {
  gzFile f = gzopen(p.c_str(), "rb");
  if (!f) flow::io::throw_errno("cannot open", p);
  std::string line;
  char buf[4096];
  while (gzgets(f, buf, sizeof buf)) {
    line += buf;
    if (!line.empty() && line.back() == '\n') break;
  }
  gzclose(f);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  std::vector<std::string> out;
  if (line.find('"') != std::string::npos) return out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool is_gzip(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) flow::io::throw_errno("cannot open", p);
  unsigned char m[2] = {0, 0};
  const ssize_t n = ::read(fd, m, 2);
  ::close(fd);
  return n == 2 && m[0] == 0x1f && m[1] == 0x8b;
}
}  // namespace

bool available() { return true; }

uint64_t convert(const fs::path& csv, const fs::path& out, const std::map<std::string, std::string>& types) {
  using flow_duckdb::literal;
  const fs::path tmp = out.parent_path() / ("." + out.filename().string() + kTmpSuffix);
  std::error_code ec;
  fs::remove(tmp, ec);
  // With a type for every column, DuckDB reads them as given; otherwise its sniffer detects the
  // others over the whole file. Not from a sample: a value past the sample that does not fit
  // the sampled type would be cast silently ("1.5" into a BIGINT column becomes 2).
  const auto columns = header(csv);
  bool all_typed = !columns.empty();
  for (const auto& c : columns) all_typed = all_typed && types.count(c) > 0;
  std::string read = "read_csv(" + literal(csv.string()) + ", header = true, compression = " +
                     (is_gzip(csv) ? "'gzip'" : "'none'");
  if (all_typed) {
    read += ", auto_detect = false, delim = ',', quote = '\"', escape = '\"', columns = {";
    for (std::size_t i = 0; i < columns.size(); ++i)
      read += (i ? ", " : "") + literal(columns[i]) + ": " + literal(types.at(columns[i]));
    read += "}";
  } else {
    read += ", sample_size = -1";
    if (!types.empty()) {
      read += ", types = {";
      bool first = true;
      for (const auto& [col, type] : types) {
        read += (first ? "" : ", ") + literal(col) + ": " + literal(type);
        first = false;
      }
      read += "}";
    }
  }
  read += ")";
  uint64_t rows = 0;
  try {
    flow_duckdb::Database db("");  // in memory: DuckDB only reads the CSV and writes the Parquet file
    flow_duckdb::Connection c(db);
    c.exec("SET autoinstall_known_extensions = false");
    flow_duckdb::Result r;
    c.query("COPY (SELECT * FROM " + read + ") TO " + literal(tmp.string()) + " (FORMAT parquet, COMPRESSION zstd)",
            r);
    rows = static_cast<uint64_t>(r.int64(0, 0));
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    throw std::runtime_error("cannot write the Parquet archive '" + out.string() + "' from '" + csv.string() +
                             "': " + e.what());
  }
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) flow::io::throw_errno("cannot open", tmp);
  try {
    flow::io::fsync_fd(fd, tmp);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  flow::io::rename_file(tmp, out);
  flow::io::fsync_dir(out.parent_path());
  return rows;
}
#else
bool available() { return false; }

uint64_t convert(const fs::path&, const fs::path& out, const std::map<std::string, std::string>&) {
  throw std::runtime_error("cannot write '" + out.string() +
                           "': merge-archive was built without DuckDB (run scripts/setup, or pass -DDUCKDB_ROOT=)");
}
#endif

}  // namespace merge_archive::parquet
