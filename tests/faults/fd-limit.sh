#!/usr/bin/env bash
# `ulimit -n 64` on a run with many stages (12 csv-window-sinks, each with its files and
# directories): either it runs, or it fails with exit 1 and a message naming EMFILE ("Too many
# open files"); never a crash (signal death) or a hang.
source "$(dirname "$0")/lib.sh"
{
  echo "name: fds"
  echo "run: {duration: 3s}"
  echo "stages:"
  echo "  - {id: sim, plugin: sensor-simulator, config: {sensors: 20, rate: 50, seed: 3}}"
  echo "  - {id: validate, plugin: json-validator, input: sim, config: {schema: {sensor_id: int, temperature: float}}}"
  for i in $(seq 1 12); do
    echo "  - {id: csv$i, plugin: csv-window-sink, input: validate, config: {path: '$work/p$i', window: 1s}}"
    echo "  - {id: arc$i, plugin: merge-archive, input: csv$i, config: {parts_dir: '$work/p$i', backup_dir: '$work/b$i', prefix: a$i}}"
  done
} >"$work/fds.yaml"
"$flowctl" validate "$work/fds.yaml" >/dev/null || fail "the pipeline does not validate"
rc=0
(ulimit -n 64; exec timeout 120 "$flowctl" run "$work/fds.yaml") >"$work/out" 2>"$work/err" || rc=$?
[ $rc -ne 124 ] || fail "hung: still running after 120 s"
[ $rc -lt 128 ] || { tail -20 "$work/err"; fail "died by a signal (exit $rc)"; }
if [ $rc = 0 ]; then
  echo "ok: ran within 64 descriptors"
else
  [ $rc = 1 ] || { tail -20 "$work/err"; fail "exit $rc, want 0 or 1"; }
  grep -q "Too many open files" "$work/err" || { tail -20 "$work/err"; fail "exit 1 without naming EMFILE"; }
  echo "ok: exit 1: $(grep -m1 'Too many open files' "$work/err")"
fi
