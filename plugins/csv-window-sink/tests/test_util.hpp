// Helpers for the csv-window-sink tests: the shared file helpers and a strict RFC 4180 reader
// to parse what the sink wrote.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/files.hpp"

namespace csv_test {

namespace fs = std::filesystem;
using flow::test::all_files;
using flow::test::read_file;
using flow::test::TempDir;
using flow::test::visible_files;
using flow::test::write_file;

// Strict RFC 4180 reader (records end with LF or CRLF outside quotes). Fails the test on
// malformed input: a quote inside an unquoted field, text after a closing quote, or an
// unterminated quoted field.
inline std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  std::size_t i = 0;
  bool field_started = false;
  while (i < text.size()) {
    char c = text[i];
    if (!field_started && c == '"') {
      ++i;
      for (;;) {
        if (i >= text.size()) {
          ADD_FAILURE() << "unterminated quoted field";
          return rows;
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field.push_back(text[i++]);
      }
      field_started = true;
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        ADD_FAILURE() << "text after closing quote at " << i;
        return rows;
      }
      continue;
    }
    if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
      ++i;
    } else if (c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
      rows.push_back(std::move(row));
      row.clear();
      i += c == '\r' ? 2 : 1;
    } else {
      if (c == '"' || c == '\r') {
        ADD_FAILURE() << "bare quote or CR in unquoted field at " << i;
        return rows;
      }
      field.push_back(c);
      field_started = true;
      ++i;
    }
  }
  if (field_started || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace csv_test
