// Helpers for the merge-archive tests: the shared file helpers (tests/support/files.hpp).
#pragma once

#include "support/files.hpp"

namespace csv_test {
namespace fs = std::filesystem;
using flow::test::all_files;
using flow::test::read_file;
using flow::test::TempDir;
using flow::test::visible_files;
using flow::test::write_file;
}  // namespace csv_test
