#!/usr/bin/env bash
# Installs the Debian 12 packages kk's demo, tests and local mirror need on this machine, and
# only those that are missing: a no-op in well under a second when everything is there. Run by
# make demo, make test, make e2e, make mirror and .ci/run; safe to run by hand.
#
#   debootstrap, systemd-container   test machines' root filesystem and systemd-nspawn
#   openssh-server, openssh-client   sshd inside the machines (copied from this host), ssh/scp
#   iproute2, iptables, sudo         network namespaces and NAT for the machines; sudo tests
#   ansible                          make bench compares kk with ansible-playbook
#   make, git, ca-certificates       the build itself
#   gcc, libc6-dev                   flanneld is built with cgo (statically linked)
#
# The mirror and the test images also fetch Debian packages with apt-get download and
# apt-cache show (runc, docker.io, containerd, tini, haproxy, busybox...): they need an apt
# package index, so one is fetched when this machine has none yet.
set -euo pipefail

PACKAGES=(debootstrap systemd-container openssh-server openssh-client iproute2 iptables sudo
  ansible make git ca-certificates gcc libc6-dev)

say() { printf 'setup-host: %s\n' "$*" >&2; }

# One dpkg-query for all: "install ok installed" only (a removed package leaves
# "deinstall ok config-files"; an unknown one is not printed).
installed=" $({ dpkg-query -W -f='${Package}=${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true; } |
  sed -n 's/=install ok installed$//p' | tr '\n' ' ') "
missing=()
for p in "${PACKAGES[@]}"; do
  [[ $installed == *" $p "* ]] || missing+=("$p")
done
have_index=false
if compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  have_index=true
fi
if [ ${#missing[@]} -eq 0 ] && $have_index; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if [ ${#missing[@]} -gt 0 ]; then
    say "missing Debian packages: ${missing[*]}"
  else
    say "this machine has no apt package index (the mirror and images fetch Debian packages)"
  fi
  say "run as root (kk's test machines need root too): sudo $0, or sudo make <target>"
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt (a second make, unattended-upgrades) instead of failing at once.
apt=(apt-get -q -o DPkg::Lock::Timeout=300)
log=/var/tmp/kk-setup-host.log
start=$SECONDS
say "apt-get update (log $log)"
if ! "${apt[@]}" update >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  say "apt-get update failed (log $log)"
  exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (log $log)"
  if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    say "apt-get install failed (log $log)"
    exit 1
  fi
fi
say "done in $((SECONDS - start))s"
