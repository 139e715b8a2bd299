#!/usr/bin/env bash
# Validates one broken pipeline and compares flowctl's whole output with NAME.expected (the
# --plugin-path folder is written as <plugins>, flowctl's install prefix as <prefix>). Usage: check-broken.sh FLOWCTL PLUGIN_DIR FILE.yaml
# [--update]; --update rewrites the expected file instead.
set -uo pipefail
flowctl=$1 plugins=$2 file=$3
dir=$(dirname "$file") name=$(basename "$file" .yaml)
cd "$dir" || exit 1
actual=$(env -u FLOW_BROKEN_UNSET -u FLOW_BROKEN_DIR -u FLOW_BROKEN_COUNT FLOW_PLUGIN_PATH= \
  "$flowctl" --plugin-path "$plugins" validate "$name.yaml" 2>&1)
rc=$?
actual=${actual//"$plugins"/<plugins>}
prefix=$(cd "$(dirname "$flowctl")/.." && pwd -P)  # the default search path is under it
actual=${actual//"$prefix"/<prefix>}
actual+=$'\n'"exit $rc"
if [ "${4:-}" = --update ]; then
  printf '%s\n' "$actual" >"$name.expected"
  exit 0
fi
if ! diff -u "$name.expected" <(printf '%s\n' "$actual"); then
  echo "FAIL $name: output differs from $name.expected (above); rerun with --update after checking it"
  exit 1
fi
