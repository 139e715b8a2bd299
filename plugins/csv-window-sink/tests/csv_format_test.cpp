// Cell formatting: RFC 4180 quoting, formula escaping, number and timestamp forms.
#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <random>

#include "csv_format.hpp"
#include "test_util.hpp"

namespace {

using flow_csv::append_string_cell;

std::string cell(std::string_view s, bool escape = false) {
  std::string out;
  append_string_cell(out, s, escape);
  return out;
}

TEST(CsvFormat, PlainStringsAreNotQuoted) {
  EXPECT_EQ(cell("abc"), "abc");
  EXPECT_EQ(cell(""), "");
  EXPECT_EQ(cell("with space"), "with space");
}

TEST(CsvFormat, QuotesFieldsWithCommaQuoteCrLf) {
  EXPECT_EQ(cell("a,b"), "\"a,b\"");
  EXPECT_EQ(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(cell("\""), "\"\"\"\"");
  EXPECT_EQ(cell("line1\nline2"), "\"line1\nline2\"");
  EXPECT_EQ(cell("cr\r"), "\"cr\r\"");
  EXPECT_EQ(cell("\r\n"), "\"\r\n\"");
}

TEST(CsvFormat, FormulaEscapingOnlyWhenEnabled) {
  for (const char* f : {"=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"}) {
    const std::string s(f);
    const std::string plain = cell(s, false);
    EXPECT_NE(plain.find(s), std::string::npos) << s;
    EXPECT_EQ(plain.find('\''), std::string::npos) << s;
    // Escaped: parse the cell back and check it is the text with a leading quote.
    const auto rows = csv_test::parse_csv(cell(s, true) + "\n");
    ASSERT_EQ(rows.size(), 1u) << s;
    EXPECT_EQ(rows[0][0], "'" + s) << s;
  }
  EXPECT_EQ(cell("=a,b", true), "\"'=a,b\"");
  EXPECT_EQ(cell("safe", true), "safe");
  EXPECT_EQ(cell("", true), "");
  EXPECT_EQ(cell("a=b", true), "a=b");
}

flow::SchemaPtr mixed_schema() {
  return flow::make_schema({{"n", flow::Type::Int64},
                            {"x", flow::Type::Float64},
                            {"ok", flow::Type::Bool},
                            {"ts", flow::Type::Timestamp},
                            {"s", flow::Type::String}});
}

std::string format_rows(const flow::Batch& b, bool escape = false, const std::string& tsfmt = "%Y-%m-%d %H:%M:%S") {
  std::string out;
  flow_csv::TimestampFormatter ts(tsfmt);
  flow_csv::CellOptions opts;
  opts.escape_formulas = escape;
  for (std::size_t r = 0; r < b.num_rows(); ++r) flow_csv::append_row(out, b, r, ts, opts);
  return out;
}

TEST(CsvFormat, RowsWithEveryTypeAndNulls) {
  flow::Batch b(mixed_schema());
  b.column(0).append_int64(-42);
  b.column(1).append_double(1.5);
  b.column(2).append_bool(true);
  b.column(3).append_timestamp(1'750'000'000'123'456);  // 2025-06-15 15:06:40.123456 UTC
  b.column(4).append_string("a,\"b\"");
  for (std::size_t c = 0; c < 5; ++c) b.column(c).append_null();
  b.column(0).append_int64(std::numeric_limits<int64_t>::min());
  b.column(1).append_double(-0.0);
  b.column(2).append_bool(false);
  b.column(3).append_timestamp(0);
  b.column(4).append_string("");
  EXPECT_EQ(format_rows(b),
            "-42,1.5,true,2025-06-15 15:06:40,\"a,\"\"b\"\"\"\n"
            ",,,,\n"
            "-9223372036854775808,-0,false,1970-01-01 00:00:00,\n");
}

// The sink's buffer grows without zeroing: whatever it held before must not show through.
TEST(CsvFormat, TextBufferHoldsExactlyWhatAStringDoes) {
  flow::Batch b(mixed_schema());
  for (int i = 0; i < 3000; ++i) {
    if (i % 7 == 3) {
      for (std::size_t c = 0; c < 5; ++c) b.column(c).append_null();
      continue;
    }
    b.column(0).append_int64(i * 7919 - 100000);
    b.column(1).append_double(i / 3.0);
    b.column(2).append_bool(i % 2 == 0);
    b.column(3).append_timestamp(1'750'000'000'000'000 + int64_t{i} * 1'000'003);
    b.column(4).append_string(i % 5 == 0 ? std::string(static_cast<std::size_t>(i % 97), '"') : "=x," + std::to_string(i));
  }
  flow_csv::CellOptions opts;
  opts.escape_formulas = true;
  std::string expected = "header\n";
  flow_csv::TimestampFormatter ts1("%Y-%m-%d %H:%M:%S");
  flow_csv::append_rows(expected, b, 0, 1000, ts1, opts);
  flow_csv::append_rows(expected, b, 1000, b.num_rows(), ts1, opts);

  flow_csv::TextBuffer text(expected.size() * 3, '#');  // stale bytes where the rows will go
  text.clear();
  const std::string header = "header\n";
  text.insert(text.end(), header.begin(), header.end());
  flow_csv::TimestampFormatter ts2("%Y-%m-%d %H:%M:%S");
  flow_csv::append_rows(text, b, 0, 1000, ts2, opts);
  flow_csv::append_rows(text, b, 1000, b.num_rows(), ts2, opts);
  EXPECT_EQ(std::string(text.data(), text.size()), expected);
  EXPECT_EQ(std::string(text.data(), text.size()).find('#'), std::string::npos);
}

TEST(CsvFormat, NegativeNumbersAreNotFormulaEscaped) {
  flow::Batch b(mixed_schema());
  b.column(0).append_int64(-7);
  b.column(1).append_double(-2.25);
  b.column(2).append_bool(false);
  b.column(3).append_timestamp(-1);  // one microsecond before the epoch: floor to 23:59:59
  b.column(4).append_string("-7");
  EXPECT_EQ(format_rows(b, true), "-7,-2.25,false,1969-12-31 23:59:59,'-7\n");
}

TEST(CsvFormat, TimestampFormatIsConfigurable) {
  flow::Batch b(flow::make_schema({{"ts", flow::Type::Timestamp}}));
  b.column(0).append_timestamp(1'750'000'000'000'000);
  b.column(0).append_timestamp(1'750'000'000'999'999);  // same second: cached text
  b.column(0).append_timestamp(1'750'000'001'000'000);
  EXPECT_EQ(format_rows(b, false, "%Y%m%dT%H%M%SZ"), "20250615T150640Z\n20250615T150640Z\n20250615T150641Z\n");
}

TEST(CsvFormat, FloatsRoundTripBitwise) {
  std::mt19937_64 rng(12345);
  std::vector<double> values = {0.0,
                                -0.0,
                                0.1,
                                1.0 / 3.0,
                                1e-300,
                                std::numeric_limits<double>::denorm_min(),
                                std::numeric_limits<double>::min(),
                                std::numeric_limits<double>::max(),
                                -std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::epsilon(),
                                123456789.123456789,
                                21.5};
  for (int i = 0; i < 20000; ++i) {
    double d;
    const uint64_t bits = rng();
    std::memcpy(&d, &bits, sizeof d);
    if (std::isfinite(d)) values.push_back(d);
  }
  flow::Batch b(flow::make_schema({{"x", flow::Type::Float64}}));
  for (double v : values) b.column(0).append_double(v);
  const auto rows = csv_test::parse_csv(format_rows(b));
  ASSERT_EQ(rows.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string& s = rows[i][0];
    double back = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), back);
    ASSERT_EQ(ec, std::errc()) << s;
    ASSERT_EQ(p, s.data() + s.size()) << s;
    ASSERT_EQ(std::bit_cast<uint64_t>(back), std::bit_cast<uint64_t>(values[i])) << s;
  }
}

std::string fixed(double v, int precision) {
  std::string out;
  flow_csv::append_double(out, v, precision);
  return out;
}

TEST(CsvFormat, FloatPrecisionRoundsToThatManyDecimals) {
  EXPECT_EQ(fixed(20.320444444444448, 2), "20.32");
  EXPECT_EQ(fixed(20.326, 2), "20.33");
  EXPECT_EQ(fixed(20.3, 2), "20.30");
  EXPECT_EQ(fixed(20.6, 0), "21");
  EXPECT_EQ(fixed(-3.14159, 3), "-3.142");
  EXPECT_EQ(fixed(-0.001, 2), "0.00");  // no "-0.00"
  EXPECT_EQ(fixed(-0.0, 1), "0.0");
  EXPECT_EQ(fixed(1.0 / 3.0, 17), "0.33333333333333331");
  EXPECT_EQ(fixed(std::numeric_limits<double>::quiet_NaN(), 2), "nan");
  EXPECT_EQ(fixed(20.320444444444448, -1), "20.320444444444448");  // -1: shortest round trip
  // The largest doubles have 309 integer digits: nothing is cut off.
  const std::string big = fixed(-std::numeric_limits<double>::max(), 17);
  EXPECT_EQ(big.size(), 1u + 309u + 1u + 17u);
  EXPECT_EQ(std::stod(big), -std::numeric_limits<double>::max());
}

TEST(CsvFormat, HeaderQuotesFieldNamesButNeverEscapesThem) {
  const auto s = flow::make_schema({{"a", flow::Type::Int64}, {"b,c", flow::Type::String}, {"-d", flow::Type::String}});
  EXPECT_EQ(flow_csv::header_line(*s), "a,\"b,c\",-d");
}

TEST(CsvFormat, AwkwardStringsSurviveAParseBack) {
  const std::vector<std::string> strings = {"", ",", "\"", "\"\"", "a\nb", "a\r\nb", "\r", " lead", "trail ",
                                            "x,\"y\"\nz", "=cmd|' /C calc'!A0", "ünïcödé"};
  flow::Batch b(flow::make_schema({{"s", flow::Type::String}, {"t", flow::Type::String}}));
  for (const auto& s : strings) {
    b.column(0).append_string(s);
    b.column(1).append_string(s);
  }
  const auto rows = csv_test::parse_csv(format_rows(b));
  ASSERT_EQ(rows.size(), strings.size());
  for (std::size_t i = 0; i < strings.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 2u);
    EXPECT_EQ(rows[i][0], strings[i]);
    EXPECT_EQ(rows[i][1], strings[i]);
  }
}


// The formatter remembers a few seconds: interleaved ones (some sharing a cache slot) are each
// written as their own time.
TEST(CsvFormat, InterleavedSecondsAreEachFormattedRight) {
  flow_csv::TimestampFormatter ts;
  const int64_t base = 1'749'978'721;
  for (int i = 0; i < 400; ++i) {
    const int64_t secs = base + (i * 37) % 120;
    const std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char want[32];
    std::strftime(want, sizeof want, "%Y-%m-%d %H:%M:%S", &tm);
    std::string got;
    ts.append(got, secs * 1'000'000 + 999'999);
    ASSERT_EQ(got, want);
  }
}

}  // namespace
