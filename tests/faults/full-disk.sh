#!/usr/bin/env bash
# csv-window-sink on a full disk: its parts folder is a 256 KiB tmpfs (private mount namespace).
# With disk_full_retries: 0 (full-disk-retry.sh tests the retries), run 1 must fail with exit 1,
# naming the stage and the file, leaving no torn file under a final name. Then the tmpfs grows (space comes back) and run 2 must complete: every input record
# archived exactly once (file-source resumes from what the sinks committed).
if [ -z "${FLOW_FAULT_NS:-}" ]; then
  if [ "$(id -u)" = 0 ]; then ns=(unshare -m --propagation private); else ns=(unshare -Urm); fi
  "${ns[@]}" true 2>/dev/null || { echo "SKIP: cannot create a mount namespace (${ns[*]})" >&2; exit 77; }
  FLOW_FAULT_NS=1 exec "${ns[@]}" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
n=20000
mkdir -p "$work/parts" "$work/ckpt" "$work/backup" "$work/src" "$work/rejected"
mount -t tmpfs -o size=256k flow-full "$work/parts" || skip "cannot mount a tmpfs here"
trap 'umount "$work/parts" 2>/dev/null; rm -rf "$work"' EXIT
seq 1 $n | awk '{printf "{\"sensor_id\":%d,\"temperature\":21.5,\"note\":\"padding-padding-padding\"}\n", $1}' >"$work/in.jsonl"
cat >"$work/p.yaml" <<YAML
name: full-disk
stages:
  - {id: src, plugin: file-source, config: {paths: ['$work/in.jsonl'], exit_at_end: true, batch_size: 500,
     checkpoint_dir: '$work/src', resume_from: ['$work/ckpt']}}
  - {id: validate, plugin: json-validator, input: src,
     config: {schema: {sensor_id: int, temperature: float, note: string}}}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {path: '$work/parts', checkpoint_dir: '$work/ckpt', window: 1s,
     disk_full_retries: 0}}
  - {id: archive, plugin: merge-archive, input: csv,
     config: {parts_dir: '$work/parts', checkpoint_dir: '$work/ckpt', backup_dir: '$work/backup', prefix: data}}
YAML

rc=0
timeout 120 "$flowctl" run "$work/p.yaml" >"$work/out1" 2>"$work/err1" || rc=$?
[ "$rc" = 1 ] || { cat "$work/err1"; fail "run 1 on a full disk: exit $rc, want 1"; }
grep -q "No space left on device" "$work/err1" || { cat "$work/err1"; fail "run 1: no 'No space left on device'"; }
grep -q "'csv'" "$work/err1" || { cat "$work/err1"; fail "run 1: the stage 'csv' is not named"; }
grep -q "$work/parts/" "$work/err1" || { cat "$work/err1"; fail "run 1: the file is not named"; }
echo "run 1: $(grep -m1 'No space left' "$work/err1")"
# No torn file under a final name: every visible part ends with a newline and has whole rows.
for f in $(find "$work/parts" -name '*.csv' ! -name '.*'); do
  [ "$(tail -c1 "$f" | od -An -c | tr -d ' ')" = '\n' ] || fail "torn part under its final name: $f"
  awk -F, 'NR==1{n=NF} NF!=n{exit 1}' "$f" || fail "part with a partial row: $f"
done

mount -o remount,size=64m "$work/parts"  # space comes back
rc=0
timeout 120 "$flowctl" run "$work/p.yaml" >"$work/out2" 2>"$work/err2" || rc=$?
[ "$rc" = 0 ] || { cat "$work/err2"; fail "run 2 after space came back: exit $rc, want 0"; }
ids=$( (find "$work/backup" "$work/parts" -name '*.csv' ! -name '.*' -type f -exec tail -q -n +2 {} +) | cut -d, -f1 | sort -n)
dups=$(echo "$ids" | uniq -d | wc -l)
got=$(echo "$ids" | uniq | wc -l)
echo "run 2: $got distinct of $n records archived, $dups doubled"
[ "$dups" = 0 ] || fail "$dups records doubled"
[ "$got" = "$n" ] || fail "$((n - got)) records lost"
echo ok
