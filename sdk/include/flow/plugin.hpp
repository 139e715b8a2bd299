// The plugin descriptor and FLOW_PLUGIN, the one macro a plugin library uses.
//
//   class Flagger : public flow::Processor {
//    public:
//     struct Options { double threshold = 30.0; };
//     static flow::PluginInfo info() {
//       return {"acme.flagger", "1.0.0", flow::StageKind::Transform, "Flags hot readings"};
//     }
//     static void declare(flow::OptionTable<Options>& t) {
//       t.add("threshold", &Options::threshold, "Temperature above which a reading is hot");
//     }
//     explicit Flagger(Options o);
//     void process(flow::Batch b, flow::Emitter& out) override;
//   };
//   FLOW_PLUGIN(Flagger)
//
// Optional: `static void check(const Options&, const flow::Value& config,
// std::vector<flow::ConfigError>& errors)` for checks across options, run by `flowctl validate`.
// Optional, so that `flowctl validate` checks the wiring before anything runs:
//   static std::vector<flow::ColumnSpec> input_columns(const Options&);   // what it reads
//   static std::optional<flow::Schema> output_schema(const Options&);     // what it emits
// Optional, and expected of every published plugin: `static const char* example()`, a YAML map
// of options that its own `check` accepts. `flowctl plugins describe` and the README print it,
// `flowctl test-plugin` runs the conformance suite with it when no --config is given (there,
// "${TMPDIR}" becomes a fresh folder).
// Optional: `static flow::Batch sample_input(const Options&, const flow::SampleRequest&)`, the
// input the conformance suite feeds the stage (transforms and sinks): well-formed records of
// what the stage really reads. Without it the suite tries its generic shapes (raw messages,
// sensor rows), so a stage that reads anything else goes untested past its config.
#pragma once

#include <boost/config.hpp>
#include <boost/dll/alias.hpp>
#include <cstdint>
#include <functional>
#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/options.hpp"
#include "flow/schema.hpp"
#include "flow/stage.hpp"
#include "flow/value.hpp"

namespace flow {

// Bumped on any change of the layout or virtual functions of the SDK's classes, or of this
// descriptor. Adding inline functions (the batch and schema builders, typed views) does not.
// 2: Emitter::try_emit returns TryEmit; descriptors may declare input columns and output schema.
// 3: Context::gauge and flow::Gauge; descriptors may supply their conformance sample input;
//    PluginInfo::durable_positions.
inline constexpr uint32_t kAbiVersion = 3;

#define FLOW_STRINGIFY2(x) #x
#define FLOW_STRINGIFY(x) FLOW_STRINGIFY2(x)
#if defined(__clang__)
#define FLOW_COMPILER "clang-" FLOW_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define FLOW_COMPILER "gcc-" FLOW_STRINGIFY(__GNUC__)
#else
#define FLOW_COMPILER "unknown"
#endif
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define FLOW_STDLIB "libstdc++-cxx11abi" FLOW_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define FLOW_STDLIB "libc++"
#else
#define FLOW_STDLIB "unknown-stdlib"
#endif
// C++ objects cross the plugin boundary, so the standard library's ABI must match too. GCC and
// Clang share libstdc++'s ABI, so only the library is compared.
inline constexpr const char* kToolchainTag = FLOW_STDLIB;

// Read first, through a plain C struct, before any C++ object of the plugin is touched.
struct AbiStamp {
  uint32_t abi_version;
  const char* toolchain;
  const char* compiler;  // informational
};

enum class StageKind { Source, Transform, Sink };

inline const char* kind_name(StageKind k) {
  switch (k) {
    case StageKind::Source: return "source";
    case StageKind::Transform: return "transform";
    case StageKind::Sink: return "sink";
  }
  return "?";
}

struct PluginInfo {
  std::string name;  // kebab-case; third-party plugins use a dotted prefix ("acme.word-count")
  std::string version;
  StageKind kind = StageKind::Transform;
  std::string description;  // one line
  // Outputs besides the main one, addressed as "<stage>.<name>" in YAML.
  std::vector<std::string> extra_outputs = {};
  // Whether the main output carries data. Sources and transforms always have it; a sink says
  // which it is, in one way: `.main_output = false` (a pure sink) or `true` (csv-window-sink
  // emits file events), as in
  //   return {.name = "my-sink", .version = "1.0.0", .kind = flow::StageKind::Sink,
  //           .description = "...", .main_output = false};
  bool main_output = true;
  // Sinks: whether it keeps a durable record of the input positions it committed and publishes
  // it (flow/delivery.hpp), so that a source can resume after a crash with nothing written
  // twice. `flowctl validate` warns when a source asks for exactly-once and a sink it reaches
  // does not say so.
  bool durable_positions = false;
};

// A column a stage reads from its input. `flowctl validate` checks every edge against the schema
// the upstream stage declares for that output, and `flowctl plugins describe` lists both.
struct ColumnSpec {
  std::string name;
  Type type = Type::String;
  bool required = true;  // false: read when present
};

// What the conformance suite asks of a plugin's `sample_input`: `rows` well-formed input
// records, numbered from `first` (so groups of a run differ), with event times from `now_us` on.
// Files the records name go where the config says (its "${TMPDIR}" is `dir`) or under `dir`.
struct SampleRequest {
  std::size_t rows = 0;
  int64_t first = 0;
  int64_t now_us = 0;
  std::string dir;
};

// A sample for stages that take rows of any schema: every column type, text that needs quoting
// or escaping, and nulls.
inline Batch sample_rows_of_every_type(const SampleRequest& r) {
  static const SchemaPtr schema = make_schema({{"id", Type::Int64},
                                               {"reading", Type::Float64},
                                               {"ok", Type::Bool},
                                               {"note", Type::String},
                                               {"at", Type::Timestamp}});
  static const char* notes[] = {"plain", "comma, inside", "quote \" inside", "line\nbreak", "=1+2", "\xc3\xbc" "n" "\xc3\xaf" "code \xe2\x9c\x93", ""};
  Batch b(schema);
  for (std::size_t k = 0; k < r.rows; ++k) {
    const int64_t i = r.first + static_cast<int64_t>(k);
    b.column(0).append_int64(i);
    if (i % 7 == 6) b.column(1).append_null();
    else b.column(1).append_double(static_cast<double>(i % 1000) / 8.0 - 20.0);
    b.column(2).append_bool(i % 2 == 0);
    b.column(3).append_string(notes[i % 7]);
    b.column(4).append_timestamp(r.now_us + i * 1000);
  }
  return b;
}

struct PluginDescriptor {
  PluginInfo info;
  std::vector<OptionSpec> options;
  // Every problem of `config` (a map, or null for none); empty when it is valid.
  std::function<std::vector<ConfigError>(const Value& config)> check;
  // Builds a stage from a config that `check` accepted. May throw ConfigException.
  std::function<std::unique_ptr<Stage>(const Value& config)> create;
  // The columns the stage reads from its input, for a config `check` accepted; empty when it
  // takes any batch (or does not say).
  std::function<std::vector<ColumnSpec>(const Value& config)> input_columns;
  // The schema of its main output, for a config `check` accepted; nullopt when only the data
  // decides it (or the plugin does not say).
  std::function<std::optional<Schema>(const Value& config)> output_schema;
  // An example config (YAML text, a map of options); empty when the plugin gives none.
  std::string example;
  // The plugin's own conformance input for a config `check` accepted; nullopt when it gives none.
  std::function<std::optional<Batch>(const Value& config, const SampleRequest&)> sample_input;
};

namespace detail {

template <class S>
concept HasCheck = requires(const typename S::Options& o, const Value& v,
                            std::vector<ConfigError>& e) { S::check(o, v, e); };

template <class S>
concept HasInputColumns = requires(const typename S::Options& o) {
  { S::input_columns(o) } -> std::convertible_to<std::vector<ColumnSpec>>;
};
template <class S>
concept HasOutputSchema = requires(const typename S::Options& o) {
  { S::output_schema(o) } -> std::convertible_to<std::optional<Schema>>;
};

template <class S>
concept HasSampleInput = requires(const typename S::Options& o, const SampleRequest& r) {
  { S::sample_input(o, r) } -> std::convertible_to<Batch>;
};

template <class S>
concept HasExample = requires {
  { S::example() } -> std::convertible_to<const char*>;
};

template <class S>
PluginDescriptor make_descriptor() {
  static_assert(std::is_base_of_v<Stage, S>, "FLOW_PLUGIN: the class must derive from flow::Source or flow::Processor");
  auto table = std::make_shared<OptionTable<typename S::Options>>();
  S::declare(*table);
  PluginDescriptor d;
  d.info = S::info();
  if (d.info.kind == StageKind::Source || d.info.kind == StageKind::Transform) d.info.main_output = true;
  d.options = table->specs();
  if constexpr (HasExample<S>) d.example = S::example();
  d.check = [table](const Value& config) {
    std::vector<ConfigError> errors;
    auto opts = table->parse(config, errors);
    if constexpr (HasCheck<S>) {
      if (errors.empty()) {
        try {
          S::check(opts, config, errors);
        } catch (const ConfigException& e) {
          errors.push_back({e.where(), e.what()});
        }
      }
    }
    return errors;
  };
  d.create = [table](const Value& config) -> std::unique_ptr<Stage> {
    std::vector<ConfigError> errors;
    auto opts = table->parse(config, errors);
    if (!errors.empty()) throw ConfigException(errors.front().where, errors.front().message);
    return std::make_unique<S>(std::move(opts));
  };
  auto options = [table](const Value& config) {
    std::vector<ConfigError> errors;
    auto opts = table->parse(config, errors);
    if (!errors.empty()) throw ConfigException(errors.front().where, errors.front().message);
    return opts;
  };
  d.input_columns = [options](const Value& config) -> std::vector<ColumnSpec> {
    if constexpr (HasInputColumns<S>) return S::input_columns(options(config));
    else return {};
  };
  d.output_schema = [options](const Value& config) -> std::optional<Schema> {
    if constexpr (HasOutputSchema<S>) return S::output_schema(options(config));
    else return std::nullopt;
  };
  d.sample_input = [options](const Value& config, const SampleRequest& r) -> std::optional<Batch> {
    if constexpr (HasSampleInput<S>) return S::sample_input(options(config), r);
    else return std::nullopt;
  };
  return d;
}

}  // namespace detail
}  // namespace flow

#define FLOW_PLUGIN(StageClass)                                                              \
  namespace flow_plugin_entry {                                                              \
  const ::flow::AbiStamp* abi() {                                                            \
    static const ::flow::AbiStamp stamp{::flow::kAbiVersion, ::flow::kToolchainTag,          \
                                        FLOW_COMPILER};                                      \
    return &stamp;                                                                           \
  }                                                                                          \
  const ::flow::PluginDescriptor* descriptor() {                                             \
    static const ::flow::PluginDescriptor d = ::flow::detail::make_descriptor<StageClass>(); \
    return &d;                                                                               \
  }                                                                                          \
  }                                                                                          \
  BOOST_DLL_ALIAS(flow_plugin_entry::abi, flow_plugin_abi)                                   \
  BOOST_DLL_ALIAS(flow_plugin_entry::descriptor, flow_plugin_descriptor_v1)
