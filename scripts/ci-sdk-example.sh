#!/usr/bin/env bash
# Keeps docs/plugin-guide.md true:
#  1. every code block the guide marks with a file name (```cpp file=examples/heat-index/...) must
#     be exactly that file of the repository;
#  2. the guide's shell blocks marked for CI (```sh ci) run, in order, in one shell: install the
#     SDK into a temporary prefix, build examples/heat-index (and threshold-flagger) out of tree
#     against it, run their tests, `flowctl plugins describe`, `flowctl test-plugin`, and the
#     example pipeline.
#
#   scripts/ci-sdk-example.sh [FLOW_BUILD_DIR]     (default: build; the tree must be built)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export FLOW_BUILD=$(cd "${1:-${FLOW_BUILD:-build}}" && pwd)
guide=docs/plugin-guide.md

copies=$(mktemp -d)
trap 'rm -rf "$copies"' EXIT
awk -v dir="$copies" '
  match($0, /^```[a-z]* file=[^ ]+$/) { path = substr($0, index($0, "file=") + 5); out = dir "/" path
    system("mkdir -p \"$(dirname \"" out "\")\""); printf "" > out; print path; next }
  out != "" && /^```[[:space:]]*$/ { close(out); out = ""; next }
  out != "" { print > out }
' "$guide" > "$copies/.list"
if [[ ! -s "$copies/.list" ]]; then
  echo "ci-sdk-example: no \`\`\`<lang> file=PATH blocks in $guide" >&2
  exit 1
fi
status=0
while read -r path; do
  if ! diff -u "$path" "$copies/$path" >&2; then
    echo "ci-sdk-example: $guide's copy of $path differs from the file (diff above); update the guide" >&2
    status=1
  fi
done < "$copies/.list"
[[ $status = 0 ]] || exit 1
echo "ci-sdk-example: the guide's $(wc -l < "$copies/.list") file blocks match the repository"

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
