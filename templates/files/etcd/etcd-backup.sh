#!/bin/sh
# Snapshot of etcd member {{.Name}}, keeping the {{.Keep}} newest: written by kk
set -eu
dir={{.Dir}}
keep={{.Keep}}
mkdir -p "$dir"
name="etcd-snapshot-$(date -u +%Y%m%dT%H%M%S.%NZ).db"
{{.Etcdctl}} --endpoints={{.Endpoint}} \
  --cacert={{.CAFile}} --cert={{.CertFile}} --key={{.KeyFile}} \
  snapshot save "$dir/$name.part"
mv -f "$dir/$name.part" "$dir/$name"
# drop all but the newest $keep snapshots (names sort by time)
ls -1 "$dir" | grep -E '^etcd-snapshot-.*\.db$' | sort -r | tail -n +$((keep + 1)) | while read -r old; do
  rm -f "$dir/$old"
done
