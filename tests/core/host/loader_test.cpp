// The plugin loader against real libraries: broken ones give one clear error naming the file and
// the reason; good ones load and describe themselves; the registry finds plugins by name.
#include "host/plugin_loader.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "flow/testing/harness.hpp"

namespace fs = std::filesystem;
using flow::loader::LoadError;

namespace {

const fs::path kDir = FLOW_CONFORMANCE_PLUGIN_DIR;

fs::path lib(const std::string& name) { return kDir / ("libflow-broken." + name + ".so"); }

// The message of the LoadError that loading `path` throws ("" when it loads).
std::string load_error(const fs::path& path) {
  try {
    flow::loader::load_plugin_file(path);
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "in: " << (text)

TEST(Loader, WrongAbiNamesTheFileAndBothVersions) {
  const std::string e = load_error(lib("wrong-abi"));
  EXPECT_HAS(e, lib("wrong-abi").string());
  EXPECT_HAS(e, "ABI " + std::to_string(flow::kAbiVersion + 41));
  EXPECT_HAS(e, "ABI " + std::to_string(flow::kAbiVersion));
}

TEST(Loader, MissingDescriptorNamesTheFile) {
  const std::string e = load_error(lib("no-descriptor"));
  EXPECT_HAS(e, lib("no-descriptor").string());
  EXPECT_HAS(e, "not a Flow plugin");
  EXPECT_HAS(e, "FLOW_PLUGIN");
}

TEST(Loader, MissingFileNamesTheFile) {
  const fs::path missing = kDir / "libflow-does-not-exist.so";
  const std::string e = load_error(missing);
  EXPECT_HAS(e, missing.string());
  EXPECT_HAS(e, "no such plugin library");
}

TEST(Loader, NotASharedLibraryNamesTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("flow-loader-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path fake = dir / "libflow-fake.so";
  std::ofstream(fake) << "this is not an ELF file\n";
  const std::string e = load_error(fake);
  fs::remove_all(dir);
  EXPECT_HAS(e, fake.string());
  EXPECT_HAS(e, "cannot load the library");
}

TEST(Loader, ThrowingFactoryGivesAClearErrorFromCreate) {
  auto plugin = flow::loader::load_plugin_file(lib("throwing-factory"));  // loading itself works
  EXPECT_EQ(plugin->info().name, "broken.throwing-factory");
  try {
    plugin->create(flow::Value());
    FAIL() << "create() did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_HAS(e.what(), "broken.throwing-factory");
    EXPECT_HAS(e.what(), lib("throwing-factory").string());
    EXPECT_HAS(e.what(), "factory failed: broken on purpose: cannot reach the device");
  }
}

TEST(Loader, GoodPluginLoadsAndDescribesItself) {
  auto plugin = flow::loader::load_plugin_file(lib("good-transform"));
  const auto& d = plugin->descriptor();
  EXPECT_EQ(d.info.name, "broken.good-transform");
  EXPECT_EQ(d.info.version, "1.0.0");
  EXPECT_EQ(d.info.kind, flow::StageKind::Transform);
  EXPECT_FALSE(d.info.description.empty());
  ASSERT_EQ(d.options.size(), 1u);
  EXPECT_EQ(d.options[0].name, "batch_limit");
  EXPECT_EQ(d.options[0].type, flow::OptionType::Int);
  EXPECT_EQ(d.options[0].default_text, "100");
  EXPECT_EQ(d.options[0].min, 1.0);
  EXPECT_EQ(d.options[0].max, 1000.0);
  EXPECT_TRUE(plugin->check(flow::Value(), {}).empty());
  const auto errors = plugin->check(flow::testing::yaml("batch_limit: 5000\n"), {});
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_HAS(errors[0].message, "batch_limit");
  EXPECT_HAS(errors[0].message, "out of range");
  auto stage = plugin->create(flow::Value());
  EXPECT_NE(dynamic_cast<flow::Processor*>(stage.get()), nullptr);
}

TEST(Registry, FindsPluginsByNameOnTheSearchPath) {
  flow::loader::Registry registry({kDir / "no-such-dir", kDir});
  auto p = registry.get("broken.good-transform");
  EXPECT_EQ(p->info().name, "broken.good-transform");
  EXPECT_EQ(p->path(), lib("good-transform"));
  EXPECT_EQ(registry.get("broken.good-transform"), p);            // loaded once
  EXPECT_EQ(registry.get(lib("good-transform").string()), p);     // by path: the same library
}

TEST(Registry, WarnsWhenAFileIsNamedForAnotherPlugin) {
  // A copy of good-transform under json-validator's file name: it loads, as what its descriptor
  // says, with one warning naming the file and both names.
  const fs::path dir = fs::temp_directory_path() / ("flow-loader-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(lib("good-transform"), dir / "libflow-json-validator.so", fs::copy_options::overwrite_existing);
  flow::loader::Registry registry({dir});
  auto p = registry.get("json-validator");
  EXPECT_EQ(p->info().name, "broken.good-transform");
  ASSERT_EQ(registry.warnings().size(), 1u);
  EXPECT_HAS(registry.warnings()[0], (dir / "libflow-json-validator.so").string());
  EXPECT_HAS(registry.warnings()[0], "named for plugin 'json-validator' but its descriptor says 'broken.good-transform'");
  registry.get("json-validator");
  EXPECT_EQ(registry.warnings().size(), 1u);  // once
  // A file named for its own plugin gets none.
  flow::loader::Registry clean({kDir});
  clean.get("broken.good-transform");
  EXPECT_TRUE(clean.warnings().empty());
  fs::remove_all(dir);
}

TEST(Registry, RefusesUnknownNamesListingWhereItLooked) {
  flow::loader::Registry registry({kDir});
  try {
    registry.get("no-such-plugin");
    FAIL() << "get() did not throw";
  } catch (const LoadError& e) {
    EXPECT_HAS(e.what(), "unknown plugin 'no-such-plugin'");
    EXPECT_HAS(e.what(), "libflow-no-such-plugin.so");
    EXPECT_HAS(e.what(), kDir.string());
  }
}

TEST(Registry, RefusesABrokenLibraryFoundByName) {
  flow::loader::Registry registry({kDir});
  try {
    registry.get("broken.wrong-abi");
    FAIL() << "get() did not throw";
  } catch (const LoadError& e) {
    EXPECT_HAS(e.what(), lib("wrong-abi").string());
    EXPECT_HAS(e.what(), "ABI " + std::to_string(flow::kAbiVersion + 41));
  }
}

TEST(Registry, DiscoverListsGoodPluginsAndReportsBrokenOnes) {
  flow::loader::Registry registry({kDir});
  std::vector<std::string> failures;
  auto found = registry.discover(&failures);
  std::set<std::string> names;
  for (const auto& p : found) names.insert(p->info().name);
  EXPECT_TRUE(names.count("broken.good-transform"));
  EXPECT_TRUE(names.count("broken.throwing-factory"));  // loads; only create() fails
  EXPECT_FALSE(names.count("broken.wrong-abi"));
  ASSERT_EQ(failures.size(), 2u);  // wrong-abi and no-descriptor, each with its file
  std::string all;
  for (const auto& f : failures) all += f + "\n";
  EXPECT_HAS(all, lib("wrong-abi").string());
  EXPECT_HAS(all, lib("no-descriptor").string());
}

}  // namespace
