# Shared by the fault scripts: a work dir, polling with a deadline (never sleep as a sync), checks.
set -euo pipefail
flowctl=$(realpath "$1")
work=$(mktemp -d /tmp/flow-faults.XXXXXX)
chmod 755 "$work"
trap '[ -n "${FLOW_FAULTS_KEEP:-}" ] || rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; fails at the deadline.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
# data rows of the CSV files under a directory (headers excluded), sorted
csv_rows() { find "$1" -name '*.csv' -type f -exec tail -q -n +2 {} + | sort; }
