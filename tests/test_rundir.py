"""The run directory of ``jaxnn train``: a new run never mixes with an old one, a run that fails
before its first epoch leaves nothing behind, and what the directory's files say is unambiguous
(ensemble members, early stopping, resume messages)."""

import json
import os
import subprocess
import sys

import pytest

from jaxnn.cli import main

TINY = ["--train-size", "200", "--eval-size", "100", "--no-progress"]


def _steps(run_dir) -> list[int]:
    return sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())


def test_a_new_run_into_a_run_directory_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "4", "--checkpoint-every", "2",
                 "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()

    # Without --overwrite: refused before anything is touched.
    assert main(["train", *TINY, "--epochs", "2", "--checkpoint-every", "1", "--seed", "5",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"out: expected a new or empty run directory; {out} holds a run (config.json" in err
    assert f"--resume {out}" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert _steps(out) == [2, 4]

    # With --overwrite: the old run's files are gone, checkpoints included, so a resume
    # continues the new run and not the old one's epoch 4.
    assert main(["train", *TINY, "--epochs", "2", "--checkpoint-every", "1", "--seed", "5",
                 "--out", str(out), "--overwrite"]) == 0
    assert _steps(out) == [1, 2]
    assert json.loads((out / "config.json").read_text())["seed"] == 5
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"resuming {out} after 2 epochs (the next is epoch 2;" in printed
    assert [json.loads(line)["epoch"] for line in
            (out / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]


def test_overwrite_is_refused_with_resume(tmp_path, capsys):
    assert main(["train", *TINY, "--resume", str(tmp_path), "--overwrite"]) == 2
    assert "overwrite: expected a new run (--out); got --resume" in capsys.readouterr().err


def test_a_directory_without_a_run_is_used_and_a_failed_run_leaves_nothing(tmp_path, capsys):
    # An existing directory holding no run is fine (its other files are left alone) ...
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    # ... and a run that fails before its first epoch removes only what it wrote there.
    assert main(["train", "--train-size", "70000", "--epochs", "1", "--no-progress",
                 "--out", str(mine)]) == 2
    assert "--train-size: expected at most the 50000 training examples of mnist; got 70000" in (
        capsys.readouterr().err)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # A new --out directory that a failed run made is removed altogether.
    new = tmp_path / "new"
    assert main(["train", "--train-size", "70000", "--epochs", "1", "--no-progress",
                 "--out", str(new)]) == 2
    assert not new.exists()
    assert main(["train", *TINY, "--epochs", "1", "--out", str(mine)]) == 0
    assert (mine / "notes.txt").read_text() == "mine" and (mine / "summary.json").is_file()


def test_ensemble_metrics_name_the_member_of_each_line(tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["train", *TINY, "--epochs", "2", "--ensemble", "2", "--seed", "3",
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["member"], r["seed"], r["epoch"]) for r in rows] == [
        (0, 3, 0), (0, 3, 1), (1, 4, 0), (1, 4, 1)]
    printed = capsys.readouterr().out
    assert f"Epoch 1: {round(100 * rows[3]['test_accuracy'])} / 100 (member 1, seed 4)" in printed


def test_early_stopping_is_reported_and_recorded(tmp_path, capsys):
    out = tmp_path / "early"
    # so small an eta leaves every prediction as it is: validation accuracy never improves
    assert main(["train", *TINY, "--epochs", "10", "--eta", "1e-12", "--patience", "2",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["early_stopped_after_epoch"] == 2 and summary["epochs"] == 3
    assert ("early stopping: no better validation accuracy in 2 epochs; stopped after epoch 2"
            in capsys.readouterr().out)


def test_an_early_stopped_run_is_checkpointed_where_it_stopped_and_not_resumed(tmp_path,
                                                                              capsys):
    out = tmp_path / "early"
    # validation accuracy never improves (eta 1e-12): stops after epoch 1, before the first
    # checkpoint every 3 epochs would fall; the epoch it stopped at is saved all the same
    assert main(["train", *TINY, "--epochs", "30", "--eta", "1e-12", "--patience", "1",
                 "--checkpoint-every", "3", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["early_stopped_after_epoch"] == 1
    assert _steps(out) == [2]
    capsys.readouterr()
    assert main(["train", *TINY, "--out", str(out)]) == 2
    assert ("it stopped early after epoch 1 (--patience); pass --overwrite to replace it"
            in capsys.readouterr().err)
    for more in ([], ["--epochs", "40"]):
        assert main(["train", "--resume", str(out), *more]) == 2
        assert capsys.readouterr().err.strip() == (
            f"jaxnn train: error: --resume: {out} stopped early after epoch 1: no better "
            "validation accuracy in 1 epoch (--patience), so it trains no further")


def test_a_resumed_run_stops_early_where_an_uninterrupted_one_does(tmp_path, capsys,
                                                                   monkeypatch):
    """The early stopper's best and patience so far come back with the history: interrupted
    between its best epoch and its stop, a resumed run stops at the same epoch."""
    args = [*TINY, "--epochs", "30", "--eta", "10", "--patience", "2"]
    straight = tmp_path / "straight"
    assert main(["train", *args, "--out", str(straight)]) == 0
    summary = json.loads((straight / "summary.json").read_text())
    stop, best = summary["early_stopped_after_epoch"], summary["best_validation_epoch"]
    assert stop == best + 2 and stop < 29
    resumed = tmp_path / "resumed"
    _interrupt_after(monkeypatch, best + 1)  # one epoch without improvement behind it
    assert main(["train", *args, "--checkpoint-every", "1", "--out", str(resumed)]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--resume", str(resumed), "--no-progress"]) == 0
    assert f"stopped after epoch {stop}" in capsys.readouterr().out

    def lines(run):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert lines(resumed) == lines(straight)
    assert _steps(resumed)[-1] == stop + 1


def test_a_scheduled_run_is_resumed_only_to_its_own_epochs(tmp_path, capsys, monkeypatch):
    """A cosine schedule spans the run's epochs: resuming with other --epochs would jump its
    learning rate, so it is refused; a run that finished its schedule trains no further."""
    out = tmp_path / "cosine"
    _interrupt_after(monkeypatch, 0)
    assert main(["train", *TINY, "--epochs", "3", "--schedule", "cosine",
                 "--checkpoint-every", "1", "--out", str(out)]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "6"]) == 2
    assert ("--epochs: the run's cosine learning-rate schedule spans its 3 epochs"
            in capsys.readouterr().err)
    assert main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "6"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"jaxnn train: error: --resume: {out} has finished its 3 epochs, and its cosine "
        "learning-rate schedule with them, so it trains no further")
    assert main(["train", *TINY, "--out", str(out)]) == 2
    assert ("it finished its 3 epochs and its learning-rate schedule; pass --overwrite"
            in capsys.readouterr().err)


def test_a_resume_that_fails_leaves_the_run_directory_as_it_was(tmp_path, capsys):
    out = tmp_path / "plain"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "5", "--on-nan", "skip"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"jaxnn train: error: --resume: {out} has no checkpoint to continue from (a run "
        "writes them with --checkpoint-every N)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_distributed_without_a_cluster_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    out = subprocess.run([sys.executable, "-c", "from jaxnn import parallel; "
                          "parallel.initialize_distributed()"],
                         capture_output=True, text=True, env={**env, "JAX_PLATFORMS": "cpu"},
                         timeout=120)
    assert out.returncode != 0
    assert "ValueError: distributed: " in out.stderr
    assert "set JAX_COORDINATOR_ADDRESS=host:port" in out.stderr


DIVERGE = ["--train-size", "2000", "--epochs", "2", "--activation", "relu", "--output",
           "identity", "--init", "he", "--eta", "10", "--no-progress"]


def test_a_divergence_in_the_first_epoch_leaves_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *DIVERGE]) == 3
    assert "training diverged" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # runs/ was made for this run: it goes too
    mine = tmp_path / "mine"  # a directory of the user's: only our files go
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["train", *DIVERGE, "--out", str(mine)]) == 3
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_a_divergence_after_an_epoch_keeps_the_run(tmp_path, capsys, monkeypatch):
    """docs/reliability.md: metrics.jsonl holds the good epochs; the run stays."""
    from jaxnn import experiment
    from jaxnn.train import Diverged

    real_run = experiment.run

    def diverge_in_epoch_1(config, *, callbacks=(), **kwargs):
        def after_epoch_0(record, state):
            if record["epoch"] == 1:
                raise Diverged(1, 3, config.eta)
            for callback in callbacks:
                callback(record, state)
        return real_run(config, callbacks=[after_epoch_0], **kwargs)

    monkeypatch.setattr(experiment, "run", diverge_in_epoch_1)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(out)]) == 3
    assert "training diverged" in capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0]
    assert (out / "config.json").is_file()


@pytest.mark.parametrize("text, what", [("", "not valid JSON"), ("[1]", "not a JSON object"),
                                        ('"on_nan"', "not a JSON object")])
def test_a_corrupt_options_json_is_named_on_resume(tmp_path, capsys, text, what):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--epochs", "1", "--checkpoint-every", "1",
                 "--out", str(out)]) == 0
    (out / "options.json").write_text(text)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{out / 'options.json'} is {what}" in err and "\n" not in err, err
    # the run is neither removed nor rewritten (config.json keeps its 1 epoch)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_jax_num_processes_that_is_not_a_number_is_named(monkeypatch):
    import pytest

    from jaxnn import parallel

    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES: expected an integer; got 'two'"):
        parallel.initialize_distributed()
    monkeypatch.delenv("JAX_NUM_PROCESSES")
    monkeypatch.setenv("JAX_PROCESS_ID", "x")
    with pytest.raises(ValueError, match="JAX_PROCESS_ID: expected an integer; got 'x'"):
        parallel.initialize_distributed()


def _interrupt_after(monkeypatch, epoch: int | None) -> None:
    """Ctrl-C in `jaxnn train`: after epoch ``epoch`` (numbered from 0), or before the first
    epoch ends (None)."""
    from jaxnn import experiment

    real = experiment.run

    def run(config, **kwargs):
        if epoch is None:
            raise KeyboardInterrupt

        def ctrl_c(record, state):
            if record["epoch"] == epoch:
                raise KeyboardInterrupt

        return real(config, **{**kwargs, "callbacks": [*kwargs["callbacks"], ctrl_c]})

    monkeypatch.setattr(experiment, "run", run)


def test_ctrl_c_says_how_to_go_on_and_the_advice_works(tmp_path, capsys, monkeypatch):
    # With checkpoints: --resume is the way on, and it goes on to the end.
    out = tmp_path / "ckpt"
    _interrupt_after(monkeypatch, 1)
    assert main(["train", *TINY, "--epochs", "3", "--checkpoint-every", "1",
                 "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (f"jaxnn train: interrupted; {out} holds a checkpoint after 2 epochs: "
                   f"continue with jaxnn train --resume {out}"), err
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3

    # Finished: resuming again trains nothing, and says so instead of pretending to resume;
    # a new run into the directory is refused with the advice that works.
    capsys.readouterr()
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    assert (f"it finished its 3 epochs; train it on with --resume {out} --epochs N (N > 3), or "
            "pass --overwrite") in capsys.readouterr().err
    assert main(["train", "--resume", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"jaxnn train: error: --resume: {out} has finished its 3 epochs; pass "
                   "--epochs N with N > 3 to train on"), err

    # Without checkpoints: no --resume advice, here or when the directory is used again.
    out = tmp_path / "plain"
    _interrupt_after(monkeypatch, 0)
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (f"jaxnn train: interrupted; {out / 'metrics.jsonl'} holds 1 epoch, but "
                   "there is no checkpoint to continue from (--checkpoint-every N makes a run "
                   "resumable); --overwrite replaces it"), err
    monkeypatch.undo()
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--resume" not in err and "no checkpoint to continue from, so pass --overwrite" in err
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out), "--overwrite"]) == 0

    # Checkpointed every 5 epochs, stopped after 2: no checkpoint yet, and the message says why.
    out = tmp_path / "sparse"
    _interrupt_after(monkeypatch, 1)
    assert main(["train", *TINY, "--epochs", "6", "--checkpoint-every", "5",
                 "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"jaxnn train: interrupted; {out / 'metrics.jsonl'} holds 2 epochs, but no checkpoint "
        "had been written yet (one every 5 epochs); --overwrite replaces it")
    monkeypatch.undo()

    # An ensemble's members write one metrics file and, without --checkpoint-every, no
    # checkpoints (with it: tests/test_checkpoint.py).
    out = tmp_path / "ensemble"
    _interrupt_after(monkeypatch, 1)
    assert main(["train", *TINY, "--epochs", "2", "--ensemble", "2", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"jaxnn train: interrupted; {out / 'metrics.jsonl'} holds 2 epochs of the ensemble's "
        "members, but there is no checkpoint to continue from (--checkpoint-every N "
        "checkpoints each member); --overwrite replaces it")
    monkeypatch.undo()

    # Before the first epoch ends: nothing worth keeping, as for a failure.
    out = tmp_path / "early"
    _interrupt_after(monkeypatch, None)
    assert main(["train", *TINY, "--epochs", "3", "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"jaxnn train: interrupted; no epoch had finished; removed {out}")
    assert not out.exists()


@pytest.mark.parametrize("flags, noted", [
    (["--preset", "ch6-dropout"], "40 epochs on the 250,000 images of the expanded set: about "
                                  "30 to 53 minutes on a 2-core CPU"),
    (["--preset", "ch6-dropout", "--epochs", "5"], None),
    (["--preset", "ch6-dropout", "--checkpoint-every", "1"], None),
    (["--preset", "ch6-dropout", "--train-size", "1000"], None),
])
def test_a_long_run_on_a_cpu_says_how_long_before_it_starts(tmp_path, capsys, monkeypatch,
                                                            flags, noted):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, None)  # Ctrl-C before the first epoch: nothing trains
    assert main(["train", *flags, "--no-progress", "--out", str(out)]) == 130
    lines = [line for line in capsys.readouterr().out.splitlines() if "note:" in line]
    if noted is None:
        assert lines == []
    else:
        assert lines == [f"jaxnn train: note: this run trains {noted} (45-80 s an epoch, "
                         f"README); with --checkpoint-every N, jaxnn train --resume {out} "
                         "could go on after an interruption"], lines


def test_plot_history_draws_each_split_in_percent_and_the_cost_on_a_log_axis(tmp_path,
                                                                              monkeypatch):
    from jaxnn import report

    plt = report.pyplot()
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    history = [{"epoch": e, "train_cost": 1.0 / (e + 1), "train_accuracy": 0.5,
                "validation_accuracy": 0.7, "test_accuracy": 0.9} for e in range(3)]
    report.plot_history(history, tmp_path / "curves.png")
    accuracy, cost = figures[0].axes
    lines = {line.get_label(): list(line.get_ydata()) for line in accuracy.get_lines()}
    assert lines == {"training": [50.0] * 3, "validation": [70.0] * 3, "test": [90.0] * 3}
    assert accuracy.get_ylabel() == "accuracy (%)" and cost.get_yscale() == "log"
    assert (tmp_path / "curves.png").stat().st_size > 0
    monkeypatch.undo()
    plt.close(figures[0])


def test_plot_ensemble_draws_every_members_accuracy_and_the_vote(tmp_path, monkeypatch):
    from jaxnn import report

    plt = report.pyplot()
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    records = [{"member": m, "seed": 5 + m, "epoch": e, "validation_accuracy": 0.5 + 0.1 * m,
                "test_accuracy": 0.4 + 0.1 * m + 0.01 * e} for m in range(2) for e in range(3)]
    report.plot_ensemble(records, tmp_path / "curves.png", votes={"test": 0.62},
                         title="two")
    test, validation = figures[0].axes
    lines = {line.get_label(): [round(float(y), 6) for y in line.get_ydata()]
             for line in test.get_lines()}
    assert lines == {"member 0 (seed 5)": [40.0, 41.0, 42.0],
                     "member 1 (seed 6)": [50.0, 51.0, 52.0],
                     "majority vote: 62.00%": [62.0, 62.0]}
    assert [line.get_label() for line in validation.get_lines()] == ["member 0 (seed 5)",
                                                                   "member 1 (seed 6)"]
    assert test.get_title() == "Test accuracy" and figures[0]._suptitle.get_text() == "two"
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert report.plot_ensemble([], tmp_path / "none.png") is None  # nothing to draw
    assert not (tmp_path / "none.png").exists()
    monkeypatch.undo()
    plt.close(figures[0])


def test_two_runs_started_in_the_same_second_get_two_directories(tmp_path, monkeypatch):
    from jaxnn import report

    monkeypatch.setattr(report.time, "strftime", lambda fmt: "20260101-000000")
    first, second = (report.new_run_dir(tmp_path, "ch1-30") for _ in range(2))
    assert first.name == "20260101-000000-ch1-30"
    assert second.name == "20260101-000000-ch1-30-2"


def _files(directory) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_directory_another_command_writes_into_is_refused_and_left_alone(tmp_path, capsys,
                                                                          monkeypatch):
    """While one command holds a run directory, a second one given the same directory (a new
    run with --overwrite, a --resume, a reproduction) stops at once and touches nothing;
    once the first has ended, the same commands work."""
    from jaxnn.cli import runtime

    monkeypatch.chdir(tmp_path)
    out, rows = tmp_path / "run", tmp_path / "rows"
    assert main(["train", *TINY, "--epochs", "2", "--checkpoint-every", "1",
                 "--out", str(out)]) == 0
    before = _files(out)
    capsys.readouterr()
    rows.mkdir()
    with runtime.exclusive("out", out), runtime.exclusive("out", rows):
        for argv, flag, where in (
                (["train", *TINY, "--epochs", "1", "--out", str(out), "--overwrite"], "--out", out),
                (["train", "--resume", str(out), "--epochs", "3", "--no-progress"], "--resume",
                 out),
                (["reproduce", "ch1-30", "--quick", "--runs", "1", "--epochs", "1",
                  "--no-gradient-norms", "--out", str(rows)], "--out", rows)):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert (f"error: {flag}: {where} is in use by another jaxnn command, which is "
                    "writing its run there; wait for it to end, or give another directory"
                    in err), err
        assert _files(out) == before and not any(rows.iterdir())
    assert main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    assert _steps(out) == [1, 2, 3]
    assert main(["reproduce", "ch1-30", "--quick", "--runs", "1", "--epochs", "1",
                 "--no-gradient-norms", "--out", str(rows)]) == 0


def test_a_killed_command_leaves_its_directory_free(tmp_path):
    """The hold is the operating system's lock, which ends with its process: a run killed with
    SIGKILL (no clean-up ran) does not keep the next command out."""
    import signal

    from jaxnn.cli import runtime

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom jaxnn.cli import runtime\n"
         "with runtime.exclusive('out', sys.argv[1]):\n    print('held', flush=True)\n"
         "    time.sleep(600)", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(ValueError, match="is in use by another jaxnn command"):
            with runtime.exclusive("out", tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    with runtime.exclusive("out", tmp_path):  # free again
        pass
