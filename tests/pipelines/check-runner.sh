#!/usr/bin/env bash
# Runs `flowctl test` on one test file of runner/ and compares its whole output and exit code
# with NAME.expected: the runner must fail, with a diff, where the expectations are wrong.
# Usage: check-runner.sh FLOWCTL runner/NAME.test.yaml [--update] (rewrites the expected file).
set -uo pipefail
flowctl=$1 file=$2
cd "$(dirname "$file")/.." || exit 1
rel=runner/$(basename "$file")
name=$(basename "$file" .test.yaml)
actual=$(FLOW_PLUGIN_PATH= "$flowctl" test "$rel" 2>&1)
rc=$?
actual+=$'\n'"exit $rc"
if [ "${3:-}" = --update ]; then
  printf '%s\n' "$actual" >"runner/$name.expected"
  exit 0
fi
if ! diff -u "runner/$name.expected" <(printf '%s\n' "$actual"); then
  echo "FAIL $name: output differs from runner/$name.expected (above); rerun with --update after checking it"
  exit 1
fi
echo "ok $name: exit $rc and the output are as expected"
