{{.Lib}}
# kk delete cluster on one host: everything kk set up goes, each step in an order that lets the
# next one work. Safe to run again, on a host kk never touched or half set up: what is missing
# is skipped. Problems go to stderr; the residue check run afterwards says what is left.
warn() { printf 'kk-reset: %s\n' "$*" >&2; }

# kill_procs SIGNAL: signal kk's daemons and every process left in a pod's cgroup
kill_procs() {
  procs | awk '{ print $NF }' | while read -r pid; do kill "-$1" "$pid" 2>/dev/null; done
}

# rmpath PATH: remove it; a mount point (a data disk) is emptied, not removed
rmpath() {
  if is_mount "$1"; then
    find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || warn "empty $1 failed"
  elif [ -e "$1" ] || [ -L "$1" ]; then
    rm -rf "$1" 2>/dev/null || warn "remove $1 failed"
  fi
}

unmount_all() {
  for pass in 1 2; do
    mounts_below {{.MountPrefixes}} | while IFS= read -r m; do
      m=$(printf '%b' "$m")
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || [ "$pass" = 1 ] || warn "umount $m failed"
    done
  done
}

# 1. kk's services stop and are disabled: kubelet first, so that nothing restarts a pod
if has systemctl; then
  for u in {{.KKUnits}}; do
    systemctl stop "$u" >/dev/null 2>&1
    systemctl disable "$u" >/dev/null 2>&1
  done
fi

# 2. every Kubernetes pod goes, through the CRI (what kubeadm reset does); then what a pod's
# cgroup still holds
if has crictl && [ -S "$CRI" ]; then
  crictl --runtime-endpoint "unix://$CRI" --timeout 60s rmp -fa >/dev/null 2>&1 || warn "crictl rmp -fa failed"
fi
{{- if .Docker}}
if has docker && [ -S /run/docker.sock ]; then
  ids=$(docker ps -aq --filter name=^k8s_ 2>/dev/null)
  [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
fi
{{- end}}
if has systemctl; then systemctl stop kubepods.slice >/dev/null 2>&1; fi
kill_procs TERM
for i in 1 2 3 4 5; do [ -z "$(procs)" ] && break; sleep 1; done
kill_procs KILL
{{- if .All}}
# with --all: the container runtime stops too, and the shims of the containers it ran
if has systemctl; then
  for u in {{.RuntimeUnits}}; do
    systemctl stop "$u" >/dev/null 2>&1
    systemctl disable "$u" >/dev/null 2>&1
  done
fi
kill_procs TERM
sleep 1
for d in /proc/[0-9]*; do
  case "$(cat "$d/comm" 2>/dev/null)" in containerd-shim*) kill -KILL "${d#/proc/}" 2>/dev/null ;; esac
done
{{- end}}
find /sys/fs/cgroup -maxdepth 6 -depth -type d \( -path '/sys/fs/cgroup/kubepods*' -o -path '/sys/fs/cgroup/*/kubepods*' \) \
  -exec rmdir {} \; 2>/dev/null

# 3. mounts below kubelet's and the runtime's directories, the pods' network namespaces
unmount_all
for n in /run/netns/cni-*; do
  [ -e "$n" ] || continue
  ip netns delete "${n##*/}" 2>/dev/null || { umount "$n" 2>/dev/null; rm -f "$n"; }
done

# 4. the pod network: interfaces, routes, the VIP, iptables chains, nft tables, ipsets, IPVS
for i in $(links); do
  kk_link "$i" && { ip link delete "$i" 2>/dev/null || warn "delete interface $i failed"; }
done
if has ip && ip link show tunl0 >/dev/null 2>&1; then
  ip addr flush dev tunl0 2>/dev/null
  ip link set tunl0 down 2>/dev/null
  has modprobe && modprobe -r ipip 2>/dev/null
fi
if has ip; then
  for v in 4 6; do
    for p in {{.RouteProtos}}; do ip -"$v" route flush type blackhole proto "$p" 2>/dev/null; done
  done
{{- if .VIP}}
  ip -o addr show 2>/dev/null | awk -v a={{.VIP}}/ 'index($4, a) == 1 && (substr($4, length(a) + 1) == "32" || substr($4, length(a) + 1) == "128") { print $4, $2 }' |
    while read -r addr dev; do ip addr del "$addr" dev "$dev" 2>/dev/null || warn "remove $addr from $dev failed"; done
{{- end}}
fi
# iptables: kk's chains are flushed, every rule jumping to one is deleted, then the chains
ipt_pairs | while read -r save restore; do
  rules=$("$save" 2>/dev/null </dev/null | awk -v re="$CHAINS" '
    /^\*/ { t = $0; n = 0; m = 0; split("", own); next }
    /^:/ { c = substr($1, 2); if (c ~ re) { own[c] = 1; list[++n] = c }; next }
    /^-A / { rule[++m] = $0; next }
    /^COMMIT/ {
      out = ""
      for (i = 1; i <= m; i++) {
        k = split(rule[i], w, " "); tgt = ""
        for (j = 2; j < k; j++) if (w[j] == "-j" || w[j] == "-g") tgt = w[j + 1]
        if (!(w[2] in own) && (tgt in own)) out = out "-D" substr(rule[i], 3) "\n"
      }
      if (n == 0 && out == "") next
      print t
      for (i = 1; i <= n; i++) print ":" list[i] " - [0:0]"
      printf "%s", out
      for (i = 1; i <= n; i++) print "-X " list[i]
      print "COMMIT"
    }')
  [ -n "$rules" ] || continue
  printf '%s\n' "$rules" | "$restore" --noflush 2>/dev/null || warn "$restore: removing kk's chains failed"
done
if has nft; then
  nft list tables 2>/dev/null | awk -v re="$NFT_TABLES" '$1 == "table" && $3 ~ re { print $2, $3 }' |
    while read -r fam name; do nft delete table "$fam" "$name" 2>/dev/null || warn "nft delete table $fam $name failed"; done
fi
if has ipset; then
  for s in $(ipset list -n 2>/dev/null | grep -E "$IPSETS"); do ipset destroy "$s" 2>/dev/null || warn "ipset destroy $s failed"; done
fi
{{- if .IPVS}}
if has ipvsadm; then ipvsadm -C 2>/dev/null; fi
{{- end}}

# 5. files: root's copy of admin.conf, then every path kk wrote, and kk's /etc/hosts blocks
if [ -f /root/.kube/config ] && [ -f /etc/kubernetes/admin.conf ] && cmp -s /root/.kube/config /etc/kubernetes/admin.conf; then
  rm -f /root/.kube/config
  rm -rf /root/.kube/cache
fi
for p in {{.Paths}}; do rmpath "$p"; done
emptied | while IFS= read -r p; do rmpath "$p"; done
for d in {{.DataDirs}}; do
  for p in "$d".kk-restore-*; do [ -e "$p" ] && rmpath "$p"; done
done
for p in {{.CNIPlugins}}; do rm -f "/opt/cni/bin/$p"; done
for u in {{.Units}}; do
  for w in "$UNIT_DIR"/*.wants/"$u"; do [ -L "$w" ] && rm -f "$w"; done
done
for d in {{.EmptyDirs}}; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
if [ -f /etc/hosts ]; then
  tmp=$(mktemp) && hosts_blocks keep /etc/hosts >"$tmp" && ! cmp -s "$tmp" /etc/hosts && cat "$tmp" >/etc/hosts
  rm -f "$tmp"
fi
if has systemctl; then
  systemctl daemon-reload >/dev/null 2>&1
  for u in {{.Units}}; do systemctl reset-failed "$u" >/dev/null 2>&1; done
fi
unmount_all
exit 0
