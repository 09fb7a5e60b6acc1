# kk delete cluster: what kk may have left on this host, shared by reset.sh and residue.sh.
# Rendered by modules/reset; every list below is quoted there.
set +e
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LC_ALL=C
export PATH LC_ALL
UNIT_DIR=/etc/systemd/system
CRI={{.CRISocket}}
CHAINS={{.ChainRE}}
NFT_TABLES={{.NftRE}}
IPSETS={{.IPSetRE}}
HOSTS_BLOCKS={{.HostsBlocks}}

has() { command -v "$1" >/dev/null 2>&1; }

# mounts_below PREFIX...: the mount points starting with a prefix, deepest first (escaped as
# in /proc/self/mounts: printf %b unescapes)
mounts_below() {
  awk -v list="$*" 'BEGIN { n = split(list, p, " ") }
    { for (i = 1; i <= n; i++) if (index($2, p[i]) == 1) { print length($2) " " $2; break } }' /proc/self/mounts |
    sort -rn | cut -d' ' -f2- | uniq
}

is_mount() { awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/self/mounts; }

# ipt_pairs: "SAVE RESTORE" for each iptables front end present (legacy and nft, v4 and v6)
ipt_pairs() {
  for f in iptables ip6tables; do
    found=
    for b in legacy nft; do
      if has "$f-$b-save" && has "$f-$b-restore"; then echo "$f-$b-save $f-$b-restore"; found=1; fi
    done
    if [ -z "$found" ] && has "$f-save" && has "$f-restore"; then echo "$f-save $f-restore"; fi
  done
}

# links: every network interface name
links() { has ip && ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'; }

# kk_link NAME: whether NAME is one of the interfaces kk's network leaves
kk_link() {
  case " {{.Ifaces}} " in *" $1 "*) return 0 ;; esac
  for p in {{.IfacePrefixes}}; do case "$1" in "$p"*) return 0 ;; esac; done
  return 1
}

# hosts_blocks keep|list FILE: FILE without kk's complete blocks, or only their lines
hosts_blocks() {
  awk -v list="$HOSTS_BLOCKS" -v mode="$1" '
    BEGIN { n = split(list, b, "|"); for (i = 1; i <= n; i++) { e = b[i]; sub(/^# BEGIN/, "# END", e); endof[b[i]] = e } }
    { l = $0; sub(/^[ \t]+/, "", l); sub(/[ \t]+$/, "", l) }
    cur == "" && (l in endof) { cur = endof[l]; buf = $0; next }
    cur != "" { buf = buf "\n" $0; if (l == cur) { if (mode == "list") print buf; cur = ""; buf = "" }; next }
    mode == "keep" { print }
    END { if (cur != "" && mode == "keep") print buf }' "$2"
}

# procs: "COMM PID" of kk's daemons in this PID namespace, and "pod COMM PID" of processes in
# a Kubernetes pod's cgroup
procs() {
  self=$(readlink /proc/self/ns/pid)
  for d in /proc/[0-9]*; do
    comm=$(cat "$d/comm" 2>/dev/null) || continue
    case " {{.Procs}} " in
      *" $comm "*) [ "$(readlink "$d/ns/pid" 2>/dev/null)" = "$self" ] && echo "$comm ${d#/proc/}" ;;
    esac
    grep -qs '^[0-9]*:[^:]*:/kubepods' "$d/cgroup" && echo "pod $comm ${d#/proc/}"
  done
}

# emptied: the entries of the emptied directories (they stay, each keeping the others of the
# list below it), one per line
emptied() {
  for d in {{.EmptiedDirs}}; do
    [ -d "$d" ] || continue
    for e in "$d"/* "$d"/.[!.]*; do
      [ -e "$e" ] || [ -L "$e" ] || continue
      case " {{.EmptiedDirs}} " in *" $e "* | *" '$e' "*) continue ;; esac
      echo "$e"
    done
  done
}
