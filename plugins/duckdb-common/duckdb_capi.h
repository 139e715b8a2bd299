/* The part of DuckDB's C API (duckdb.h, https://duckdb.org/docs/stable/clients/c/api) that Flow's
 * plugins use, transcribed from the documented declarations because the npm package that ships
 * libduckdb.so has no header. Checked against libduckdb 1.4.5 (`nm -D libduckdb.so`); the
 * struct layouts and enum values are those of DuckDB's stable 1.x C API. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t idx_t;

typedef enum { DuckDBSuccess = 0, DuckDBError = 1 } duckdb_state;

typedef enum DUCKDB_TYPE {
  DUCKDB_TYPE_INVALID = 0,
  DUCKDB_TYPE_BOOLEAN = 1,
  DUCKDB_TYPE_INTEGER = 4,
  DUCKDB_TYPE_BIGINT = 5,
  DUCKDB_TYPE_DOUBLE = 11,
  DUCKDB_TYPE_TIMESTAMP = 12,
  DUCKDB_TYPE_VARCHAR = 17,
} duckdb_type;

/* Microseconds since 1970-01-01 (as flow::Type::Timestamp). */
typedef struct {
  int64_t micros;
} duckdb_timestamp;

typedef struct {
  void *deprecated_data;
  bool *deprecated_nullmask;
  duckdb_type deprecated_type;
  char *deprecated_name;
  void *internal_data;
} duckdb_column;

typedef struct {
  idx_t deprecated_column_count;
  idx_t deprecated_row_count;
  idx_t deprecated_rows_changed;
  duckdb_column *deprecated_columns;
  char *deprecated_error_message;
  void *internal_data;
} duckdb_result;

typedef struct _duckdb_database {
  void *internal_ptr;
} *duckdb_database;
typedef struct _duckdb_connection {
  void *internal_ptr;
} *duckdb_connection;
typedef struct _duckdb_appender {
  void *internal_ptr;
} *duckdb_appender;
typedef struct _duckdb_config {
  void *internal_ptr;
} *duckdb_config;

const char *duckdb_library_version(void);
void duckdb_free(void *ptr);

duckdb_state duckdb_create_config(duckdb_config *out_config);
duckdb_state duckdb_set_config(duckdb_config config, const char *name, const char *option);
void duckdb_destroy_config(duckdb_config *config);
duckdb_state duckdb_open_ext(const char *path, duckdb_database *out_database, duckdb_config config, char **out_error);
void duckdb_close(duckdb_database *database);
duckdb_state duckdb_connect(duckdb_database database, duckdb_connection *out_connection);
void duckdb_disconnect(duckdb_connection *connection);

duckdb_state duckdb_query(duckdb_connection connection, const char *query, duckdb_result *out_result);
void duckdb_destroy_result(duckdb_result *result);
const char *duckdb_result_error(duckdb_result *result);
idx_t duckdb_row_count(duckdb_result *result);
idx_t duckdb_column_count(duckdb_result *result);
const char *duckdb_column_name(duckdb_result *result, idx_t col);
duckdb_type duckdb_column_type(duckdb_result *result, idx_t col);
bool duckdb_value_is_null(duckdb_result *result, idx_t col, idx_t row);
int64_t duckdb_value_int64(duckdb_result *result, idx_t col, idx_t row);
double duckdb_value_double(duckdb_result *result, idx_t col, idx_t row);
/* Freed with duckdb_free. */
char *duckdb_value_varchar(duckdb_result *result, idx_t col, idx_t row);

duckdb_state duckdb_appender_create(duckdb_connection connection, const char *schema, const char *table,
                                    duckdb_appender *out_appender);
const char *duckdb_appender_error(duckdb_appender appender);
duckdb_state duckdb_appender_flush(duckdb_appender appender);
duckdb_state duckdb_appender_close(duckdb_appender appender);
duckdb_state duckdb_appender_destroy(duckdb_appender *appender);
duckdb_state duckdb_appender_end_row(duckdb_appender appender);
duckdb_state duckdb_append_bool(duckdb_appender appender, bool value);
duckdb_state duckdb_append_int64(duckdb_appender appender, int64_t value);
duckdb_state duckdb_append_double(duckdb_appender appender, double value);
duckdb_state duckdb_append_timestamp(duckdb_appender appender, duckdb_timestamp value);
duckdb_state duckdb_append_varchar_length(duckdb_appender appender, const char *val, idx_t length);
duckdb_state duckdb_append_null(duckdb_appender appender);

#ifdef __cplusplus
}
#endif
