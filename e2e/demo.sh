#!/usr/bin/env bash
# make demo: boot N local test machines, check them, prepare their OS, and show that a second
# run changes nothing. Machines stay up afterwards (make demo-down removes them).
set -euo pipefail
N=${1:-3}
BED=${BED:-kkdemo}
cd "$(dirname "$0")/.."
KK=${KK:-bin/kk}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Booting $N test machines (systemd-nspawn, own network namespaces)"
go run ./e2e/cmd/testbed up -n "$N" --name "$BED"
DIR=${KK_TESTBED_DIR:-/var/tmp/kk-testbed}/$BED
FILE=$DIR/cluster.yaml
KH=$DIR/known_hosts
export KK_TESTBED_KEEP=1

step "kk precheck -f $FILE"
$KK precheck -f "$FILE" --known-hosts "$KH" || true

step "kk init os -f $FILE   (first run: changes the machines)"
$KK init os -f "$FILE" --known-hosts "$KH" --yes

step "kk precheck again: every host should pass"
$KK precheck -f "$FILE" --known-hosts "$KH"

step "kk init os again: a converged machine is not touched (0 changed)"
$KK init os -f "$FILE" --known-hosts "$KH" --yes | tee /tmp/kk-demo-rerun.txt
grep -q ' 0 changed' /tmp/kk-demo-rerun.txt

step "Done. Machines are still up: ssh with the key in $DIR, or 'make demo-down BED=$BED'"
