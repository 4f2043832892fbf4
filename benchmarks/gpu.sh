#!/usr/bin/env bash
# Every GPU figure the project owes, in stages that each fit one call of the device tool (< 10 min).
#
#   bash benchmarks/gpu.sh STAGE [STAGE ...]
#
# Stages, in the order to run them when device time is short (estimates are guesses until a GPU
# run replaces them with measurements):
#   check       install (pip --no-deps), versions, devices, a 1-epoch `jaxnn train`,
#               `jaxnn compare`, `jaxnn speedrun --quick`, and the speed-run tests on the GPU
#   speedrun    benchmarks/speedrun.py: 5 seeds, cold then warm compilation cache
#   throughput  benchmarks/cnn_throughput.py (jaxnn scan/host, nnx.jit, PyTorch on CUDA) and
#               benchmarks/manual_vs_autodiff.py
#   dropout     the issue's "ch6-dropout under 60 s": ch6-dropout-fast (the same network, Adam,
#               one-cycle, mini-batches of 100, 15 epochs), then the book's settings (mini-batches
#               of 10, 40 epochs): one epoch, then the whole run as far as the time allows
#   ch6         `jaxnn reproduce` of the chapter-6 rows not yet run at full settings (ch6-relu
#               was, on the CPU: 3 runs, README's Results), one run
#               each, as far as the time allows; a later call on the same (still warm) machine
#               keeps the finished runs and goes on with the rest
#
# Everything a stage writes goes to $OUT/<stage>/ (the device tool's output folder; without $OUT,
# benchmarks/results/gpu/): the JSON of each benchmark, the run directories, and log.txt.
# The whole call is cut at CALL_SECONDS (default 560, under the tool's 600 s), shared fairly
# among the stages named, so that a call never runs past its limit and loses its output.
# A session has 30 minutes of device time in all, machine start-up included, so three calls at
# the default fit at best: read `status` (budget_left_s) before each call and, for the last one,
# pass CALL_SECONDS a minute under what is left.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
CALL_SECONDS=${CALL_SECONDS:-560}
PY=${PYTHON:-python}

# jaxnn importable from anywhere (benchmarks/*.py run with benchmarks/ as their path, not the
# repository root), and `jaxnn` on the PATH. Without a network, pip's isolated build may not
# find setuptools: then build in this environment (which needs setuptools >= 77, for pyproject's
# SPDX `license`), and as a last resort run from the source tree.
importable() { (cd / && "$PY" -c "import jaxnn, manual_grad" 2>/dev/null); }
installed() {
  mkdir -p "$OUT"
  importable \
    || "$PY" -m pip install --quiet --no-deps -e . >"$OUT/pip.log" 2>&1 \
    || "$PY" -m pip install --quiet --no-deps --no-build-isolation -e . >>"$OUT/pip.log" 2>&1 \
    || echo "# pip could not install jaxnn (see $OUT/pip.log): running it from the source tree"
  importable || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  if command -v jaxnn >/dev/null; then JAXNN=(jaxnn); else JAXNN=("$PY" -m jaxnn); fi
  importable
}

# Seconds left to the current stage.
left() { echo $((stage_seconds - (SECONDS - stage_start))); }

# run LABEL SECONDS CMD...: one command under a time limit (at most what is left to the stage);
# its exit status is logged, not fatal (124: cut at the limit).
run() {
  local label=$1 limit=$2 start=$SECONDS; shift 2
  (( limit > $(left) )) && limit=$(left)
  (( limit > 10 )) || { echo "## $label: skipped, no time left in this stage"; return; }
  echo "## $label (limit ${limit} s): $*"
  timeout --kill-after=20 "$limit" "$@"
  echo "## $label: exit $? after $((SECONDS - start)) s"
}

stage_check() {
  "$PY" - <<'PY'
import platform, jax, jaxlib, flax, optax, numpy
print("python", platform.python_version(), "jax", jax.__version__, "jaxlib", jaxlib.__version__,
      "flax", flax.__version__, "optax", optax.__version__, "numpy", numpy.__version__)
print("devices", jax.devices())
for name in ("torch", "tqdm", "matplotlib", "orbax.checkpoint", "hypothesis"):
    try:
        module = __import__(name, fromlist=["_"])
        print(name, getattr(module, "__version__", "?"))
    except ImportError:
        print(name, "missing")
PY
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  run "train 1 epoch" 120 "${JAXNN[@]}" train --epochs 1 --no-progress --out "$dir/train-ch1"
  run "train ch6-relu 1 epoch" 180 "${JAXNN[@]}" train --preset ch6-relu --epochs 1 --no-progress \
    --out "$dir/train-ch6-relu"
  run "compare" 60 "${JAXNN[@]}" compare
  run "speedrun --quick" 120 "${JAXNN[@]}" speedrun --quick --json "$dir/speedrun-quick.json"
  if "$PY" -c "import pytest, hypothesis" 2>/dev/null; then
    run "tests on the GPU" "$(left)" "$PY" -m pytest -q -p no:cacheprovider tests/test_speedrun.py \
      tests/test_train.py
  else
    echo "## tests on the GPU: skipped, pytest or hypothesis is not installed"
  fi
}

stage_speedrun() {
  run "speedrun cold/warm" "$(left)" "$PY" benchmarks/speedrun.py
  cp benchmarks/results/speedrun.json "$dir/" 2>/dev/null
}

stage_throughput() {
  # JAX and PyTorch share the GPU in one process: JAX must not take 75% of it up front.
  XLA_PYTHON_CLIENT_PREALLOCATE=false run "cnn throughput" $(( $(left) * 3 / 4 )) "$PY" \
    benchmarks/cnn_throughput.py --json "$dir/cnn_throughput.json"
  run "manual vs autodiff" "$(left)" "$PY" benchmarks/manual_vs_autodiff.py \
    --out "$dir/manual_vs_autodiff.json"
}

stage_dropout() {
  run "ch6-dropout-fast" 240 "${JAXNN[@]}" train --preset ch6-dropout-fast --no-progress \
    --out "$dir/ch6-dropout-fast"
  run "ch6-dropout 1 epoch" 120 "${JAXNN[@]}" train --preset ch6-dropout --epochs 1 --no-progress \
    --out "$dir/ch6-dropout-1"
  run "ch6-dropout 40 epochs" "$(left)" "${JAXNN[@]}" train --preset ch6-dropout --no-progress \
    --out "$dir/ch6-dropout"
}

stage_ch6() {
  # Outside $OUT, which each call starts empty: `jaxnn reproduce` writes every run's directory as
  # it goes and keeps the finished ones, so a call cut at its limit loses only the run in progress.
  local keep=benchmarks/results/gpu-reproduce
  run "reproduce ch6" "$(left)" "${JAXNN[@]}" reproduce ch6-expanded ch6-fc300 \
    ch6-fc1000 ch6-2fc ch6-ensemble --runs 1 --no-progress --out "$keep"
  cp -r "$keep" "$dir/reproduce"
}

[ $# -gt 0 ] || { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2; }
for stage in "$@"; do
  declare -F "stage_$stage" >/dev/null || { echo "unknown stage: $stage" >&2; exit 2; }
done
installed || { echo "pip install --no-deps -e . failed" >&2; exit 1; }
echo "# jaxnn: $(cd / && "$PY" -c 'import jaxnn; print(jaxnn.__file__)'); command: ${JAXNN[*]}"
stages_left=$#
for stage in "$@"; do
  dir="$OUT/$stage"
  mkdir -p "$dir"
  stage_start=$SECONDS
  stage_seconds=$(( (CALL_SECONDS - SECONDS) / stages_left ))
  stages_left=$((stages_left - 1))
  echo "# stage $stage: ${stage_seconds} s" | tee "$dir/log.txt"
  "stage_$stage" 2>&1 | tee -a "$dir/log.txt"
done
