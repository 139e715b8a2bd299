#include "parquet_archive.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>
#include <string_view>
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

constexpr std::string_view kIntegers =
    " TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT UHUGEINT ";

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
  const std::string source = literal(csv.string()) + ", header = true, compression = " +
                             (is_gzip(csv) ? "'gzip'" : "'none'");
  auto typed = [&](const std::vector<std::pair<std::string, std::string>>& cols) {
    std::string t = ", types = {";
    for (std::size_t i = 0; i < cols.size(); ++i)
      t += (i ? ", " : "") + literal(cols[i].first) + ": " + literal(cols[i].second);
    return cols.empty() ? std::string() : t + "}";
  };
  uint64_t rows = 0;
  try {
    flow_duckdb::Database db("");  // in memory: DuckDB only reads the CSV and writes the Parquet file
    flow_duckdb::Connection c(db);
    c.exec("SET autoinstall_known_extensions = false");
    // One thread: memory stays near 120 MiB whatever the archive's size (more threads buffer
    // more row groups to keep the rows in order).
    c.exec("SET threads = 1");
    // 1. Types from DuckDB's sniffer (a sample), with the given ones.
    std::vector<std::pair<std::string, std::string>> given(types.begin(), types.end()), cols;
    {
      flow_duckdb::Result d;
      c.query("DESCRIBE SELECT * FROM read_csv(" + source + typed(given) + ")", d);
      for (idx_t i = 0; i < d.rows(); ++i) cols.emplace_back(d.str(0, i), d.str(1, i));
    }
    // 2. A sampled integer column is checked over the whole file: DuckDB would silently round a
    // later "1.5" into it. A misfit makes it DOUBLE (or VARCHAR when not even a number).
    std::vector<std::size_t> ints;
    for (std::size_t i = 0; i < cols.size(); ++i)
      if (!types.count(cols[i].first) && kIntegers.find(" " + cols[i].second + " ") != std::string::npos)
        ints.push_back(i);
    if (!ints.empty()) {
      std::string q = "SELECT ";
      for (std::size_t k = 0; k < ints.size(); ++k) {
        const std::string col = flow_duckdb::ident(cols[ints[k]].first);
        q += (k ? ", " : "") + std::string("count(*) FILTER (WHERE NOT regexp_full_match(trim(") + col +
             "), '[+-]?[0-9]+')), count(*) FILTER (WHERE TRY_CAST(" + col + " AS DOUBLE) IS NULL AND " + col +
             " IS NOT NULL)";
      }
      flow_duckdb::Result r;
      c.query(q + " FROM read_csv(" + source + ", all_varchar = true)", r);
      for (std::size_t k = 0; k < ints.size(); ++k)
        if (r.int64(static_cast<idx_t>(2 * k), 0) > 0)
          cols[ints[k]].second = r.int64(static_cast<idx_t>(2 * k + 1), 0) > 0 ? "VARCHAR" : "DOUBLE";
    }
    // 3. The Parquet file, every column typed.
    flow_duckdb::Result r;
    c.query("COPY (SELECT * FROM read_csv(" + source + typed(cols) + ")) TO " + literal(tmp.string()) +
                " (FORMAT parquet, COMPRESSION zstd)",
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
