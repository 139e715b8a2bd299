#!/usr/bin/env bash
# The largest accepted message, end to end: stdin-source (max_line_size: 1MiB) -> json-validator
# (max_message_bytes: 64KiB) -> stdout. A 10 MiB line is refused by the source (skipped with a
# warning naming its offset, never buffered whole); a 100 KiB record is dead-lettered as
# 'oversize' without being parsed; the small records around them come out, in order.
source "$(dirname "$0")/lib.sh"
cat >"$work/p.yaml" <<YAML
name: limit
stages:
  - {id: in, plugin: stdin-source, config: {max_line_size: 1MiB}}
  - {id: validate, plugin: json-validator, input: in,
     config: {schema: {n: int}, max_message_bytes: 64KiB, on_invalid: dead-letter}}
  - {id: out, plugin: stdout-sink, input: validate}
  - {id: dead, plugin: stdout-sink, input: validate.invalid, config: {format: csv}}
YAML
{
  echo '{"n":1}'
  printf '{"n":2,"pad":"%s"}\n' "$(head -c 10485760 /dev/zero | tr '\0' x)"
  echo '{"n":3}'
  printf '{"n":4,"pad":"%s"}\n' "$(head -c 102400 /dev/zero | tr '\0' y)"
  echo '{"n":5}'
} >"$work/in.jsonl"
rc=0
timeout 120 "$flowctl" run "$work/p.yaml" <"$work/in.jsonl" >"$work/out" 2>"$work/err" || rc=$?
[ $rc = 0 ] || { tail -20 "$work/err"; fail "exit $rc, want 0"; }
valid=$(grep -c '^{"n":' "$work/out" || true)
oversize=$(grep -c ',oversize,' "$work/out" || true)
[ "$valid" = 3 ] || { head -c 2000 "$work/out"; fail "$valid valid records out, want 3"; }
[ "$oversize" = 1 ] || { grep -v '^{' "$work/out" | cut -c1-300; fail "$oversize oversize dead letters, want 1"; }
grep -q "byte 8: line of 10485776 bytes is longer than max_line_size" "$work/err" || { tail -5 "$work/err"; fail "the source did not name the skipped 10 MiB line's offset"; }
[ "$(grep '^{"n":' "$work/out" | tr -dc '0-9\n' | tr '\n' ' ')" = "1 3 5 " ] || fail "valid records out of order"
grep -q "oversize_lines=1" "$work/err" || fail "the source's oversize_lines counter is not 1"
grep -q 'invalid_records{reason="oversize"}=1' "$work/err" || fail "the validator's oversize counter is not 1"
[ "$(wc -c <"$work/out")" -lt 1048576 ] || fail "the oversize records were passed on whole"
echo "ok: 3 valid, the 10 MiB line refused at the source ($(grep -m1 -o "byte 8: line of.*" "$work/err")), 1 oversize dead letter"

# `limits:` in a real run: 6 batches over 2 channels; the summary's per-channel capacity and peak
# stay within each channel's share (3), though the stages ask for 8.
testplugins=$(dirname "$flowctl")/../test-plugins
[ -e "$testplugins/libflow-test.passthrough.so" ] || skip "test plugins not built"
cat >"$work/limits.yaml" <<YAML
name: limits
limits: {batches: 6}
stages:
  - {id: src, plugin: test.counter-source, config: {count: 20000, batch_size: 10}}
  - {id: pass, plugin: test.passthrough, input: src, buffer: {batches: 8}}
  - {id: sink, plugin: test.collect-sink, input: pass, config: {path: '$work/collected', delay: 1ms}}
YAML
FLOW_PLUGIN_PATH=${FLOW_PLUGIN_PATH:-}:$testplugins timeout 120 "$flowctl" run "$work/limits.yaml" >"$work/lout" 2>"$work/lerr" ||
  { tail -5 "$work/lerr"; fail "limits: the run failed"; }
caps=$(grep -o 'peak [0-9]*/[0-9]* batches' "$work/lerr")
[ "$(echo "$caps" | wc -l)" = 2 ] || { cat "$work/lerr"; fail "limits: no channel summary"; }
echo "$caps" | awk -F'[ /]' '$2 > 3 || $3 != 3 {bad=1} END {exit bad}' || fail "limits: a channel above its share of 3: $caps"
echo "ok: limits: $(echo $caps)"

# `limits: {records: 60}`: 30 records per channel; batches of 10 fill each channel to 3 batches.
sed -i 's/^limits: .*/limits: {records: 60}/' "$work/limits.yaml"
rm -f "$work/collected"
FLOW_PLUGIN_PATH=${FLOW_PLUGIN_PATH:-}:$testplugins timeout 120 "$flowctl" run "$work/limits.yaml" >"$work/lout" 2>"$work/lerr" ||
  { tail -5 "$work/lerr"; fail "limits.records: the run failed"; }
recs=$(grep -o '[0-9]*/[0-9]* records' "$work/lerr")
[ "$(echo "$recs" | wc -l)" = 2 ] || { cat "$work/lerr"; fail "limits.records: no records in the channel summary"; }
echo "$recs" | awk -F'[ /]' '$1 > 30 || $2 != 30 {bad=1} END {exit bad}' || fail "limits.records: a channel above its share of 30: $recs"
[ "$(wc -l <"$work/collected")" = 20000 ] || fail "limits.records: $(wc -l <"$work/collected") of 20000 records collected"
echo "ok: limits.records: $(echo $recs)"
