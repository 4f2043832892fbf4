#!/usr/bin/env bash
# Two `jaxnn train --distributed` processes on this machine (2 forced CPU devices each, gloo
# collectives) against one process on 1 and on 4 forced devices, same run, no compilation cache.
#   benchmarks/multiprocess_cpu.sh [rounds] [extra jaxnn train flags]
# Prints wall seconds (process start to both processes' exit), seconds_per_epoch and the final
# train cost of each run (its final test accuracy where the training set is not monitored);
# rounds are interleaved, so a load spike hits every variant alike.
set -euo pipefail
JAXNN=${JAXNN:-.venv/bin/jaxnn}
rounds=${1:-3}; shift || true
flags=(--epochs 3 --train-size 10000 --mini-batch-size 64 --no-progress --no-cache "$@")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
report() {  # name start end run_dir
  python3 - "$@" <<'PY'
import json, os, sys
name, start, end, path = sys.argv[1:]
s = json.load(open(f"{path}/summary.json"))
# a run that does not monitor its training set (the chapter-6 presets) has no training cost
figure = (f"final train cost {s['final_train_cost']:.7f}" if "final_train_cost" in s
          else f"final test accuracy {s['final_test_accuracy']:.4f}")
print(f"{name:22s} wall {float(end) - float(start):6.2f} s  s/epoch {s['seconds_per_epoch']:6.3f}"
      f"  {figure}  load {os.getloadavg()[0]:.1f}")
PY
}
for r in $(seq "$rounds"); do
  start=$(date +%s.%N)
  JAX_PLATFORMS=cpu "$JAXNN" train "${flags[@]}" --out "$tmp/one-$r" > /dev/null 2>&1
  report "1 process, 1 device" "$start" "$(date +%s.%N)" "$tmp/one-$r"
  start=$(date +%s.%N)
  JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=4 \
    "$JAXNN" train --devices all "${flags[@]}" --out "$tmp/four-$r" > /dev/null 2>&1
  report "1 process, 4 devices" "$start" "$(date +%s.%N)" "$tmp/four-$r"
  p=$(port)
  start=$(date +%s.%N)
  for i in 0 1; do
    JAX_COORDINATOR_ADDRESS=127.0.0.1:$p JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=$i JAX_PLATFORMS=cpu \
      XLA_FLAGS=--xla_force_host_platform_device_count=2 \
      "$JAXNN" train --distributed --devices all "${flags[@]}" --out "$tmp/two-$r" \
      > "$tmp/log$i" 2>&1 &
  done
  wait
  report "2 processes x 2 devices" "$start" "$(date +%s.%N)" "$tmp/two-$r"
done
