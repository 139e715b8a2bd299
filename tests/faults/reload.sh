#!/usr/bin/env bash
# Hot reload against a real flowctl with real signals: sensor-simulator -> json-validator ->
# csv-window-sink whose window changes mid-run (SIGHUP, then `flowctl reload` over HTTP). Checks:
# the parts after each reload have the new window length; an invalid edit is logged with its
# file:line:column and the run goes on; the simulator is never restarted; several SIGHUPs in a
# row; SIGHUP then SIGTERM drains; and at the end every record the simulator generated is in the
# committed parts exactly once (sensor_id + timestamp, which the simulator never repeats).
source "$(dirname "$0")/lib.sh"

d=$work/r
mkdir -p "$d"
pipeline() {  # pipeline WINDOW [RUN [MORE]]: the file, with the csv stage's window (a run: map, more stages)
  cat >"$d/p.yaml" <<YAML
name: reload
run: ${2:-{\}}
stages:
  - id: sim
    plugin: sensor-simulator
    config: {sensors: 40, rate: 25, seed: 3, timestamp_format: "%Y-%m-%d %H:%M:%S.%f"}
  - id: validate
    plugin: json-validator
    input: sim
    config:
      schema: {sensor_id: {type: int, min: 1}, temperature: float, humidity: float, timestamp: string}
  - id: csv
    plugin: csv-window-sink
    input: validate
    config: {path: '$d/parts', checkpoint_dir: '$d/ckpt', window: $1}
${3:-}
YAML
}
# Window lengths (ms) of the committed parts, in commit order, one per line.
windows() {
  python3 - "$d/ckpt/commits" <<'PY'
import json, os, sys
ms = [json.load(open(os.path.join(sys.argv[1], f))) for f in sorted(os.listdir(sys.argv[1])) if f.endswith(".json")]
for m in sorted(ms, key=lambda m: (m["window_seq"], m["file_seq"])):
    print((m["window_end_us"] - m["window_start_us"]) // 1000)
PY
}
parts() { find "$d/parts" -name '*.csv' ! -name '.*' | wc -l; }
has_window() { windows | grep -qx "$1"; }
log_has() { grep -q -- "$1" "$d/err"; }
count_in_log() { grep -c -- "$1" "$d/err" || true; }

pipeline 1s
"$flowctl" run "$d/p.yaml" --metrics-port 0 >"$d/out" 2>"$d/err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; [ -n "${FLOW_FAULTS_KEEP:-}" ] || rm -rf "$work"' EXIT
alive() { kill -0 $pid 2>/dev/null || { cat "$d/err"; fail "flowctl run died"; }; }
wait_for 60 has_window 1000 || { cat "$d/err"; fail "no 1s part committed"; }

# (1) SIGHUP with a new window: only csv restarts; the parts after it are 2 s long.
pipeline 2s
kill -HUP $pid
wait_for 60 log_has "reload of '$d/p.yaml' applied: 1 changed" || { cat "$d/err"; fail "SIGHUP: no reload applied"; }
log_has "\[csv\] reload: restarted with its new configuration (options: window)" || fail "SIGHUP: csv's restart not logged"
! log_has "\[sim\] reload" || fail "SIGHUP: the simulator was restarted"
! log_has "\[validate\] reload" || fail "SIGHUP: the validator was restarted"
wait_for 60 has_window 2000 || { cat "$d/err"; fail "SIGHUP: no 2s part after the reload"; }
echo "ok: SIGHUP: $(grep -m1 'reload of' "$d/err" | cut -d' ' -f4-)"

# (2) An invalid edit: logged with file:line:column, the pipeline goes on committing.
sed -i 's/window: 2s/window: 2 seconds/' "$d/p.yaml"
kill -HUP $pid
wait_for 60 log_has "is invalid; the pipeline goes on unchanged" || { cat "$d/err"; fail "invalid: not logged"; }
line=$(grep -n "window: 2 seconds" "$d/p.yaml" | cut -d: -f1)
log_has "$d/p.yaml:$line:[0-9]*: error: stage 'csv': option 'window'" || { cat "$d/err"; fail "invalid: no file:line:column error"; }
n=$(parts)
more_parts() { [ "$(parts)" -gt $((n + 1)) ]; }
wait_for 60 more_parts || { cat "$d/err"; fail "invalid: the pipeline stopped committing"; }
alive
echo "ok: invalid edit: $(grep -m1 "error: stage 'csv'" "$d/err" | cut -d' ' -f4-)"

# (3) flowctl reload over HTTP: an invalid file answers with the errors and exit 1; a valid
# one with the summary and exit 0.
port=$(grep -o 'metrics: http://127.0.0.1:[0-9]*' "$d/err" | head -1 | grep -o '[0-9]*$')
[ -n "$port" ] || fail "no metrics port in the log"
rc=0; "$flowctl" reload --metrics-port "$port" >"$d/reload.out" 2>"$d/reload.err" || rc=$?
[ $rc = 1 ] || { cat "$d/reload.out" "$d/reload.err"; fail "flowctl reload of an invalid file: exit $rc, want 1"; }
grep -q "$d/p.yaml:$line:[0-9]*: error: stage 'csv': option 'window'" "$d/reload.err" || { cat "$d/reload.err"; fail "flowctl reload: errors not printed"; }
pipeline 3s
"$flowctl" reload --url "http://127.0.0.1:$port" >"$d/reload.out" 2>"$d/reload.err" || { cat "$d/reload.err"; fail "flowctl reload of a valid file failed"; }
grep -q "applied: 1 changed" "$d/reload.out" || { cat "$d/reload.out"; fail "flowctl reload: no summary"; }
wait_for 60 has_window 3000 || { cat "$d/err"; fail "HTTP: no 3s part after the reload"; }
echo "ok: flowctl reload: $(cat "$d/reload.out")"

# (3b) A reload that adds a stage, then one that removes it: /graph.json (the dashboard's
# pipeline graph) follows both.
graph() { python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())" "http://127.0.0.1:$port/graph.json"; }
graph | grep -q '"print"' && fail "graph.json has a stage 'print' before it was added"
pipeline 3s "{}" "  - {id: print, plugin: stdout-sink, input: validate}"
"$flowctl" reload --url "http://127.0.0.1:$port" >"$d/reload.out" 2>"$d/reload.err" || { cat "$d/reload.err"; fail "reload adding a stage failed"; }
graph | grep -q '\["print","stdout-sink"\]' || { graph; fail "graph.json: no stage 'print' after the reload that added it"; }
graph | grep -q '{"from":"validate","output":"","to":"print"}' || { graph; fail "graph.json: no edge validate -> print"; }
pipeline 3s
"$flowctl" reload --url "http://127.0.0.1:$port" >"$d/reload.out" 2>"$d/reload.err" || { cat "$d/reload.err"; fail "reload removing a stage failed"; }
! graph | grep -q '"print"' || { graph; fail "graph.json still has 'print' after the reload that removed it"; }
echo "ok: graph.json follows a stage added and removed by reloads"

# (4) Several SIGHUPs in a row (the kernel may merge some): each taken applies or finds nothing
# changed; the pipeline goes on.
pipeline 500ms
before=$(count_in_log "reload of '$d/p.yaml'")
kill -HUP $pid; kill -HUP $pid; kill -HUP $pid
reloaded() { [ "$(count_in_log "reload of '$d/p.yaml'")" -gt "$before" ]; }
wait_for 60 reloaded || { cat "$d/err"; fail "SIGHUPs in a row: none applied"; }
wait_for 60 has_window 500 || { cat "$d/err"; fail "SIGHUPs in a row: no 500ms part"; }
alive
echo "ok: SIGHUPs in a row: $(($(count_in_log "reload of '$d/p.yaml'") - before)) reload(s) taken"

# (5) SIGHUP then SIGTERM at once: the reload is finished or not started, the run drains, exit 0.
pipeline 1500ms
kill -HUP $pid; kill -TERM $pid
gone() { ! kill -0 $pid 2>/dev/null; }
wait_for 60 gone || { kill -9 $pid; fail "SIGHUP+SIGTERM: still running after 60 s"; }
rc=0; wait $pid || rc=$?
[ $rc = 0 ] || { cat "$d/err"; fail "SIGHUP+SIGTERM: exit $rc, want 0"; }
! log_has "\[sim\] reload" || fail "the simulator was restarted at some point"
[ "$(count_in_log 'pipeline .reload. running')" = 1 ] || fail "the pipeline was started more than once"

# Exactly once: every record the simulator emitted is in the committed parts once.
emitted=$(awk '$1 == "sim" {print $4}' "$d/err")
[ -n "$emitted" ] || { cat "$d/err"; fail "no summary line for sim"; }
keys() { find "$d/parts" -name '*.csv' ! -name '.*' -type f -exec tail -q -n +2 {} + | cut -d, -f1,4 | sort; }
rows=$(keys | wc -l)
dups=$(keys | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups records written twice"
[ "$rows" = "$emitted" ] || fail "the parts hold $rows records, the simulator emitted $emitted"
# No part holds a window other than the lengths asked for, and each length came in its turn.
[ "$(windows | uniq | tr '\n' ' ')" = "1000 2000 3000 500 " ] ||
  [ "$(windows | uniq | tr '\n' ' ')" = "1000 2000 3000 500 1500 " ] || fail "window lengths in commit order: $(windows | uniq | tr '\n' ' ')"
echo "ok: $emitted records generated, $rows committed, 0 twice, $(parts) parts; windows: $(windows | uniq | tr '\n' ' ')"

# (6) Reloads around cycle transitions: 3 cycles of 1 s; SIGHUPs with a new window each time until
# the run ends. One taken while a cycle drains applies when the next cycle starts; one after the
# last cycle is refused. Every record generated is committed once; exit 0.
d=$work/cycles
mkdir -p "$d"
pipeline 300ms "{duration: 1s, cycles: 3}"
"$flowctl" run "$d/p.yaml" >"$d/out" 2>"$d/err" &
pid=$!
wait_for 60 log_has "running: 3 stages, cycle 1" || { cat "$d/err"; fail "cycles: not started"; }
w=300
while kill -0 $pid 2>/dev/null; do
  w=$((w == 300 ? 400 : 300))
  pipeline ${w}ms "{duration: 1s, cycles: 3}"
  before=$(count_in_log "reload of '$d/p.yaml'")
  kill -HUP $pid 2>/dev/null || break
  answered() { [ "$(count_in_log "reload of '$d/p.yaml'")" -gt "$before" ] || ! kill -0 $pid 2>/dev/null; }
  wait_for 60 answered || { cat "$d/err"; fail "cycles: a SIGHUP was never answered"; }
done
rc=0; wait $pid || rc=$?
[ $rc = 0 ] || { cat "$d/err"; fail "cycles: exit $rc, want 0"; }
emitted=$(awk '$1 == "sim" {print $4}' "$d/err")
rows=$(keys | wc -l)
[ "$(keys | uniq -d | wc -l)" = 0 ] || fail "cycles: records written twice"
[ "$rows" = "$emitted" ] || fail "cycles: the parts hold $rows records, the simulator emitted $emitted"
echo "ok: reloads across 3 cycles: $(count_in_log "applied: ") applied live, $(count_in_log "applied at the start of cycle") at a cycle start, $(count_in_log "refused") refused; $rows records once each"

# (7) Kafka (when built): sim -> kafka-sink -> embedded broker -> kafka-source -> validate -> csv.
# A csv change leaves the consumer alone (one group join, no restart); a kafka-source change
# restarts it with validate and csv (its records are committed before it closes), and the run
# still ends exactly-once.
plugins=$(dirname "$flowctl")/../lib/flow/plugins
[ -e "$plugins/libflow-kafka-source.so" ] && [ -e "$plugins/libflow-kafka-sink.so" ] || { echo "skip: kafka: plugins not built"; exit 0; }
d=$work/kafka
mkdir -p "$d"
kpipeline() {  # kpipeline WINDOW COMMIT_INTERVAL
  cat >"$d/p.yaml" <<YAML
name: reload-kafka
stages:
  - {id: sim, plugin: sensor-simulator, config: {sensors: 40, rate: 25, seed: 5, timestamp_format: "%Y-%m-%d %H:%M:%S.%f"}}
  - {id: publish, plugin: kafka-sink, input: sim, config: {brokers: embedded, topic: t, key_column: key, partitions: 4}}
  - id: consume
    plugin: kafka-source
    stop_after: [publish]
    # The mock cluster keeps a closed member until its session times out: a short one, so the
    # restarted consumer gets its partitions back in seconds.
    config: {brokers: embedded, topics: [t], group: g, on_stop: drain, commit_interval: $2,
             librdkafka: {session.timeout.ms: "6000", heartbeat.interval.ms: "1000"}}
  - id: validate
    plugin: json-validator
    input: consume
    config:
      schema: {sensor_id: {type: int, min: 1}, temperature: float, humidity: float, timestamp: string}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {path: '$d/parts', checkpoint_dir: '$d/ckpt', window: $1}}
YAML
}
kpipeline 1s 1s
"$flowctl" run "$d/p.yaml" >"$d/out" 2>"$d/err" &
pid=$!
wait_for 90 has_window 1000 || { cat "$d/err"; fail "kafka: no 1s part"; }
kpipeline 2s 1s
kill -HUP $pid
wait_for 60 log_has "reload of '$d/p.yaml' applied: 1 changed" || { cat "$d/err"; fail "kafka: csv reload not applied"; }
wait_for 60 has_window 2000 || { cat "$d/err"; fail "kafka: no 2s part"; }
! log_has "\[consume\] reload" || fail "kafka: the consumer was restarted by a csv change"
[ "$(count_in_log '\[consume\] assigned')" = 1 ] || { cat "$d/err"; fail "kafka: the consumer joined the group again"; }
kpipeline 2s 2s
kill -HUP $pid
wait_for 60 log_has "applied: 1 changed, 0 added, 0 removed, 2 restarted with them" || { cat "$d/err"; fail "kafka: consumer reload not applied"; }
log_has "\[consume\] reload: restarted with its new configuration (options: commit_interval)" || fail "kafka: consumer restart not logged"
n=$(parts)
wait_for 90 more_parts || { cat "$d/err"; fail "kafka: nothing committed after the consumer restarted"; }
kill -TERM $pid
wait_for 90 gone || { kill -9 $pid; fail "kafka: still running 90 s after SIGTERM"; }
rc=0; wait $pid || rc=$?
[ $rc = 0 ] || { cat "$d/err"; fail "kafka: exit $rc, want 0"; }
emitted=$(awk '$1 == "sim" {print $4}' "$d/err")
rows=$(keys | wc -l)
[ "$(keys | uniq -d | wc -l)" = 0 ] || fail "kafka: records written twice"
[ "$rows" = "$emitted" ] || { cat "$d/err"; fail "kafka: the parts hold $rows records, the simulator emitted $emitted"; }
grep -q "delivery 'consume': exactly-once: $rows records committed, 0 replayed records written twice" "$d/err" ||
  { grep delivery "$d/err"; fail "kafka: the delivery line"; }
echo "ok: kafka: consumer kept through a csv reload (1 group join), restarted by its own; $rows records once each"
