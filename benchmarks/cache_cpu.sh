#!/usr/bin/env bash
# First vs second run of `jaxnn train --epochs 1` with JAX's persistent compilation cache.
#   benchmarks/cache_cpu.sh [extra jaxnn train flags]
# Runs, in order: no cache, cold cache, warm cache (twice), no cache; prints wall seconds and
# first_epoch_seconds (compilation + one epoch) from each run's summary.json.
set -euo pipefail
JAXNN=${JAXNN:-.venv/bin/jaxnn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for run in no-cache cold warm warm2 no-cache2; do
  case $run in no-cache*) flag=(--no-cache) ;; *) flag=(--cache-dir "$tmp/cache") ;; esac
  start=$(date +%s.%N)
  "$JAXNN" train --epochs 1 --no-progress "${flag[@]}" --out "$tmp/$run" "$@" > /dev/null
  end=$(date +%s.%N)
  python3 - "$run" "$start" "$end" "$tmp/$run/summary.json" <<'PY'
import json, os, sys
run, start, end, path = sys.argv[1:]
s = json.load(open(path))
print(f"{run:10s} wall {float(end) - float(start):6.2f} s  first_epoch_seconds "
      f"{s['first_epoch_seconds']:6.2f}  load {os.getloadavg()[0]:.1f}")
PY
done
echo "cache: $(ls "$tmp/cache" | wc -l) entries, $(du -sh "$tmp/cache" | cut -f1)"
