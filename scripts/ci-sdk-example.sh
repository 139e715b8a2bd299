#!/usr/bin/env bash
# Runs the commands of docs/plugin-guide.md marked for CI (```sh ci blocks), in order, in one
# shell: install the SDK into a temporary prefix, build examples/threshold-flagger out of tree
# against it, run its tests, `flowctl plugins describe`, `flowctl test-plugin`, and its pipeline.
#
#   scripts/ci-sdk-example.sh [FLOW_BUILD_DIR]     (default: build; the tree must be built)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export FLOW_BUILD=$(cd "${1:-${FLOW_BUILD:-build}}" && pwd)
guide=docs/plugin-guide.md

script=$(awk '
  /^```sh ci[[:space:]]*$/ { inblock = 1; next }
  inblock && /^```[[:space:]]*$/ { inblock = 0; print ""; next }
  inblock { print }
' "$guide")
if [[ -z "$script" ]]; then
  echo "ci-sdk-example: no \`\`\`sh ci blocks in $guide" >&2
  exit 1
fi
echo "ci-sdk-example: running the CI blocks of $guide with FLOW_BUILD=$FLOW_BUILD"
bash -euxo pipefail -c "$script"
echo "ci-sdk-example: the plugin guide's commands all succeeded"
