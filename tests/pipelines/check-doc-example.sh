#!/usr/bin/env bash
# The example test file of docs/pipeline-tests.md ("## The file") must pass as written.
# Usage: check-doc-example.sh FLOWCTL SOURCE_DIR
set -euo pipefail
flowctl=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk '/^## The file/ {f=1} f && /^```yaml/ {y=1; next} y && /^```/ {exit} y {print}' "$src/docs/pipeline-tests.md" |
  sed "s|^pipeline: iot-local.yaml|pipeline: $src/pipelines/iot-local.yaml|" >"$tmp/example.test.yaml"
grep -q "^pipeline: $src/pipelines/iot-local.yaml" "$tmp/example.test.yaml" || { echo "no example found in docs/pipeline-tests.md"; exit 1; }
"$flowctl" test "$tmp/example.test.yaml"
