"""``jaxnn reproduce``: rows, tables, chapter 5's gradient norms, and the --quick CLI."""

import dataclasses
import json
import re

import numpy as np
import pytest
from helpers import corrupt_checkpoint

from jaxnn import reproduce
from jaxnn.cli import main
from jaxnn.cli.reproduce import select


def test_select_names_and_prefixes():
    assert select(["ch1-30"]) == ["ch1-30"]
    assert select(["ch5"]) == ["ch5-2hidden", "ch5-3hidden", "ch5-4hidden"]
    assert "ch6-conv1" in select(["ch6"])
    with pytest.raises(ValueError, match="preset"):
        select(["ch9"])


def test_markdown_row_reports_best_mean_and_difference():
    row = reproduce.Row("ch1-30", "peak_test_accuracy", 95.42, [95.0, 95.2, 94.8], 12.0, 30)
    md = reproduce.markdown([row])
    assert "| ch1-30 | peak_test_accuracy | 95.42 | 95.20 | 95.00 +- 0.16 | 3 | -0.22 |" in md
    assert row.to_json()["best"] == 95.2


def test_a_test_figure_is_taken_from_the_run_with_the_best_validation_accuracy():
    """Chapter 6's rule: 'the test accuracy which corresponded to the best validation accuracy
    from any of the three runs', not the largest test accuracy (of tied runs, the last)."""
    row = reproduce.Row("ch6-relu", "test_at_best_validation", 99.23, [99.20, 99.10, 99.00],
                        1.0, 60, chosen_by=[99.10, 99.30, 99.30])
    assert (row.best_run, row.best) == (2, 99.00)
    assert row.to_json()["best"] == 99.00 and row.to_json()["best_run"] == 2
    md = reproduce.markdown([row])
    assert "| ch6-relu | test_at_best_validation | 99.23 | 99.00 |" in md
    assert ("ours (best): the test accuracy of the run whose validation accuracy peaked "
            "highest (chapter 6's rule for picking a run)") in md
    assert reproduce.Row("ch1-30", "peak_test_accuracy", 95.42, [95.0, 95.2, 95.2], 1.0,
                         30).best_run == 2


def test_reproduce_picks_chapter_6s_best_run_by_validation(tmp_path, monkeypatch):
    """run_row hands each run's best validation accuracy to the row, which reports the test
    accuracy of that run (here the run with the lower test accuracy)."""
    from jaxnn import experiment, metrics

    figures = {0: (0.9910, 0.9920), 1: (0.9930, 0.9910)}  # seed: (validation, test)

    def fake_run(config, *, callbacks=(), **kwargs):
        v, t = figures[config.seed]
        history = [{"epoch": 0, "train_cost": 1.0, "validation_accuracy": v,
                    "test_accuracy": t, "seconds": 1.0}]
        return experiment.Result(config, None, history, metrics.summarize(history))

    monkeypatch.setattr(experiment, "_seeds_trainer", lambda: fake_run)
    row = reproduce.run_row("ch6-relu", runs=2, quick=True)
    assert row.values == pytest.approx([99.20, 99.10])
    assert row.chosen_by == pytest.approx([99.10, 99.30])
    assert row.best == pytest.approx(99.10) and row.best_run == 1


def test_ensemble_runs_share_no_member(monkeypatch):
    """Run r of an ensemble of k takes seeds r k .. r k + k - 1: three runs of 5 networks are
    15 networks, not 7; the best run is the one whose vote on the validation set is best."""
    from jaxnn import experiment

    seeds = []

    def fake_run(config, *, callbacks=(), **kwargs):
        seeds.append(config.seed)
        summary = {"epochs": 1, "ensemble_test_accuracy": 0.95 - config.seed / 100,
                   "ensemble_validation_accuracy": 0.90 + config.seed / 100}
        return experiment.Result(config, None, [], summary)

    monkeypatch.setattr(experiment, "run", fake_run)
    row = reproduce.run_row("ch6-ensemble", runs=3, quick=True)  # quick: 3 members
    assert seeds == [0, 3, 6]
    assert row.values == pytest.approx([95.0, 92.0, 89.0])
    assert row.best == pytest.approx(89.0) and row.best_run == 2
    seeds.clear()
    reproduce.run_row("ch6-ensemble", runs=2, overrides={"epochs": 1})  # 5 members
    assert seeds == [0, 5]


def test_gradient_norms_fall_towards_the_input():
    """Chapter 5's ||delta^l|| = ||dC/db^l|| at initialisation for [784, 30, 30, 30, 10]: the
    book's (0.012, 0.060, 0.283), not merely rising towards the output (the weights'
    gradient norms and the quadratic cost's rise too, but are far from the book's)."""
    norms = reproduce.gradient_norms((784, 30, 30, 30, 10), seeds=(0, 1), images=200)
    assert norms.shape == (2, 3)
    mean = norms.mean(0)
    assert mean[0] < mean[1] < mean[2]
    assert np.all(norms > 0)
    # The noise is the seed's, not the images' (seeds 0, 1 on 1,000 images: 0.0112, 0.0627,
    # 0.2837; on 200: 0.0112, 0.0631, 0.2855). Over seeds 0-11 one seed's norm varies by
    # 20-30% (std / mean 0.23, 0.30, 0.20 per layer), so a 2-seed mean by about 15-21%; the
    # six disjoint seed pairs 0-11 came within 32% of the book. Hence rtol 0.35, which the
    # wrong quantities still miss by far: the quadratic cost gives ~1/5 of these norms, the
    # weight gradients 3-6x them, xavier init +46-78%, large init 2.6-15x.
    np.testing.assert_allclose(mean, reproduce.BOOK_GRADIENT_NORMS[3], rtol=0.35)


def test_gradient_norm_table_averages_each_layer_over_the_seeds():
    """Chapter 5's table: for each depth, one entry per hidden layer, the mean and population
    std over the seeds (axis 0 of gradient_norms' seeds x layers), not over the layers."""
    seeds, images = (0, 1), 50
    text, table = reproduce.gradient_norm_table(seeds=seeds, images=images)
    assert sorted(table) == sorted(reproduce.BOOK_GRADIENT_NORMS)
    for depth, book in reproduce.BOOK_GRADIENT_NORMS.items():
        sizes = (784, *([30] * depth), 10)
        alone = reproduce.gradient_norms(sizes, seeds=seeds, images=images)  # seeds x layers
        entry = table[depth]
        assert entry["book"] == list(book)
        assert len(entry["mean"]) == len(entry["std"]) == depth
        np.testing.assert_allclose(entry["per_seed"], alone, rtol=1e-5)
        np.testing.assert_allclose(entry["mean"], alone.mean(0), rtol=1e-5)
        np.testing.assert_allclose(entry["std"], alone.std(0), rtol=1e-4, atol=1e-9)
        assert f"| {depth} | {depth} | {book[-1]:.3f} | {alone[:, -1].mean():.3f} +- " in text


def test_quick_cli_runs_one_mlp_and_one_ch6_row(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "ch1-30", "ch6-conv1", "--quick", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "QUICK" in printed and "quick" in printed.lower()
    assert "epoch/s" in captured.err or "s/epoch" in captured.err  # the progress bar
    table = json.loads((out / "reproduce.json").read_text())
    rows = {r["preset"]: r for r in table["rows"]}
    assert set(rows) == {"ch1-30", "ch6-conv1"}
    for r in rows.values():
        assert r["quick"] and len(r["values"]) == 1 and 0 < r["best"] <= 100
        assert r["epochs"] == 2
    assert rows["ch1-30"]["book"] == 95.42 and rows["ch6-conv1"]["book"] == 98.78
    assert "(quick)" in (out / "reproduce.md").read_text()
    assert (out / "curves.png").stat().st_size > 0


def _counting_runs(monkeypatch):
    """Make reproduce record each seed it trains (then train it)."""
    from jaxnn import experiment

    real_trainer, trained = experiment._seeds_trainer, []

    def seeds_trainer():
        train_seed = real_trainer()

        def counted(config, **kwargs):
            trained.append(config.seed)
            return train_seed(config, **kwargs)

        return counted

    monkeypatch.setattr(experiment, "_seeds_trainer", seeds_trainer)
    return trained


def test_a_rows_seeds_share_one_compiled_epoch_and_train_as_single_runs(monkeypatch):
    """reproduce prepares the data and builds the epoch once per row, not once per seed; each
    seed still trains exactly as ``experiment.run`` trains it alone."""
    from jaxnn import experiment, train

    settings = reproduce.quick_overrides("ch1-30")
    alone = [experiment.run(experiment.TrainConfig.from_preset("ch1-30", seed=s, **settings),
                            progress=False) for s in (0, 1)]
    built = []
    make_epoch = train.make_epoch
    monkeypatch.setattr(train, "make_epoch", lambda *a, **k: built.append(1) or make_epoch(*a, **k))
    row = reproduce.run_row("ch1-30", runs=2, quick=True)
    assert len(built) == 1
    assert row.values == [100 * r.summary["peak_test_accuracy"] for r in alone]
    untimed = [[{k: v for k, v in rec.items() if k != "seconds"} for rec in h]
               for h in [*row.histories, *(r.history for r in alone)]]
    assert untimed[:2] == untimed[2:]


def test_each_run_writes_its_directory_and_a_rerun_keeps_the_finished_ones(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "rep"
    args = ["reproduce", "ch1-30", "--quick", "--runs", "2", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert "epoch" not in capsys.readouterr().err
    first = json.loads((out / "reproduce.json").read_text())["rows"][0]
    for seed in (0, 1):
        run_dir = out / "ch1-30" / f"seed{seed}"
        summary = json.loads((run_dir / "summary.json").read_text())
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        metrics = [json.loads(line) for line in lines]
        assert [r["epoch"] for r in metrics] == [0, 1] and summary["epochs"] == 2
        assert 100 * summary["peak_test_accuracy"] == first["values"][seed]
        assert json.loads((run_dir / "config.json").read_text())["seed"] == seed

    # Seed 1 was cut off before it finished: the rerun keeps seed 0 and trains seed 1 again.
    (out / "ch1-30" / "seed1" / "summary.json").unlink()
    # Seed 0's config.json as jaxnn wrote it before maxout_pieces defaulted to None: still kept.
    config_path = out / "ch1-30" / "seed0" / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()),
                                       "maxout_pieces": 2}))
    trained = _counting_runs(monkeypatch)
    capsys.readouterr()
    assert main(args) == 0
    assert trained == [1]
    printed = capsys.readouterr().out
    assert f"kept from {out / 'ch1-30' / 'seed0'}" in printed
    assert json.loads((out / "reproduce.json").read_text())["rows"][0]["values"] == \
        first["values"]

    # Other settings are other runs: nothing is kept.
    trained.clear()
    assert main(args + ["--epochs", "1"]) == 0
    assert trained == [0, 1]
    assert json.loads((out / "ch1-30" / "seed0" / "summary.json").read_text())["epochs"] == 1


def test_an_ensemble_run_directory_holds_its_last_members_epochs(tmp_path, monkeypatch):
    from jaxnn import _reproduce_runs, ensemble, experiment

    history = [{"epoch": e, "train_cost": 1.0 / (e + 1), "validation_accuracy": 0.9,
                "test_accuracy": 0.9, "seconds": 1.0} for e in range(2)]

    def fake_run(config, *, callbacks=(), member_run=None, **kwargs):
        # the members log their own epochs, each in its own run directory
        assert config.ensemble == 3 and not callbacks
        assert isinstance(member_run, _reproduce_runs._MemberRuns)
        summary = {"epochs": 2, "ensemble_test_accuracy": 0.95,
                   "members": [{"run_seconds": s} for s in (1.5, 2.0, 2.5)]}
        return experiment.Result(config, None, history, summary)

    monkeypatch.setattr(ensemble, "run", fake_run)
    row = reproduce.run_row("ch6-ensemble", runs=1, quick=True, out=tmp_path)
    assert row.values == [95.0]
    assert row.seconds == 6.0  # the members' own time, over every sitting
    run_dir = tmp_path / "ch6-ensemble" / "seed0"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == history
    config = experiment.TrainConfig.from_preset("ch6-ensemble", seed=0,
                                                **reproduce.quick_overrides("ch6-ensemble"))
    assert reproduce.finished_run(run_dir, config)[0]["ensemble_test_accuracy"] == 0.95
    assert reproduce.finished_run(run_dir, dataclasses.replace(config, seed=1)) is None
    summary = json.loads((run_dir / "summary.json").read_text())
    del summary["run_seconds"]  # a summary `jaxnn train` wrote, not reproduce
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert reproduce.finished_run(run_dir, config) is None


def test_a_kept_run_is_summarized_again_from_its_epochs(tmp_path, monkeypatch):
    """A summary.json written under an older rule (here: the first of tied best validation
    epochs) is read again through metrics.summarize, which takes the last, as the book does."""
    from jaxnn import experiment, metrics

    history = [{"epoch": e, "train_cost": 1.0, "validation_accuracy": v, "test_accuracy": t,
                "seconds": 1.0} for e, (v, t) in enumerate([(0.9, 0.91), (0.9, 0.93)])]

    def fake_run(config, *, callbacks=(), **kwargs):
        for record in history:
            for callback in callbacks:
                callback(record)
        return experiment.Result(config, None, history, metrics.summarize(history))

    monkeypatch.setattr(experiment, "_seeds_trainer", lambda: fake_run)
    reproduce.run_row("ch6-fc100", runs=1, quick=True, out=tmp_path)
    run_dir = tmp_path / "ch6-fc100" / "seed0"
    old = json.loads((run_dir / "summary.json").read_text())
    assert old["test_at_best_validation"] == 0.93
    (run_dir / "summary.json").write_text(json.dumps(
        {**old, "best_validation_epoch": 0, "test_at_best_validation": 0.91}))
    config = experiment.TrainConfig.from_preset("ch6-fc100", seed=0,
                                                **reproduce.quick_overrides("ch6-fc100"))
    summary, kept_history = reproduce.finished_run(run_dir, config)
    assert kept_history == history
    assert summary["best_validation_epoch"] == 1 and summary["test_at_best_validation"] == 0.93
    assert summary["run_seconds"] == old["run_seconds"]


def _fake_trainer(monkeypatch, epochs_by_seed):
    """Make reproduce train seed s for epochs_by_seed[s] epochs without training (as an early
    stop would), writing each epoch through the callbacks; returns the seeds trained."""
    from jaxnn import experiment, metrics

    trained = []

    def fake_run(config, *, callbacks=(), **kwargs):
        trained.append(config.seed)
        history = [{"epoch": e, "train_cost": 1.0, "validation_accuracy": 0.9,
                    "test_accuracy": 0.9 + e / 100, "seconds": 1.0}
                   for e in range(epochs_by_seed[config.seed])]
        for record in history:
            for callback in callbacks:
                callback(record)
        return experiment.Result(config, None, history, metrics.summarize(history))

    monkeypatch.setattr(experiment, "_seeds_trainer", lambda: fake_run)
    return trained


def test_a_rows_epochs_is_the_most_any_run_trained(monkeypatch):
    """Runs that stop at different epochs (e.g. early stopping): the row's epochs column is the
    largest run's, not the last run's."""
    _fake_trainer(monkeypatch, {0: 3, 1: 1})
    row = reproduce.run_row("ch1-30", runs=2, quick=True)
    assert [len(h) for h in row.histories] == [3, 1]
    assert row.epochs == 3


def test_a_kept_run_whose_metrics_do_not_match_its_summary_is_trained_again(tmp_path,
                                                                            monkeypatch):
    """A run directory whose metrics.jsonl holds fewer epochs than its summary.json says (a
    truncated file) is not a finished run: the rerun trains it again and rewrites it."""
    from jaxnn import experiment

    trained = _fake_trainer(monkeypatch, {0: 2})
    reproduce.run_row("ch1-30", runs=1, quick=True, out=tmp_path)
    run_dir = tmp_path / "ch1-30" / "seed0"
    config = experiment.TrainConfig.from_preset("ch1-30", seed=0,
                                                **reproduce.quick_overrides("ch1-30"))
    assert reproduce.finished_run(run_dir, config) is not None  # intact: kept
    metrics_path = run_dir / "metrics.jsonl"
    metrics_path.write_text(metrics_path.read_text().splitlines()[0] + "\n")  # epoch 0 only
    assert reproduce.finished_run(run_dir, config) is None
    row = reproduce.run_row("ch1-30", runs=1, quick=True, out=tmp_path)
    assert trained == [0, 0] and row.epochs == 2
    assert len(metrics_path.read_text().splitlines()) == 2


@pytest.mark.parametrize("flags", [["--runs", "0"], ["--epochs", "0"], ["--epochs", "-2"]])
def test_bad_runs_or_epochs_fail_before_anything_is_written(tmp_path, capsys, flags):
    out = tmp_path / "rep"
    assert main(["reproduce", "ch1-30", "--quick", "--out", str(out), *flags]) == 2
    assert flags[0][2:] in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("flags, said, not_said", [
    (["ch1-30", "--quick", "--epochs", "1"], "QUICK mode {'train_size': 1000, 'eval_size': 1000, "
     "'epochs': 1}", "'epochs': 2"),
    (["ch3-l2-1k", "--epochs", "1", "--runs", "2"],
     "the book's settings except epochs 1 (not comparable with the book)", "full settings"),
    (["ch3-l2-1k", "--runs", "2"], "full settings", "QUICK"),
    (["ch1-30", "--quick"], "'epochs': 'at most 2'}, no expanded data", "'epochs': 2"),
])
def test_the_header_reports_the_settings_used(tmp_path, capsys, monkeypatch, flags, said,
                                              not_said):
    from jaxnn import reproduce

    def stop(*args, **kwargs):  # the header is printed before the first row runs
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_row", stop)
    assert main(["reproduce", *flags, "--out", str(tmp_path / "rep")]) == 130
    header = capsys.readouterr().out
    assert said in header and not_said not in header, header


@pytest.mark.parametrize("flags, noted", [
    (["ch6-fc100", "ch6-expanded", "ch6-dropout"],
     {"ch6-expanded": "60 epochs on the 250,000 images of the expanded set: about 45 to 80 "
                      "minutes on a 2-core CPU (45-80 s an epoch, README) a run",
      "ch6-dropout": "40 epochs on the 250,000 images of the expanded set: about 30 to 53 "
                     "minutes"}),
    (["ch6-ensemble"], {"ch6-ensemble": "5 networks of 40 epochs on the 250,000 images of the "
                                        "expanded set: about 2.5 to 4.4 hours"}),
    (["ch6-dropout", "--epochs", "5"], {}),  # minutes, not an hour
    (["ch6-dropout", "--checkpoint-every", "1"], {}),  # resumable already
    (["ch6-dropout", "--quick"], {}),  # small data
    (["ch6-conv2"], {}),  # the original training set
])
def test_rows_on_the_expanded_data_on_a_cpu_say_how_long_and_how_to_resume(
        tmp_path, capsys, monkeypatch, flags, noted):
    from jaxnn import reproduce

    def stop(*args, **kwargs):  # the notes come before the first row runs
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_row", stop)
    assert main(["reproduce", *flags, "--out", str(tmp_path / "rep")]) == 130
    out = capsys.readouterr().out
    notes = {line.split()[3]: line for line in out.splitlines()
             if line.startswith("jaxnn reproduce: note:")}
    assert notes.keys() == noted.keys(), out
    for row, text in noted.items():
        assert f"note: {row} trains {text}" in notes[row], notes[row]
        assert notes[row].endswith("; --checkpoint-every N saves each run's epochs, so that the "
                                   "same command, run again, goes on after an interruption")


def test_reproduce_runs_three_seeds_by_default(tmp_path, monkeypatch, capsys):
    runs = []
    monkeypatch.setattr(reproduce, "run_row", lambda name, **kw: runs.append(kw["runs"]))
    monkeypatch.setattr(reproduce, "write", lambda rows, out, **kw: {"markdown": tmp_path / "m"})
    (tmp_path / "m").write_text("table\n")
    assert main(["reproduce", "ch1-30", "--out", str(tmp_path / "o")]) == 0
    assert runs == [3]


def test_full_reproduce_averages_gradient_norms_over_five_seeds(tmp_path, monkeypatch, capsys):
    seen = {}

    def norms(seeds, images):
        seen.update(seeds=tuple(seeds), images=images)
        return "| |\n", {}

    monkeypatch.setattr(reproduce, "run_row", lambda name, **kw: None)
    monkeypatch.setattr(reproduce, "write", lambda rows, out, **kw: {"markdown": tmp_path / "m"})
    (tmp_path / "m").write_text("table\n")
    monkeypatch.setattr(reproduce, "gradient_norm_table", norms)
    assert main(["reproduce", "ch5-2hidden", "--out", str(tmp_path / "o")]) == 0
    assert seen == {"seeds": (0, 1, 2, 3, 4), "images": 1000}


def _epochs_without_seconds(path):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in path.read_text().splitlines()]


def test_a_run_cut_off_goes_on_from_its_last_checkpoint_and_ends_as_one_never_cut(
        tmp_path, capsys):
    """`--checkpoint-every N`: a run killed part way is taken up again from its newest
    checkpoint by the same command, trains only the epochs after it, and ends with the epochs
    and figures of a run never interrupted."""
    base = ["reproduce", "ch1-30", "--quick", "--runs", "1", "--epochs", "3", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    plain = tmp_path / "plain" / "ch1-30" / "seed0"
    out = tmp_path / "rep"
    capsys.readouterr()
    assert main([*base, "--out", str(out), "--checkpoint-every", "1"]) == 0
    run_dir = out / "ch1-30" / "seed0"
    # without a progress bar, a line as the run starts and one an epoch
    printed = capsys.readouterr().out
    assert f"  ch1-30 seed 0: training 3 epochs -> {run_dir}\n" in printed, printed
    assert re.findall(r"ch1-30 seed 0: epoch (\d): test \d+ / 1000, validation \d+\.\d\d% "
                      r"\(\d+\.\d s\)\n", printed) == ["0", "1", "2"], printed
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["1", "2", "3"]
    assert _epochs_without_seconds(run_dir / "metrics.jsonl") == \
        _epochs_without_seconds(plain / "metrics.jsonl")  # checkpoints change nothing

    # Killed in its third epoch: two epochs written, the checkpoint after epoch 3 never made.
    import shutil

    shutil.rmtree(run_dir / "checkpoints" / "3")
    (run_dir / "summary.json").unlink()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n")
    capsys.readouterr()
    assert main([*base, "--out", str(out), "--checkpoint-every", "1"]) == 0
    printed = capsys.readouterr().out
    assert "resumed after epoch 2" in printed, printed
    assert f"ch1-30 seed 0: resuming {run_dir} after epoch 2 (its newest checkpoint)" in printed
    assert re.findall(r"ch1-30 seed 0: epoch (\d):", printed) == ["2"]  # only the epoch lost
    resumed = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert resumed[:2] == [json.loads(line) for line in lines[:2]]  # kept, not trained again
    assert _epochs_without_seconds(run_dir / "metrics.jsonl") == \
        _epochs_without_seconds(plain / "metrics.jsonl")
    summary = json.loads((run_dir / "summary.json").read_text())
    plain_summary = json.loads((plain / "summary.json").read_text())
    assert summary["resumed_after_epoch"] == 2
    for key in ("peak_test_accuracy", "final_test_accuracy", "epochs"):
        assert summary[key] == plain_summary[key]
    assert summary["run_seconds"] > 0
    row = json.loads((out / "reproduce.json").read_text())["rows"][0]
    assert row["values"] == json.loads((tmp_path / "plain" / "reproduce.json").read_text())[
        "rows"][0]["values"]

    # The same command once more keeps the finished run; other settings start afresh, and
    # the checkpoints of the old settings go with it (nothing could resume from them later).
    capsys.readouterr()
    assert main([*base, "--out", str(out), "--checkpoint-every", "1"]) == 0
    assert f"kept from {run_dir}" in capsys.readouterr().out
    assert main([*base[:-3], "--epochs", "2", "--no-progress", "--out", str(out)]) == 0
    assert not (run_dir / "checkpoints").exists()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_a_checkpointed_rerun_resumes_without_the_flag_and_keeps_its_interval(tmp_path, capsys):
    """The flag need not be given again: a run with checkpoints goes on with them, saving at
    the interval it was started with."""
    base = ["reproduce", "ch1-30", "--quick", "--runs", "1", "--epochs", "2", "--no-progress",
            "--out", str(tmp_path)]
    assert main([*base, "--checkpoint-every", "1"]) == 0
    run_dir = tmp_path / "ch1-30" / "seed0"
    import shutil

    shutil.rmtree(run_dir / "checkpoints" / "2")
    (run_dir / "summary.json").unlink()
    capsys.readouterr()
    assert main(base) == 0
    assert "resumed after epoch 1" in capsys.readouterr().out
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["1", "2"]


@pytest.mark.parametrize("every", ["0", "-1"])
def test_a_bad_checkpoint_interval_fails_before_anything_is_written(tmp_path, capsys, every):
    out = tmp_path / "rep"
    assert main(["reproduce", "ch1-30", "--quick", "--out", str(out),
                 "--checkpoint-every", every]) == 2
    assert "--checkpoint-every: expected a positive integer" in capsys.readouterr().err
    assert not out.exists()


def _without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_an_interrupted_ensemble_keeps_its_finished_members_and_takes_up_the_next(tmp_path):
    """An ensemble row's members are runs of their own (OUT/PRESET/seedN/memberI/): stopped in
    member 1 after its first epoch, the same call keeps member 0 (not trained again: its final
    parameters come from its last checkpoint), takes member 1 up after epoch 1, trains member
    2, and gives the vote, the members' figures and epochs of the uninterrupted row."""
    import json

    kw = dict(runs=1, quick=True, overrides={"model": "fc100"}, checkpoint_every=1)
    whole = reproduce.run_row("ch6-ensemble", out=tmp_path / "whole", **kw)
    seed_dir = tmp_path / "whole" / "ch6-ensemble" / "seed0"
    assert sorted(p.name for p in seed_dir.glob("member*")) == ["member0", "member1", "member2"]

    out = tmp_path / "stopped"

    def stop_in_member_1(line):
        if "member 1: epoch 0:" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reproduce.run_row("ch6-ensemble", out=out, log=stop_in_member_1, **kw)
    assert not (out / "ch6-ensemble" / "seed0" / "summary.json").exists()
    lines = []
    again = reproduce.run_row("ch6-ensemble", out=out, log=lines.append, **kw)
    text = "\n".join(lines)
    member = out / "ch6-ensemble" / "seed0" / "member"
    assert f"  ch6-ensemble seed 0 member 0: kept from {member}0" in lines, text
    assert (f"  ch6-ensemble seed 0 member 1: resuming {member}1 after epoch 1 (its newest "
            "checkpoint)") in lines, text
    assert f"  ch6-ensemble seed 0 member 2: training 2 epochs -> {member}2" in lines, text
    trained = [line.split(":")[0] + ":" + line.split(":")[1] for line in lines
               if ": epoch " in line]
    assert trained == ["  ch6-ensemble seed 0 member 1: epoch 1",
                       "  ch6-ensemble seed 0 member 2: epoch 0",
                       "  ch6-ensemble seed 0 member 2: epoch 1"], text
    assert again.values == whole.values
    summaries = [json.loads((d / "ch6-ensemble" / "seed0" / "summary.json").read_text())
                 for d in (tmp_path / "whole", out)]
    for key in ("ensemble_test_accuracy", "ensemble_validation_accuracy",
                "member_test_at_best_validation", "epochs"):
        assert summaries[1][key] == summaries[0][key], key
    assert summaries[1]["run_seconds"] == pytest.approx(
        sum(m["run_seconds"] for m in summaries[1]["members"]))
    assert _without_seconds(again.histories[0]) == _without_seconds(whole.histories[0])


def test_an_ensemble_member_resumed_without_the_flag_keeps_its_own_interval(tmp_path):
    """As a single run does: the rerun of a row stopped in member 1 (checkpointed every epoch)
    without --checkpoint-every saves that member's every epoch still; the member trained new
    in that rerun is checkpointed once, at its end, which is what keeping it needs."""
    from jaxnn import checkpoint

    kw = dict(runs=1, quick=True, overrides={"model": "fc100", "epochs": 3}, out=tmp_path)

    def stop_in_member_1(line):
        if "member 1: epoch 0:" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reproduce.run_row("ch6-ensemble", checkpoint_every=1, log=stop_in_member_1, **kw)
    reproduce.run_row("ch6-ensemble", **kw)
    seed_dir = tmp_path / "ch6-ensemble" / "seed0"
    assert checkpoint.saved_steps(seed_dir / "member1") == [1, 2, 3]
    assert checkpoint.saved_steps(seed_dir / "member2") == [3]


def test_a_finished_member_whose_last_checkpoint_is_damaged_is_trained_again(tmp_path):
    """A kept member votes with its final parameters, read from its last checkpoint; when that
    checkpoint is damaged (restoring would fall back to an older epoch's state), the member is
    not kept but taken up from the older checkpoint, and the vote comes out as before."""
    from jaxnn import checkpoint

    kw = dict(runs=1, quick=True, overrides={"model": "fc100"}, checkpoint_every=1,
              out=tmp_path)
    first = reproduce.run_row("ch6-ensemble", **kw)
    seed_dir = tmp_path / "ch6-ensemble" / "seed0"
    (seed_dir / "summary.json").unlink()
    corrupt_checkpoint(seed_dir / "member0", 2)  # the last epoch's
    lines = []
    with pytest.warns(checkpoint.CheckpointWarning, match="2 is incomplete or corrupt"):
        again = reproduce.run_row("ch6-ensemble", log=lines.append, **kw)
    text = "\n".join(lines)
    assert not any("member 0: kept" in line for line in lines), text
    assert any(line.startswith("  ch6-ensemble seed 0 member 0: epoch 1:") for line in lines), text
    assert any("member 1: kept" in line for line in lines), text
    assert again.values == first.values


def test_checkpoints_need_an_output_directory():
    with pytest.raises(ValueError, match="checkpoint_every: needs out"):
        reproduce.run_row("ch1-30", runs=1, quick=True, checkpoint_every=1)


@pytest.mark.parametrize("flags, said", [
    ([], "from its first epoch (--checkpoint-every N saves"),
    (["--checkpoint-every", "2"], "from its newest checkpoint"),
])
def test_ctrl_c_says_what_is_kept_and_how_to_go_on(tmp_path, monkeypatch, capsys, flags, said):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_row", interrupted)
    out = tmp_path / "rep"
    assert main(["reproduce", "ch1-30", "--quick", "--out", str(out), *flags]) == 130
    err = capsys.readouterr().err
    assert err.startswith("jaxnn reproduce: interrupted;") and f"--out {out}" in err, err
    assert "keeps every run that finished (and every ensemble member)" in err, err
    assert said in err, err
