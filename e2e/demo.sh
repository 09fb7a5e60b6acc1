#!/usr/bin/env bash
# make demo: the main job on local machines. Boots 5 test machines (systemd-nspawn, each in its
# own network namespace), exports an offline bundle from the local upstream mirror with
# kk artifact export, and runs kk create cluster: 3 machines hold etcd and the control plane,
# 2 workers reach the API servers through haproxy. Then it shows the cluster and runs kk again:
# a converged cluster is not touched (0 changed). Machines stay up (make demo-down removes them).
#
# make demo first builds what this needs (the mirror's components of one Kubernetes version, its
# images into $DEMO_DIR/images) and sets K8S, CNI, DEMO_DIR and KK_IMAGES_DIR; see the Makefile.
set -euo pipefail
N=5
BED=${BED:-kkdemo}
cd "$(dirname "$0")/.."
KK=${KK:-bin/kk}
K8S=${K8S:-v1.37.2}
CNI=${CNI:-flannel}
DEMO_DIR=${DEMO_DIR:-/var/tmp/kk-demo}
MIRROR=${KK_MIRROR_DIR:-/var/tmp/kk-mirror}
START=$SECONDS
step() { printf '\n\033[1m==> [%dm%02ds] %s\033[0m\n' $(((SECONDS - START) / 60)) $(((SECONDS - START) % 60)) "$*"; }

step "Booting $N test machines"
go run ./e2e/cmd/testbed up -n "$N" --name "$BED"
DIR=${KK_TESTBED_DIR:-/var/tmp/kk-testbed}/$BED
KH=$DIR/known_hosts
FILE=$DIR/cluster-ha.yaml
# The testbed's Cluster file, made an HA layout: etcd + control plane on n1-n3, workers n4-n5.
sed -e 's/etcd: \[n1\]/etcd: [n1, n2, n3]/' -e 's/control-plane: \[n1\]/control-plane: [n1, n2, n3]/' \
    -e 's/worker: \[n1, n2, n3, n4, n5\]/worker: [n4, n5]/' -e 's/port: 6443}/port: 6443, internalLoadbalancer: haproxy}/' \
    -e "s/version: v[0-9.]*/version: $K8S/" -e "s/plugin: [a-z]*/plugin: $CNI/" "$DIR/cluster.yaml" > "$FILE"
chmod 600 "$FILE"

step "kk create manifest -c $FILE, then kk artifact export: the offline bundle, from the local mirror"
BUNDLE=$(go run ./e2e/cmd/upstream export --kk "$KK" --dir "$DEMO_DIR" --name demo -- -c "$FILE")
$KK artifact inspect "$BUNDLE"

step "kk create cluster -f $FILE -a $BUNDLE"
$KK create cluster -f "$FILE" -a "$BUNDLE" --known-hosts "$KH" --workdir "$DIR/kubekey" --yes
KUBECONFIG=$DIR/kubekey/config-$BED
KUBECTL=$MIRROR/release/$K8S/bin/linux/amd64/kubectl
$KUBECTL --kubeconfig "$KUBECONFIG" wait --for=condition=Ready node --all --timeout=300s
$KUBECTL --kubeconfig "$KUBECONFIG" get nodes -o wide
$KUBECTL --kubeconfig "$KUBECONFIG" get pods -A -o wide

step "kk create cluster again: a healthy cluster is not touched (0 changed)"
$KK create cluster -f "$FILE" -a "$BUNDLE" --known-hosts "$KH" --workdir "$DIR/kubekey" --yes | tee "$DIR/rerun.txt"
grep -q ' 0 changed' "$DIR/rerun.txt"

step "Done in $(((SECONDS - START) / 60))m$(((SECONDS - START) % 60))s. KUBECONFIG=$KUBECONFIG ($KUBECTL). Machines stay up: 'make demo-down'"
