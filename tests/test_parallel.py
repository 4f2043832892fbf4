"""jaxnn.parallel: the sharded epoch equals the single-device epoch; bad device counts and
indivisible mini-batches fail early; the command line's --devices and compilation cache.

The pytest process has one CPU device and JAX is already initialized, so the 8-device checks run
in a subprocess (tests/parallel_check.py) with XLA_FLAGS=--xla_force_host_platform_device_count=8
set before JAX starts; the tests assert on the JSON it prints.
"""

import fcntl
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxnn import parallel
from jaxnn.cli import main, runtime

HERE = Path(__file__).parent


def _env(**extra) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **extra}
    env.pop("XLA_FLAGS", None)
    return env


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
    """The JSON of tests/parallel_check.py with 8 devices (most of a minute), computed once per
    test session: under pytest-xdist the first worker to ask runs it and writes the result to
    the session's shared temporary directory, under a lock, and the other reads it. (xdist's
    ``--dist loadgroup`` would keep the tests on one worker instead, but pytest 9.2 ignores the
    group: pytest-xdist issue #1386.)"""

    def compute() -> str:
        out = subprocess.run([sys.executable, str(HERE / "parallel_check.py"), "8"],
                             capture_output=True, text=True, env=_env(), timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.strip().splitlines()[-1]

    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process: nothing to share
        return json.loads(compute())
    shared = tmp_path_factory.getbasetemp().parent  # this session's, common to its workers
    result = shared / "eight_devices.json"
    with open(shared / "eight_devices.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not result.is_file():
            result.write_text(compute())
    return json.loads(result.read_text())


def test_subprocess_sees_eight_devices(eight_devices):
    assert eight_devices["device_count"] == 8


@pytest.mark.parametrize("case", [0, 1], ids=["n1000-data-split", "n1003-data-replicated"])
def test_sharded_epoch_equals_single_device_epoch(eight_devices, case):
    """Two epochs (momentum, L2, softmax + log-likelihood) in float64: only the order of the
    additions differs, so parameters and optimizer state agree to ~1e-14 of their scale."""
    r = eight_devices["cases"][case]
    assert r["dtype"] == "float64"
    assert r["param_max_rel_diff"] < 1e-10, r
    assert r["opt_state_max_rel_diff"] < 1e-10, r
    assert r["params_moved_least"] > 1e-4, "every parameter leaf should have trained"
    assert r["params_replicated"], "parameters must stay replicated on all 8 devices"
    assert r["all_reduce_in_hlo"], "the compiled epoch should all-reduce the gradient"
    assert r["data_sharded"] == (r["n"] % 8 == 0)


@pytest.mark.parametrize("loop", ["scan", "host"])
def test_sharded_cnn_epoch_equals_single_device_epoch(eight_devices, loop):
    """A CNN with batch norm and dropout, two epochs of Adam in float64, both loops: the
    batch statistics span the whole mini-batch across the devices and the dropout masks do not
    depend on the split, so parameters, optimizer state and running statistics agree to ~1e-15."""
    r = next(c for c in eight_devices["cnn_cases"] if c["loop"] == loop)
    assert r["dtype"] == "float64"
    assert {"BatchNorm", "Dropout", "Conv", "Pool"} <= set(r["spec"]), r["spec"]
    assert r["param_max_rel_diff"] < 1e-10, r
    assert r["opt_state_max_rel_diff"] < 1e-10, r
    assert r["batch_stats_max_rel_diff"] < 1e-10, r
    assert r["batch_stats_moved"] > 1e-3, "training should update the running statistics"
    assert r["params_moved_least"] > 1e-4, "every parameter leaf should have trained"
    assert r["params_replicated"], "parameters must stay replicated on all 8 devices"


def test_sharded_host_loop_epoch_is_a_host_loop(eight_devices):
    """``parallel.make_epoch(loop="host")`` builds the host loop (one jitted step per
    mini-batch), not the scan: only the host loop's epoch has ``steps_per_epoch`` (6 for 96
    images in mini-batches of 16). The comparison above cannot tell, as both loops give the same
    numbers."""
    loops = {c["loop"]: c["steps_per_epoch"] for c in eight_devices["cnn_cases"]}
    assert loops == {"scan": None, "host": 6}, loops


def test_indivisible_mini_batch_is_a_clear_error(eight_devices):
    msg = eight_devices["indivisible_error"]
    assert msg is not None, "mini_batch_size 10 on 8 devices must be refused"
    assert msg.startswith("mini_batch_size:") and "8 devices" in msg and "got 10" in msg


_INDIVISIBLE_RUN = """
import json
from jaxnn import experiment
config = experiment.TrainConfig.from_preset("ch1-30", epochs=1, train_size=60, eval_size=30,
                                            mini_batch_size=3)
try:
    experiment.run(config, progress=False, devices=2)
    print(json.dumps({"error": None}))
except ValueError as e:
    print(json.dumps({"error": str(e)}))
"""


def test_library_run_refuses_an_indivisible_mini_batch():
    """``experiment.run(config, devices=2)`` with mini-batches of 3, in a fresh process with two
    devices: a ValueError naming the argument and the device count, before training (the
    command line checks this itself, so only the library path pins the Trainer's check)."""
    env = {**_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run([sys.executable, "-c", _INDIVISIBLE_RUN], capture_output=True,
                         text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    msg = json.loads(out.stdout.strip().splitlines()[-1])["error"]
    assert msg is not None, "mini_batch_size 3 on 2 devices must be refused"
    assert msg.startswith("mini_batch_size: expected a multiple of the 2 devices"), msg
    assert "got 3" in msg, msg


def test_device_count_checks():
    assert parallel.device_count("all") == jax.device_count()
    assert parallel.device_count(None) == jax.device_count()
    assert parallel.device_count("1") == 1
    with pytest.raises(ValueError, match="devices: expected at most"):
        parallel.device_count(jax.device_count() + 1)
    with pytest.raises(ValueError, match="devices: expected a positive integer or 'all'"):
        parallel.device_count("many")
    with pytest.raises(ValueError, match="devices"):
        parallel.device_count(0)


def test_check_divisible_names_the_argument():
    assert parallel.check_divisible("mini_batch_size", 16, 8) == 16
    with pytest.raises(ValueError, match=r"mini_batch_size: .*4 devices.*got 10"):
        parallel.check_divisible("mini_batch_size", 10, 4)


def test_cli_devices_errors_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--devices", "64", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "devices: expected at most" in err and not out.exists()


def test_speedrun_has_no_distributed_flag(capsys):
    """The speed run is a one-device benchmark; only ``jaxnn train`` runs in several processes."""
    with pytest.raises(SystemExit) as e:
        main(["speedrun", "--distributed", "--quick"])
    assert e.value.code == 2
    assert "unrecognized arguments: --distributed" in capsys.readouterr().err


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert runtime.cache_dir() == tmp_path / "jaxnn" / "jax-cache"
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "env"))
    assert runtime.cache_dir() == tmp_path / "env"
    assert runtime.cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert runtime.cache_dir("") is None
    assert runtime.cache_dir(str(tmp_path / "flag"), disabled=True) is None
    monkeypatch.setenv(runtime.CACHE_ENV, "")
    assert runtime.cache_dir() is None


def test_suite_runs_with_the_cache_off():
    assert os.environ.get(runtime.CACHE_ENV) == ""
    assert runtime.cache_dir() is None


def test_second_run_reads_the_compilation_cache(tmp_path):
    """Two identical runs in fresh processes: the first writes the cache, the second adds
    nothing: JAX's own log (JAX_LOG_COMPILES, JAX_EXPLAIN_CACHE_MISSES) shows it reading the
    epoch program from the cache, and no program missing it."""
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "jaxnn", "train", "--epochs", "1", "--train-size", "500",
           "--no-progress", "--cache-dir", str(cache)]
    first = subprocess.run([*cmd, "--out", str(tmp_path / "a")], capture_output=True,
                           text=True, env=_env(), timeout=240)
    assert first.returncode == 0, first.stderr[-3000:]
    written = sorted(p.name for p in cache.iterdir())
    assert written, "the first run should write compiled programs to the cache"
    second = subprocess.run([*cmd, "--out", str(tmp_path / "b")], capture_output=True,
                            text=True, timeout=240,
                            env=_env(JAX_LOG_COMPILES="1", JAX_EXPLAIN_CACHE_MISSES="1"))
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(p.name for p in cache.iterdir()) == written
    hits = re.findall(r"Persistent compilation cache hit for '(\w+)'", second.stderr)
    assert "jit_epoch" in hits, second.stderr[-3000:]
    assert "PERSISTENT COMPILATION CACHE MISS" not in second.stderr, second.stderr[-3000:]


def test_ensemble_members_train_data_parallel(eight_devices):
    """--ensemble with --devices: each member trains over the 8 devices, as on one (float32:
    the same majority-vote accuracy, member costs to rounding)."""
    r = eight_devices["ensemble"]
    one, many = r["ensemble_test_accuracy"]
    assert one == many and one > 0.3, r  # trained (chance is 0.1), and the same vote
    np.testing.assert_allclose(r["member_train_costs"][1], r["member_train_costs"][0], rtol=1e-4)


def test_cli_host_loop_over_two_devices_trains_like_one(tmp_path):
    """`--devices 2 --loop host` from the command line, in a fresh process with two devices,
    against one device: the same accuracies. (Stepping with slices taken by iterating the
    sharded index matrix left the step's all-reduce waiting for a device that never came.)"""
    cmd = [sys.executable, "-m", "jaxnn", "train", "--epochs", "2", "--train-size", "1000",
           "--eval-size", "300", "--loop", "host", "--no-progress"]
    env = {**_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    summaries = []
    for devices in ("1", "2"):
        out = tmp_path / f"d{devices}"
        run = subprocess.run([*cmd, "--devices", devices, "--out", str(out)],
                             capture_output=True, text=True, env=env, timeout=240)
        assert run.returncode == 0, run.stderr[-3000:]
        summaries.append(json.loads((out / "summary.json").read_text()))
    assert summaries[1]["devices"] == 2
    for key in ("peak_test_accuracy", "best_validation_accuracy"):
        assert summaries[0][key] == pytest.approx(summaries[1][key], abs=2 / 300), key
