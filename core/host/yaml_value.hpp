// YAML text -> flow::Value, with 1-based positions. Built on yaml-cpp's event parser rather than
// its node graph so that aliases (cyclic graphs, "billion laughs") are refused before they exist,
// duplicate keys are reported rather than silently resolved, and nesting depth is bounded.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flow/value.hpp"

namespace flow::config {

inline constexpr int kMaxYamlDepth = 64;

// Expands ${VAR}, ${VAR:-default} (unset or empty -> default) and ${VAR:?message} (unset or
// empty -> error) in one scalar; "$${" stands for a literal "${". `at` is where the scalar's
// text starts (errors point at the "${"). Unset without a default is an error; the variable's
// text is then left as written. `lookup` defaults to the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
std::string expand_variables(const std::string& text, const Location& at, std::vector<ConfigError>& errors,
                             const EnvLookup& lookup = {});

// Prints a Value back as YAML (block style; quoted scalars stay quoted): `validate --print`.
std::string to_yaml(const Value& v);

// Parses one YAML document, expanding variables in every scalar value (not in keys). On any error returns nullopt and appends the errors.
// `unresolved`, when given, receives the location of every scalar whose variables could not be
// expanded, so that later checks of that value (a consequence) can be left out.
std::optional<Value> parse_yaml(const std::string& text, const std::string& file_name,
                                std::vector<ConfigError>& errors, std::vector<Location>* unresolved = nullptr);
std::optional<Value> parse_yaml_file(const std::filesystem::path& path,
                                     std::vector<ConfigError>& errors, std::vector<Location>* unresolved = nullptr);

}  // namespace flow::config
