#!/usr/bin/env bash
# Bash completion as a shell uses it: source packaging/flowctl.bash-completion, fill COMP_WORDS
# as bash would for a command line, call the completion function and check what it offers.
# Usage: completion-test.sh FLOWCTL SOURCE_DIR   (FLOW_PLUGIN_PATH names the built plugins)
set -uo pipefail
flowctl=$1 src=$2
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
ln -s "$flowctl" "$bin/flowctl"  # the completion calls `flowctl` from PATH for plugin names
export PATH="$bin:$PATH"
shopt -s extglob  # as bash-completion sets it
# shellcheck source=/dev/null
source "$src/packaging/flowctl.bash-completion"
failures=0
# complete "WORD WORD ... CUR": the offers for the last word (empty when the line ends in a space).
complete_line() {
  read -r -a COMP_WORDS <<<"$1"
  [[ $1 == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _flowctl
  printf '%s\n' "${COMPREPLY[@]}"
}
expect() {  # expect LINE WANTED...
  local line=$1 got
  shift
  got=$(complete_line "$line")
  for want in "$@"; do
    if ! grep -qxF -- "$want" <<<"$got"; then
      echo "FAIL: '$line<TAB>' does not offer '$want'; it offers: $(tr '\n' ' ' <<<"$got")"
      failures=$((failures + 1))
    fi
  done
}
expect_not() {
  local line=$1 unwanted=$2 got
  got=$(complete_line "$line")
  if grep -qxF -- "$unwanted" <<<"$got"; then
    echo "FAIL: '$line<TAB>' offers '$unwanted'"
    failures=$((failures + 1))
  fi
}
cd "$src"
expect "flowctl " run validate graph test reload plugins test-plugin broker tap top
expect "flowctl reload --" --metrics-port --url
expect "flowctl test p" pipelines
expect "flowctl test pipelines/iot-l" pipelines/iot-local.test.yaml
expect "flowctl test --" --filter --keep --verbose
expect "flowctl va" validate
expect_not "flowctl va" run
expect "flowctl plugins " list describe
expect "flowctl plugins describe " csv-window-sink json-validator merge-archive sensor-simulator
expect "flowctl plugins describe js" json-validator
expect "flowctl test-plugin mer" merge-archive
expect "flowctl run pipelines/iot-local.yaml --set " sim. validate. rejected-archive. run.duration=
expect "flowctl tap --" --limit --rate --filter --url --port
expect "flowctl top --" --url --port --interval --once
expect "flowctl run --" --set --duration --metrics-port
expect "flowctl run pipelines/iot-local.yaml --log-level " debug info warn error
if [ "$failures" -ne 0 ]; then
  echo "completion-test: $failures failure(s)"
  exit 1
fi
echo "completion-test: ok"
