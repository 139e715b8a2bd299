// Inputs the conformance suite feeds to transforms and sinks. A stage's input schema is not part
// of its descriptor, so the suite tries the well-known shapes (raw messages, validated sensor
// rows, file events) and uses the first one the stage accepts for the checks that need data it
// can work with; random and malformed data go in every shape regardless.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "flow/flow.hpp"

namespace flow::conformance {

enum class Shape { Raw, Sensor, FileEvent };

const char* shape_name(Shape s);
const std::vector<Shape>& all_shapes();

// Validated sensor rows, as json-validator emits them.
SchemaPtr sensor_schema();

// `rows` well-formed records of `shape`, starting at record number `first`. File events name
// real one-row CSV part files written to `dir`/parts (up to 1000 rows).
Batch valid_batch(Shape shape, std::size_t rows, int64_t first, int64_t base_micros, const std::string& dir);
// Random bytes in every string column, random bit patterns in numeric ones.
Batch random_batch(Shape shape, std::size_t rows, std::mt19937_64& rng, const std::string& dir);
// Hand-picked malformed records: broken JSON, wrong types, extremes, nulls, very deep nesting.
Batch malformed_batch(Shape shape, const std::string& dir);

}  // namespace flow::conformance
