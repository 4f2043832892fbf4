import io
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_close, optimizer_by_hand

from jaxnn import costs, data, experiment, guard, metrics, mlp, optim, train


@pytest.fixture(scope="module")
def small():
    ds = data.load_mnist("book")
    x = data.to_inputs(ds.train.images[:1000])
    tr = train.DeviceData.put(x, ds.train.labels[:1000])
    te = train.DeviceData.put(data.to_inputs(ds.test.images[:500]), ds.test.labels[:500])
    return tr, te


def _setup(mini_batch_size, n, eta=0.5, cost="cross_entropy"):
    net = mlp.make([784, 30, 10], activation="sigmoid", output_activation="sigmoid")
    params = net.init(jax.random.key(0))
    opt = optim.make("sgd", eta)
    epoch = train.make_epoch(experiment.autodiff_grad_fn(net, cost), opt,
                             mini_batch_size=mini_batch_size, n_train=n)
    evaluate = metrics.make_evaluate(net.logits, costs.from_logits(cost, "sigmoid"))
    return net, params, opt, epoch, evaluate


def test_one_epoch_on_a_subset_learns(small):
    tr, te = small
    net, params, opt, epoch, evaluate = _setup(10, len(tr))
    cost0, correct0 = evaluate(params, te)
    state = train.TrainState(params, opt.init(params), jax.random.key(1))
    state, history = train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, test=te,
                               epochs=1, progress=False)
    assert state.epoch == 1 and len(history) == 1
    assert history[0]["train_cost"] < float(cost0)
    assert history[0]["test_correct"] > int(correct0) + 100
    # numbered from 0, as the book prints "Epoch 0: ..."; a second epoch continues the count
    state, history = train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, test=te,
                               epochs=2, progress=False, history=history)
    assert [r["epoch"] for r in history] == [0, 1] and state.epoch == 2


def test_epoch_equals_the_loop_of_steps_it_replaces(small):
    tr, _ = small
    n, m = 100, 7  # 14 full mini-batches and a remainder of 2, as network.py slices them
    sub = train.DeviceData(tr.x[:n], tr.labels[:n])
    net, params, opt, epoch, _ = _setup(m, n)
    step = train.make_step(experiment.autodiff_grad_fn(net, "cross_entropy"), opt, 10)
    key = jax.random.key(5)
    perm = np.asarray(jax.random.permutation(key, n))
    p, s = params, opt.init(params)
    for k in range(0, n, m):
        idx = perm[k:k + m]
        p, s = step(p, s, sub.x[idx], sub.labels[idx])
    q, _ = epoch(params, opt.init(params), key, sub)
    for a, b in zip(jax.tree_util.tree_leaves(q), jax.tree_util.tree_leaves(p)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("on_nan", [None, "stop", "skip"])
def test_host_loop_equals_the_scan_loop(small, on_nan):
    tr, _ = small
    n, m = 100, 7  # with a remainder step
    sub = train.DeviceData(tr.x[:n], tr.labels[:n])
    net, params, opt, _, _ = _setup(m, n)
    grad_fn = experiment.autodiff_grad_fn(net, "cross_entropy")
    out = {}
    for loop in train.LOOPS:
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=m, n_train=n, on_nan=on_nan,
                                 loop=loop)
        p = jax.tree_util.tree_map(jnp.copy, params)  # the epoch donates its inputs
        out[loop] = epoch(p, opt.init(p), jax.random.key(5), sub)
    assert len(out["scan"]) == len(out["host"]) == (2 if on_nan is None else 3)
    for a, b in zip(jax.tree_util.tree_leaves(out["scan"]), jax.tree_util.tree_leaves(out["host"])):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_unknown_loop_fails_early():
    net, params, opt, _, _ = _setup(10, 100)
    with pytest.raises(ValueError, match="loop: expected one of"):
        train.make_epoch(experiment.autodiff_grad_fn(net, "cross_entropy"), opt,
                         mini_batch_size=10, n_train=100, loop="python")


@pytest.mark.parametrize("m", [1, 1000])
def test_online_and_full_batch(small, m):
    """Online (m = 1: n steps of one example, in the epoch's shuffled order) and full batch
    (m = n: one step on all of them) are the loop of steps they stand for, and learn."""
    tr, _ = small
    n = len(tr)
    net, params, opt, epoch, evaluate = _setup(m, n, eta=0.1 if m == 1 else 0.02)
    cost0, _ = evaluate(params, tr)
    step = jax.jit(train.make_step(experiment.autodiff_grad_fn(net, "cross_entropy"), opt, 10))
    key = jax.random.key(0)
    perm = np.asarray(jax.random.permutation(key, n))
    p, s = params, opt.init(params)
    for k in range(0, n, m):  # n // m steps: 1000, or 1
        idx = perm[k:k + m]
        p, s = step(p, s, tr.x[idx], tr.labels[idx])
    new, _ = epoch(jax.tree_util.tree_map(jnp.copy, params), opt.init(params), key, tr)
    assert_trees_close(new, p, rtol=2e-5, atol=1e-6, name=f"m={m}")
    assert float(evaluate(new, tr)[0]) < float(cost0)


def test_sgd_update_is_the_books_rule():
    # w <- (1 - eta lambda / n) w - eta * mean grad, biases without decay
    params = {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([0.5])}
    grads = {"w": jnp.array([[0.1, 0.2]]), "b": jnp.array([0.3])}
    eta, lmbda, n = 0.5, 5.0, 100
    opt = optim.make("sgd", eta, l2=lmbda, n_train=n)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["w"], (1 - eta * lmbda / n) * params["w"] - eta * grads["w"],
                               rtol=1e-6)
    np.testing.assert_allclose(new["b"], params["b"] - eta * grads["b"], rtol=1e-6)


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_every_optimizer_builds_and_steps(name):
    """Three train steps with each optimizer and the book's L2 (float64) are the by-hand
    updates of jaxnn.optim's docstring (helpers.optimizer_by_hand, as tests/test_optim.py
    checks optim alone): the gradient moves both leaves, and only w decays."""
    eta, l2, n = 0.1, 1.0, 10
    grads = np.array([[0.5, -0.01, 2.0, 0.0], [0.3, 0.02, -1.0, 1e-3], [-0.4, 0.0, 0.5, 3.0]])
    w0, b0 = np.array([[1.0, -2.0], [0.5, 0.25]]), np.array([0.7, -0.3])
    grads_w, grads_b = grads.reshape(3, 2, 2), grads[::-1, :2] - 0.2
    # the mini-batch's one input row carries the gradient the step should apply
    grad_fn = lambda params, x, y: {"w": x[0, :4].reshape(2, 2), "b": x[0, 4:]}  # noqa: E731
    with jax.enable_x64(True):
        opt = optim.make(name, eta, l2=l2, n_train=n)
        step = train.make_step(grad_fn, opt, 10)
        params = {"w": jnp.asarray(w0), "b": jnp.asarray(b0)}
        state = opt.init(params)
        for gw, gb in zip(grads_w, grads_b):
            x = jnp.asarray(np.concatenate([gw.ravel(), gb]))[None]
            params, state = step(params, state, x, jnp.zeros(1, jnp.int32))
        assert params["w"].dtype == jnp.float64
        expected = {"w": optimizer_by_hand(name, w0, grads_w, eta=eta, decay=l2 / n),
                    "b": optimizer_by_hand(name, b0, grads_b, eta=eta)}
        assert_trees_close(params, expected, rtol=1e-12, atol=1e-15, name=name)


def test_evaluate_chunks_agree(small):
    tr, _ = small
    net, params, *_ = _setup(10, len(tr))
    cost_fn = costs.from_logits("cross_entropy", "sigmoid")
    whole = metrics.make_evaluate(net.logits, cost_fn)(params, tr)
    chunked = metrics.make_evaluate(net.logits, cost_fn, chunk=300)(params, tr)
    np.testing.assert_allclose(whole[0], chunked[0], rtol=1e-5)
    assert int(whole[1]) == int(chunked[1])


@pytest.mark.parametrize("chunk", [10_000, 3000])
def test_evaluate_counts_exactly_with_bfloat16_inputs(chunk):
    """bfloat16 holds integers exactly only up to 256: 5,000 correct answers summed in it come
    out 4,992. The count is an integer and the cost is summed in float32, chunked or not."""
    labels = np.arange(5000, dtype=np.int32) % 10
    x = jnp.asarray(np.eye(10, dtype=np.float32)[labels], jnp.bfloat16)  # logits = x: all right
    split = train.DeviceData.put(x, labels)
    cost_fn = costs.from_logits("log_likelihood", "softmax")
    cost, correct = metrics.make_evaluate(lambda p, x: x, cost_fn, chunk=chunk)({}, split)
    assert int(correct) == 5000 and jnp.issubdtype(correct.dtype, jnp.integer)
    expected = float(cost_fn(jnp.eye(10, dtype=jnp.float32)[:1], jnp.eye(10)[:1]))
    assert cost.dtype == jnp.float32
    np.testing.assert_allclose(float(cost), expected, rtol=1e-6)


def test_summary_peak_is_the_maximum_and_seconds_skip_the_compiling_epoch():
    """Peak test accuracy is the largest epoch's, not the last; seconds per epoch is the median
    of the epochs after the first (which includes compilation)."""
    history = [{"epoch": e, "train_cost": 1.0, "test_accuracy": t, "seconds": s}
               for e, (t, s) in enumerate([(0.90, 30.0), (0.95, 1.0), (0.93, 2.0)])]
    s = metrics.summarize(history)
    assert s["peak_test_accuracy"] == 0.95 and s["final_test_accuracy"] == 0.93
    assert s["seconds_per_epoch"] == 1.5 and s["first_epoch_seconds"] == 30.0
    assert metrics.summarize(history[:1])["seconds_per_epoch"] == 30.0  # one epoch: its own


def test_summary_uses_test_at_best_validation():
    history = [
        {"epoch": 0, "train_cost": 1.0, "validation_accuracy": 0.90, "test_accuracy": 0.91,
         "seconds": 2.0},
        {"epoch": 1, "train_cost": 0.5, "validation_accuracy": 0.95, "test_accuracy": 0.93,
         "seconds": 1.0},
        {"epoch": 2, "train_cost": 0.4, "validation_accuracy": 0.94, "test_accuracy": 0.96,
         "seconds": 1.0},
    ]
    s = metrics.summarize(history)
    assert s["best_validation_epoch"] == 1 and s["test_at_best_validation"] == 0.93
    assert s["peak_test_accuracy"] == 0.96 and s["final_test_accuracy"] == 0.96
    assert s["best_validation_accuracy"] == 0.95 and s["final_validation_accuracy"] == 0.94
    assert s["seconds_per_epoch"] == 1.0


def test_summary_takes_the_last_of_tied_best_validation_epochs():
    """network3.py keeps a later epoch that ties the best validation accuracy (``>=``)."""
    history = [{"epoch": e, "train_cost": 1.0, "validation_accuracy": v, "test_accuracy": t,
                "seconds": 1.0}
               for e, (v, t) in enumerate([(0.97, 0.970), (0.99, 0.985), (0.98, 0.980),
                                           (0.99, 0.991), (0.96, 0.960)])]
    s = metrics.summarize(history)
    assert s["best_validation_epoch"] == 3 and s["test_at_best_validation"] == 0.991
    assert s["best_validation_accuracy"] == 0.99


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(activation="sigmod"), "activation"),
        (dict(cost="hinge"), "cost"),
        (dict(optimizer="sgdd"), "optimizer"),
        (dict(eta=0.0), "eta"),
        (dict(eta=-1.0), "eta"),
        (dict(mini_batch_size=0), "mini_batch_size"),
        (dict(l2=-1.0), "l2"),
        (dict(sizes=(784, 30)), None),
        (dict(epochs=0), "epochs"),
    ],
)
def test_bad_config_fails_early(overrides, match):
    if match is None:  # sizes that validate but do not fit the data
        with pytest.raises(ValueError, match="sizes: the last layer"):
            experiment.prepare(experiment.TrainConfig.from_preset("ch1-30", **overrides))
        return
    with pytest.raises(ValueError, match=match):
        experiment.TrainConfig.from_preset("ch1-30", **overrides)


def test_prepare_takes_each_split_from_its_own_images():
    """train_size and eval_size cut the training, validation and test splits at their heads:
    validation stays the book's held-out 10,000 (never test images), test stays test."""
    from jaxnn import data

    config = experiment.TrainConfig.from_preset("ch3-ce-30", train_size=300, eval_size=70)
    prepared = experiment.prepare(config)
    mnist = data.load("mnist")
    for got, split, n in ((prepared.train, mnist.train, 300),
                          (prepared.validation, mnist.validation, 70),
                          (prepared.test, mnist.test, 70)):
        np.testing.assert_array_equal(np.asarray(got.labels), split.labels[:n])
        np.testing.assert_array_equal(np.asarray(got.x), data.to_inputs(split.images[:n]))


def test_sizes_must_fit_the_images_and_batch_the_data():
    with pytest.raises(ValueError, match="sizes: the first layer must match the 784 pixels"):
        experiment.prepare(experiment.TrainConfig(sizes=(100, 30, 10)))
    with pytest.raises(ValueError, match="mini_batch_size: expected at most the 50 training"):
        experiment.prepare(experiment.TrainConfig(train_size=50, mini_batch_size=51))
    with pytest.raises(ValueError, match="preset"):
        experiment.TrainConfig.from_preset("ch9-99")


def test_nan_in_inputs_is_rejected():
    x = np.zeros((4, 3), np.float32)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="train: expected finite values; got 1 NaN"):
        train.DeviceData.put(x, np.zeros(4, np.int32), arg="train")


def test_run_end_to_end_on_a_subset():
    cfg = experiment.TrainConfig.from_preset("ch3-ce-30", epochs=2, train_size=2000)
    result = experiment.run(cfg, progress=False)
    assert len(result.history) == 2
    assert result.summary["peak_test_accuracy"] > 0.6
    assert result.history[1]["train_cost"] < result.history[0]["train_cost"]


def _tiny_data(n=4):
    """Four 2-pixel examples with labels 0..n-1: enough for a few m=1 steps."""
    return train.DeviceData.put(np.ones((n, 2), np.float32), np.arange(n, dtype=np.int32))


def _finite(tree):
    return all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(tree))


def test_guard_catches_an_update_that_overflows_from_a_finite_gradient():
    # gradient 1e37 is finite; eta * gradient = 1e39 overflows float32, so params become -inf
    grad_fn = lambda params, x, y: {"w": jnp.full(4, 1e37, jnp.float32)}  # noqa: E731
    opt, tr = optax.sgd(100.0), _tiny_data()
    for on_nan in ("stop", "skip"):
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=1, n_train=4, on_nan=on_nan)
        params = {"w": jnp.zeros(4, jnp.float32)}
        p, _, health = epoch(params, opt.init(params), jax.random.key(0), tr)
        if on_nan == "stop":
            assert int(health.first_bad_step) == 0
        else:
            assert int(health.skipped) == 4 and int(health.first_bad_step) == -1
            np.testing.assert_array_equal(np.asarray(p["w"]), np.zeros(4, np.float32))


def test_guard_treats_large_finite_values_as_finite():
    # a sum over the leaf would overflow (4 * 3e38 > float32 max) though every entry is finite
    grad_fn = lambda params, x, y: {"w": jnp.full(4, 3e38, jnp.float32)}  # noqa: E731
    opt, tr = optax.sgd(0.0), _tiny_data()
    for on_nan in ("stop", "skip"):
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=1, n_train=4, on_nan=on_nan)
        params = {"w": jnp.full(4, 3e38, jnp.float32)}
        p, _, health = epoch(params, opt.init(params), jax.random.key(0), tr)
        assert int(health.first_bad_step) == -1 and int(health.skipped) == 0
        np.testing.assert_array_equal(np.asarray(p["w"]), np.full(4, 3e38, np.float32))


def test_skip_rolls_back_the_model_state_of_a_bad_step():
    # model_state counts good steps; the step on label 3 returns a NaN model_state
    def grad_fn(params, model_state, x, y, key):
        bad = jnp.argmax(y[0]) == 3
        return ({"w": jnp.zeros(2, jnp.float32)},
                {"count": jnp.where(bad, jnp.nan, model_state["count"] + 1.0)})

    opt, tr = optax.sgd(0.1), _tiny_data()
    # the epoch's order of examples, recorded by an unguarded epoch with the same key: the bad
    # step is where label 3 comes in it (with this key, step 1: neither 3 nor the last)
    def record_order(params, model_state, x, y, key):
        i = model_state["i"]
        return ({"w": jnp.zeros(2, jnp.float32)},
                {"order": model_state["order"].at[i].set(jnp.argmax(y[0])), "i": i + 1})

    recorder = train.make_epoch(record_order, opt, mini_batch_size=1, n_train=4, stateful=True)
    params = {"w": jnp.zeros(2, jnp.float32)}
    key = jax.random.key(3)
    *_, seen = recorder(params, opt.init(params), key, tr,
                        {"order": jnp.full(4, -1, jnp.int32), "i": jnp.int32(0)})
    order = np.asarray(seen["order"])
    assert sorted(order) == [0, 1, 2, 3]
    expected = int(np.flatnonzero(order == 3)[0])
    for on_nan in ("stop", "skip"):
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=1, n_train=4, on_nan=on_nan,
                                 stateful=True)
        params = {"w": jnp.zeros(2, jnp.float32)}
        _, _, state, health = epoch(params, opt.init(params), key, tr,
                                    {"count": jnp.float32(0.0)})
        if on_nan == "stop":
            assert int(health.first_bad_step) == expected
        else:
            assert int(health.skipped) == 1
            assert float(state["count"]) == 3.0  # the three good steps, the bad one undone


def test_stop_catches_an_optimizer_state_that_overflows_while_params_stay_finite():
    # Adam with gradient 1e20: nu = g**2 = 1e40 overflows float32 to inf, and the update
    # m / (sqrt(inf) + eps) is 0, so params stay finite (and would never move again)
    grad_fn = lambda params, x, y: {"w": jnp.full(4, 1e20, jnp.float32)}  # noqa: E731
    opt, tr = optax.adam(1e-3), _tiny_data()
    for loop in train.LOOPS:
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=1, n_train=4, on_nan="stop",
                                 loop=loop)
        params = {"w": jnp.zeros(4, jnp.float32)}
        p, opt_state, health = epoch(params, opt.init(params), jax.random.key(0), tr)
        assert _finite(p) and not _finite(opt_state)
        assert int(health.first_bad_step) == 0, loop


def test_stop_names_the_first_bad_step_of_the_epoch():
    # the step on label 2 returns a NaN gradient; the replay finds where it came in the epoch
    def grad_fn(params, x, y):
        return {"w": jnp.where(jnp.argmax(y[0]) == 2, jnp.nan, 1.0) * jnp.ones(2, jnp.float32)}

    opt, tr = optax.sgd(0.1), _tiny_data()
    key = jax.random.key(7)
    expected = int(np.flatnonzero(np.asarray(jax.random.permutation(key, 4)) == 2)[0])
    for loop in train.LOOPS:
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=1, n_train=4, on_nan="stop",
                                 loop=loop)
        params = {"w": jnp.zeros(2, jnp.float32)}
        _, _, health = epoch(params, opt.init(params), key, tr)
        assert int(health.first_bad_step) == expected, loop


def test_stop_reports_an_epoch_whose_bad_step_the_replay_cannot_find():
    """If the end-of-epoch check fails but the step-by-step replay finds no bad step (two
    compilations may round differently), the epoch is still reported, without a step."""
    def program(check):
        def epoch(params, opt_state, key, data, model_state=None):
            bad = -2 if check == "end" else -1  # the replay finds nothing
            return params, opt_state, train.EpochHealth(jnp.int32(bad), jnp.int32(0))
        return epoch

    epoch = guard.checked_epoch(program, "stop")
    params = {"w": jnp.zeros(2, jnp.float32)}
    state = train.TrainState(params, (), jax.random.key(0), 0)
    evaluate = lambda *a, **k: pytest.fail("a diverged epoch is not evaluated")  # noqa: E731
    with pytest.raises(train.Diverged) as info:
        train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=_tiny_data(), epochs=1,
                  progress=False, eta=2.0)
    assert info.value.epoch == 0 and info.value.step is None
    assert "the parameters, optimizer or model state after epoch 0" in str(info.value)
    assert "eta=2" in str(info.value)


@pytest.mark.parametrize("loop", ["scan", "host"])
@pytest.mark.parametrize("n_data", [50, 200])
def test_epoch_refuses_data_of_another_size_than_n_train(small, loop, n_data):
    """An out-of-range gather index is clamped, not an error, in jitted code: an epoch made for
    100 examples and given 200 would train on the first 100; given 50, on copies of the last."""
    tr, _ = small
    net = mlp.make([784, 30, 10])
    params = net.init(jax.random.key(0))
    opt = optim.make("sgd", 0.5)
    epoch = train.make_epoch(experiment.autodiff_grad_fn(net, "quadratic"), opt,
                             mini_batch_size=10, n_train=100, loop=loop)
    data_ = train.DeviceData(tr.x[:n_data], tr.labels[:n_data])
    with pytest.raises(ValueError, match=f"n_train: the epoch was made for 100 training "
                                         f"examples; got data with {n_data}"):
        epoch(params, opt.init(params), jax.random.key(1), data_)


def test_numpy_scalars_become_python_numbers_that_config_json_can_hold():
    config = experiment.TrainConfig.from_preset(seed=np.int64(3), epochs=np.int32(2),
                                                eta=np.float32(0.5))
    assert (type(config.seed), type(config.epochs), type(config.eta)) == (int, int, float)
    assert (config.seed, config.epochs, config.eta) == (3, 2, 0.5)
    json.dumps(config.to_json())


def test_a_callback_keeps_params_for_later_by_copying_them(small):
    """The documented pattern: the live state's buffers are donated to the next epoch."""
    tr, te = small
    net, params, opt, epoch, evaluate = _setup(10, len(tr))
    kept = {}

    def keep_first(record, state):
        if not kept:  # the first of two epochs
            kept["live"] = state.params
            kept["copy"] = jax.tree.map(jnp.copy, state.params)

    # the first epoch's parameters, by hand: the epoch on the first key fit splits off
    _, epoch_key = jax.random.split(jax.random.key(1))
    start = jax.tree.map(jnp.copy, params)
    first, _ = epoch(start, opt.init(start), epoch_key, tr)
    state = train.TrainState(params, opt.init(params), jax.random.key(1))
    train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, test=te, epochs=2,
              progress=False, callbacks=[keep_first])
    assert all(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(kept["live"]))
    assert_trees_close(kept["copy"], first, rtol=0, name="kept")


def test_epoch_refuses_inputs_and_labels_of_different_lengths(small):
    tr, _ = small
    net = mlp.make([784, 30, 10])
    params = net.init(jax.random.key(0))
    opt = optim.make("sgd", 0.5)
    epoch = train.make_epoch(experiment.autodiff_grad_fn(net, "quadratic"), opt,
                             mini_batch_size=10, n_train=100)
    with pytest.raises(ValueError, match="data: expected one label per example; got 50 and 100"):
        epoch(params, opt.init(params), jax.random.key(1),
              train.DeviceData(tr.x[:50], tr.labels[:100]))


def test_an_ensembles_last_seed_must_fit_in_32_bits():
    experiment.TrainConfig.from_preset(seed=2**32 - 2, ensemble=2)  # seeds 2**32 - 2, 2**32 - 1
    with pytest.raises(ValueError, match=r"seed: expected at most 4294967294 with ensemble 2"):
        experiment.TrainConfig.from_preset(seed=2**32 - 1, ensemble=2)


@pytest.mark.parametrize("on_nan", [None, "stop"])
def test_a_host_loops_progress_bar_moves_by_steps(small, monkeypatch, on_nan):
    """CNN epochs on the CPU (the host loop) take minutes: the bar counts mini-batch steps and
    moves inside the epoch; a scanned epoch moves it by whole epochs."""
    tqdm_auto = pytest.importorskip("tqdm.auto")
    bars = []

    class Recording(tqdm_auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, file=io.StringIO(), **kwargs)
            self.kwargs, self.seen = kwargs, [kwargs["initial"]]
            bars.append(self)

        def update(self, n=1):
            super().update(n)
            self.seen.append(self.n)

    monkeypatch.setattr(tqdm_auto, "tqdm", Recording)
    monkeypatch.setattr(train, "STEP_PROGRESS_SECONDS", 0.0)  # move at every step
    tr, te = small
    n, m = 100, 7  # 14 full mini-batches and a remainder: 15 steps an epoch
    sub = train.DeviceData(tr.x[:n], tr.labels[:n])
    net, params, opt, _, evaluate = _setup(m, n)
    grad_fn = experiment.autodiff_grad_fn(net, "cross_entropy")
    for loop, unit, total in (("host", "step", 30), ("scan", "epoch", 2)):
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=m, n_train=n, on_nan=on_nan,
                                 loop=loop)
        p = jax.tree_util.tree_map(jnp.copy, params)
        state = train.TrainState(p, opt.init(p), jax.random.key(1))
        train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=sub, test=te, epochs=2,
                  progress="label")
        bar = bars.pop()
        assert [bar.kwargs[k] for k in ("unit", "total", "desc")] == [unit, total, "label"]
        # each full step, then the epoch's end (with the remainder step), moves it by one
        assert bar.seen == list(range(total + 1))


def test_empty_data_and_plain_tuples_are_refused_with_a_clear_error(small):
    tr, te = small
    with pytest.raises(ValueError, match="test: expected at least one example; got none"):
        train.DeviceData.put(np.zeros((0, 784), np.float32), np.zeros(0, int), arg="test")
    assert data.to_inputs(np.zeros((0, 28, 28), np.uint8)).shape == (0, 784)
    net, params, opt, epoch, evaluate = _setup(10, len(tr))
    state = train.TrainState(params, opt.init(params), jax.random.key(1))
    empty = train.DeviceData(te.x[:0], te.labels[:0])
    with pytest.raises(ValueError, match="validation: expected at least one example"):
        train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, validation=empty,
                  epochs=1, progress=False)
    with pytest.raises(TypeError, match="test: expected a jaxnn.train.DeviceData, from "
                                        r"DeviceData.put\(x, labels\); got tuple"):
        train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr, test=tuple(te),
                  epochs=1, progress=False)
    with pytest.raises(TypeError, match="data: expected a jaxnn.train.DeviceData"):
        evaluate(params, (te.x, te.labels))
    with pytest.raises(TypeError, match="data: expected a jaxnn.train.DeviceData"):
        epoch(params, opt.init(params), jax.random.key(0), (tr.x, tr.labels))


@pytest.mark.parametrize("loop, on_nan", [("scan", None), ("host", None), ("scan", "stop")])
def test_fit_refuses_labels_outside_the_epochs_classes(small, loop, on_nan):
    """put() without num_classes lets label 12 through; the step's one-hot row of it would be
    all zeros (a silent no-op), so fit refuses it before training, naming the range."""
    tr, te = small
    n = 50
    labels = np.asarray(tr.labels[:n]).copy()
    labels[7] = 12
    sub = train.DeviceData.put(tr.x[:n], labels)  # no num_classes: not checked here
    net, params, opt, _, evaluate = _setup(10, n)
    grad_fn = experiment.autodiff_grad_fn(net, "cross_entropy")
    epoch = train.make_epoch(grad_fn, opt, mini_batch_size=10, n_train=n, loop=loop,
                             on_nan=on_nan)
    assert epoch.num_classes == 10
    state = train.TrainState(params, opt.init(params), jax.random.key(1))
    with pytest.raises(ValueError, match=r"train: expected labels in \[0, 10\) \(the epoch's "
                                         r"num_classes\); got range \[0, 12\]"):
        train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=sub, epochs=1,
                  progress=False)
    labels[7] = -1
    with pytest.raises(ValueError, match=r"got range \[-1, 9\]"):
        train.fit(state, epoch_fn=epoch, evaluate=evaluate,
                  train=train.DeviceData(sub.x, jnp.asarray(labels)), epochs=1, progress=False)


def test_put_warns_about_unscaled_pixels_once_and_keeps_them():
    """Raw 0-255 pixels as floats are a common slip (they saturate sigmoid neurons): put warns,
    naming the magnitude, and still takes them. Scaled or standardized inputs pass quietly."""
    raw = np.zeros((3, 784), np.float32)
    raw[1, 5] = 255.0
    with pytest.warns(UserWarning, match=r"train: inputs reach 255 in magnitude; pixels are "
                                         r"usually scaled to \[0, 1\] first"):
        d = train.DeviceData.put(raw, np.arange(3), arg="train")
    assert float(d.x.max()) == 255.0
    with pytest.warns(UserWarning, match="inputs reach 12 "):  # checked on the device too
        train.DeviceData.put(jnp.full((2, 4), -12.0), jnp.arange(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train.DeviceData.put(np.full((2, 4), train.UNSCALED, np.float32), np.arange(2))
        train.DeviceData.put((raw - 100.0) / 80.0, np.arange(3))  # standardized: |x| < 10


def test_a_legacy_uint32_key_trains_exactly_like_the_typed_key(small):
    """jaxnn makes typed keys (jax.random.key); a state keyed with the legacy
    jax.random.PRNGKey of the same seed shuffles the same way and reaches the same weights,
    with either loop, and keeps its kind of key."""
    tr, te = small
    net, _, opt, _, evaluate = _setup(10, len(tr))
    grad_fn = experiment.autodiff_grad_fn(net, "cross_entropy")
    for loop in train.LOOPS:
        epoch = train.make_epoch(grad_fn, opt, mini_batch_size=10, n_train=len(tr), loop=loop)
        ends = []
        for key in (jax.random.key(3), jax.random.PRNGKey(3)):
            params = net.init(jax.random.key(0))  # fresh: fit donates the buffers it starts from
            state = train.TrainState(params, opt.init(params), key)
            state, history = train.fit(state, epoch_fn=epoch, evaluate=evaluate, train=tr,
                                       test=te, epochs=2, progress=False)
            assert jnp.result_type(state.key) == jnp.result_type(key)
            ends.append((state, [r["test_correct"] for r in history]))
        (typed, typed_correct), (legacy, legacy_correct) = ends
        assert typed_correct == legacy_correct
        assert_trees_close(legacy.params, typed.params, rtol=0, name=loop)
        np.testing.assert_array_equal(jax.random.key_data(typed.key), legacy.key)


def test_each_epoch_gets_its_own_key_split_from_the_states_key():
    """fit splits state.key into (next key, epoch key) every epoch: the epochs' keys (their
    shuffles) all differ, and are the chain of splits from the starting key."""
    keys = []

    def epoch_fn(params, opt_state, key, data):
        keys.append(np.asarray(jax.random.key_data(key)))
        return params, opt_state

    def evaluate(params, data):
        return jnp.float32(0.0), 0

    start = jax.random.key(7)
    state = train.TrainState({"w": jnp.ones(2)}, (), start)
    state, _ = train.fit(state, epoch_fn=epoch_fn, evaluate=evaluate, train=_tiny_data(),
                         epochs=3, progress=False)
    expected, key = [], start
    for _ in range(3):
        key, epoch_key = jax.random.split(key)
        expected.append(np.asarray(jax.random.key_data(epoch_key)))
    assert len({k.tobytes() for k in keys}) == 3
    np.testing.assert_array_equal(np.stack(keys), np.stack(expected))
    np.testing.assert_array_equal(jax.random.key_data(state.key), jax.random.key_data(key))


def test_chunked_evaluation_counts_a_correct_answer_once_padding_included():
    """1000 examples in chunks of 300 pad the last chunk with 200 rows of label 0; a network
    that always answers 0 is right on the 1000 real examples only."""
    def always_zero(params, x):
        return jnp.zeros((x.shape[0], 10)).at[:, 0].set(1.0)

    labels = np.zeros(1000, np.int32)
    split = train.DeviceData.put(np.ones((1000, 2), np.float32), labels)
    evaluate = metrics.make_evaluate(always_zero, costs.from_logits("log_likelihood", "softmax"),
                                     chunk=300)
    cost, correct = evaluate({}, split)
    assert int(correct) == 1000
    whole = metrics.make_evaluate(always_zero, costs.from_logits("log_likelihood", "softmax"))
    np.testing.assert_allclose(cost, whole({}, split)[0], rtol=1e-6)


def test_jax_can_explain_why_an_epoch_recompiles():
    """JAX's aid for finding recompilations, ``jax.explain_cache_misses``, rebuilds the
    arguments of a call with placeholder leaves and compares tuples by ``len``: a DeviceData
    there (whose ``len`` is its number of examples) failed with AttributeError instead of
    saying that the shapes changed."""
    rng = np.random.default_rng(0)
    x, labels = rng.random((20, 4), dtype=np.float32), np.arange(20) % 3
    count = jax.jit(lambda d: d.labels.shape[0] + jnp.sum(d.x) * 0)
    with jax.explain_cache_misses(True), warnings.catch_warnings(record=True):
        assert int(count(train.DeviceData.put(x[:10], labels[:10]))) == 10
        assert int(count(train.DeviceData.put(x, labels))) == 20  # a new shape: explained
    assert len(train.DeviceData.put(x, labels)) == 20
    placeholders = jax.tree.unflatten(jax.tree.structure(train.DeviceData.put(x, labels)),
                                      [object(), object()])
    assert len(placeholders) == 2  # the tuple's length where there are no arrays
