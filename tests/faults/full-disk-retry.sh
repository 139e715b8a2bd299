#!/usr/bin/env bash
# A disk that fills and frees while the pipeline runs (issue 15, the preferred outcome): in turn,
# csv-window-sink's parts, the dead-letter sink (a second csv-window-sink) and merge-archive's
# backup_dir are a small tmpfs (private mount namespace) that a filler leaves 64 KiB of. The sink
# that finds it full must log it once, hold its data and block (its input backs up: no position
# is acknowledged that is not committed), and, once the filler is removed, resume by itself: the
# run exits 0, logs the resumption once, and every input record is in exactly one output, once.
if [ -z "${FLOW_FAULT_NS:-}" ]; then
  if [ "$(id -u)" = 0 ]; then ns=(unshare -m --propagation private); else ns=(unshare -Urm); fi
  "${ns[@]}" true 2>/dev/null || { echo "SKIP: cannot create a mount namespace (${ns[*]})" >&2; exit 77; }
  FLOW_FAULT_NS=1 exec "${ns[@]}" "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"
n=20000
# Every 5th record is invalid (temperature not a number): the dead letters.
seq 1 $n | awk '{t = ($1 % 5 == 0) ? "\"hot\"" : "21.5";
  printf "{\"sensor_id\":%d,\"temperature\":%s,\"note\":\"padding-padding-padding\"}\n", $1, t}' >"$work/in.jsonl"
retry="disk_full_retries: 10000, disk_full_retry_interval: 50ms"
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null || true; wait 2>/dev/null || true
      umount "$work"/out/* 2>/dev/null || true; [ -n "${FLOW_FAULTS_KEEP:-}" ] || rm -rf "$work"' EXIT

# acked_lines: input lines below the offset file-source has checkpointed as acknowledged
acked_lines() {
  local f=$work/src/src.positions.json off
  [ -f "$f" ] || { echo 0; return; }
  off=$(python3 -c 'import json,sys; print(max([e["offset"] for e in json.load(open(sys.argv[1]))["files"]] or [0]))' "$f")
  head -c "$off" "$work/in.jsonl" | wc -l
}
# committed_rows: data rows in committed parts (those with a manifest entry) and archives,
# dead letters included
committed_rows() {
  python3 - "$work" <<'PY'
import csv, glob, os, sys
work = sys.argv[1]
total = 0
for d, commits in (("parts", "ckpt/commits"), ("dead-letter", "out/dead-letter/_checkpoint/commits"), ("backup", None)):
    for f in glob.glob(os.path.join(work, "out", d, "*.csv")):
        if commits and not os.path.exists(os.path.join(work, commits, os.path.basename(f)[:-4] + ".json")):
            continue
        with open(f, newline="") as fh:
            total += sum(1 for _ in csv.reader(fh)) - 1
print(total)
PY
}

for target in parts dead-letter backup; do
  rm -rf "$work/out" "$work/ckpt" "$work/src" && mkdir -p "$work/out/parts" "$work/out/dead-letter" "$work/out/backup"
  mount -t tmpfs -o size=2m flow-full "$work/out/$target" || skip "cannot mount a tmpfs here"
  free_kib=$(df -k --output=avail "$work/out/$target" | tail -1)
  fallocate -l $(( (free_kib - 64) * 1024 )) "$work/out/$target/filler"
  cat >"$work/p.yaml" <<YAML
name: full-disk-retry
stages:
  - {id: src, plugin: file-source, config: {paths: ['$work/in.jsonl'], exit_at_end: true, batch_size: 250,
     checkpoint_dir: '$work/src', checkpoint_interval: 50ms}}
  - {id: validate, plugin: json-validator, input: src, config: {schema: {sensor_id: int, temperature: float, note: string}}}
  - {id: csv, plugin: csv-window-sink, input: validate,
     config: {path: '$work/out/parts', checkpoint_dir: '$work/ckpt', window: 1s, max_rows: 500, $retry}}
  - {id: dead-letter, plugin: csv-window-sink, input: validate.invalid,
     config: {path: '$work/out/dead-letter', window: 1s, max_rows: 250, $retry}}
  - {id: archive, plugin: merge-archive, input: csv,
     config: {parts_dir: '$work/out/parts', checkpoint_dir: '$work/ckpt', backup_dir: '$work/out/backup', prefix: data, $retry}}
YAML
  timeout 300 "$flowctl" run "$work/p.yaml" >"$work/out.log" 2>"$work/err.log" &
  pid=$!
  wait_for 60 grep -q "disk full writing '$work/out/$target/" "$work/err.log" ||
    { cat "$work/err.log"; fail "$target: no 'disk full writing' line naming a file in the full directory"; }
  kill -0 $pid 2>/dev/null || { cat "$work/err.log"; fail "$target: the run ended on a full disk"; }
  # Blocked, not failed: nothing acknowledged that is not committed (read the acks first).
  acked=$(acked_lines)
  committed=$(committed_rows)
  [ "$acked" -le "$committed" ] || fail "$target: $acked input lines acknowledged, only $committed rows committed"
  # No incomplete file under a final name.
  for f in $(find "$work/out" -name '*.csv' ! -name '.*' -type f); do
    [ "$(tail -c1 "$f" | od -An -c | tr -d ' ')" = '\n' ] || fail "$target: torn file under its final name: $f"
  done
  echo "$target: full while running; $acked lines acknowledged <= $committed rows committed; freeing the space"
  rm "$work/out/$target/filler"
  rc=0
  wait $pid || rc=$?
  [ "$rc" = 0 ] || { cat "$work/err.log"; fail "$target: run exited $rc after space came back, want 0"; }
  full=$(grep -c "disk full writing" "$work/err.log" || true)
  back=$(grep -c "disk space is back" "$work/err.log" || true)
  [ "$full" = 1 ] && [ "$back" = 1 ] ||
    { cat "$work/err.log"; fail "$target: $full 'disk full' and $back 'disk space is back' lines, want 1 and 1"; }
  grep -m1 "disk space is back" "$work/err.log"
  # Every record once: valid ones in the archives (or parts not yet merged), invalid ones as dead letters.
  python3 - "$work" "$n" <<'PY' || fail "$target: output differs from input"
import csv, glob, json, os, sys
work, n = sys.argv[1], int(sys.argv[2])
def rows(d):
    for f in glob.glob(os.path.join(work, "out", d, "*.csv")):
        with open(f, newline="") as fh:
            r = csv.reader(fh)
            head = next(r)
            for row in r:
                yield dict(zip(head, row))
valid = sorted(int(r["sensor_id"]) for d in ("parts", "backup") for r in rows(d))
dead = sorted(json.loads(r["raw"])["sensor_id"] for r in rows("dead-letter"))
want_valid = [i for i in range(1, n + 1) if i % 5]
want_dead = [i for i in range(1, n + 1) if i % 5 == 0]
print(f"  {len(valid)} valid rows (want {len(want_valid)}), {len(dead)} dead letters (want {len(want_dead)})")
sys.exit(0 if valid == want_valid and dead == want_dead else 1)
PY
  umount "$work/out/$target"
done
echo ok
