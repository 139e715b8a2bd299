#!/usr/bin/env bash
# Validates one sample pipeline and runs it briefly in a scratch directory (its relative output
# paths land there), so the samples in pipelines/ cannot rot. Fails on a non-zero exit or when a
# pipeline with a merge-archive stage produced no archive.
set -euo pipefail
flowctl=$1
pipeline=$2
duration=${3:-4s}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$flowctl" validate "$pipeline"
"$flowctl" run -q "$pipeline" --duration "$duration"
if grep -q "plugin: merge-archive" "$pipeline"; then
  found=$(find "$work" -path '*backup*' -name '*.csv*' | head -1)
  if [ -z "$found" ]; then
    echo "no archived CSV under $work after the run" >&2
    find "$work" >&2
    exit 1
  fi
  echo "archived: ${found#$work/} ($(wc -l < "$found") lines)"
fi
