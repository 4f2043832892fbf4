"""The library API of :func:`jaxnn.experiment.run` and :mod:`jaxnn.ensemble`: a ``grad_fn`` and
an ``on_nan`` policy reach every ensemble member, a ``grad_fn`` is refused where it would be
ignored (CNN models) and checked before training, a CNN refuses prelu (its slope would not be
learned), and a majority vote refuses labels that are not class labels."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import assert_trees_close

from jaxnn import cnn, ensemble, experiment, layers, train
from jaxnn.cli import main

SMALL = dict(epochs=1, train_size=200, eval_size=100)


def _config(**overrides):
    return experiment.TrainConfig.from_preset("ch1-30", **{**SMALL, **overrides})


def _zero_grad(params, x, y):
    return jax.tree_util.tree_map(jnp.zeros_like, params)


def _nan_grad(params, x, y):
    return jax.tree_util.tree_map(lambda p: jnp.full_like(p, jnp.nan), params)


def _traced(fn, calls):
    """``fn``, appending to ``calls`` each time it is traced (it runs inside a jit)."""

    @functools.wraps(fn)
    def grad_fn(params, x, y):
        calls.append(x.shape)
        return fn(params, x, y)

    return grad_fn


# --- item 1: grad_fn and on_nan reach every ensemble member ---------------------------------

def test_an_ensemble_trains_every_member_with_the_given_grad_fn():
    """Zero gradients and no L2: every member (seeds 0 and 1) ends its epoch where it started,
    so every one trained with grad_fn (jax.grad of the cost would move each)."""
    calls, ended = [], {}

    def keep(record, state):  # the params each member ends its epoch with
        ended[record["member"]] = jax.tree.map(np.array, state.params)

    result = experiment.run(_config(ensemble=2), grad_fn=_traced(_zero_grad, calls),
                            callbacks=[keep], progress=False)
    # traced by the shape check (jax.eval_shape) and again inside the compiled training
    assert len(calls) >= 2, f"grad_fn was only traced {len(calls)} time(s)"
    assert result.summary["ensemble"] == 2 and sorted(ended) == [0, 1]
    for member in (0, 1):
        start = experiment.initial_params(_config(seed=member))
        assert_trees_close(ended[member], start, rtol=0, name=f"member {member} params")
    assert_trees_close(result.state.params, ended[1], rtol=0, name="params")


@pytest.mark.parametrize("model", ["mlp", "conv1"])
def test_initial_params_are_where_run_starts(model):
    """experiment.initial_params(config) is the state run(config) starts from (the template
    that ``resume`` receives), for an MLP and a CNN, with and without a prepared network; a
    different seed starts elsewhere."""
    config = _config(seed=3) if model == "mlp" else experiment.TrainConfig.from_preset(
        "ch6-conv1", seed=3, **SMALL)
    started = []

    def resume(fresh):
        started.append(jax.tree.map(jnp.copy, fresh.params))
        return fresh, []

    experiment.run(config, resume=resume, progress=False)
    assert_trees_close(experiment.initial_params(config), started[0], rtol=0, name="params")
    network = experiment.prepare(config).network
    assert_trees_close(experiment.initial_params(config, network), started[0], rtol=0,
                       name="params")
    other = jax.tree.leaves(experiment.initial_params(dataclasses.replace(config, seed=4)))
    assert not all(np.array_equal(a, b) for a, b in zip(other, jax.tree.leaves(started[0])))


def _stop_member_0(record, state):
    """A training callback (it sees each epoch's record with the ``member`` added): True stops
    that member after the epoch, so member 0 trains one epoch."""
    return record["member"] == 0


def test_ensemble_epochs_is_the_most_any_member_trained():
    """Member 0 stops after its first epoch (a callback returning True, as an early stopper
    does), member 1 trains all 3: each member's summary counts its own epochs, and the
    ensemble's ``epochs`` is their maximum, 3."""
    config = _config(ensemble=2, epochs=3)
    result = experiment.run(config, callbacks=[_stop_member_0], progress=False)
    assert [m["epochs"] for m in result.summary["members"]] == [1, 3]
    assert result.summary["epochs"] == 3


def test_an_ensemble_skips_non_finite_updates_with_on_nan_skip():
    config = _config(ensemble=2)
    result = experiment.run(config, grad_fn=_nan_grad, on_nan="skip", progress=False)
    steps = -(-200 // config.mini_batch_size)
    assert [m["epochs"] for m in result.summary["members"]] == [1, 1]
    assert [r["skipped_steps"] for r in result.history] == [steps]
    assert result.summary["member_skipped_steps"] == [steps, steps]
    assert_trees_close(result.state.params, experiment.initial_params(_config(seed=1)), rtol=0,
                       name="params")


def test_an_ensemble_stops_on_non_finite_updates_with_on_nan_stop():
    with pytest.raises(train.Diverged):
        experiment.run(_config(ensemble=2), grad_fn=_nan_grad, on_nan="stop", progress=False)


def test_an_ensemble_prepares_the_data_once_and_trains_each_member_as_a_single_run(
        monkeypatch):
    """The members share one copy of the data (the vote's too): each trains exactly as the
    single run of its seed does, on data prepared once instead of once per member."""
    config = _config(ensemble=2, mini_batch_size=20)
    singles = [experiment.run(_config(mini_batch_size=20, seed=s), progress=False)
               for s in (0, 1)]
    calls = []
    prepare = experiment.prepare
    monkeypatch.setattr(experiment, "prepare", lambda c: calls.append(c.seed) or prepare(c))
    result = experiment.run(config, progress=False)
    assert calls == [0]
    untimed = [{k: v for k, v in m.items() if "seconds" not in k}
               for m in [*result.summary["members"], *(r.summary for r in singles)]]
    assert untimed[:2] == untimed[2:] and len(untimed[0]) > 6
    assert_trees_close(result.state.params, singles[1].state.params, rtol=0, name="params")


def test_a_trainer_trains_each_seed_as_run_does_and_builds_its_programs_once(monkeypatch):
    """``Trainer(config).run(seed=s)`` is ``experiment.run`` of that seed, bit for bit (state
    and every record but its seconds), while the data is prepared and the epoch built once for
    all seeds; a configuration that differs in more than the seed, or an ensemble, is
    refused."""
    config = _config(epochs=2, mini_batch_size=20, l2=1.0)
    alone = [experiment.run(dataclasses.replace(config, seed=s), progress=False)
             for s in (0, 1, 2)]
    prepared, built = [], []
    prepare, make_epoch = experiment.prepare, train.make_epoch
    monkeypatch.setattr(experiment, "prepare", lambda c: prepared.append(1) or prepare(c))
    monkeypatch.setattr(train, "make_epoch", lambda *a, **k: built.append(1) or make_epoch(*a, **k))
    trainer = experiment.Trainer(config)
    results = [trainer.run(progress=False), trainer.run(seed=1, progress=False),
               trainer.run_config(dataclasses.replace(config, seed=2), progress=False)]
    assert (len(prepared), len(built)) == (1, 1)
    for got, want in zip(results, alone):
        assert got.config == want.config
        assert_trees_close(got.state.params, want.state.params, rtol=0, name="params")
        assert ([{k: v for k, v in r.items() if k != "seconds"} for r in got.history]
                == [{k: v for k, v in r.items() if k != "seconds"} for r in want.history])
    first = [jax.tree.leaves(r.state.params)[0] for r in results[:2]]
    assert not np.array_equal(*first)  # the seeds differ
    with pytest.raises(ValueError, match="expected the configuration these programs were built "
                                         "for, up to the seed"):
        trainer.run_config(dataclasses.replace(config, eta=0.5), progress=False)
    with pytest.raises(ValueError, match="config: expected a run of one network; got an "
                                         "ensemble of 2"):
        experiment.Trainer(_config(ensemble=2))


def test_a_cnn_ensemble_votes_with_its_members_final_networks():
    """A Flax model's ensemble (one compiled vote on (params, batch statistics)): its accuracy
    is the majority vote of the single runs of its seeds, recomputed here from their networks."""
    settings = dict(epochs=1, train_size=100, eval_size=300, batch_norm=True)
    config = experiment.TrainConfig.from_preset("ch6-fc100", ensemble=2, **settings)
    result = experiment.run(config, progress=False)
    prepared = experiment.prepare(dataclasses.replace(config, ensemble=1))
    votes = {"test": [], "validation": []}
    for seed in (0, 1):
        alone = experiment.run(dataclasses.replace(config, ensemble=1, seed=seed),
                               progress=False)
        model = cnn.make(prepared.network, jax.random.key(0))  # the graph; weights below
        nnx.update(model, alone.state.params, alone.state.model_state)
        model.eval()
        for name in votes:
            votes[name].append(jnp.argmax(model(getattr(prepared, name).x), axis=-1))
    for name in votes:  # the validation vote picks reproduce's best of several ensembles
        labels = getattr(prepared, name).labels
        expected = float(jnp.mean(ensemble.majority_vote(jnp.stack(votes[name])) == labels))
        assert result.summary[f"ensemble_{name}_accuracy"] == expected, name


def test_ensemble_run_keeps_its_old_signature():
    result = ensemble.run(_config(ensemble=2), progress=False)
    assert len(result.summary["members"]) == 2
    assert 0.0 <= result.summary["ensemble_test_accuracy"] <= 1.0


def test_cli_ensemble_uses_manual_grads_and_on_nan_skip(tmp_path, capsys, monkeypatch):
    """``--ensemble 2 --grads manual --on-nan skip``: the manual gradient trains both members
    (here replaced by one that is NaN, so every update is skipped and counted)."""
    calls = []
    monkeypatch.setattr(experiment, "manual_grad_fn",
                        lambda config: _traced(_nan_grad, calls))
    code = main(["train", "--ensemble", "2", "--grads", "manual", "--on-nan", "skip",
                 "--epochs", "1", "--train-size", "200", "--eval-size", "100",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and calls
    assert "skipped 40 updates" in printed  # 200 / 10 mini-batches for each member
    assert "ensemble of 2" in printed


def test_grads_manual_in_the_config_trains_with_manual_grad(monkeypatch):
    """``TrainConfig(grads="manual")`` from Python (not only ``--grads manual``) trains with
    manual_grad's backprop: the same parameters as passing that gradient as ``grad_fn``."""
    import manual_grad

    config = _config(grads="manual")

    def backprop(params, x, y):
        return manual_grad.backprop(params, x, y, activation=config.activation,
                                    output_activation=config.output_activation,
                                    cost=config.cost)[0]

    by_config = experiment.run(config, progress=False)
    by_grad_fn = experiment.run(config, grad_fn=backprop, progress=False)
    assert_trees_close(by_config.state.params, by_grad_fn.state.params, rtol=0, name="params")
    calls = []  # and it is experiment.manual_grad_fn that supplies it
    monkeypatch.setattr(experiment, "manual_grad_fn", lambda c: _traced(_zero_grad, calls))
    result = experiment.run(config, progress=False)
    assert calls
    assert_trees_close(result.state.params, experiment.initial_params(config), rtol=0,
                       name="params")


# --- item 2: grad_fn is refused for CNN models ----------------------------------------------

@pytest.mark.parametrize("model", ["fc100", "conv1"])
def test_grad_fn_is_refused_for_cnn_models(model):
    config = experiment.TrainConfig.from_preset("ch6-fc100", model=model, **SMALL)
    calls = []
    with pytest.raises(ValueError, match=f"grad_fn: .*'mlp'.*got model '{model}'"):
        experiment.run(config, grad_fn=_traced(_zero_grad, calls), progress=False)
    assert not calls


def test_grad_fn_is_refused_for_a_cnn_ensemble():
    config = experiment.TrainConfig.from_preset("ch6-fc100", ensemble=2, **SMALL)
    with pytest.raises(ValueError, match="grad_fn"):
        experiment.run(config, grad_fn=_zero_grad, progress=False)


# --- item 3: a grad_fn that does not return gradients fails early ---------------------------

def test_manual_backprop_unwrapped_fails_with_a_clear_type_error():
    import manual_grad

    config = _config()
    backprop = functools.partial(manual_grad.backprop, activation=config.activation,
                                 output_activation=config.output_activation, cost=config.cost)
    with pytest.raises(TypeError, match=r"grad_fn: .*got a tuple of 2.*\(grads, info\)") as e:
        experiment.run(config, grad_fn=backprop, progress=False)
    assert len(str(e.value).splitlines()) <= 3


def test_manual_backprop_wrapped_as_documented_trains():
    import manual_grad

    config = _config()

    def grad_fn(params, x, y):
        grads, _info = manual_grad.backprop(params, x, y, activation=config.activation,
                                            output_activation=config.output_activation,
                                            cost=config.cost)
        return grads

    manual = experiment.run(config, grad_fn=grad_fn, progress=False)
    auto = experiment.run(config, progress=False)
    assert_trees_close(manual.state.params, auto.state.params, rtol=1e-4, atol=1e-5,
                       name="params")


def _wrong_shape(params, x, y):
    return [{"w": g["w"].T, "b": g["b"]} for g in _zero_grad(params, x, y)]


def _missing_layer(params, x, y):
    return _zero_grad(params, x, y)[:-1]


@pytest.mark.parametrize("grad_fn, fragment", [
    (_wrong_shape, r"shape"),
    (_missing_layer, r"structure"),
    (lambda params, x, y: jnp.zeros(()), r"structure"),
    (lambda params, x, y: jax.tree_util.tree_map(
        lambda p: jnp.zeros(p.shape, jnp.int32), params), r"dtype"),
])
def test_a_grad_fn_that_does_not_match_params_fails_before_training(grad_fn, fragment):
    with pytest.raises(TypeError, match=f"grad_fn: (.|\n)*{fragment}"):
        experiment.run(_config(), grad_fn=grad_fn, progress=False)


def test_a_grad_fn_that_is_not_callable_is_refused():
    with pytest.raises(TypeError, match="grad_fn: expected a callable"):
        experiment.run(_config(), grad_fn="manual", progress=False)


# --- item 4: CNNs refuse prelu ----------------------------------------------------------------

def test_cnn_architecture_refuses_prelu():
    with pytest.raises(ValueError, match="activation: .*prelu"):
        cnn.architecture("conv1", input_shape=(28, 28, 1), activation="prelu")
    with pytest.raises(ValueError, match="activation: .*prelu"):
        layers.CNNSpec((28, 28, 1), (layers.Flatten(), layers.Dense(10)), "prelu")


@pytest.mark.parametrize("model", ["fc100", "conv1"])
def test_train_config_refuses_prelu_for_cnn_models(model):
    with pytest.raises(ValueError, match="activation: .*prelu"):
        experiment.TrainConfig.from_preset("ch6-fc100", model=model, activation="prelu")


def test_the_mlp_still_learns_prelu():
    config = experiment.TrainConfig.from_preset("ch3-ce-30", activation="prelu", **SMALL)
    params = experiment.prepare(config).network.init(jax.random.key(0))
    assert "alpha" in params[0]


def test_compare_refuses_a_prelu_cnn(capsys):
    code = main(["compare", "--model", "conv1", "--activation", "prelu"])
    assert code != 0
    assert "prelu" in capsys.readouterr().err


# --- item 5: majority_vote checks its labels --------------------------------------------------

@pytest.mark.parametrize("predictions, error", [
    ([[-1, 2], [-1, 2]], ValueError),
    ([[0, 1], [2, -3]], ValueError),
    ([[0.5, 1.0], [1.0, 1.0]], TypeError),
    ([[True, False]], TypeError),
    (np.zeros((0, 3), np.int32), ValueError),
])
def test_majority_vote_refuses_what_is_not_class_labels(predictions, error):
    with pytest.raises(error, match="predictions"):
        ensemble.majority_vote(predictions)


def test_majority_vote_still_votes():
    np.testing.assert_array_equal(ensemble.majority_vote(np.array([[1, 0], [1, 2], [3, 2]])),
                                  [1, 2])
    # a tie goes to the smallest label, wherever its votes stand (two members: every
    # disagreement is a tie)
    np.testing.assert_array_equal(
        ensemble.majority_vote(np.array([[7, 3, 5, 9], [7, 5, 3, 2], [3, 7, 1, 9],
                                         [3, 5, 7, 2], [5, 1, 9, 4]])), [3, 5, 1, 2])
    np.testing.assert_array_equal(ensemble.majority_vote(np.array([[8, 2], [4, 6]])), [4, 2])
    assert ensemble.majority_vote(np.zeros((2, 0), np.int32)).shape == (0,)


def test_a_result_prints_its_summary_not_its_weights_and_jaxnn_lists_every_module():
    import jaxnn
    from jaxnn import experiment

    config = experiment.TrainConfig.from_preset("ch1-30", epochs=1, train_size=200,
                                                eval_size=100)
    result = experiment.run(config, progress=False)
    text = repr(result)
    assert text.startswith("Result(preset='ch1-30', epochs=1, summary={") and "Array" not in text
    assert set(jaxnn.__all__) <= set(dir(jaxnn))
