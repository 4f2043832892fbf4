"""``jaxnn train --distributed`` with two real processes on one machine (CPU, gloo collectives).

Each test launches two ``python -m jaxnn train --distributed --devices all`` processes with
``JAX_COORDINATOR_ADDRESS=127.0.0.1:<free port>``, ``JAX_NUM_PROCESSES=2``, ``JAX_PROCESS_ID=i``
and two forced CPU devices each, so the mesh spans 4 devices in 2 processes. Only process 0
writes the run directory and prints; both run the same data-parallel program, which must
train exactly like one process on one device (the gradient all-reduce only reorders the
additions, so costs agree to float tolerance and accuracies exactly).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxnn.cli import main

# Small and fast: 2000 training images, 2000 validation/test images, m = 64 (divides by 4).
SETTINGS = ["--mini-batch-size", "64", "--train-size", "2000", "--eval-size", "2000",
            "--no-progress"]
PROCESSES = 2
TIMEOUT_S = 150  # per launch of both processes; a run here takes about 15 s
GRACE_S = 30  # how long one process may outlive the other's exit
# What the coordinator (process 0) prints when its port was taken meanwhile; it then hangs.
PORT_CLASH = ("failed to add port", "address already in use")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(port: int, process_id: int) -> dict:
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(PROCESSES),
               JAX_PROCESS_ID=str(process_id), JAXNN_CACHE_DIR="")
    env.pop("JAX_ENABLE_X64", None)
    return env


class Launch:
    """The two processes of one run: return codes and what each printed."""

    def __init__(self, codes, outs, errs):
        self.codes, self.outs, self.errs = codes, outs, errs

    def tails(self) -> str:
        return "\n".join(
            f"--- process {i} (exit {c}) stdout:\n{o[-1500:]}\n--- stderr:\n{e[-2500:]}"
            for i, (c, o, e) in enumerate(zip(self.codes, self.outs, self.errs)))

    def assert_ok(self):
        assert self.codes == [0] * PROCESSES, "a process failed:\n" + self.tails()


def _launch_once(args, cwd: Path, log_dir: Path, per_process=None) -> Launch | None:
    """Both processes to the end, or None when the coordinator could not bind its port."""
    port = _free_port()
    procs, logs = [], []
    try:
        for i in range(PROCESSES):
            extra = per_process[i] if per_process else []
            out, err = log_dir / f"p{i}.out", log_dir / f"p{i}.err"
            logs.append((out, err))
            with open(out, "w") as o, open(err, "w") as e:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "jaxnn", "train", "--distributed", "--devices", "all",
                     *args, *extra],
                    cwd=cwd, env=_env(port, i), stdout=o, stderr=e, text=True))
        deadline = time.monotonic() + TIMEOUT_S
        first_exit = None
        while True:
            codes = [p.poll() for p in procs]
            now = time.monotonic()
            if None not in codes:
                break
            errs = [err.read_text(errors="replace").lower() for _, err in logs]
            if any(marker in e for e in errs for marker in PORT_CLASH):
                return None  # (the finally kills both)
            if first_exit is None and any(c is not None for c in codes):
                first_exit = now
            # One process gone and the other still running after GRACE_S: it waits for a
            # partner that will never come; stop it rather than wait for JAX's timeouts.
            if now > deadline or (first_exit is not None and now - first_exit > GRACE_S):
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                codes = [p.wait() for p in procs]
                launch = Launch(codes, *_read(logs))
                pytest.fail(f"two-process run did not finish (limit {TIMEOUT_S} s, or "
                            f"{GRACE_S} s after the first exit):\n{launch.tails()}")
            time.sleep(0.2)
        return Launch(codes, *_read(logs))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _read(logs):
    return ([out.read_text(errors="replace") for out, _ in logs],
            [err.read_text(errors="replace") for _, err in logs])


def launch(args, cwd: Path, *, per_process=None, tries: int = 3) -> Launch:
    """Run both processes; a coordinator port taken between choosing and binding it (another
    job on the machine) is retried with a new port. Any other failure is returned as it is."""
    log_dir = cwd.parent / f"{cwd.name}-logs"
    log_dir.mkdir(exist_ok=True)
    for _ in range(tries):
        result = _launch_once(args, cwd, log_dir, per_process)
        if result is not None:
            return result
    pytest.fail(f"the coordinator could not bind a free port in {tries} tries; last stderr:\n"
                + "\n".join(_read([(log_dir / f"p{i}.out", log_dir / f"p{i}.err")
                                    for i in range(PROCESSES)])[1]))


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_training(actual: list[dict], expected: list[dict], where: str):
    """Same epochs; accuracies equal; training cost equal to float32 tolerance."""
    assert [r["epoch"] for r in actual] == [r["epoch"] for r in expected], where
    for a, e in zip(actual, expected):
        for key in ("train_accuracy", "validation_accuracy", "test_accuracy"):
            assert a[key] == e[key], f"{where}: epoch {e['epoch']} {key} {a[key]} != {e[key]}"
        np.testing.assert_allclose(a["train_cost"], e["train_cost"], rtol=1e-5,
                                   err_msg=f"{where}: epoch {e['epoch']} train_cost")


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> list[dict]:
    """The same settings, 3 epochs, one process on one device (in this test process)."""
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["train", *SETTINGS, "--epochs", "3", "--out", str(out)]) == 0
    return rows(out)


def _epoch_lines(text: str) -> list[str]:
    return re.findall(r"^Epoch \d+: \d+ / \d+$", text, flags=re.M)


def test_two_processes_train_like_one_and_process_0_writes(tmp_path, single):
    work = tmp_path / "work"
    work.mkdir()
    run = launch([*SETTINGS, "--epochs", "2", "--out", "shared"], work)
    run.assert_ok()
    out = work / "shared"
    assert sorted(p.name for p in work.iterdir()) == ["shared"], run.tails()  # no runs/
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "curves.png", "metrics.jsonl", "options.json", "summary.json"]
    written = rows(out)  # one line per epoch: written once, not by both processes
    assert_same_training(written, single[:2], "2 processes vs 1")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["devices"] == 4 and summary["epochs"] == 2
    assert _epoch_lines(run.outs[0]) == [  # the book's line, printed once per epoch
        f"Epoch {r['epoch']}: {round(r['test_accuracy'] * 2000)} / 2000" for r in single[:2]]
    assert "peak test accuracy" in run.outs[0]
    assert _epoch_lines(run.outs[1]) == [] and "peak test accuracy" not in run.outs[1]
    assert "process 1 of 2 trains; process 0 writes the run directory shared" in run.outs[1]


def test_checkpoint_and_resume_in_two_processes_in_one_agreed_run_dir(tmp_path, single):
    work = tmp_path / "work"
    work.mkdir()
    first = launch([*SETTINGS, "--epochs", "2", "--checkpoint-every", "1"], work)
    first.assert_ok()
    made = list((work / "runs").iterdir())
    assert len(made) == 1, f"the processes made {made}:\n{first.tails()}"  # one agreed name
    run_dir = made[0]
    assert f"process 0 writes the run directory runs/{run_dir.name} " in first.outs[1]
    assert f"-> runs/{run_dir.name}" in first.outs[0]
    assert sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir()
                  if p.name.isdigit()) == [1, 2]
    assert_same_training(rows(run_dir), single[:2], "2 processes with checkpoints vs 1")

    second = launch([*SETTINGS[-1:], "--resume", f"runs/{run_dir.name}", "--epochs", "3"], work)
    second.assert_ok()
    assert [p.name for p in (work / "runs").iterdir()] == [run_dir.name]
    assert f"resuming runs/{run_dir.name} after 2 epochs" in second.outs[0]
    assert "resuming" not in second.outs[1]
    assert [int(x) for x in re.findall(r"^Epoch (\d+):", second.outs[0], flags=re.M)] == [2]
    assert _epoch_lines(second.outs[1]) == []
    assert_same_training(rows(run_dir), single, "2-process resume vs 1 process, 3 epochs")
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 3
    assert 3 in {int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()}


CNN = ["--preset", "ch6-conv1", "--batch-norm", "--dropout", "0.5", "--eta", "0.03",
       "--mini-batch-size", "16", "--train-size", "320", "--eval-size", "200", "--epochs", "2",
       "--no-progress", "--monitor-training"]  # the training cost, compared to float32 rounding


def test_cnn_with_batch_norm_and_dropout_in_two_processes_trains_like_one(tmp_path):
    """The chapter-6 CNN with batch norm and dropout, 2 processes x 2 devices: the batch
    statistics span the 4 devices of both processes and the dropout masks do not depend on the
    split, so it trains as one process on one device does (to float32 rounding)."""
    out = tmp_path / "single"
    assert main(["train", *CNN, "--out", str(out)]) == 0
    work = tmp_path / "work"
    work.mkdir()
    run = launch([*CNN, "--out", "shared"], work)
    run.assert_ok()
    assert_same_training(rows(work / "shared"), rows(out), "CNN: 2 processes vs 1")


@pytest.mark.parametrize("case", ["no shared directory", "devices of one process"])
def test_refused_settings_stop_both_processes(tmp_path, case):
    """Both processes stop at once with the same one-line error (exit code 2), instead of one
    waiting for the other. Process 1 given another --out stands for a host that does not see
    process 0's disk (orbax would write the checkpoints only where process 0 sees them);
    ``--devices 2`` would make a mesh of process 0's two devices only."""
    work = tmp_path / "work"
    work.mkdir()
    if case == "no shared directory":
        args = [*SETTINGS, "--epochs", "1", "--checkpoint-every", "1"]
        per_process = [["--out", "host0"], ["--out", "host1"]]
        message = "on a file system shared by all processes; process(es) [1] do not see"
    else:
        args, per_process = [*SETTINGS, "--epochs", "1", "--devices", "2", "--out", "o"], None
        message = "devices: with 2 processes, expected 'all' (the 4 devices of every process)"
    run = launch(args, work, per_process=per_process)
    assert run.codes == [2, 2], run.tails()
    for err in run.errs:
        assert message in err, run.tails()
    assert not (work / "host1").exists() and not (work / "o").exists()  # 1 writes nothing
    assert not (work / "host0" / "metrics.jsonl").exists()
    if case == "no shared directory":  # process 1 names process 0's directory, not its own
        assert "process 0 writes the run directory host0 " in run.outs[1], run.tails()


def test_one_process_helpers_do_nothing(tmp_path):
    """Without --distributed the helpers cost nothing and change nothing: the single-process
    path of ``jaxnn train`` is the one it always was."""
    from jaxnn import parallel

    assert parallel.process_count() == 1 and parallel.process_index() == 0
    assert parallel.is_primary()
    assert parallel.broadcast_text("runs/20261123-040432-ch1-30") == "runs/20261123-040432-ch1-30"
    assert parallel.all_processes(False) == [False]
    parallel.barrier("nothing to wait for")
    parallel.check_shared_directory(tmp_path / "does-not-exist")  # no probe, no error
    assert list(tmp_path.iterdir()) == []
