"""Checkpoints (jaxnn.checkpoint), --resume after SIGKILL, and the divergence guard."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import corrupt_checkpoint, host

from jaxnn import checkpoint, costs, data, experiment, metrics, mlp, optim, train
from jaxnn.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _state(seed=0, epoch=3, optimizer="adam"):
    """A state as after ``epoch`` optimizer steps on random gradients: Adam's step count and
    moments differ from a fresh template's, so a restore that kept the template's would show."""
    net = mlp.make([6, 4, 3])
    params = net.init(jax.random.key(seed))
    opt = optim.make(optimizer, 0.1, l2=1.0, n_train=20)
    opt_state = opt.init(params)
    for k in range(epoch):
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(jax.random.key(1000 * seed + k), len(leaves))
        grads = tree.unflatten([jax.random.normal(key, p.shape) for key, p in zip(keys, leaves)])
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    return train.TrainState(params, opt_state, jax.random.key(seed + 1), epoch)


def _assert_states_equal(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert jnp.result_type(x) == jnp.result_type(y)  # a typed key stays typed, a raw one raw
        assert np.array_equal(host(x), host(y))


@pytest.fixture
def closing():
    opened = []
    yield opened.append
    for c in opened:
        c.close()


def _save_steps(tmp_path, epochs=(1, 2, 3), closing=None):
    ckpt = checkpoint.Checkpointer(tmp_path)
    if closing is not None:
        closing(ckpt)
    states = {}
    for e in epochs:
        states[e] = _state(seed=e, epoch=e)
        ckpt.save(states[e], [{"epoch": i} for i in range(e)], extra={"checkpoint_every": 1})
    return ckpt, states


def test_save_restore_round_trip_is_exact(tmp_path, closing):
    ckpt, states = _save_steps(tmp_path, (1, 2), closing=closing)
    assert ckpt.steps() == [1, 2]
    template = _state(seed=9, epoch=0)
    restored = ckpt.restore(template)
    _assert_states_equal(restored.state, states[2])
    # the optimizer state came from the checkpoint (2 Adam steps), not from the template
    assert int(optax.tree_utils.tree_get(restored.state.opt_state, "count")) == 2
    assert int(optax.tree_utils.tree_get(template.opt_state, "count")) == 0
    assert restored.epoch == 2 and restored.history == [{"epoch": 0}, {"epoch": 1}]
    assert restored.extra == {"checkpoint_every": 1} and restored.problems == []


def test_a_legacy_uint32_key_round_trips_as_uint32(tmp_path, closing):
    """States keyed with jax.random.key (typed, what jaxnn makes) and with the legacy
    jax.random.PRNGKey (raw uint32) both come back exactly, each as the kind it was saved as."""
    typed = _state(seed=1, epoch=1)
    legacy = typed._replace(key=jax.random.key_data(typed.key))
    assert jnp.result_type(legacy.key) == jnp.uint32
    ckpt = checkpoint.Checkpointer(tmp_path)
    closing(ckpt)
    ckpt.save(legacy, [{"epoch": 0}])
    restored = ckpt.restore(_state(seed=9, epoch=0)).state
    _assert_states_equal(restored, legacy)
    assert jnp.result_type(restored.key) == jnp.uint32
    ckpt.save(typed._replace(epoch=2), [{"epoch": 0}, {"epoch": 1}])
    _assert_states_equal(ckpt.restore(legacy).state, typed._replace(epoch=2))


def _corrupt(ckpt, step) -> None:
    """Flip a byte in every data file of ``step``'s arrays."""
    corrupt_checkpoint(ckpt.directory.parent, step)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, closing):
    ckpt, states = _save_steps(tmp_path, closing=closing)
    _corrupt(ckpt, 3)
    with pytest.warns(checkpoint.CheckpointWarning, match="3 is incomplete or corrupt"):
        restored = ckpt.restore(_state(seed=9, epoch=0))
    assert restored.epoch == 2
    _assert_states_equal(restored.state, states[2])


def test_reading_arrays_drops_only_the_closed_event_loop_errors_a_failure_leaves(tmp_path,
                                                                             closing):
    """tensorstore may finish a failed step's other reads on orbax's closed event loop, which
    printed "Exception ignored ... RuntimeError: Event loop is closed" to stderr at random:
    once a step's arrays are read those unraisable errors are dropped, and any other one still
    reaches the hook that was there before."""
    import types

    seen, pytests_hook = [], sys.unraisablehook
    sys.unraisablehook = seen.append
    try:
        ckpt, _ = _save_steps(tmp_path, closing=closing)
        _corrupt(ckpt, 3)
        with pytest.warns(checkpoint.CheckpointWarning, match="3 is incomplete or corrupt"):
            assert ckpt.restore(_state(seed=9, epoch=0)).epoch == 2

        def unraisable(error):
            return types.SimpleNamespace(exc_type=type(error), exc_value=error,
                                         exc_traceback=None, err_msg=None, object=None)

        closed, other = unraisable(RuntimeError("Event loop is closed")), unraisable(OSError("x"))
        sys.unraisablehook(closed)
        sys.unraisablehook(other)
        assert other in seen and closed not in seen
    finally:
        # this test's own failed read may still leave stray callbacks: pytest's hook gets the
        # filter a process without the stand-in would have had (else they warn in a later test)
        sys.unraisablehook = pytests_hook
        checkpoint._quiet_stray_loop_callbacks()


def test_arrays_that_do_not_match_their_digest_fall_back_to_the_previous(tmp_path, closing):
    """orbax reads a step whose files are intact; the sha256 digest in its metadata catches
    arrays that are not the ones saved (here: a digest changed by one character)."""
    ckpt, states = _save_steps(tmp_path, closing=closing)
    path = ckpt.directory / "3" / "meta" / "metadata"
    meta = json.loads(path.read_text())
    digest = meta["digest"]
    meta["digest"] = ("0" if digest[0] != "0" else "1") + digest[1:]
    path.write_text(json.dumps(meta))
    restored = ckpt.restore(_state(seed=9, epoch=0), warn=False)
    assert restored.epoch == 2 and len(restored.problems) == 1, restored.problems
    assert "do not match their sha256 digest" in restored.problems[0]
    _assert_states_equal(restored.state, states[2])


def test_partial_checkpoint_is_ignored_and_missing_files_are_detected(tmp_path, closing):
    ckpt, states = _save_steps(tmp_path, closing=closing)
    # a write killed mid-way leaves only orbax's temporary directory: not a step
    tmp = ckpt.directory / "4.orbax-checkpoint-tmp-1234"
    (tmp / "state").mkdir(parents=True)
    (tmp / "state" / "junk").write_bytes(b"\0" * 10)
    assert ckpt.steps() == [1, 2, 3]
    # a finished step that lost its metadata is detected, with a message naming it
    (ckpt.directory / "3" / "meta" / "metadata").unlink()
    restored = ckpt.restore(_state(seed=9, epoch=0), warn=False)
    assert restored.epoch == 2 and len(restored.problems) == 1
    assert "checkpoints/3 is incomplete or corrupt" in restored.problems[0]
    _assert_states_equal(restored.state, states[2])


def test_no_intact_checkpoint_and_no_checkpoint_at_all(tmp_path, closing):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        checkpoint.restore_latest(tmp_path / "empty", _state())
    ckpt, _ = _save_steps(tmp_path / "run", (1,), closing=closing)
    (ckpt.directory / "1" / "meta" / "metadata").write_text("{not json")
    with pytest.raises(ValueError, match="no intact checkpoint"):
        ckpt.restore(_state(), warn=False)


def test_checkpoint_of_another_network_is_refused(tmp_path, closing):
    ckpt, _ = _save_steps(tmp_path, (1,), closing=closing)
    other = train.TrainState(mlp.make([6, 5, 3]).init(jax.random.key(0)), (),
                             jax.random.key(0), 0)
    with pytest.raises(ValueError, match="different network or optimizer"):
        ckpt.restore(other)


def _train(args, **kw):
    if "--resume" not in args:
        args = ["--train-size", "2000", "--mini-batch-size", "10", *args]
    cmd = [sys.executable, "-m", "jaxnn", "train", "--no-progress", *args]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _final_params(run_dir):
    ckpt = checkpoint.Checkpointer(run_dir)
    try:
        steps = ckpt.steps()
        meta_dir = ckpt.directory / str(steps[-1])
        assert meta_dir.is_dir()
        config = experiment.TrainConfig(**{**json.loads((run_dir / "config.json").read_text()),
                                           "sizes": (784, 30, 10)})
        net = mlp.make(config.sizes)
        p = net.init(jax.random.key(0))
        template = train.TrainState(p, optim.make(config.optimizer, config.eta).init(p),
                                    jax.random.key(0), 0)
        return ckpt.restore(template, warn=False)
    finally:
        ckpt.close()


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    epochs = "6"
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    # its own compilation cache: a kill while it writes a cache file must not leave a torn
    # file in the worker's cache (conftest.py)
    proc = _train(["--epochs", epochs, "--checkpoint-every", "1", "--out", str(killed)],
                  env={**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache")})
    first = killed / "checkpoints" / "1" / "commit_success.txt"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()  # waits, and closes its pipes
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    done = sorted(int(p.name) for p in (killed / "checkpoints").iterdir() if p.name.isdigit())
    assert done and done[-1] < int(epochs)

    resumed = _train(["--resume", str(killed)])
    # the two run at once: the second caches its programs in a folder of its own (JAX writes
    # a cache file in place, so two processes must not write one folder at once; conftest.py)
    uninterrupted = _train(["--epochs", epochs, "--checkpoint-every", "4", "--out", str(clean)],
                           env={**os.environ,
                                "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache-2")})
    try:  # within pytest-timeout's 600 s (conftest.py): 120 s above, then 180 s each
        out_r, err_r = resumed.communicate(timeout=180)
        out_c, err_c = uninterrupted.communicate(timeout=180)
    finally:  # a run past its limit is stopped, not left writing beside the next tests
        for p in (resumed, uninterrupted):
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert resumed.returncode == 0, err_r
    assert uninterrupted.returncode == 0, err_c
    assert "resuming" in out_r

    a, b = _final_params(killed), _final_params(clean)
    assert a.epoch == b.epoch == int(epochs)
    _assert_states_equal(a.state, b.state)  # bit for bit: params, optimizer state, key
    rows_k = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    rows_c = [json.loads(x) for x in (clean / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows_k] == list(range(int(epochs)))  # no duplicates
    for rk, rc in zip(rows_k, rows_c):
        assert {k: v for k, v in rk.items() if k != "seconds"} == \
               {k: v for k, v in rc.items() if k != "seconds"}


@pytest.fixture(scope="module")
def tiny():
    ds = data.load_mnist()
    x = data.to_inputs(ds.train.images[:200])
    return train.DeviceData.put(x, ds.train.labels[:200])


POISON = 7  # the example whose gradient is made NaN


def _poisoned(net, poison_from_epoch):
    """jax.grad of the cost, NaN on any mini-batch holding example POISON (marked by x = 5)."""
    grad = experiment.autodiff_grad_fn(net, "cross_entropy")

    def grad_fn(params, x, y):
        g = grad(params, x, y)
        bad = jnp.any(x[:, 0] == 5.0)
        return jax.tree_util.tree_map(lambda t: jnp.where(bad, jnp.nan, t), g)

    return grad_fn


def _guarded_setup(tiny, on_nan, m=10):
    x = np.asarray(tiny.x).copy()
    x[POISON, 0] = 5.0
    tr = train.DeviceData(jnp.asarray(x), tiny.labels)
    net = mlp.make([784, 30, 10])
    params = net.init(jax.random.key(0))
    opt = optim.make("sgd", 0.5)
    epoch = train.make_epoch(_poisoned(net, 0), opt, mini_batch_size=m, n_train=len(tr),
                             on_nan=on_nan)
    evaluate = metrics.make_evaluate(net.logits, costs.from_logits("cross_entropy", "sigmoid"))
    return tr, params, opt, epoch, evaluate


def test_divergence_names_epoch_and_step_and_keeps_the_last_checkpoint(tiny, tmp_path, closing):
    tr, params, opt, epoch, evaluate = _guarded_setup(tiny, "stop", m=10)
    ckpt = checkpoint.Checkpointer(tmp_path)
    closing(ckpt)
    saver = checkpoint.SaveEvery(ckpt, 1)

    def fresh():  # epochs donate their inputs: every fit gets its own copy
        p = jax.tree_util.tree_map(jnp.copy, params)
        return train.TrainState(p, opt.init(p), jax.random.key(3), 0)

    state = fresh()
    key0, epoch_key = jax.random.split(state.key)
    perm = np.asarray(jax.random.permutation(epoch_key, len(tr)))
    expected_step = int(np.flatnonzero(perm == POISON)[0]) // 10
    with pytest.raises(train.Diverged) as info:
        train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, epochs=3,
                  callbacks=[saver], progress=False, eta=0.5)
    assert info.value.epoch == 0 and info.value.step == expected_step
    assert f"epoch 0, step {expected_step}" in str(info.value)
    assert "eta=0.5" in str(info.value) and "too large" in str(info.value)
    assert ckpt.steps() == []  # nothing diverged was saved

    # diverging later keeps the checkpoint of the last good epoch
    clean_epoch = train.make_epoch(experiment.autodiff_grad_fn(mlp.make([784, 30, 10]),
                                                               "cross_entropy"),
                                   opt, mini_batch_size=10, n_train=len(tr), on_nan="stop")
    good, _ = train.fit(fresh(), epoch_fn=clean_epoch, evaluate=evaluate, train=tr, epochs=1,
                        callbacks=[saver], progress=False)
    good_copy = jax.tree_util.tree_map(jnp.copy, good)
    with pytest.raises(train.Diverged, match="epoch 1, step"):
        train.fit(good_copy, epoch_fn=epoch, evaluate=evaluate, train=tr, epochs=3,
                  callbacks=[saver], progress=False)
    assert ckpt.steps() == [1]
    restored = ckpt.restore(fresh())
    _assert_states_equal(restored.state, good)


def test_on_nan_skip_skips_only_the_bad_updates(tiny):
    tr, params, opt, epoch, evaluate = _guarded_setup(tiny, "skip", m=10)
    state = train.TrainState(params, opt.init(params), jax.random.key(3), 0)
    final, history = train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, epochs=2,
                               progress=False)
    assert [r["skipped_steps"] for r in history] == [1, 1]  # one poisoned mini-batch a epoch
    assert all(np.isfinite(np.asarray(leaf)).all()
               for leaf in jax.tree_util.tree_leaves(final.params))
    assert history[-1]["train_cost"] < history[0]["train_cost"]


def test_unguarded_epoch_is_unchanged_by_the_guard(tiny):
    net = mlp.make([784, 30, 10])
    params = net.init(jax.random.key(0))
    opt = optim.make("sgd", 0.5)
    grad = experiment.autodiff_grad_fn(net, "cross_entropy")
    key = jax.random.key(4)
    outs = []
    for on_nan in (None, "stop", "skip"):
        epoch = train.make_epoch(grad, opt, mini_batch_size=7, n_train=len(tiny), on_nan=on_nan)
        p, *rest = epoch(jax.tree_util.tree_map(jnp.copy, params), opt.init(params), key, tiny)
        outs.append(p)
        if on_nan:
            assert int(rest[1].first_bad_step) == -1 and int(rest[1].skipped) == 0
    for p in outs[1:]:
        _assert_states_equal(p, outs[0])


def test_cli_divergence_is_one_line_and_exits_3(tmp_path, capsys):
    code = main(["train", "--train-size", "500", "--epochs", "2", "--activation", "relu",
                 "--output", "identity", "--init", "he", "--eta", "10", "--no-progress",
                 "--out", str(tmp_path / "run"), "--checkpoint-every", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    line = [x for x in err if x.startswith("jaxnn train: error:")]
    assert len(line) == 1 and "Traceback" not in "\n".join(err)
    assert "training diverged" in line[0] and "epoch 0, step" in line[0]
    assert "smaller --eta" in line[0]


def test_cli_skip_reports_the_count(tmp_path, capsys):
    # the skipping itself is tested above; here the flag's wiring and report
    code = main(["train", "--train-size", "500", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "run"), "--on-nan", "skip"])
    assert code == 0
    assert "skipped 0 updates" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "options.json").read_text())["on_nan"] == "skip"


def test_cli_resume_reuses_the_run_options_unless_given_again(tmp_path, capsys):
    """--resume keeps options.json's --checkpoint-every and --on-nan; a flag given again
    replaces its option there (the help and docs/reliability.md say so)."""
    run = tmp_path / "run"
    common = ["--no-progress"]
    assert main(["train", "--train-size", "200", "--eval-size", "100", "--epochs", "1",
                 "--checkpoint-every", "1", "--out", str(run), *common]) == 0
    assert json.loads((run / "options.json").read_text()) == {"on_nan": "stop",
                                                             "checkpoint_every": 1}
    assert main(["train", "--resume", str(run), "--epochs", "2", *common]) == 0
    assert json.loads((run / "options.json").read_text()) == {"on_nan": "stop",
                                                             "checkpoint_every": 1}
    assert main(["train", "--resume", str(run), "--epochs", "3", "--on-nan", "skip",
                 "--checkpoint-every", "2", *common]) == 0
    assert json.loads((run / "options.json").read_text()) == {"on_nan": "skip",
                                                             "checkpoint_every": 2}
    capsys.readouterr()


def test_cli_resume_names_the_stored_setting_that_is_not_valid(tmp_path, capsys):
    """A bad value in config.json is the file's, not a flag the user typed."""
    (tmp_path / "r").mkdir()
    saved = experiment.TrainConfig.from_preset("ch1-30", train_size=500).to_json()
    (tmp_path / "r" / "config.json").write_text(json.dumps({**saved, "eta": 0}))
    assert main(["train", "--resume", str(tmp_path / "r"), "--epochs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"jaxnn train: error: --resume: {tmp_path / 'r' / 'config.json'} holds a "
                   "setting that is not valid (eta: expected a positive number; got 0)"), err


@pytest.mark.parametrize("flag", [["--grads", "manual"], ["--eta", "0.1"], ["--l1", "0.1"]])
def test_cli_resume_refuses_config_flags_for_a_run_with_a_config(tmp_path, capsys, flag):
    """--resume takes the run's config.json: a configuration flag (other than --epochs) is
    refused by name, not ignored."""
    (tmp_path / "config.json").write_text(json.dumps(
        experiment.TrainConfig.from_preset("ch1-30", epochs=1).to_json()))
    assert main(["train", "--resume", str(tmp_path), *flag]) == 2
    assert (f"expected no configuration flags except --epochs; got {flag[0]}"
            in capsys.readouterr().err)


def test_cli_resume_keeps_a_saved_on_nan_skip(tmp_path, capsys):
    """options.json's --on-nan skip (not the default, stop) is reused by a --resume that does
    not give it again."""
    run = tmp_path / "run"
    common = ["--train-size", "200", "--eval-size", "100", "--no-progress"]
    assert main(["train", *common, "--epochs", "1", "--on-nan", "skip", "--checkpoint-every",
                 "1", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert "skipped 0 updates" in capsys.readouterr().out
    assert json.loads((run / "options.json").read_text())["on_nan"] == "skip"


def test_cli_an_interrupted_run_resumes_to_exactly_its_checkpoint(tmp_path, capsys,
                                                                  monkeypatch):
    """--epochs may equal the epochs the checkpoint holds ("at least"): the resumed run ends
    there, with its summary."""
    real = experiment.run

    def run(config, **kwargs):
        def ctrl_c(record, state):
            if record["epoch"] == 1:
                raise KeyboardInterrupt
        return real(config, **{**kwargs, "callbacks": [*kwargs["callbacks"], ctrl_c]})

    monkeypatch.setattr(experiment, "run", run)
    out = tmp_path / "r"
    assert main(["train", "--train-size", "200", "--eval-size", "100", "--no-progress",
                 "--epochs", "3", "--checkpoint-every", "1", "--out", str(out)]) == 130
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2


def test_cli_resume_refuses_config_flags(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--eta", "0.1"]) == 2
    assert "--resume" in capsys.readouterr().err
    os.makedirs(tmp_path / "r", exist_ok=True)
    (tmp_path / "r" / "config.json").write_text(json.dumps(
        experiment.TrainConfig.from_preset("ch1-30", train_size=500, epochs=1).to_json()))
    assert main(["train", "--resume", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "has no checkpoint to continue from" in capsys.readouterr().err


@pytest.mark.parametrize("batch_norm", [False, True], ids=["conv1", "conv1-batch-norm"])
def test_cnn_resume_equals_an_uninterrupted_run(tmp_path, batch_norm, closing):
    """A CNN's TrainState carries model_state (Flax's non-trained state; batch-norm statistics
    when there is batch norm): the checkpoint must hold it, so that resuming after epoch 1 of 2
    ends bit for bit where two uninterrupted epochs end."""
    config = experiment.TrainConfig.from_preset(
        "ch6-conv1", epochs=2, train_size=200, eval_size=100, batch_norm=batch_norm)
    clean = experiment.run(config, progress=False)
    ckpt = checkpoint.Checkpointer(tmp_path)
    closing(ckpt)
    experiment.run(dataclasses.replace(config, epochs=1), progress=False,
                   callbacks=[checkpoint.SaveEvery(ckpt, 1)])
    resumed = experiment.run(config, progress=False,
                             resume=lambda fresh: ckpt.restore(fresh, warn=False)[:2])
    if batch_norm:
        assert jax.tree_util.tree_leaves(clean.state.model_state)  # statistics to carry over
    _assert_states_equal(resumed.state, clean.state)
    assert [r["test_accuracy"] for r in resumed.history] == \
           [r["test_accuracy"] for r in clean.history]


def test_cli_resumes_a_cnn_run(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    common = ["--preset", "ch6-conv1", "--batch-norm", "--train-size", "200",
              "--eval-size", "100", "--no-progress"]
    assert main(["train", *common, "--epochs", "1", "--checkpoint-every", "1",
                 "--out", run_dir]) == 0
    assert main(["train", "--resume", run_dir, "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "after 1 epoch (the next is epoch 1" in out
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]


def _without_seconds(path):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in Path(path).read_text().splitlines()]


def test_cli_ensemble_interrupted_in_a_member_resumes_from_its_checkpoint(
        tmp_path, capsys, monkeypatch):
    """With --checkpoint-every, each member of an ensemble trains in OUT/member<i>/. Stopped by
    Ctrl-C in member 1, `--resume OUT` keeps member 0, takes member 1 up from its checkpoint,
    trains member 2, and votes as the uninterrupted ensemble did, with the same metrics."""
    from jaxnn import ensemble

    args = ["train", "--train-size", "200", "--eval-size", "100", "--no-progress",
            "--epochs", "3", "--ensemble", "3", "--checkpoint-every", "1"]
    whole, out = tmp_path / "whole", tmp_path / "stopped"
    assert main([*args, "--out", str(whole)]) == 0
    capsys.readouterr()
    real = ensemble._tagged

    def ctrl_c_in_member_1(callback, member, seed, record, state):
        real(callback, member, seed, record, state)
        if member == 1 and record["epoch"] == 1:  # before its checkpoint after 2 epochs
            raise KeyboardInterrupt

    monkeypatch.setattr(ensemble, "_tagged", ctrl_c_in_member_1)
    assert main([*args, "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"jaxnn train: interrupted; {out} holds the checkpoints of 2 of its 3 members "
        f"(member1's newest after 1 epoch): continue with jaxnn train --resume {out}")
    monkeypatch.undo()

    assert main(["train", "--resume", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"  ensemble member 0: kept from {out / 'member0'}" in lines, lines
    assert (f"  ensemble member 1: resuming {out / 'member1'} after epoch 1 (its newest "
            "checkpoint)") in lines, lines
    assert f"  ensemble member 2: training 3 epochs -> {out / 'member2'}" in lines, lines
    trained = [line.split(":")[0] + line.split("(")[1] for line in lines
               if line.startswith("Epoch")]
    assert trained == ["Epoch 1member 1, seed 1)", "Epoch 2member 1, seed 1)",
                       "Epoch 0member 2, seed 2)", "Epoch 1member 2, seed 2)",
                       "Epoch 2member 2, seed 2)"], lines
    summaries = [json.loads((d / "summary.json").read_text()) for d in (whole, out)]
    for key in ("ensemble_test_accuracy", "ensemble_validation_accuracy",
                "member_test_at_best_validation", "epochs"):
        assert summaries[1][key] == summaries[0][key], key
    # the ensemble's metrics hold every member's epochs once, in order, as if not stopped
    assert _without_seconds(out / "metrics.jsonl") == _without_seconds(whole / "metrics.jsonl")
    for i in range(3):
        assert checkpoint.saved_steps(out / f"member{i}") == [1, 2, 3]
        assert (_without_seconds(out / f"member{i}" / "metrics.jsonl")
                == _without_seconds(whole / f"member{i}" / "metrics.jsonl"))

    # A finished ensemble trains no further, and another run into it is refused.
    assert main(["train", "--resume", str(out), "--no-progress"]) == 2
    assert f"{out} has finished its ensemble of 3 networks" in capsys.readouterr().err
    assert main(["train", "--train-size", "200", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "member0, member1, member2" in err and "its ensemble finished; pass --overwrite" in err
    assert main(["train", "--train-size", "200", "--eval-size", "100", "--epochs", "1",
                 "--no-progress", "--out", str(out), "--overwrite"]) == 0
    assert not list(out.glob("member*"))


def test_cli_resume_of_an_ensemble_is_refused_without_member_checkpoints_or_with_new_epochs(
        tmp_path, capsys, monkeypatch):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps(
        experiment.TrainConfig.from_preset("ch1-30", ensemble=2).to_json()))
    assert main(["train", "--resume", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (f"--resume: {tmp_path / 'r'} holds an ensemble of 2 networks with no checkpoint "
            "to continue from") in err, err
    with pytest.raises(ValueError, match="resume: expected a run of one network"):
        experiment.run(experiment.TrainConfig.from_preset("ch1-30", ensemble=2),
                       resume=lambda fresh: (fresh, []))

    from jaxnn import ensemble

    out = tmp_path / "e"
    real = ensemble._tagged

    def ctrl_c_in_member_1(callback, member, seed, record, state):
        real(callback, member, seed, record, state)
        if member == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ensemble, "_tagged", ctrl_c_in_member_1)
    assert main(["train", "--train-size", "200", "--eval-size", "100", "--no-progress",
                 "--epochs", "2", "--ensemble", "2", "--checkpoint-every", "1",
                 "--out", str(out)]) == 130
    capsys.readouterr()
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--epochs", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert ("--epochs: an ensemble's members train 2 epochs each, and those that finished are "
            "kept as they are; a resumed ensemble keeps them (expected 2; got 4)") in err, err
    assert main(["train", "--train-size", "200", "--out", str(out)]) == 2
    assert f"continue it with --resume {out}, or pass --overwrite" in capsys.readouterr().err


def test_cli_resume_refuses_fewer_epochs_than_the_checkpoint_holds(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--train-size", "200", "--eval-size", "100", "--epochs", "2",
                 "--checkpoint-every", "1", "--no-progress", "--out", str(run_dir)]) == 0
    config = (run_dir / "config.json").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--epochs", "1", "--no-progress"]) == 2
    assert "--epochs: expected more than the 2 epochs" in capsys.readouterr().err
    assert (run_dir / "config.json").read_text() == config  # untouched


def test_a_run_resumed_through_its_saver_checkpoints_every_epoch(tmp_path, closing):
    """``resume=saver.resume``: the checkpoints after the resume hold the restored epochs too
    (a fresh SaveEvery with a plain restore would start its history at the resume)."""
    config = experiment.TrainConfig.from_preset("ch1-30", epochs=4, train_size=200,
                                                eval_size=100)
    ckpt = checkpoint.Checkpointer(tmp_path)
    closing(ckpt)
    experiment.run(dataclasses.replace(config, epochs=2), progress=False,
                   callbacks=[checkpoint.SaveEvery(ckpt, 1)])
    saver = checkpoint.SaveEvery(ckpt, 1)
    resumed = experiment.run(config, progress=False, callbacks=[saver], resume=saver.resume)
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3]
    template = train.TrainState(*jax.tree_util.tree_map(jnp.copy, (
        resumed.state.params, resumed.state.opt_state, resumed.state.key)), 0)
    restored = ckpt.restore(template)
    assert restored.epoch == 4
    assert [r["epoch"] for r in restored.history] == [0, 1, 2, 3]
    assert restored.history == resumed.history
    # a whole Restored is taken too; anything else is named
    again = experiment.run(dataclasses.replace(config, epochs=5), progress=False,
                           resume=lambda fresh: checkpoint.restore_latest(tmp_path, fresh))
    assert [r["epoch"] for r in again.history] == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match="resume: expected \\(state, history\\); got TrainState"):
        experiment.run(config, progress=False, resume=lambda fresh: fresh)


def test_cli_refuses_a_checkpointed_ensemble_over_several_processes(tmp_path, capsys,
                                                                    monkeypatch):
    """The members' directories are written by one process: with several (--distributed), a
    checkpointed ensemble is refused before anything is written."""
    from jaxnn import parallel

    monkeypatch.setattr(parallel, "process_count", lambda: 2)
    out = tmp_path / "e"
    assert main(["train", "--train-size", "200", "--ensemble", "2", "--checkpoint-every", "1",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("jaxnn train: error: --checkpoint-every: an ensemble's members are "
                   "checkpointed by a single process; got 2 (train them alone, each with "
                   "--seed S --checkpoint-every N, or on one host)"), err
    assert not out.exists()
