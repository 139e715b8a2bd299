// flow_duckdb_query DB SQL: runs one SQL statement on a DuckDB database file opened read-only
// ("" = in memory, e.g. for read_parquet(...)) and prints the result tab-separated with a header.
// For the benchmark's checks and for querying duckdb-sink's file without the DuckDB CLI.
#include <cstdio>
#include <exception>

#include "duckdb_db.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DB|'' SQL\n", argv[0]);
    return 2;
  }
  try {
    flow_duckdb::Database db(argv[1], argv[1][0] != '\0');
    flow_duckdb::Connection c(db);
    flow_duckdb::Result r;
    c.query(argv[2], r);
    for (idx_t col = 0; col < r.columns(); ++col) std::printf("%s%s", col ? "\t" : "", r.name(col).c_str());
    std::printf("\n");
    for (idx_t row = 0; row < r.rows(); ++row) {
      for (idx_t col = 0; col < r.columns(); ++col)
        std::printf("%s%s", col ? "\t" : "", r.is_null(col, row) ? "NULL" : r.str(col, row).c_str());
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flow_duckdb_query: %s\n", e.what());
    return 1;
  }
  return 0;
}
