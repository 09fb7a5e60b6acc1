#!/usr/bin/env bash
# The real-GPU proof of issue 13, for a machine with an NVIDIA GPU and driver (the device
# machine lent to a session): kk's own NVML path against the real library, compared with
# nvidia-smi. Run from the repository root with kk built there (make build, bin/kk carried):
#   e2e/gpu/real-gpu-check.sh [path/to/kk]
# It prints what it saw and exits non-zero when kk and nvidia-smi disagree. Well under 15 min.
set -euo pipefail
kk=${1:-bin/kk}
echo "== host"; uname -a; nproc
echo "== nvidia-smi"
nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,compute_cap,mig.mode.current --format=csv,noheader
echo "== kk node facts"
"$kk" node facts | tee /tmp/kk-node-facts.json
echo "== compare"
want=$(nvidia-smi --query-gpu=uuid --format=csv,noheader | sort)
got=$(grep -o '"uuid": "[^"]*"' /tmp/kk-node-facts.json | cut -d'"' -f4 | sort)
[ "$want" = "$got" ] || { echo "GPU UUIDs differ: nvidia-smi [$want] kk [$got]"; exit 1; }
drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n1)
grep -q "\"driver\": \"$drv\"" /tmp/kk-node-facts.json || { echo "driver differs: nvidia-smi $drv"; exit 1; }
echo "kk node facts matches nvidia-smi: $(echo "$got" | wc -l) GPU(s), driver $drv"
