#!/usr/bin/env bash
# Signals against a real flowctl: (1) stdout closed by its reader -> exit 1 naming EPIPE, no
# SIGPIPE death; (2) a second SIGINT during a long drain aborts it; (3) SIGTERM while
# merge-archive is merging -> a clean exit, and the next run archives every part exactly once.
source "$(dirname "$0")/lib.sh"
testplugins=$(dirname "$flowctl")/../test-plugins
export FLOW_PLUGIN_PATH=${FLOW_PLUGIN_PATH:-}:$testplugins

# (1) SIGPIPE: `flowctl run | head -n 3`.
cat >"$work/pipe.yaml" <<YAML
name: pipe
stages:
  - {id: sim, plugin: sensor-simulator, config: {sensors: 50, rate: 200, seed: 1}}
  - {id: out, plugin: stdout-sink, input: sim}
YAML
set +o pipefail
timeout 60 "$flowctl" run "$work/pipe.yaml" 2>"$work/pipe.err" | head -n 3 >"$work/pipe.out"
rc=${PIPESTATUS[0]}
set -o pipefail
[ "$(wc -l <"$work/pipe.out")" = 3 ] || fail "sigpipe: the reader did not get its 3 lines"
[ "$rc" = 1 ] || { cat "$work/pipe.err"; fail "sigpipe: exit $rc, want 1 (141 = killed by SIGPIPE, 124 = hung)"; }
grep -q "EPIPE" "$work/pipe.err" || { cat "$work/pipe.err"; fail "sigpipe: no message naming EPIPE"; }
echo "ok: sigpipe: $(grep -m1 EPIPE "$work/pipe.err")"

# (3) SIGTERM while merge-archive merges (every 1 s) and a writer keeps appending to the input.
# Then a run to the end of the input: every line archived exactly once.
mkdir -p "$work/m"
cat >"$work/merge.yaml" <<YAML
name: merge
stages:
  - {id: src, plugin: file-source, config: {paths: ['$work/m/in.jsonl'], checkpoint_dir: '$work/m/src',
     resume_from: ['$work/m/ckpt'], poll_interval: 50ms}}
  - {id: validate, plugin: json-validator, input: src, config: {schema: {sensor_id: int, temperature: float}}}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {path: '$work/m/parts', checkpoint_dir: '$work/m/ckpt', window: 300ms}}
  - {id: archive, plugin: merge-archive, input: csv,
     config: {parts_dir: '$work/m/parts', checkpoint_dir: '$work/m/ckpt', backup_dir: '$work/m/backup', every: 1s}}
YAML
: >"$work/m/in.jsonl"
( for i in $(seq 1 3000); do
    printf '{"sensor_id":%d,"temperature":1.5}\n' "$i"
    [ $((i % 20)) = 0 ] && sleep 0.02  # a steady trickle, not a synchronisation
  done >>"$work/m/in.jsonl" ) &
writer=$!
"$flowctl" run "$work/merge.yaml" >"$work/m/out" 2>"$work/m/err" &
pid=$!
archived() { grep -q "archived '" "$work/m/err"; }
wait_for 60 archived || { kill -9 $pid; cat "$work/m/err"; fail "merge: nothing archived"; }
kill -TERM $pid
gone() { ! kill -0 $pid 2>/dev/null; }
wait_for 60 gone || { kill -9 $pid; fail "merge: still running 60 s after SIGTERM"; }
rc=0; wait $pid || rc=$?
[ $rc = 0 ] || { cat "$work/m/err"; fail "merge: SIGTERM during merges: exit $rc, want 0 (a drained stop)"; }
archived_ids() { find "$work/m/backup" "$work/m/parts" -name '*.csv' ! -name '.*' -type f -exec tail -q -n +2 {} + | cut -d, -f1 | sort -n; }
k=$(archived_ids | wc -l)
[ "$(archived_ids | uniq -d | wc -l)" = 0 ] || fail "merge: rows doubled after SIGTERM"
[ "$(archived_ids | tail -1)" = "$k" ] || fail "merge: the $k archived rows are not lines 1..$k"
wait $writer
sed -i "s|poll_interval: 50ms}|poll_interval: 50ms, exit_at_end: true}|" "$work/merge.yaml"
timeout 120 "$flowctl" run "$work/merge.yaml" >>"$work/m/out" 2>>"$work/m/err" || { cat "$work/m/err"; fail "merge: the run after SIGTERM failed"; }
[ "$(archived_ids | uniq | wc -l)" = 3000 ] && [ "$(archived_ids | wc -l)" = 3000 ] ||
  fail "merge: after the restart $(archived_ids | wc -l) rows, $(archived_ids | uniq | wc -l) distinct, want 3000"
echo "ok: SIGTERM during merges: exit 0, $k rows archived before it, 3000 exactly once after the restart"

# (2) Second SIGINT during a drain that would take minutes (a sink sleeping 20 s per batch with
# 8 batches queued in front of it).
[ -e "$testplugins/libflow-test.collect-sink.so" ] || skip "test plugins not built"
cat >"$work/drain.yaml" <<YAML
name: drain
stages:
  - {id: src, plugin: test.counter-source, config: {count: 0, batch_size: 100}}
  - {id: slow, plugin: test.collect-sink, input: src, buffer: {batches: 8},
     config: {path: '$work/collected', delay: 20s}}
YAML
"$flowctl" run "$work/drain.yaml" >"$work/drain.out" 2>"$work/drain.err" &
pid=$!
has_file() { [ -s "$work/collected" ] || grep -q "blocked" "$work/drain.err"; }
wait_for 60 has_file || { kill -9 $pid; fail "drain: the slow sink never started"; }
kill -INT $pid
wait_for 30 grep -q "stop requested: draining" "$work/drain.err" || { kill -9 $pid; fail "drain: first SIGINT not logged"; }
kill -INT $pid
gone() { ! kill -0 $pid 2>/dev/null; }
if ! wait_for 60 gone; then kill -9 $pid; fail "drain: still running 60 s after the second SIGINT"; fi
rc=0; wait $pid || rc=$?
# An aborted drain did not complete the run: exit 1 (not 0, so scripts can tell), never a
# signal death or a hang.
[ $rc -eq 1 ] || { cat "$work/drain.err"; fail "drain: exit $rc after an abort, expected 1"; }
grep -q "aborted by a second signal" "$work/drain.err" || { cat "$work/drain.err"; fail "drain: the abort's outcome not said"; }
grep -q "second signal: aborting" "$work/drain.err" || { cat "$work/drain.err"; fail "drain: abort not logged"; }
echo "ok: second SIGINT: exit $rc, $(grep -m1 'second signal' "$work/drain.err")"

# (5) SIGTERM exactly inside a merge, at each step of merge-archive's job (the archive written,
# the journal at "archived", the first part deleted): FLOW_MERGE_ARCHIVE_TERM_AT makes the
# process signal itself there. The job finishes, the run drains and exits 0, and a run to the end
# of the input archives every line exactly once.
for point in archive-written journal-archived part-deleted; do
  d="$work/t-$point"
  mkdir -p "$d"
  for i in $(seq 1 3000); do printf '{"sensor_id":%d,"temperature":1.5}\n' "$i"; done >"$d/in.jsonl"
  sed -e "s|$work/m/|$d/|g" "$work/merge.yaml" | sed "s|exit_at_end: true|exit_at_end: false|" >"$d/p.yaml"
  rc=0
  FLOW_MERGE_ARCHIVE_TERM_AT=$point timeout 120 "$flowctl" run "$d/p.yaml" >"$d/out" 2>"$d/err" || rc=$?
  [ $rc = 0 ] || { cat "$d/err"; fail "term-at $point: exit $rc, want 0 (a drained stop)"; }
  grep -q "stop requested" "$d/err" || { cat "$d/err"; fail "term-at $point: the stop is not logged"; }
  sed -i "s|exit_at_end: false|exit_at_end: true|" "$d/p.yaml"
  timeout 120 "$flowctl" run "$d/p.yaml" >>"$d/out" 2>>"$d/err" || { cat "$d/err"; fail "term-at $point: the run after it failed"; }
  ids() { find "$d/backup" "$d/parts" -name '*.csv' ! -name '.*' -type f -exec tail -q -n +2 {} + | cut -d, -f1 | sort -n; }
  [ "$(ids | uniq | wc -l)" = 3000 ] && [ "$(ids | wc -l)" = 3000 ] ||
    fail "term-at $point: $(ids | wc -l) rows, $(ids | uniq | wc -l) distinct, want 3000"
  echo "ok: SIGTERM inside a merge at '$point': exit 0, 3000 rows exactly once after the next run"
done
