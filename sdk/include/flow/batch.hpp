// Columnar batches: what stages exchange. One typed vector per column; strings live in one
// character buffer per column with offsets, so a batch of N records costs a handful of
// allocations, not N.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "flow/positions.hpp"
#include "flow/schema.hpp"

namespace flow {

// Thrown when a column is read, written or viewed as a type it does not have.
class ColumnTypeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Tags for column<T>() where the C++ type does not name the column type: timestamps (int64
// microseconds) and "any number" (int64 or float64, read as double).
struct Timestamp {};
struct Number {};

template <class T>
class ColumnView;

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

  // --- appending (the type must match: a ColumnTypeError otherwise) ---
  // int64 and timestamp columns share their storage, so either append works on both.
  void append_int64(int64_t v) { expect_ints("append_int64"); append_int64_unchecked(v); }
  void append_timestamp(int64_t micros) { expect_ints("append_timestamp"); append_int64_unchecked(micros); }
  void append_double(double v) { expect(Type::Float64, "append_double"); append_double_unchecked(v); }
  void append_bool(bool v) { expect(Type::Bool, "append_bool"); append_bool_unchecked(v); }
  void append_string(std::string_view v) { expect(Type::String, "append_string"); append_string_unchecked(v); }
  // Appends one string written in place: `write(std::string& chars)` appends the value to the
  // column's characters (a source that formats its values saves a copy). It must only append: a
  // writer that shortens them gets a std::logic_error, and earlier rows' text is lost.
  template <class Write>
  void append_string_with(Write&& write) {
    expect(Type::String, "append_string_with");
    const std::size_t before = chars_.size();
    write(chars_);
    if (chars_.size() < before) {
      chars_.resize(before);
      throw std::logic_error("append_string_with: the writer removed characters of earlier rows");
    }
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
    if (other.type_ != type_)
      throw ColumnTypeError(std::string("append_from: a ") + type_name(other.type_) + " row into a " +
                            type_name(type_) + " column");
    if (other.is_null(i)) return append_null();
    switch (type_) {
      case Type::Int64:
      case Type::Timestamp: append_int64(other.ints_[i]); break;
      case Type::Float64: append_double(other.floats_[i]); break;
      case Type::Bool: append_bool(other.bools_[i] != 0); break;
      case Type::String: append_string(other.string_at(i)); break;
    }
  }
  // Appends every row of `other` (same type) in one go: joins columns built in pieces, e.g. by
  // threads that each took a share of a batch's rows.
  void append_column(const Column& other) {
    if (other.type_ != type_)
      throw ColumnTypeError(std::string("append_column: a ") + type_name(other.type_) + " column onto a " +
                            type_name(type_) + " column");
    const std::size_t n = size(), m = other.size();
    if (!nulls_.empty() || !other.nulls_.empty()) {
      nulls_.resize(n, 0);
      nulls_.insert(nulls_.end(), other.nulls_.begin(), other.nulls_.end());
      nulls_.resize(n + m, 0);
    }
    switch (type_) {
      case Type::Int64:
      case Type::Timestamp: ints_.insert(ints_.end(), other.ints_.begin(), other.ints_.end()); break;
      case Type::Float64: floats_.insert(floats_.end(), other.floats_.begin(), other.floats_.end()); break;
      case Type::Bool: bools_.insert(bools_.end(), other.bools_.begin(), other.bools_.end()); break;
      case Type::String: {
        const auto base = static_cast<uint32_t>(chars_.size());
        chars_.append(other.chars_);
        offsets_.reserve(offsets_.size() + m);
        for (std::size_t j = 1; j <= m; ++j) offsets_.push_back(base + other.offsets_[j]);
        break;
      }
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
  // Appends for hot loops that checked type() once, e.g. after reserve(): as append_int64()
  // (int64 and timestamp), append_double(), append_bool() and append_string() without the
  // type check per row. The type must match (else the column's rows no longer line up).
  void append_int64_unchecked(int64_t v) { ints_.push_back(v); note_valid(); }
  void append_double_unchecked(double v) { floats_.push_back(v); note_valid(); }
  void append_bool_unchecked(bool v) { bools_.push_back(v ? 1 : 0); note_valid(); }
  void append_string_unchecked(std::string_view v) {
    chars_.append(v.data(), v.size());
    offsets_.push_back(static_cast<uint32_t>(chars_.size()));
    note_valid();
  }

  // --- reading ---
  bool is_null(std::size_t i) const { return i < nulls_.size() && nulls_[i] != 0; }
  bool has_nulls() const {
    for (auto n : nulls_)
      if (n) return true;
    return false;
  }
  // Checked: the type (a ColumnTypeError) and the row (std::out_of_range). A null row reads
  // as 0, false or "". For loops, a view (Batch::column<T>) checks the type once instead.
  int64_t int64_at(std::size_t i) const { expect_ints("int64_at"); return ints_.at(i); }
  int64_t timestamp_at(std::size_t i) const { expect_ints("timestamp_at"); return ints_.at(i); }
  double double_at(std::size_t i) const { expect(Type::Float64, "double_at"); return floats_.at(i); }
  bool bool_at(std::size_t i) const { expect(Type::Bool, "bool_at"); return bools_.at(i) != 0; }
  std::string_view string_at(std::size_t i) const {
    expect(Type::String, "string_at");
    if (i + 1 >= offsets_.size()) throw std::out_of_range("string_at: row " + std::to_string(i) + " of " + std::to_string(size()));
    return std::string_view(chars_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]);
  }
  // Converting: an int64 or float64 row as a double.
  double number_at(std::size_t i) const {
    if (type_ == Type::Int64) return static_cast<double>(ints_.at(i));
    if (type_ == Type::Float64) return floats_.at(i);
    throw ColumnTypeError(std::string("number_at: the column is ") + type_name(type_) + ", not int64 or float64");
  }

  // A typed, read-only view; throws ColumnTypeError (naming `name` when given) on a type mismatch.
  template <class T>
  ColumnView<T> view(std::string_view name = {}) const;

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
  template <class T>
  friend class ColumnView;

  void note_valid() {
    if (!nulls_.empty()) nulls_.push_back(0);
  }
  void expect(Type t, const char* what) const {
    if (type_ != t)
      throw ColumnTypeError(std::string(what) + ": the column is " + type_name(type_) + ", not " + type_name(t));
  }
  void expect_ints(const char* what) const {
    if (type_ != Type::Int64 && type_ != Type::Timestamp)
      throw ColumnTypeError(std::string(what) + ": the column is " + type_name(type_) + ", not int64 or timestamp");
  }

  Type type_;
  std::vector<int64_t> ints_;
  std::vector<double> floats_;
  std::vector<uint8_t> bools_;
  std::string chars_;
  std::vector<uint32_t> offsets_;
  std::vector<uint8_t> nulls_;  // empty while no null was appended
};

namespace detail {
// What a view of T reads: the value it returns, the column types it accepts (checked once).
template <class T>
struct ViewOf;
template <class V, Type... Types>
struct ViewOfTypes {
  using value = V;
  static bool fits(Type t) { return ((t == Types) || ...); }
};
template <>
struct ViewOf<double> : ViewOfTypes<double, Type::Float64> { static constexpr const char* expected = "float64"; };
template <>
struct ViewOf<int64_t> : ViewOfTypes<int64_t, Type::Int64> { static constexpr const char* expected = "int64"; };
template <>
struct ViewOf<bool> : ViewOfTypes<bool, Type::Bool> { static constexpr const char* expected = "bool"; };
template <>
struct ViewOf<std::string_view> : ViewOfTypes<std::string_view, Type::String> {
  static constexpr const char* expected = "string";
};
template <>
struct ViewOf<Timestamp> : ViewOfTypes<int64_t, Type::Timestamp> { static constexpr const char* expected = "timestamp"; };
template <>
struct ViewOf<Number> : ViewOfTypes<double, Type::Int64, Type::Float64> {
  static constexpr const char* expected = "a number (int64 or float64)";
};
}  // namespace detail

// Read-only rows of one column, its type checked once when the view is made. Like an iterator,
// a view is invalidated when its batch's columns change (add/drop/rename/replace) or its column
// grows: take views, compute, then change the batch.
//   double: float64   int64_t: int64   bool: bool   std::string_view: string
//   flow::Timestamp: timestamp (int64 microseconds)   flow::Number: int64 or float64, as double
template <class T>
class ColumnView {
 public:
  using value_type = typename detail::ViewOf<T>::value;

  std::size_t size() const { return size_; }
  bool is_null(std::size_t i) const { return i < nulls_size_ && nulls_[i] != 0; }
  bool has_nulls() const {
    for (std::size_t i = 0; i < nulls_size_; ++i)
      if (nulls_[i]) return true;
    return false;
  }
  // Unchecked, as std::vector's []; a null row reads as 0, false or "".
  value_type operator[](std::size_t i) const {
    if constexpr (std::is_same_v<T, double>) return floats_[i];
    else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, Timestamp>) return ints_[i];
    else if constexpr (std::is_same_v<T, bool>) return bools_[i] != 0;
    else if constexpr (std::is_same_v<T, std::string_view>)
      return std::string_view(chars_ + offsets_[i], offsets_[i + 1] - offsets_[i]);
    else return floats_ ? floats_[i] : static_cast<double>(ints_[i]);  // Number
  }
  // Row `i` (checked: std::out_of_range), or nullopt for a null.
  std::optional<value_type> get(std::size_t i) const {
    if (i >= size_) throw std::out_of_range("row " + std::to_string(i) + " of a column of " + std::to_string(size_));
    if (is_null(i)) return std::nullopt;
    return (*this)[i];
  }

 private:
  friend class Column;
  explicit ColumnView(const Column& c)
      : size_(c.size()), nulls_(c.nulls_.data()), nulls_size_(c.nulls_.size()) {
    if (c.type_ == Type::Float64) floats_ = c.floats_.data();
    ints_ = c.ints_.data();
    bools_ = c.bools_.data();
    chars_ = c.chars_.data();
    offsets_ = c.offsets_.data();
  }

  std::size_t size_;
  const uint8_t* nulls_;
  std::size_t nulls_size_;
  const double* floats_ = nullptr;  // set only for float64 (Number tells the two apart by it)
  const int64_t* ints_ = nullptr;
  const uint8_t* bools_ = nullptr;
  const char* chars_ = nullptr;
  const uint32_t* offsets_ = nullptr;
};

template <class T>
ColumnView<T> Column::view(std::string_view name) const {
  if (!detail::ViewOf<T>::fits(type_)) {
    const std::string what = name.empty() ? std::string("the column") : "column '" + std::string(name) + "'";
    throw ColumnTypeError(what + " is " + type_name(type_) + ", not " + detail::ViewOf<T>::expected);
  }
  return ColumnView<T>(*this);
}

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

  // Appends every row of `other`, which has the same schema; the positions stay this batch's
  // (the caller decides what `other`'s cover).
  void append_rows(const Batch& other) {
    if (!schema_ || !other.schema_ || *schema_ != *other.schema_)
      throw std::invalid_argument("flow::Batch::append_rows: the batches' schemas differ");
    for (std::size_t c = 0; c < columns_.size(); ++c) columns_[c].append_column(other.columns_[c]);
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
  bool has_column(std::string_view name) const { return schema_ && schema_->has(name); }

  // Typed views, the type checked once: batch.column<double>("temperature") throws
  // ColumnTypeError "column 'temperature' is int64, not float64" (types: see ColumnView).
  template <class T>
  ColumnView<T> column(std::string_view name) const { return columns_.at(require(name)).view<T>(name); }
  template <class T>
  ColumnView<T> column(std::size_t i) const { return columns_.at(i).view<T>(schema_->field(i).name); }

  // --- changing the columns: positions and rows stay; the schema is replaced by a new one ---
  // Appends `c` as the last column `name`. Throws std::invalid_argument when the name is taken
  // or `c`'s row count differs from the batch's.
  Batch& add_column(std::string name, Column c) {
    if (has_column(name)) throw std::invalid_argument("add_column: the batch already has a column '" + name + "'");
    if (!columns_.empty() && c.size() != num_rows())
      throw std::invalid_argument("add_column '" + name + "': the column has " + std::to_string(c.size()) +
                                  " rows, the batch " + std::to_string(num_rows()));
    const Type type = c.type();
    SchemaPtr next = schema_ ? schema_->with({std::move(name), type}) : Schema().with({std::move(name), type});
    columns_.push_back(std::move(c));
    schema_ = std::move(next);
    return *this;
  }
  // Replaces column `name` (its type may change); same checks as add_column.
  Batch& replace_column(std::string_view name, Column c) {
    const std::size_t i = require(name);
    if (c.size() != num_rows())
      throw std::invalid_argument("replace_column '" + std::string(name) + "': the column has " +
                                  std::to_string(c.size()) + " rows, the batch " + std::to_string(num_rows()));
    if (c.type() != columns_[i].type()) {
      auto fields = schema_->fields();
      fields[i].type = c.type();
      schema_ = make_schema(std::move(fields));
    }
    columns_[i] = std::move(c);
    return *this;
  }
  // Removes column `name`; dropping the last column leaves a batch of no rows.
  Batch& drop_column(std::string_view name) {
    const std::size_t i = require(name);
    schema_ = schema_->without(name);
    columns_.erase(columns_.begin() + static_cast<std::ptrdiff_t>(i));
    return *this;
  }
  Batch& rename_column(std::string_view from, std::string to) {
    require(from);
    schema_ = schema_->renamed(from, std::move(to));
    return *this;
  }

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
    if (!i)
      throw std::out_of_range("batch has no column '" + std::string(name) + "' (it has " + schema_->describe() + ")");
    return *i;
  }

  SchemaPtr schema_;
  std::vector<Column> columns_;
  Positions positions_;
};

}  // namespace flow
