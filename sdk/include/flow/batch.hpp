// Columnar batches: what stages exchange. One typed vector per column; strings live in one
// character buffer per column with offsets, so a batch of N records costs a handful of
// allocations, not N.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flow/positions.hpp"
#include "flow/schema.hpp"

namespace flow {

class Column {
 public:
  explicit Column(Type type = Type::String) : type_(type) {
    if (type_ == Type::String) offsets_.push_back(0);
  }

  Type type() const { return type_; }
  std::size_t size() const {
    switch (type_) {
      case Type::Int64:
      case Type::Timestamp: return ints_.size();
      case Type::Float64: return floats_.size();
      case Type::Bool: return bools_.size();
      case Type::String: return offsets_.size() - 1;
    }
    return 0;
  }

  // --- appending (the type must match; checked cheaply) ---
  void append_int64(int64_t v) { ints_.push_back(v); note_valid(); }
  void append_timestamp(int64_t micros) { ints_.push_back(micros); note_valid(); }
  void append_double(double v) { floats_.push_back(v); note_valid(); }
  void append_bool(bool v) { bools_.push_back(v ? 1 : 0); note_valid(); }
  void append_string(std::string_view v) {
    chars_.append(v.data(), v.size());
    offsets_.push_back(static_cast<uint32_t>(chars_.size()));
    note_valid();
  }
  // A null: a zero/empty value plus a null flag.
  void append_null() {
    const std::size_t n = size();
    if (nulls_.size() < n) nulls_.resize(n, 0);
    switch (type_) {
      case Type::Int64:
      case Type::Timestamp: ints_.push_back(0); break;
      case Type::Float64: floats_.push_back(0); break;
      case Type::Bool: bools_.push_back(0); break;
      case Type::String: offsets_.push_back(static_cast<uint32_t>(chars_.size())); break;
    }
    nulls_.push_back(1);
  }
  // Appends row `i` of `other` (same type).
  void append_from(const Column& other, std::size_t i) {
    if (other.is_null(i)) return append_null();
    switch (type_) {
      case Type::Int64:
      case Type::Timestamp: append_int64(other.ints_[i]); break;
      case Type::Float64: append_double(other.floats_[i]); break;
      case Type::Bool: append_bool(other.bools_[i] != 0); break;
      case Type::String: append_string(other.string_at(i)); break;
    }
  }
  void reserve(std::size_t rows, std::size_t chars = 0) {
    switch (type_) {
      case Type::Int64:
      case Type::Timestamp: ints_.reserve(rows); break;
      case Type::Float64: floats_.reserve(rows); break;
      case Type::Bool: bools_.reserve(rows); break;
      case Type::String:
        offsets_.reserve(rows + 1);
        chars_.reserve(chars);
        break;
    }
  }

  // --- reading ---
  bool is_null(std::size_t i) const { return i < nulls_.size() && nulls_[i] != 0; }
  bool has_nulls() const {
    for (auto n : nulls_)
      if (n) return true;
    return false;
  }
  int64_t int64_at(std::size_t i) const { return ints_[i]; }
  int64_t timestamp_at(std::size_t i) const { return ints_[i]; }
  double double_at(std::size_t i) const { return floats_[i]; }
  bool bool_at(std::size_t i) const { return bools_[i] != 0; }
  std::string_view string_at(std::size_t i) const {
    return std::string_view(chars_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]);
  }

  // Raw access for fast paths.
  const std::vector<int64_t>& ints() const { return ints_; }
  const std::vector<double>& floats() const { return floats_; }
  const std::vector<uint8_t>& bools() const { return bools_; }
  const std::string& chars() const { return chars_; }
  const std::vector<uint32_t>& offsets() const { return offsets_; }

  // Bytes held by the column's buffers (what channels count).
  std::size_t byte_size() const {
    return ints_.size() * sizeof(int64_t) + floats_.size() * sizeof(double) + bools_.size() +
           chars_.size() + offsets_.size() * sizeof(uint32_t) + nulls_.size();
  }

 private:
  void note_valid() {
    if (!nulls_.empty()) nulls_.push_back(0);
  }

  Type type_;
  std::vector<int64_t> ints_;
  std::vector<double> floats_;
  std::vector<uint8_t> bools_;
  std::string chars_;
  std::vector<uint32_t> offsets_;
  std::vector<uint8_t> nulls_;  // empty while no null was appended
};

class Batch {
 public:
  Batch() = default;
  explicit Batch(SchemaPtr schema) : schema_(std::move(schema)) {
    if (!schema_) throw std::invalid_argument("flow::Batch: null schema");
    columns_.reserve(schema_->size());
    for (const auto& f : schema_->fields()) columns_.emplace_back(f.type);
  }
  Batch(Batch&&) noexcept = default;
  Batch& operator=(Batch&&) noexcept = default;
  Batch(const Batch&) = delete;  // copies are explicit: clone() (positions need a decision)
  Batch& operator=(const Batch&) = delete;

  // A copy of the data, sharing the positions (one more share each).
  Batch clone() const {
    Batch b;
    b.schema_ = schema_;
    b.columns_ = columns_;
    b.positions_ = positions_.share();
    return b;
  }

  const SchemaPtr& schema() const { return schema_; }
  std::size_t num_columns() const { return columns_.size(); }
  std::size_t num_rows() const { return columns_.empty() ? 0 : columns_[0].size(); }
  bool empty() const { return num_rows() == 0; }

  Column& column(std::size_t i) { return columns_.at(i); }
  const Column& column(std::size_t i) const { return columns_.at(i); }
  // By name; throws std::out_of_range naming the column when absent.
  const Column& column(std::string_view name) const { return columns_.at(require(name)); }
  Column& column(std::string_view name) { return columns_.at(require(name)); }

  Positions& positions() { return positions_; }
  const Positions& positions() const { return positions_; }

  std::size_t byte_size() const {
    std::size_t n = 0;
    for (const auto& c : columns_) n += c.byte_size();
    return n;
  }

  // Every column has the same length (for tests and the conformance suite).
  bool consistent() const {
    for (const auto& c : columns_)
      if (c.size() != num_rows()) return false;
    return true;
  }

 private:
  std::size_t require(std::string_view name) const {
    if (!schema_) throw std::out_of_range("batch has no schema");
    auto i = schema_->index_of(name);
    if (!i) throw std::out_of_range("batch has no column '" + std::string(name) + "'");
    return *i;
  }

  SchemaPtr schema_;
  std::vector<Column> columns_;
  Positions positions_;
};

}  // namespace flow
