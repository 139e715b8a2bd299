// A thin C++ layer over DuckDB's C API (duckdb_capi.h) for Flow's plugins: owning handles,
// errors as exceptions that carry DuckDB's message, and the type mapping of flow::Type.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "duckdb_capi.h"
#include "flow/schema.hpp"

namespace flow_duckdb {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "name" with embedded quotes doubled: a safe SQL identifier.
inline std::string ident(std::string_view s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// 'text' with embedded quotes doubled: a safe SQL string literal.
inline std::string literal(std::string_view s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

inline const char* sql_type(flow::Type t) {
  switch (t) {
    case flow::Type::Int64: return "BIGINT";
    case flow::Type::Float64: return "DOUBLE";
    case flow::Type::Bool: return "BOOLEAN";
    case flow::Type::String: return "VARCHAR";
    case flow::Type::Timestamp: return "TIMESTAMP";
  }
  return "VARCHAR";
}

class Result {
 public:
  Result() = default;
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() { duckdb_destroy_result(&r_); }

  idx_t rows() { return duckdb_row_count(&r_); }
  idx_t columns() { return duckdb_column_count(&r_); }
  std::string name(idx_t col) { return duckdb_column_name(&r_, col); }
  duckdb_type type(idx_t col) { return duckdb_column_type(&r_, col); }
  bool is_null(idx_t col, idx_t row) { return duckdb_value_is_null(&r_, col, row); }
  int64_t int64(idx_t col, idx_t row) { return duckdb_value_int64(&r_, col, row); }
  double dbl(idx_t col, idx_t row) { return duckdb_value_double(&r_, col, row); }
  std::string str(idx_t col, idx_t row) {
    char* s = duckdb_value_varchar(&r_, col, row);
    std::string out = s ? s : "";
    duckdb_free(s);
    return out;
  }
  duckdb_result* get() { return &r_; }

 private:
  duckdb_result r_{};
};

class Database {
 public:
  // `path` "" = in memory. Read-only opens share the file with other read-only processes.
  explicit Database(const std::string& path, bool read_only = false) {
    duckdb_config config = nullptr;
    if (read_only) {
      if (duckdb_create_config(&config) != DuckDBSuccess) throw Error("DuckDB: cannot create a configuration");
      duckdb_set_config(config, "access_mode", "READ_ONLY");
    }
    char* err = nullptr;
    const duckdb_state st = duckdb_open_ext(path.empty() ? nullptr : path.c_str(), &db_, config, &err);
    if (config) duckdb_destroy_config(&config);
    if (st != DuckDBSuccess) {
      std::string msg = err ? err : "unknown error";
      duckdb_free(err);
      throw Error("cannot open DuckDB database '" + path + "': " + msg);
    }
  }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database() { duckdb_close(&db_); }
  duckdb_database get() const { return db_; }

 private:
  duckdb_database db_ = nullptr;
};

class Connection {
 public:
  explicit Connection(Database& db) {
    if (duckdb_connect(db.get(), &c_) != DuckDBSuccess) throw Error("cannot connect to the DuckDB database");
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { duckdb_disconnect(&c_); }
  duckdb_connection get() const { return c_; }

  // Runs `sql` into `out`; throws with DuckDB's message (and the statement) on failure.
  void query(const std::string& sql, Result& out) {
    if (duckdb_query(c_, sql.c_str(), out.get()) != DuckDBSuccess) {
      const char* e = duckdb_result_error(out.get());
      throw Error(std::string(e ? e : "query failed") + " (in: " + sql.substr(0, 200) + ")");
    }
  }
  void exec(const std::string& sql) {
    Result r;
    query(sql, r);
  }

 private:
  duckdb_connection c_ = nullptr;
};

class Appender {
 public:
  Appender(Connection& c, const std::string& table) {
    if (duckdb_appender_create(c.get(), nullptr, table.c_str(), &a_) != DuckDBSuccess) {
      std::string msg = a_ ? error() : "unknown error";
      duckdb_appender_destroy(&a_);
      throw Error("cannot append to table '" + table + "': " + msg);
    }
  }
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;
  ~Appender() { duckdb_appender_destroy(&a_); }

  void check(duckdb_state s) {
    if (s != DuckDBSuccess) throw Error("DuckDB appender: " + error());
  }
  void int64(int64_t v) { check(duckdb_append_int64(a_, v)); }
  void dbl(double v) { check(duckdb_append_double(a_, v)); }
  void boolean(bool v) { check(duckdb_append_bool(a_, v)); }
  void timestamp(int64_t micros) { check(duckdb_append_timestamp(a_, duckdb_timestamp{micros})); }
  void varchar(std::string_view v) { check(duckdb_append_varchar_length(a_, v.data(), v.size())); }
  void null() { check(duckdb_append_null(a_)); }
  void end_row() { check(duckdb_appender_end_row(a_)); }
  // Flushes what is buffered into the connection's transaction and closes the appender.
  void close() { check(duckdb_appender_close(a_)); }

 private:
  std::string error() {
    const char* e = duckdb_appender_error(a_);
    return e ? e : "unknown error";
  }
  duckdb_appender a_ = nullptr;
};

}  // namespace flow_duckdb
