#!/usr/bin/env bash
# Builds the Debian package (cpack -G DEB) from an already built tree, installs it and runs
# `flowctl plugins list` and the local pipeline from the installed paths. With
# FLOW_TEST_APT_INSTALL=1 (CI, a clean Debian 12, as root) it installs with
# `apt-get install ./flow_*.deb`; otherwise it unpacks with dpkg-deb -x into a temporary root,
# which exercises the same relative layout (bin/ and lib/flow/plugins) without touching /usr.
# Usage: deb-test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$build" && cpack -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/pkg/flow_*.deb)
contents=$(dpkg-deb -c "$deb")  # whole, not piped into grep -q (pipefail and an early close)
for f in usr/share/bash-completion/completions/flowctl usr/lib/systemd/system/flow@.service usr/include/flow/plugin.hpp; do
  grep -q "$f" <<<"$contents" || { echo "no $f in $deb"; exit 1; }
done
if [ "${FLOW_TEST_APT_INSTALL:-0}" = 1 ]; then
  apt-get install -y -qq "$deb"
  root=""
else
  dpkg-deb -x "$deb" "$work/root"
  root="$work/root"
fi
flowctl="$root/usr/bin/flowctl"
list=$(env -u FLOW_PLUGIN_PATH "$flowctl" plugins list)
echo "$list"
grep -q '^sensor-simulator ' <<<"$list" || { echo "the installed flowctl does not find its plugins"; exit 1; }
if grep -q '^merge-archive ' <<<"$list" && grep -q '^csv-window-sink ' <<<"$list" && grep -q '^json-validator ' <<<"$list"; then
  cd "$work"
  env -u FLOW_PLUGIN_PATH "$flowctl" run "$src/pipelines/iot-local.yaml" --duration 2s --quiet
  ls out/backup/*.csv >/dev/null || { echo "the local pipeline archived nothing"; exit 1; }
fi
echo "deb-test: ok ($(basename "$deb"))"
