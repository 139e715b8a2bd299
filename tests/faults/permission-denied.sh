#!/usr/bin/env bash
# An output or checkpoint directory the process may not write: flowctl stops at open() with a
# message naming the directory and the stage, exit 1, before the source has produced anything.
# Root ignores permission bits, so as root the run is done as `nobody` (setpriv).
source "$(dirname "$0")/lib.sh"
as_user=()
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null || skip "root without setpriv: permission bits would not stop writes"
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
  chmod o+rx "$(dirname "$flowctl")" "$(dirname "$flowctl")/.." || true
fi

check() {  # $1: which stage config points to the locked dir, $2: expected words
  local case=$1 locked=$work/$1/locked
  mkdir -p "$work/$case/ok" "$locked"
  chmod 777 "$work/$case" "$work/$case/ok"
  chmod 555 "$locked"
  local csv_path=$work/$case/ok/parts csv_ckpt=$work/$case/ok/ckpt src_ckpt=$work/$case/ok/src backup=$work/$case/ok/backup
  case $case in
    archive-backup) backup=$locked ;;
    csv-output) csv_path=$locked ;;
    csv-checkpoint) csv_ckpt=$locked ;;
    source-checkpoint) src_ckpt=$locked ;;
  esac
  printf '{"sensor_id":1,"temperature":2.5}\n' >"$work/$case/in.jsonl"
  chmod 644 "$work/$case/in.jsonl"
  cat >"$work/$case/p.yaml" <<YAML
name: perm
stages:
  - {id: src, plugin: file-source, config: {paths: ['$work/$case/in.jsonl'], exit_at_end: true, checkpoint_dir: '$src_ckpt'}}
  - {id: validate, plugin: json-validator, input: src, config: {schema: {sensor_id: int, temperature: float}}}
  - {id: csv, plugin: csv-window-sink, input: validate, config: {path: '$csv_path', checkpoint_dir: '$csv_ckpt', window: 1s}}
  - {id: archive, plugin: merge-archive, input: csv, config: {parts_dir: '$csv_path', checkpoint_dir: '$csv_ckpt', backup_dir: '$backup'}}
YAML
  local rc=0
  timeout 60 "${as_user[@]}" "$flowctl" run "$work/$case/p.yaml" >"$work/$case/out" 2>"$work/$case/err" || rc=$?
  [ "$rc" = 1 ] || { cat "$work/$case/err"; fail "$case: exit $rc, want 1"; }
  grep -q "Permission denied" "$work/$case/err" || { cat "$work/$case/err"; fail "$case: no 'Permission denied'"; }
  grep -q "$locked" "$work/$case/err" || { cat "$work/$case/err"; fail "$case: the directory is not named"; }
  grep -q "$2" "$work/$case/err" || { cat "$work/$case/err"; fail "$case: the stage '$2' is not named"; }
  grep -q "open failed" "$work/$case/err" || { cat "$work/$case/err"; fail "$case: not refused at open()"; }
  # Nothing consumed: the csv sink wrote no part anywhere.
  [ -z "$(find "$work/$case" -name '*.csv')" ] || fail "$case: parts were written"
  echo "ok: $case: $(grep -m1 "Permission denied" "$work/$case/err")"
}
check csv-output csv
check csv-checkpoint csv
check source-checkpoint src
check archive-backup archive
