"""Monitoring the training set, or not: ``fit(monitor_training=False)``, the ``monitor_training``
setting (off in the chapter-6 presets, as network3.py reports validation and test accuracy
only) and ``--monitor-training``, and what reads a history without training figures."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest
from helpers import assert_trees_close

from jaxnn import costs, data, experiment, metrics, mlp, optim, presets, report, train
from jaxnn._reproduce_runs import _epoch_line, finished_run
from jaxnn.cli import main

TINY = ["--train-size", "200", "--eval-size", "100", "--no-progress"]


@pytest.fixture(scope="module")
def splits():
    ds = data.load_mnist("book")
    tr = train.DeviceData.put(data.to_inputs(ds.train.images[:300]), ds.train.labels[:300])
    te = train.DeviceData.put(data.to_inputs(ds.test.images[:100]), ds.test.labels[:100])
    return tr, te


def _network(grad_fn=None):
    net = mlp.make([784, 30, 10], activation="sigmoid", output_activation="sigmoid")
    opt = optim.make("sgd", 0.5)
    epoch = train.make_epoch(grad_fn or experiment.autodiff_grad_fn(net, "cross_entropy"), opt,
                             mini_batch_size=10, n_train=300)
    evaluate = metrics.make_evaluate(net.logits, costs.from_logits("cross_entropy", "sigmoid"))
    params = net.init(jax.random.key(0))
    return train.TrainState(params, opt.init(params), jax.random.key(1)), epoch, evaluate


def test_an_unmonitored_run_trains_the_same_network_and_never_evaluates_the_training_set(
        splits):
    tr, te = splits
    runs = {}
    for monitor in (True, False):
        state, epoch, evaluate = _network()
        sizes = []

        def counted(params, split, evaluate=evaluate, sizes=sizes):
            sizes.append(len(split))
            return evaluate(params, split)

        state, history = train.fit(state, epoch_fn=epoch, evaluate=counted, train=tr,
                                   validation=te, test=te, epochs=2, progress=False,
                                   monitor_training=monitor)
        runs[monitor] = state.params, history, sizes
    assert_trees_close(runs[False][0], runs[True][0], rtol=0, name="params")
    assert runs[True][2] == [300, 100, 100] * 2 and runs[False][2] == [100, 100] * 2
    (_, monitored, _), (_, unmonitored, _) = runs[True], runs[False]
    for kept, full in zip(unmonitored, monitored):
        assert kept == {k: v for k, v in full.items()
                        if k not in ("train_cost", "train_accuracy", "seconds")} | {
            "seconds": kept["seconds"]}
    summary = metrics.summarize(unmonitored)
    assert "final_train_cost" not in summary
    assert summary["peak_test_accuracy"] == metrics.summarize(monitored)["peak_test_accuracy"]


def test_an_unmonitored_run_still_stops_when_its_parameters_diverge(splits):
    """Without a training cost to find NaN in, fit looks at the parameters themselves: an
    unguarded epoch that leaves NaN weights raises Diverged before any callback sees them."""
    tr, te = splits

    def nan_grad(params, x, y):
        return jax.tree.map(lambda p: jnp.full_like(p, jnp.nan), params)

    state, epoch, evaluate = _network(nan_grad)
    seen = []
    with pytest.raises(train.Diverged, match="epoch 0"):
        train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, test=te, epochs=2,
                  progress=False, monitor_training=False, callbacks=[seen.append])
    assert seen == []


def test_all_finite_looks_at_every_parameter():
    params = {"a": jnp.ones(3), "b": [jnp.zeros((2, 2)), jnp.ones(1, jnp.bfloat16)]}
    assert bool(train._all_finite(params))
    for bad in (jnp.inf, -jnp.inf, jnp.nan):
        broken = {**params, "b": [params["b"][0].at[1, 0].set(bad), params["b"][1]]}
        assert not bool(train._all_finite(broken))


def test_early_stopping_on_the_training_cost_names_monitoring_when_it_is_missing():
    stopper = train.EarlyStopping(2, metric="train_cost")
    assert stopper({"epoch": 0, "train_cost": 0.5}) is False
    with pytest.raises(ValueError, match=r"needs 'train_cost' in each epoch's record \(the "
                                         r"training set monitored: monitor_training\)"):
        stopper({"epoch": 1, "validation_accuracy": 0.9})
    with pytest.raises(ValueError, match=r"\(a validation set\)"):
        train.EarlyStopping(2)({"epoch": 0, "train_cost": 0.5})


def test_the_chapter_6_presets_do_not_monitor_the_training_set_and_the_others_do():
    for name in presets.PRESETS:
        config = experiment.TrainConfig.from_preset(name)
        assert config.monitor_training is (not name.startswith("ch6-")), name
    assert experiment.TrainConfig.from_preset("ch6-conv1", monitor_training=True).monitor_training
    assert not experiment.TrainConfig.from_preset("ch1-30", monitor_training=False) \
        .monitor_training
    with pytest.raises(TypeError, match="monitor_training: expected True or False; got int 1"):
        experiment.TrainConfig(monitor_training=1).validated()


def test_the_command_line_turns_monitoring_off_and_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for flags, monitored in ((["--no-monitor-training"], False),
                             (["--preset", "ch6-fc100", "--mini-batch-size", "20",
                               "--monitor-training"], True),
                             (["--preset", "ch6-fc100", "--mini-batch-size", "20"], False)):
        out = tmp_path / f"run-{len(flags)}-{monitored}"
        assert main(["train", *TINY, "--epochs", "2", *flags, "--out", str(out)]) == 0, flags
        lines = (out / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        assert len(records) == 2
        for record in records:
            assert ("train_cost" in record) is monitored and (
                "train_accuracy" in record) is monitored, flags
        summary = json.loads((out / "summary.json").read_text())
        assert ("final_train_cost" in summary) is monitored
        assert json.loads((out / "config.json").read_text())["monitor_training"] is monitored
        assert (out / "curves.png").stat().st_size > 0
        start = capsys.readouterr().out.splitlines()[0]
        # the start line names the setting where it is not chapter 1's default
        assert ("monitor_training False" in start) is (not monitored), start


def _figures(monkeypatch):
    plt = report.pyplot()
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    return plt, figures


def test_a_history_without_training_figures_plots_accuracy_alone(tmp_path, monkeypatch):
    plt, figures = _figures(monkeypatch)
    history = [{"epoch": e, "validation_accuracy": 0.7, "test_accuracy": 0.9} for e in range(3)]
    report.plot_history(history, tmp_path / "curves.png")
    (accuracy,) = figures[0].axes
    lines = {line.get_label(): list(line.get_ydata()) for line in accuracy.get_lines()}
    assert lines == {"validation": [70.0] * 3, "test": [90.0] * 3}
    monkeypatch.undo()
    plt.close(figures[0])


def test_a_run_resumed_without_monitoring_plots_the_training_figures_it_has(tmp_path,
                                                                          monkeypatch):
    """Epochs 0-1 monitored, epochs 2-3 not (a run resumed under today's chapter-6 preset):
    the training curves stop at epoch 1, the others run on."""
    plt, figures = _figures(monkeypatch)
    history = [{"epoch": e, "validation_accuracy": 0.7, "test_accuracy": 0.9,
                **({"train_cost": 1.0 / (e + 1), "train_accuracy": 0.5} if e < 2 else {})}
               for e in range(4)]
    report.plot_history(history, tmp_path / "curves.png")
    accuracy, cost = figures[0].axes
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
             for line in accuracy.get_lines()}
    assert lines == {"training": ([0, 1], [50.0, 50.0]),
                     "validation": ([0, 1, 2, 3], [70.0] * 4), "test": ([0, 1, 2, 3], [90.0] * 4)}
    (cost_line,) = cost.get_lines()
    assert list(cost_line.get_xdata()) == [0, 1] and list(cost_line.get_ydata()) == [1.0, 0.5]
    assert cost.get_yscale() == "log"
    monkeypatch.undo()
    plt.close(figures[0])


def test_a_reproduced_run_is_kept_whatever_its_monitoring(tmp_path):
    """A run directory of a chapter-6 row trained while the presets still monitored the
    training set holds the same training: reproduce keeps it (and would resume it), while a
    setting that changes the training still makes it another run."""
    config = experiment.TrainConfig.from_preset("ch6-fc100", seed=0)
    run_dir = tmp_path / "seed0"
    run_dir.mkdir()
    old = dataclasses.replace(config, monitor_training=True).to_json()
    (run_dir / "config.json").write_text(json.dumps(old))
    history = [{"epoch": 0, "train_cost": 0.5, "train_accuracy": 0.9, "validation_accuracy": 0.9,
                "test_accuracy": 0.91, "seconds": 1.0}]
    (run_dir / "metrics.jsonl").write_text(json.dumps(history[0]) + "\n")
    (run_dir / "summary.json").write_text(json.dumps(
        {**metrics.summarize(history), "run_seconds": 2.0}))
    kept = finished_run(run_dir, config)
    assert kept is not None and kept[1] == history
    del old["monitor_training"]  # a config.json written before the setting existed
    (run_dir / "config.json").write_text(json.dumps(old))
    assert finished_run(run_dir, config) is not None
    assert finished_run(run_dir, dataclasses.replace(config, eta=0.2)) is None


def test_reproduces_epoch_line_without_a_test_split_or_training_cost():
    line = _epoch_line
    assert line({"epoch": 3, "validation_accuracy": 0.99, "seconds": 1.25}) == (
        "epoch 3: validation 99.00% (1.2 s)")
    assert line({"epoch": 3, "train_cost": 0.125, "seconds": 1.0}) == (
        "epoch 3: train cost 0.125 (1.0 s)")
