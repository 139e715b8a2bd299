// Parquet archives for merge-archive, written by DuckDB from a finished CSV archive: typed
// columns (the types given, else DuckDB's sniffer with integer columns checked over the whole
// file), zstd, one file per archive, written to a temporary name, fsynced and renamed. Kept
// apart from merge_archive.cpp, which calls it at a few points (after the CSV is written; after
// its rename; when recovering a job). Without DuckDB at build time, available() is false and
// the plugin refuses `parquet` in check().
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace merge_archive::parquet {

bool available();

// Writes `csv` (plain or gzip) as the Parquet file `out`, through `out`'s temporary name
// ".<name>.tmp.parquet" in the same directory, then fsync and rename. `types`: column -> DuckDB
// type for columns whose detected type should be overridden. Returns the rows written; throws
// (naming both files, leaving no temporary file) when DuckDB cannot read or convert the CSV.
uint64_t convert(const std::filesystem::path& csv, const std::filesystem::path& out,
                 const std::map<std::string, std::string>& types);

// The Parquet file that goes with a CSV archive: x.csv or x.csv.gz -> x.parquet.
std::filesystem::path sibling(const std::filesystem::path& csv_archive);

// Removes temporary Parquet files a crash left in `dir`.
void remove_leftovers(const std::filesystem::path& dir);

}  // namespace merge_archive::parquet
