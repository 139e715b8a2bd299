// Duration and size parsing (flow/options.hpp): never a crash, never a negative or wrapped value,
// and what format_* prints parses back to the same value.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "flow/options.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto d = flow::parse_duration(s)) {
    if (d->count() < 0) std::abort();
    auto back = flow::parse_duration(flow::format_duration(*d));
    if (!back || *back != *d) std::abort();
  }
  if (auto b = flow::parse_size(s)) {
    auto back = flow::parse_size(flow::format_size(*b));
    if (!back || back->bytes != b->bytes) std::abort();
  }
  (void)flow::parse_int(s);
  (void)flow::parse_double(s);
  (void)flow::parse_bool(s);
  return 0;
}
