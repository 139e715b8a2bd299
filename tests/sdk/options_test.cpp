// Enum options: parsing into the plugin's enum, errors with "did you mean", and the spec that
// describe, the README tables and the conformance suite read.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "flow/options.hpp"
#include "flow/testing/harness.hpp"

namespace {

enum class Units { Celsius, Fahrenheit };

struct Opts {
  Units units = Units::Celsius;
  double scale = 1;
};

flow::OptionTable<Opts> table() {
  flow::OptionTable<Opts> t;
  t.add_enum("units", &Opts::units, {{"celsius", Units::Celsius}, {"fahrenheit", Units::Fahrenheit}},
             "Unit of the temperature column");
  t.add("scale", &Opts::scale, "A number");
  return t;
}

Opts parse(const std::string& yaml, std::vector<flow::ConfigError>& errors) {
  return table().parse(flow::testing::yaml(yaml), errors);
}

TEST(EnumOption, ParsesEveryNameIntoItsValue) {
  std::vector<flow::ConfigError> errors;
  EXPECT_EQ(parse("units: fahrenheit\n", errors).units, Units::Fahrenheit);
  EXPECT_EQ(parse("units: celsius\n", errors).units, Units::Celsius);
  EXPECT_EQ(parse("scale: 2\n", errors).units, Units::Celsius);  // the default
  EXPECT_TRUE(errors.empty());
}

TEST(EnumOption, UnknownNameIsAnErrorAtItsPositionWithASuggestion) {
  std::vector<flow::ConfigError> errors;
  parse("scale: 2\nunits: farenheit\n", errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message,
            "option 'units': 'farenheit' is not one of {celsius, fahrenheit} (did you mean 'fahrenheit'?)");
  EXPECT_EQ(errors[0].where.line, 2);
  EXPECT_EQ(errors[0].where.column, 8);

  errors.clear();
  parse("units: [celsius]\n", errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "option 'units': expected a string, got a list");
}

TEST(EnumOption, SpecIsAStringOfTheNamesWithTheDefaultsName) {
  const auto specs = table().specs();
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].name, "units");
  EXPECT_EQ(specs[0].type, flow::OptionType::String);
  EXPECT_EQ(specs[0].allowed, (std::vector<std::string>{"celsius", "fahrenheit"}));
  EXPECT_EQ(specs[0].default_text, "celsius");
  EXPECT_EQ(specs[0].doc, "Unit of the temperature column");
}

struct Odd {
  Units units = Units::Fahrenheit;
};

TEST(EnumOption, ADefaultOutsideTheListShowsAsQuestionMark) {
  flow::OptionTable<Odd> t;
  t.add_enum("units", &Odd::units, {{"celsius", Units::Celsius}}, "doc");
  EXPECT_EQ(t.specs()[0].default_text, "?");  // the conformance suite's descriptor.defaults fails it
  EXPECT_THROW(t.add_enum("none", &Odd::units, {}, "doc"), std::invalid_argument);
}

TEST(EnumOption, RequiredEnumMustBeGiven) {
  flow::OptionTable<Opts> t;
  t.add_enum("units", &Opts::units, {{"celsius", Units::Celsius}}, "doc").required();
  std::vector<flow::ConfigError> errors;
  t.parse(flow::testing::yaml("{}"), errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].message, "missing required option 'units'");
}

}  // namespace

namespace {
// Regression inputs found by tests/fuzz/fuzz_options: values past int64 used to wrap negative.
TEST(ParseHelpers, DurationsAndSizesPastInt64AreRefusedNotWrapped) {
  EXPECT_FALSE(flow::parse_duration("99999999999999999999h"));
  EXPECT_FALSE(flow::parse_size("99999999999999999999GiB"));
  EXPECT_EQ(flow::parse_duration("1000000h")->count(), 3'600'000'000'000);
  EXPECT_EQ(flow::parse_size("8GiB")->bytes, 8ull << 30);
}
}  // namespace
