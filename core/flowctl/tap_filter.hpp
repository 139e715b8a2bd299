// `flowctl tap --filter 'column op value'`: a predicate on one column of a JSON row.
#pragma once

#include <optional>
#include <string>

namespace flow::cli {

class TapFilter {
 public:
  // "temperature > 30", "sensor_id == 3", "status != 'ok'"; nullopt and `error` when malformed.
  static std::optional<TapFilter> parse(const std::string& text, std::string& error);
  // False for rows without the column or with a value of another kind (a string vs a number).
  bool matches(const std::string& json_row) const;

 private:
  std::string column_, op_, text_;
  std::optional<double> number_;
};

}  // namespace flow::cli
