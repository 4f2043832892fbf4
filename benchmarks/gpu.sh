#!/usr/bin/env bash
# Every GPU figure the project owes, in stages that each fit one call of the device tool (< 10 min).
#
#   bash benchmarks/gpu.sh STAGE [STAGE ...]
#
# Stages:
#   check       versions, devices, a 1-epoch `jaxnn train` (ch1 and ch6-relu), `jaxnn compare`,
#               `jaxnn speedrun --quick`, and the speed-run and training tests on the GPU
#   speedrun    benchmarks/speedrun.py: 5 seeds, cold then warm compilation cache
#   throughput  benchmarks/softmax_rule.py (what softmax's derivative rules cost an epoch),
#               benchmarks/seeds.py (several seeds: experiment.run each vs one Trainer),
#               benchmarks/cnn_throughput.py (jaxnn scan/host, nnx.jit, PyTorch on CUDA) and
#               benchmarks/manual_vs_autodiff.py
#   dropout     the issue's "ch6-dropout under 60 s": ch6-dropout-fast (the same network, Adam,
#               one-cycle, mini-batches of 100, 15 epochs), then the book's settings (mini-batches
#               of 10, 40 epochs): one epoch, then the whole run as far as the time allows
#   ch6         the chapter-6 rows short of the book's three full-settings runs (the CPU ran
#               expanded, fc300, 2fc, fc1000, 2fc300 and 2fc1000 once): expanded,
#               fc300, fc1000, 2fc, 2fc300 and 2fc1000,
#               one `jaxnn train` run each (checkpointed: a later call can resume a row cut at
#               the limit, see stage_ch6), as far as the time allows
#   ensemble    ch6-ensemble (five ch6-dropout networks of 40 epochs and their vote) through
#               `jaxnn reproduce --checkpoint-every 2`: each member is a run of its own, so a
#               later call goes on where this one was cut (ENSEMBLE_RESUME, see stage_ensemble)
#
# The calls, in order of priority (a session has 30 minutes of device time, machine start-ups
# included, and the machine goes back 30 s after a call: plan on a fresh machine every call):
#   1. check speedrun        2. throughput dropout        3. ch6 (what is left, minus a minute)
#   then, in later sessions: ch6 again with CH6_RESUME, and ensemble (ENSEMBLE_RESUME)
# Read `status` (budget_left_s) before each call; give a short last call a smaller CALL_SECONDS.
#
# The device tool returns at most 8 files from $OUT, none more than two folders down, so each
# stage writes its run directories and JSON under $WORK/<stage>/ (default /tmp/jaxnn-gpu) and,
# when it ends, leaves two files in $OUT: <stage>.log (everything it printed) and <stage>.tar.gz
# (its folder). Without $OUT they go to benchmarks/results/gpu/. The call is cut at CALL_SECONDS
# (default 540, under the tool's 600 s less the 20 s grace of `timeout --kill-after`), shared
# fairly among the stages named, so that a call ends, and its files come back, inside the limit.
set -uo pipefail
PY=${PYTHON:-python3}  # on the device machine python3 is the interpreter with jax, flax and torch
[[ $PY == */* && $PY != /* ]] && PY="$PWD/$PY"  # a relative path must work from / too (importable)
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu}
WORK=${WORK:-${TMPDIR:-/tmp}/jaxnn-gpu}
CALL_SECONDS=${CALL_SECONDS:-540}
export PYTHONUNBUFFERED=1  # a step cut at its limit still has its output in the log

# jaxnn importable from anywhere (benchmarks/*.py run with benchmarks/ as their path, not the
# repository root), and `jaxnn` on the PATH. The device machine has no network: pip builds in
# this environment without looking for an index (it needs setuptools >= 77, for pyproject's SPDX
# `license`), and if that fails jaxnn runs from the source tree (PYTHONPATH, `python -m jaxnn`).
importable() { (cd / && "$PY" -c "import jaxnn, manual_grad" 2>/dev/null); }
installed() {
  mkdir -p "$OUT" "$WORK"
  importable \
    || timeout 120 "$PY" -m pip install --quiet --no-deps --no-index --no-build-isolation -e . \
         >"$OUT/pip.log" 2>&1 \
    || echo "# pip could not install jaxnn (see $OUT/pip.log): running it from the source tree"
  importable || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  if command -v jaxnn >/dev/null && importable; then JAXNN=(jaxnn); else JAXNN=("$PY" -m jaxnn); fi
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
import platform, jax, jaxlib, optax, numpy
print("python", platform.python_version(), "jax", jax.__version__, "jaxlib", jaxlib.__version__,
      "optax", optax.__version__, "numpy", numpy.__version__)
print("devices", jax.devices())
# flax.nnx: the throughput stage's nnx.jit baseline (a broken flax shows here, not there)
for name in ("flax.nnx", "torch", "tqdm", "matplotlib", "orbax.checkpoint", "hypothesis"):
    try:
        module = __import__(name, fromlist=["_"])
        top = __import__(name.split(".")[0])
        print(name, getattr(module, "__version__", getattr(top, "__version__", "?")))
    except Exception as e:  # a version clash can raise more than ImportError
        print(name, "missing or broken:", type(e).__name__, e)
PY
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  run "train 1 epoch" 120 "${JAXNN[@]}" train --epochs 1 --no-progress --out "$dir/train-ch1"
  run "train ch6-relu 1 epoch" 180 "${JAXNN[@]}" train --preset ch6-relu --epochs 1 --no-progress \
    --out "$dir/train-ch6-relu"
  run "compare" 60 "${JAXNN[@]}" compare
  run "speedrun --quick" 120 "${JAXNN[@]}" speedrun --quick --json "$dir/speedrun-quick.json"
  if "$PY" -c "import pytest, hypothesis" 2>/dev/null; then
    run "tests on the GPU" "$(left)" "$PY" -m pytest -v -p no:cacheprovider tests/test_speedrun.py \
      tests/test_train.py
  else
    echo "## tests on the GPU: skipped, pytest or hypothesis is not installed"
  fi
}

stage_speedrun() {
  run "speedrun cold/warm" "$(left)" "$PY" benchmarks/speedrun.py --json "$dir/speedrun.json"
}

stage_throughput() {
  run "softmax rule" 90 "$PY" benchmarks/softmax_rule.py --json "$dir/softmax_rule.json"
  run "seeds" 90 "$PY" benchmarks/seeds.py --json "$dir/seeds.json"
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
  # One `jaxnn train` run per row, checkpointed every 2 epochs, so a row cut at the call's limit
  # comes back in ch6.tar.gz with its finished epochs and checkpoints, and a later call goes on
  # with it: CH6_RESUME=DIR names the ch6/ folder of an earlier ch6.tar.gz (carried to the
  # machine with the device tool's `carry`). A row already finished there is only copied.
  # CH6_PRESETS and CH6_FLAGS (flags for a fresh run) are for dry runs on a small machine.
  local preset prior
  for preset in ${CH6_PRESETS:-ch6-expanded ch6-fc300 ch6-fc1000 ch6-2fc ch6-2fc300 ch6-2fc1000}; do
    prior=${CH6_RESUME:+$CH6_RESUME/$preset}
    if [ -n "$prior" ] && [ -f "$prior/summary.json" ]; then
      cp -r "$prior" "$dir/$preset" && echo "## $preset: finished in $prior (copied)"
    elif [ -n "$prior" ] && compgen -G "$prior/checkpoints/[0-9]*" >/dev/null; then
      cp -r "$prior" "$dir/$preset"
      run "$preset (resumed)" "$(left)" "${JAXNN[@]}" train --resume "$dir/$preset" --no-progress
    else
      # shellcheck disable=SC2086  # CH6_FLAGS is a list of flags
      run "$preset" "$(left)" "${JAXNN[@]}" train --preset "$preset" --checkpoint-every 2 \
        --no-progress --out "$dir/$preset" ${CH6_FLAGS:-}
    fi
  done
}

stage_ensemble() {
  # The reproduction's --out is $dir/reproduce; ENSEMBLE_RESUME=DIR names the ensemble/ folder of
  # an earlier ensemble.tar.gz (carried to the machine): its reproduce/ is copied there, and the
  # same command keeps the members that finished and takes up the one that was cut.
  if [ -n "${ENSEMBLE_RESUME:-}" ] && [ -d "$ENSEMBLE_RESUME/reproduce" ]; then
    cp -r "$ENSEMBLE_RESUME/reproduce" "$dir/" && echo "## resuming from $ENSEMBLE_RESUME"
  fi
  # shellcheck disable=SC2086  # ENSEMBLE_FLAGS is a list of flags (dry runs: --quick)
  run "ch6-ensemble" "$(left)" "${JAXNN[@]}" reproduce ch6-ensemble --runs 1 --checkpoint-every 2 \
    --no-progress --no-gradient-norms --out "$dir/reproduce" ${ENSEMBLE_FLAGS:-}
}

[ $# -gt 0 ] || { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2; }
for stage in "$@"; do
  declare -F "stage_$stage" >/dev/null || { echo "unknown stage: $stage" >&2; exit 2; }
done
installed || { echo "jaxnn cannot be imported, installed or from the source tree" >&2; exit 1; }
echo "# jaxnn: $(cd / && "$PY" -c 'import jaxnn; print(jaxnn.__file__)'); command: ${JAXNN[*]}"
stages_left=$#
for stage in "$@"; do
  dir="$WORK/$stage"
  rm -rf "$dir" && mkdir -p "$dir"  # a stage run again starts afresh (jaxnn train keeps old runs)
  stage_start=$SECONDS
  stage_seconds=$(( (CALL_SECONDS - 15 - SECONDS) / stages_left ))  # 15 s kept for the archives
  stages_left=$((stages_left - 1))
  echo "# stage $stage: ${stage_seconds} s" | tee "$OUT/$stage.log"
  "stage_$stage" 2>&1 | tee -a "$OUT/$stage.log"
  tar -czf "$OUT/$stage.tar.gz" -C "$WORK" "$stage" && echo "# wrote $OUT/$stage.tar.gz"
done
