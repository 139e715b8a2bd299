# Finds libduckdb.so: under -DDUCKDB_ROOT=<dir> (lib/ or the directory itself), else where
# scripts/setup unpacks it (<build>/_deps/duckdb/lib). Defines the imported target DuckDB::duckdb
# (global) and DuckDB_FOUND. The C API declarations come from plugins/duckdb-common, so only the
# library is needed. When it is missing, the DuckDB plugins are skipped with one message.
set(DUCKDB_ROOT "" CACHE PATH "Directory holding libduckdb.so (or lib/libduckdb.so)")
find_library(DUCKDB_LIBRARY NAMES duckdb
  HINTS ${DUCKDB_ROOT} ${DUCKDB_ROOT}/lib ${CMAKE_BINARY_DIR}/_deps/duckdb/lib
  NO_DEFAULT_PATH)
if(NOT DUCKDB_LIBRARY)
  find_library(DUCKDB_LIBRARY NAMES duckdb)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(DuckDB REQUIRED_VARS DUCKDB_LIBRARY NAME_MISMATCHED)

if(DuckDB_FOUND AND NOT TARGET DuckDB::duckdb)
  add_library(DuckDB::duckdb SHARED IMPORTED GLOBAL)
  set_target_properties(DuckDB::duckdb PROPERTIES
    IMPORTED_LOCATION ${DUCKDB_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${CMAKE_SOURCE_DIR}/plugins/duckdb-common)
  # Installed next to the plugins' directory; the plugins find it through their RUNPATH.
  install(FILES ${DUCKDB_LIBRARY} DESTINATION ${CMAKE_INSTALL_LIBDIR}/flow)
  get_filename_component(duckdb_dir ${DUCKDB_LIBRARY} DIRECTORY)
  if(EXISTS ${duckdb_dir}/../LICENSE)  # MIT: its notice goes with the library
    install(FILES ${duckdb_dir}/../LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/flow RENAME duckdb-LICENSE)
  endif()
endif()
get_property(told GLOBAL PROPERTY FLOW_DUCKDB_TOLD)
if(NOT DuckDB_FOUND AND NOT told)
  set_property(GLOBAL PROPERTY FLOW_DUCKDB_TOLD TRUE)
  message(STATUS "DuckDB not found (run scripts/setup, or pass -DDUCKDB_ROOT=<dir with libduckdb.so>): "
                 "skipping duckdb-sink and merge-archive's Parquet format")
endif()
