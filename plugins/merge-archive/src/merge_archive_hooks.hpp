// Test hook of merge-archive: called at each crash point of an archive job ("planned",
// "archive-written", "archive-renamed", "journal-archived", "part-deleted", "parts-deleted",
// "manifests-deleted"). Tests throw from it, or raise(SIGKILL) in a child process, to simulate a
// crash there. The environment variable FLOW_MERGE_ARCHIVE_CRASH_AT=<point> kills the process
// with SIGKILL at that point (for fault tests that run flowctl).
#pragma once

#include <functional>
#include <string_view>

namespace merge_archive {
void set_crash_hook(std::function<void(std::string_view point)> hook);
}
