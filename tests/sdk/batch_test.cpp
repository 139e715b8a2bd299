// Batches and schemas: the builder, adding/dropping/renaming columns, typed views and checked
// accessors, nulls.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "flow/batch.hpp"

namespace {

using flow::Column;
using flow::Type;

// Three sensor rows; the second has a null humidity.
flow::Batch sensor_rows() {
  flow::Batch b(flow::sensor_row_schema());
  for (int64_t i = 0; i < 3; ++i) {
    b.column("sensor_id").append_int64(i + 1);
    b.column("temperature").append_double(20.0 + static_cast<double>(i));
    if (i == 1) b.column("humidity").append_null();
    else b.column("humidity").append_double(50.0);
    b.column("timestamp").append_timestamp(1'750'000'000'000'000 + i);
  }
  return b;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

TEST(Schema, BuilderReturnsNewSchemasAndLeavesTheOriginal) {
  const auto base = flow::sensor_row_schema();
  const auto more = base->with({"heat_index", Type::Float64});
  EXPECT_EQ(more->size(), 5u);
  EXPECT_EQ(more->field(4), (flow::Field{"heat_index", Type::Float64}));
  EXPECT_EQ(base->size(), 4u);  // shared schemas never change

  const auto less = more->without("humidity");
  EXPECT_EQ(less->describe(), "sensor_id (int64), temperature (float64), timestamp (timestamp), heat_index (float64)");
  const auto renamed = less->renamed("temperature", "temp_c");
  EXPECT_EQ(renamed->field(1).name, "temp_c");
  EXPECT_EQ(renamed->field("temp_c").type, Type::Float64);
  EXPECT_TRUE(renamed->has("temp_c"));
  EXPECT_FALSE(renamed->has("temperature"));
  EXPECT_EQ(*flow::Schema().with({"a", Type::Int64})->with({"b", Type::Bool}),
            flow::Schema({{"a", Type::Int64}, {"b", Type::Bool}}));
}

TEST(Schema, BuilderErrorsNameTheField) {
  const auto s = flow::sensor_row_schema();
  EXPECT_EQ(error_of([&] { s->with({"humidity", Type::Bool}); }), "schema already has a field 'humidity'");
  EXPECT_EQ(error_of([&] { s->with({"", Type::Bool}); }), "a field name must not be empty");
  EXPECT_NE(error_of([&] { s->without("pressure"); }).find("no field 'pressure' in schema [sensor_id (int64), "),
            std::string::npos);
  EXPECT_NE(error_of([&] { s->renamed("pressure", "p"); }).find("no field 'pressure'"), std::string::npos);
  EXPECT_EQ(error_of([&] { s->renamed("humidity", "temperature"); }), "schema already has a field 'temperature'");
  EXPECT_NO_THROW(s->renamed("humidity", "humidity"));
  EXPECT_THROW(s->field("pressure"), std::invalid_argument);
}

TEST(Batch, AddColumnKeepsRowsPositionsAndOtherColumns) {
  flow::Batch b = sensor_rows();
  int acks = 0;
  b.positions() = flow::Positions::track({flow::PositionRange{"test", 0, 0, 3}}, [&](const auto&) { ++acks; });
  const auto* temperature_data = b.column("temperature").floats().data();

  Column flag(Type::Bool);
  for (int i = 0; i < 3; ++i) flag.append_bool(i == 2);
  b.add_column("hot", std::move(flag));

  EXPECT_EQ(b.num_rows(), 3u);
  EXPECT_EQ(b.num_columns(), 5u);
  EXPECT_TRUE(b.consistent());
  EXPECT_EQ(*b.schema(), *flow::sensor_row_schema()->with({"hot", Type::Bool}));
  EXPECT_TRUE(b.column("hot").bool_at(2));
  EXPECT_EQ(b.column("temperature").floats().data(), temperature_data);  // moved, not copied
  EXPECT_TRUE(b.column("humidity").is_null(1));
  EXPECT_EQ(b.positions().group_count(), 1u);
  b.positions().ack();
  EXPECT_EQ(acks, 1);
}

TEST(Batch, AddColumnRefusesATakenNameOrAnotherRowCount) {
  flow::Batch b = sensor_rows();
  Column two(Type::Float64);
  two.append_double(1);
  two.append_double(2);
  EXPECT_EQ(error_of([&] { b.add_column("x", two); }), "add_column 'x': the column has 2 rows, the batch 3");
  two.append_double(3);
  EXPECT_EQ(error_of([&] { b.add_column("temperature", two); }), "add_column: the batch already has a column 'temperature'");
  EXPECT_EQ(b.num_columns(), 4u);  // nothing changed by the refused calls
  EXPECT_EQ(*b.schema(), *flow::sensor_row_schema());
}

TEST(Batch, BuildsFromNothingByAddingColumns) {
  flow::Batch b;
  Column ids(Type::Int64), names(Type::String);
  ids.append_int64(7);
  names.append_string("seven");
  b.add_column("id", std::move(ids)).add_column("name", std::move(names));
  EXPECT_EQ(b.num_rows(), 1u);
  EXPECT_EQ(b.schema()->describe(), "id (int64), name (string)");
  EXPECT_EQ(b.column<std::string_view>("name")[0], "seven");
}

TEST(Batch, DropRenameAndReplaceColumns) {
  flow::Batch b = sensor_rows();
  b.drop_column("humidity").rename_column("temperature", "temp_c");
  EXPECT_EQ(b.schema()->describe(), "sensor_id (int64), temp_c (float64), timestamp (timestamp)");
  EXPECT_EQ(b.column("temp_c").double_at(2), 22.0);
  EXPECT_EQ(b.column("timestamp").timestamp_at(2), 1'750'000'000'000'002);
  EXPECT_EQ(b.num_rows(), 3u);

  Column as_text(Type::String);
  for (int i = 0; i < 3; ++i) as_text.append_string("id" + std::to_string(i));
  b.replace_column("sensor_id", std::move(as_text));
  EXPECT_EQ(b.schema()->field(0), (flow::Field{"sensor_id", Type::String}));
  EXPECT_EQ(b.column("sensor_id").string_at(1), "id1");

  EXPECT_THROW(b.drop_column("humidity"), std::out_of_range);
  EXPECT_NE(error_of([&] { b.rename_column("nope", "x"); }).find("batch has no column 'nope' (it has sensor_id"),
            std::string::npos);
  EXPECT_THROW(b.rename_column("temp_c", "timestamp"), std::invalid_argument);
  EXPECT_THROW(b.replace_column("temp_c", Column(Type::Float64)), std::invalid_argument);  // 0 rows, not 3
}

TEST(ColumnView, TypedViewsReadEveryType) {
  flow::Batch b = sensor_rows();
  const auto ids = b.column<int64_t>("sensor_id");
  const auto temps = b.column<double>("temperature");
  const auto times = b.column<flow::Timestamp>("timestamp");
  ASSERT_EQ(temps.size(), 3u);
  EXPECT_EQ(ids[2], 3);
  EXPECT_EQ(temps[1], 21.0);
  EXPECT_EQ(times[0], 1'750'000'000'000'000);
  EXPECT_EQ(b.column<double>(1)[2], 22.0);  // by index too

  Column flags(Type::Bool);
  flags.append_bool(true);
  flags.append_bool(false);
  flags.append_null();
  b.add_column("hot", std::move(flags));
  const auto hot = b.column<bool>("hot");
  EXPECT_TRUE(hot[0]);
  EXPECT_FALSE(hot[1]);
  EXPECT_EQ(hot.get(2), std::nullopt);
}

TEST(ColumnView, NullsReadAsZeroOrNullopt) {
  flow::Batch b = sensor_rows();
  const auto hum = b.column<double>("humidity");
  EXPECT_TRUE(hum.has_nulls());
  EXPECT_FALSE(hum.is_null(0));
  EXPECT_TRUE(hum.is_null(1));
  EXPECT_EQ(hum[1], 0.0);
  EXPECT_EQ(hum.get(0), 50.0);
  EXPECT_EQ(hum.get(1), std::nullopt);
  EXPECT_THROW(hum.get(3), std::out_of_range);
  EXPECT_FALSE(b.column<double>("temperature").has_nulls());
}

TEST(ColumnView, WrongTypeNamesTheColumnAndBothTypes) {
  flow::Batch b = sensor_rows();
  EXPECT_EQ(error_of([&] { b.column<double>("sensor_id"); }), "column 'sensor_id' is int64, not float64");
  EXPECT_EQ(error_of([&] { b.column<int64_t>("timestamp"); }), "column 'timestamp' is timestamp, not int64");
  EXPECT_EQ(error_of([&] { b.column<std::string_view>("temperature"); }), "column 'temperature' is float64, not string");
  EXPECT_EQ(error_of([&] { b.column<flow::Number>("timestamp"); }),
            "column 'timestamp' is timestamp, not a number (int64 or float64)");
  EXPECT_THROW(b.column<double>("sensor_id"), flow::ColumnTypeError);
  EXPECT_THROW(b.column<double>("sensor_id"), std::invalid_argument);  // what plugins already catch
  EXPECT_THROW(b.column<double>("pressure"), std::out_of_range);
}

TEST(ColumnView, NumberViewConvertsInt64AndFloat64) {
  flow::Batch b = sensor_rows();
  const auto ids = b.column<flow::Number>("sensor_id");
  const auto temps = b.column<flow::Number>("temperature");
  EXPECT_EQ(ids[1], 2.0);
  EXPECT_EQ(temps[1], 21.0);
  EXPECT_EQ(b.column("sensor_id").number_at(0), 1.0);
  EXPECT_EQ(b.column("humidity").number_at(1), 0.0);  // null
  EXPECT_EQ(error_of([&] { b.column("timestamp").number_at(0); }), "number_at: the column is timestamp, not int64 or float64");
}

TEST(Column, AccessorsCheckTypeAndRowInsteadOfReadingTheWrongVector) {
  flow::Batch b = sensor_rows();
  const Column& ids = b.column("sensor_id");
  EXPECT_EQ(error_of([&] { ids.double_at(0); }), "double_at: the column is int64, not float64");
  EXPECT_THROW(ids.bool_at(0), flow::ColumnTypeError);
  EXPECT_THROW(ids.string_at(0), flow::ColumnTypeError);
  EXPECT_THROW(b.column("temperature").int64_at(0), flow::ColumnTypeError);
  EXPECT_THROW(ids.int64_at(3), std::out_of_range);
  EXPECT_THROW(b.column("temperature").double_at(99), std::out_of_range);
  // Timestamps are int64 microseconds: both accessors read both int columns.
  EXPECT_EQ(b.column("timestamp").int64_at(0), 1'750'000'000'000'000);
  EXPECT_EQ(ids.timestamp_at(0), 1);
}

TEST(Column, AppendsOfTheWrongTypeThrowAndLeaveTheColumnAlone) {
  Column c(Type::Int64);
  c.append_int64(1);
  EXPECT_EQ(error_of([&] { c.append_double(1.5); }), "append_double: the column is int64, not float64");
  EXPECT_THROW(c.append_string("x"), flow::ColumnTypeError);
  EXPECT_THROW(c.append_bool(true), flow::ColumnTypeError);
  Column s(Type::String);
  s.append_string("x");
  EXPECT_THROW(c.append_from(s, 0), flow::ColumnTypeError);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.floats().size(), 0u);
}

TEST(Batch, CanOnlyBeMovedOrExplicitlyCloned) {
  static_assert(!std::is_copy_constructible_v<flow::Batch>);
  static_assert(std::is_nothrow_move_constructible_v<flow::Batch>);
  flow::Batch a = sensor_rows();
  flow::Batch c = a.clone();
  a.column("temperature").append_double(1);  // the clone has its own data
  EXPECT_EQ(c.column("temperature").size(), 3u);
  EXPECT_EQ(c.schema(), a.schema());
}


TEST(Batch, AppendRowsJoinsPiecesWithTheirNullsAndStrings) {
  flow::Batch a = sensor_rows();  // row 1 has a null humidity
  flow::Batch b(flow::sensor_row_schema());
  for (int64_t i = 0; i < 2; ++i) {
    b.column("sensor_id").append_int64(10 + i);
    b.column("temperature").append_double(1.5 * static_cast<double>(i));
    b.column("humidity").append_double(40);
    b.column("timestamp").append_timestamp(i);
  }
  flow::Batch nulls(flow::sensor_row_schema());
  nulls.column("sensor_id").append_null();
  nulls.column("temperature").append_double(2);
  nulls.column("humidity").append_double(3);
  nulls.column("timestamp").append_timestamp(4);
  a.append_rows(b);
  a.append_rows(nulls);
  ASSERT_TRUE(a.consistent());
  ASSERT_EQ(a.num_rows(), 6u);
  EXPECT_TRUE(a.column("humidity").is_null(1));
  EXPECT_FALSE(a.column("humidity").is_null(3));
  EXPECT_EQ(a.column("sensor_id").int64_at(4), 11);
  EXPECT_TRUE(a.column("sensor_id").is_null(5));
  EXPECT_FALSE(a.column("sensor_id").is_null(4));
  EXPECT_EQ(a.column("temperature").double_at(4), 1.5);

  Column s(Type::String), t(Type::String);
  s.append_string("ab");
  t.append_string("c");
  t.append_null();
  t.append_string("def");
  s.append_column(t);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s.string_at(1), "c");
  EXPECT_TRUE(s.is_null(2));
  EXPECT_EQ(s.string_at(3), "def");
  EXPECT_THROW(s.append_column(Column(Type::Int64)), flow::ColumnTypeError);
  EXPECT_THROW(a.append_rows(flow::Batch(flow::raw_message_schema())), std::invalid_argument);
}

TEST(Column, AppendStringWithWritesInPlaceAndOnlyAppends) {
  Column s(Type::String);
  s.append_string("ab");
  s.append_null();
  s.append_string_with([](std::string& chars) { chars += "cde"; });
  s.append_string_with([](std::string&) {});  // an empty string
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s.string_at(0), "ab");
  EXPECT_TRUE(s.is_null(1));
  EXPECT_EQ(s.string_at(2), "cde");
  EXPECT_FALSE(s.is_null(2));
  EXPECT_EQ(s.string_at(3), "");
  // A writer that takes characters of earlier rows is refused, no row added, and the rows
  // keep their lengths (their text is lost: the writer broke the contract).
  EXPECT_THROW(s.append_string_with([](std::string& chars) { chars.clear(); }), std::logic_error);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s.string_at(2).size(), 3u);
  Column n(Type::Int64);
  EXPECT_THROW(n.append_string_with([](std::string& chars) { chars += "x"; }), flow::ColumnTypeError);
  EXPECT_EQ(n.size(), 0u);
}

}  // namespace
