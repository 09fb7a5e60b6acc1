{{.Lib}}
# kk delete cluster's residue check: one line per thing kk left on this host, nothing else on
# stdout. It changes nothing and prints no file's content.
for u in {{.Units}}; do
  if has systemctl && systemctl is-active --quiet "$u" 2>/dev/null; then echo "unit $u (active)"; fi
  if [ -e "$UNIT_DIR/$u" ] || [ -L "$UNIT_DIR/$u" ]; then echo "unit $u"; fi
  for w in "$UNIT_DIR"/*.wants/"$u"; do [ -L "$w" ] && echo "path $w"; done
done

procs | sed 's/^/proc /'

for p in {{.Paths}}; do
  if is_mount "$p"; then
    [ -n "$(ls -A "$p" 2>/dev/null)" ] && echo "path $p (contents)"
  elif [ -e "$p" ] || [ -L "$p" ]; then
    echo "path $p"
  fi
done
emptied | sed 's/^/path /'
for d in {{.DataDirs}}; do
  for p in "$d".kk-restore-*; do [ -e "$p" ] && echo "path $p"; done
done
for p in {{.CNIPlugins}}; do [ -e "/opt/cni/bin/$p" ] && echo "path /opt/cni/bin/$p"; done
if [ -f /root/.kube/config ] && [ -f /etc/kubernetes/admin.conf ] && cmp -s /root/.kube/config /etc/kubernetes/admin.conf; then
  echo "path /root/.kube/config"
fi
[ -f /etc/hosts ] && hosts_blocks list /etc/hosts | sed 's/^/hosts-line /'

mounts_below {{.MountPrefixes}} | sed 's/^/mount /'
for n in /run/netns/cni-*; do [ -e "$n" ] && echo "netns ${n##*/}"; done
{{- if .KeepRuntime}}
if has crictl && [ -S "$CRI" ]; then
  crictl --runtime-endpoint "unix://$CRI" --timeout 10s pods -q 2>/dev/null | sed 's/^/pod /'
fi
{{- end}}

for i in $(links); do kk_link "$i" && echo "iface $i"; done
if has ip && ip link show tunl0 >/dev/null 2>&1; then
  # the ipip module's tunl0 cannot be deleted: left while it is up or has an address
  ip -o link show tunl0 | grep -q '[<,]UP[,>]' && echo "iface tunl0 (up)"
  [ -n "$(ip -o addr show dev tunl0 2>/dev/null)" ] && echo "iface tunl0 (address)"
fi
if has ip; then
  for v in 4 6; do
    for p in {{.RouteProtos}}; do
      ip -"$v" route show type blackhole proto "$p" 2>/dev/null | sed 's/^/route /'
    done
  done
{{- if .VIP}}
  ip -o addr show 2>/dev/null | awk -v a={{.VIP}}/ 'index($4, a) == 1 && (substr($4, length(a) + 1) == "32" || substr($4, length(a) + 1) == "128") { print "vip " $4 " on " $2 }'
{{- end}}
fi

ipt_pairs | while read -r save restore; do
  "$save" 2>/dev/null </dev/null | awk -v re="$CHAINS" -v b="${save%-save}" '
    /^\*/ { t = substr($0, 2) }
    /^:/ { c = substr($1, 2); if (c ~ re) print "chain " t " " c " (" b ")" }'
done
if has nft; then
  nft list tables 2>/dev/null | awk -v re="$NFT_TABLES" '$1 == "table" && $3 ~ re { print "nft-table " $2 " " $3 }'
fi
if has ipset; then
  ipset list -n 2>/dev/null | grep -E "$IPSETS" | sed 's/^/ipset /'
fi
{{- if .IPVS}}
if has ipvsadm; then
  ipvsadm -Sn 2>/dev/null | sed 's/^/ipvs /'
fi
{{- end}}
exit 0
