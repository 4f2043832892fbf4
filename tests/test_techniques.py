"""The course's training techniques: optimizers, schedules, L1/L2, early stopping, clipping,
maxout, ensembles, and clear errors for bad settings."""

import collections
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxnn import costs, ensemble, experiment, metrics, optim, train


@pytest.fixture
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def _params(dtype=jnp.float64):
    w = jnp.asarray([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype)
    b = jnp.asarray([0.3, -0.2], dtype)
    return [{"w": w, "b": b}]


def _grads(dtype=jnp.float64):
    return [{"w": jnp.asarray([[0.1, 0.2, -0.3], [0.05, -0.4, 0.6]], dtype),
             "b": jnp.asarray([1.0, -2.0], dtype)}]


def _one_update(opt, params, grads):
    updates, _ = opt.update(grads, opt.init(params), params)
    return optax.apply_updates(params, updates)


@pytest.mark.parametrize("convention", ["chapter3", "chapter6"])
def test_l2_conventions_match_the_books_update_exactly(x64, convention):
    eta, l2, n, m = 0.5, 5.0, 1000, 10
    config = experiment.TrainConfig.from_preset("ch3-l2-30", eta=eta, l2=l2, mini_batch_size=m,
                                                l2_convention=convention)
    params, grads = _params(), _grads()
    new = _one_update(experiment.make_optimizer(config, n), params, grads)
    w, g = params[0]["w"], grads[0]["w"]
    if convention == "chapter3":  # w <- (1 - eta lambda / n) w - eta grad
        expected_w = (1 - eta * l2 / n) * w - eta * g
    else:  # C + 0.5 lambda sum w^2 / (n / m)  =>  w <- w - eta (grad + lambda w / (n / m))
        expected_w = w - eta * (g + l2 * w / (n // m))
    np.testing.assert_allclose(new[0]["w"], expected_w, rtol=1e-14)
    np.testing.assert_allclose(new[0]["b"], params[0]["b"] - eta * grads[0]["b"], rtol=1e-14)


def test_l1_adds_the_sign_of_the_weights_to_the_gradient(x64):
    from jaxnn import mlp

    net = mlp.make([3, 2], activation="sigmoid", output_activation="sigmoid")
    params = _params()
    x = jnp.asarray([[0.1, 0.2, 0.3]])
    y = jnp.asarray([[0.0, 1.0]])
    l1, n = 2.0, 50
    plain = experiment.autodiff_grad_fn(net, "cross_entropy")(params, x, y)
    penalty = lambda p: costs.l1_penalty(p, scale=l1 / n)  # noqa: E731
    with_l1 = experiment.autodiff_grad_fn(net, "cross_entropy", l1=penalty)(params, x, y)
    np.testing.assert_allclose(with_l1[0]["w"], plain[0]["w"] + l1 / n * jnp.sign(params[0]["w"]))
    np.testing.assert_allclose(with_l1[0]["b"], plain[0]["b"])


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
@pytest.mark.parametrize("schedule", optim.SCHEDULES)
def test_every_optimizer_and_schedule_runs(name, schedule):
    eta = optim.schedule(schedule, 0.1, 20)
    opt = optim.make(name, eta, l2=1.0, n_train=100, clip_norm=5.0)
    params, grads = _params(jnp.float32), _grads(jnp.float32)
    state = opt.init(params)
    for _ in range(3):
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(params))
    assert not np.allclose(params[0]["w"], _params(jnp.float32)[0]["w"])


def test_schedules_have_the_documented_shape():
    steps = 100
    assert float(optim.schedule("constant", 0.1, steps)(steps)) == pytest.approx(0.1)
    step = optim.schedule("step", 0.1, steps)
    assert [float(step(t)) for t in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])  # drops at a half and at three quarters
    cosine = optim.schedule("cosine", 0.1, steps)
    assert float(cosine(0)) == pytest.approx(0.1) and float(cosine(steps)) == pytest.approx(0)
    one = optim.schedule("one-cycle", 0.1, steps)
    assert float(one(0)) == pytest.approx(0.1 / 25) and float(one(30)) == pytest.approx(0.1)
    assert float(one(steps)) == pytest.approx(0.1 / 25e4)  # annealed to eta / 25e4


def test_gradient_clipping_bounds_the_global_norm():
    opt = optim.make("sgd", 1.0, clip_norm=0.5)
    params = _params(jnp.float32)
    big = jax.tree_util.tree_map(lambda g: 100 * g, _grads(jnp.float32))
    updates, _ = opt.update(big, opt.init(params), params)
    assert float(optax.tree.norm(updates)) == pytest.approx(0.5, rel=1e-5)


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    stop = experiment.EarlyStopping(2)
    accuracies = [0.50, 0.60, 0.60, 0.55, 0.70]
    decisions = [stop({"epoch": e, "validation_accuracy": a}) for e, a in enumerate(accuracies)]
    assert decisions == [False, False, False, True, False]
    assert stop.stopped_epoch == 3


@pytest.mark.parametrize("mode", [None, "min"])
def test_early_stopping_on_a_cost_waits_for_it_to_stop_falling(mode):
    stop = experiment.EarlyStopping(2, metric="validation_cost", mode=mode)
    costs_ = [0.43, 0.36, 0.29, 0.30, 0.29, 0.28, 0.31, 0.33]
    decisions = [stop({"epoch": e, "validation_cost": c}) for e, c in enumerate(costs_)]
    assert decisions == [False] * 4 + [True, False, False, True]
    assert stop.stopped_epoch == 7
    with pytest.raises(ValueError, match="mode: expected one of max, min; got 'lower'"):
        experiment.EarlyStopping(2, mode="lower")


def test_early_stopping_in_a_run_stops_at_the_right_epoch():
    config = experiment.TrainConfig.from_preset("ch1-eta-small", sizes=(784, 10, 10),
                                                train_size=100, eval_size=50, epochs=50,
                                                eta=1e-9, patience=3)
    result = experiment.run(config, progress=False)
    vals = [r["validation_accuracy"] for r in result.history]
    best = int(np.argmax(vals))
    assert len(result.history) == best + 3 + 1 < 50
    assert all(v <= vals[best] for v in vals[best + 1:])


@pytest.mark.parametrize("pieces, expected", [(3, 3), (None, 2)])
def test_maxout_pieces_reach_the_network(pieces, expected):
    config = experiment.TrainConfig.from_preset("ch3-ce-30", activation="maxout",
                                                maxout_pieces=pieces, eval_size=10)
    params = experiment.prepare(config).network.init(jax.random.key(0))
    assert params[0]["w"].shape == (30 * expected, 784) and params[1]["w"].shape == (10, 30)


def test_config_json_round_trip_and_the_old_maxout_default():
    config = experiment.TrainConfig.from_preset("ch3-ce-30", sizes=(784, 20, 10))
    saved = json.loads(json.dumps(config.to_json()))
    assert experiment.TrainConfig.from_json(saved) == config
    # before maxout_pieces defaulted to None, every config.json said 2
    assert experiment.TrainConfig.from_json({**saved, "maxout_pieces": 2}) == config
    relu = dataclasses.replace(config, activation="relu")  # any activation but maxout
    assert experiment.TrainConfig.from_json({**relu.to_json(), "maxout_pieces": 2}) == relu
    maxout = dataclasses.replace(config, activation="maxout", maxout_pieces=2)
    assert experiment.TrainConfig.from_json(maxout.to_json()) == maxout


def test_majority_vote():
    predictions = jnp.asarray([[1, 2, 3, 0], [1, 2, 4, 1], [0, 5, 4, 2]])
    np.testing.assert_array_equal(ensemble.majority_vote(predictions), [1, 2, 4, 0])
    assert ensemble.vote_accuracy(predictions, [1, 2, 4, 2]) == 0.75


@given(st.integers(1, 7).flatmap(lambda k: st.lists(
    st.lists(st.integers(0, 9), min_size=k, max_size=k), min_size=1, max_size=20)))
def test_majority_vote_is_the_most_frequent_label_and_the_smallest_of_a_tie(columns):
    """Each example's vote counted by hand: the label most members give, and of several such
    labels the smallest (``columns``: one list of the members' labels per example)."""
    predictions = np.asarray(columns, dtype=np.int32).T  # (members, examples)
    expected = []
    for labels in columns:
        counts = collections.Counter(labels)
        most = max(counts.values())
        expected.append(min(label for label, c in counts.items() if c == most))
    np.testing.assert_array_equal(ensemble.majority_vote(predictions), expected)


@pytest.mark.parametrize("settings, arg", [
    (dict(optimizer="lbfgs"), "optimizer"),
    (dict(schedule="warmup"), "schedule"),
    (dict(model="resnet"), "model"),
    (dict(l2_convention="chapter4"), "l2_convention"),
    (dict(model="fc100", dropout=1.0), "dropout"),
    (dict(model="fc100", dropout=-0.1), "dropout"),
    (dict(dropout=0.5), "dropout"),
    (dict(patience=0), "patience"),
    (dict(clip_norm=0.0), "clip_norm"),
    (dict(l1=-1.0), "l1"),
    (dict(batch_norm=True), "batch_norm"),
    (dict(ensemble=0), "ensemble"),
])
def test_bad_settings_fail_with_clear_errors(settings, arg):
    with pytest.raises((ValueError, TypeError), match=arg):
        experiment.TrainConfig.from_preset("ch3-ce-30", **settings)


def test_cnn_model_needs_the_softmax_log_likelihood_output():
    with pytest.raises(ValueError, match="cost"):
        experiment.TrainConfig.from_preset("ch3-ce-30", model="conv1")


def test_stateless_epoch_is_unchanged_for_mlps():
    """The MLP path keeps its 4-argument epoch and a TrainState without model state."""
    state = train.TrainState({"w": jnp.ones(2)}, (), jax.random.key(0))
    assert state.model_state is None and metrics.eval_params(state) is state.params

    def grad_fn(params, x, y):  # 3 arguments: no model state, no key
        return {"w": x.T @ y / len(x)}

    x = jnp.asarray([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0], [2.0, 0.5, -1.0], [1.0, 1.0, 1.0]])
    labels = jnp.asarray([0, 1, 1, 0])
    eta = 0.5
    optimizer = optax.sgd(eta)
    epoch = train.make_epoch(grad_fn, optimizer, mini_batch_size=4, n_train=4,
                             num_classes=2, stateful=False)
    w = jnp.asarray([[0.1, -0.2], [0.3, 0.0], [-0.1, 0.2]])
    out = epoch({"w": w.copy()}, optimizer.init({"w": w}), jax.random.key(1),
                train.DeviceData(x, labels))  # 4 arguments
    assert isinstance(out, tuple) and len(out) == 2  # (params, opt_state): no model state
    params, opt_state = out
    # m = n: one step on all four examples, whatever the shuffle (grad_fn averages them)
    expected = w - eta * x.T @ jax.nn.one_hot(labels, 2) / 4
    np.testing.assert_allclose(params["w"], expected, rtol=1e-6)
    assert (jax.tree.structure(opt_state)
            == jax.tree.structure(optimizer.init({"w": w})))


def _weights_sum(params, fn):
    return sum(float(np.sum(fn(np.asarray(layer["w"], np.float64)))) for layer in params)


@pytest.mark.parametrize("m", [100, 10])
def test_l1_in_a_run_follows_the_books_update_and_cost(m):
    """The reported training cost is C_0 + (l1 / n) sum |w| at the final parameters, n the
    training-set size whatever the mini-batch size m (not l1 / m); with m = n the epoch is one
    step of w' = w - eta (grad C_0 + (l1 / n) sign(w)), biases without the term."""
    l1, n = 2.0, 100
    config = experiment.TrainConfig.from_preset("ch3-l2-30", l1=l1, l2=0.0, train_size=n,
                                                eval_size=50, epochs=1, mini_batch_size=m)
    prepared = experiment.prepare(config)
    network = prepared.network
    cost_fn = costs.from_logits(config.cost, network.output_activation)
    x, y = prepared.train.x, jax.nn.one_hot(prepared.train.labels, 10)
    params = experiment.initial_params(config)
    grads = jax.grad(lambda p: cost_fn(network.logits(p, x), y))(params)
    result = experiment.run(config, progress=False)
    for new, old, g in zip(result.state.params, params, grads):
        if m != n:  # one shuffled mini-batch per step: only the cost below is checked
            break
        np.testing.assert_allclose(
            new["w"], old["w"] - config.eta * (g["w"] + l1 / n * jnp.sign(old["w"])),
            rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new["b"], old["b"] - config.eta * g["b"], rtol=1e-5,
                                   atol=1e-6)
    final = result.state.params
    expected = float(cost_fn(network.logits(final, x), y)) + l1 / n * _weights_sum(final, np.abs)
    assert result.history[0]["train_cost"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("convention, denominator", [("chapter3", 100), ("chapter6", 100 // 10)])
def test_the_reported_training_cost_adds_the_l2_penalty(convention, denominator):
    """C = C_0 + (l2 / 2 n) sum w^2, n the convention's denominator (config.l2_denominator)."""
    l2 = 5.0
    config = experiment.TrainConfig.from_preset("ch3-l2-30", l2=l2, train_size=100, eval_size=50,
                                                epochs=1, mini_batch_size=10,
                                                l2_convention=convention)
    assert experiment.l2_denominator(config, 100) == denominator
    prepared = experiment.prepare(config)
    network = prepared.network
    cost_fn = costs.from_logits(config.cost, network.output_activation)
    evaluate = metrics.make_evaluate(network.logits, cost_fn, num_classes=10)
    result = experiment.run(config, progress=False)
    final = result.state.params
    expected = (float(evaluate(final, prepared.train)[0])
                + l2 / (2 * denominator) * _weights_sum(final, np.square))
    assert result.history[-1]["train_cost"] == pytest.approx(expected, rel=1e-6)


def test_chapter6_l2_divides_by_the_number_of_full_mini_batches(x64):
    """network3's lambda / num_training_batches, with num_training_batches = n // m (floor)."""
    eta, l2, n, m = 0.5, 5.0, 1005, 10
    config = experiment.TrainConfig.from_preset("ch3-l2-30", eta=eta, l2=l2, mini_batch_size=m,
                                                l2_convention="chapter6")
    assert experiment.l2_denominator(config, n) == 100
    assert experiment.l2_denominator(config, 5) == 1  # fewer examples than m: never 0
    params, grads = _params(), _grads()
    new = _one_update(experiment.make_optimizer(config, n), params, grads)
    w, g = params[0]["w"], grads[0]["w"]
    np.testing.assert_allclose(new[0]["w"], w - eta * (g + l2 * w / 100), rtol=1e-14)


def test_the_schedule_spans_every_step_of_the_run_remainder_batches_included():
    """n = 1005, m = 10: 101 steps an epoch (the last of 5 examples), 202 in 2 epochs; the
    cosine schedule is made for all 202, so it has not reached 0 at the last step."""
    eta, n, steps = 0.5, 1005, 202
    config = experiment.TrainConfig.from_preset("ch3-ce-30", eta=eta, mini_batch_size=10,
                                                epochs=2, schedule="cosine")
    opt = experiment.make_optimizer(config, n)
    params = {"b": jnp.zeros(1)}
    state = opt.init(params)
    etas = []
    for _ in range(steps):
        updates, state = opt.update({"b": jnp.ones(1)}, state, params)
        etas.append(-float(updates["b"][0]))
    expected = [float(optim.schedule("cosine", eta, steps)(t)) for t in range(steps)]
    np.testing.assert_allclose(etas, expected, rtol=1e-5, atol=1e-9)
    assert etas[-1] > 0
