// What a tap costs the emitter: with no hub, with a hub and no reader (the normal case: one
// relaxed atomic load), and with one reader (rows copied as JSON). Prints ns per emit of a
// 1-row batch to an unconnected output, the cheapest emit there is; not a test (no timing
// asserted). Run: build/bin/tap_overhead_bench
#include <chrono>
#include <cstdio>
#include "runtime/driver.hpp"
using namespace flow;
using namespace flow::runtime;
static Batch one_row() { Batch b; Column c(Type::Int64); c.append_int64(1); b.add_column("x", std::move(c)); return b; }
double run(TapHub* hub, bool subscribe, int n) {
  DriverEnv env; env.taps = hub;
  PluginInfo info; info.name = "t"; info.kind = StageKind::Transform;
  StageCounters counters;
  StageDriver d(env, "s", info, nullptr, counters);
  std::unique_ptr<TapSubscription> sub;
  if (subscribe) sub = hub->subscribe("s", 1u << 30);
  std::vector<Batch> batches; batches.reserve(n);
  for (int i = 0; i < n; ++i) batches.push_back(one_row());
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) d.emitter().emit(std::move(batches[i]));
  auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
}
int main() {
  const int n = 2000000;
  for (int rep = 0; rep < 7; ++rep) {
    TapHub hub, hub2;
    double none = run(nullptr, false, n), idle = run(&hub, false, n), tapped = run(&hub2, true, n / 10);
    std::printf("ns/emit (1-row batch, unconnected output): no hub %.2f  hub, no reader %.2f  one reader %.2f\n", none, idle, tapped);
  }
}
