"""Bad input fails early with ValueError/TypeError naming the argument, what was expected and
what came: one table per case of issue 7, each row one way to get it wrong."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import manual_grad
from jaxnn import checkpoint, costs, data, experiment, layers, mlp, optim, presets, train
from jaxnn.data import mnist as mnist_mod

X = np.zeros((4, 784), np.float32)
LABELS = np.array([0, 1, 2, 3], np.int32)
PARAMS = mlp.init(jax.random.PRNGKey(0), [784, 30, 10])


def _check(fn, exc, arg, got):
    """``fn()`` raises ``exc`` whose message starts with ``arg``, says what was expected and
    shows what came (``got``)."""
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    assert msg.startswith(arg), f"message does not name {arg!r} first: {msg}"
    assert "expected" in msg, msg
    assert got in msg, f"message does not show what came ({got!r}): {msg}"
    assert "\n" not in msg


def _with(x, i, value):
    x = x.copy()
    x.flat[i] = value
    return x


BAD_DATA = {
    "x not a batch": (lambda: train.DeviceData.put(X[0], LABELS[:1]), ValueError, "data",
                      "(784,)"),
    "x integer": (lambda: train.DeviceData.put(X.astype(np.uint8), LABELS), TypeError, "data",
                  "uint8"),
    "labels 2-d": (lambda: train.DeviceData.put(X, LABELS[:, None]), ValueError, "data",
                   "(4, 1)"),
    "labels float": (lambda: train.DeviceData.put(X, LABELS.astype(np.float32)), TypeError,
                     "data", "float32"),
    "labels count": (lambda: train.DeviceData.put(X, LABELS[:3], arg="train"), ValueError,
                     "train", "4 and 3"),
    "images float": (lambda: data.to_inputs(X.reshape(4, 28, 28)), TypeError, "images",
                     "float32"),
    "images 2-d": (lambda: data.to_inputs(np.zeros((4, 784), np.uint8)), ValueError, "images",
                   "(4, 784)"),
    "x features": (lambda: mlp.apply(PARAMS, np.zeros((4, 100), np.float32)), ValueError, "x",
                   "(4, 100)"),
}


@pytest.mark.parametrize("case", BAD_DATA, ids=list(BAD_DATA))
def test_data_of_wrong_shape_or_dtype(case):
    _check(*BAD_DATA[case])


BAD_LABELS = {
    "too large": (lambda: train.DeviceData.put(X, [0, 1, 2, 10], num_classes=10), ValueError,
                  "data", "[0, 10]"),
    "negative": (lambda: train.DeviceData.put(X, [0, -1, 2, 3]), ValueError, "data", "[-1, 3]"),
    "one_hot": (lambda: data.one_hot(np.array([3, 12])), ValueError, "labels", "[3, 12]"),
}


@pytest.mark.parametrize("case", BAD_LABELS, ids=list(BAD_LABELS))
def test_labels_out_of_range(case):
    _check(*BAD_LABELS[case])


NON_FINITE = {
    "nan": (lambda: train.DeviceData.put(_with(X, 5, np.nan), LABELS, arg="train"),
            ValueError, "train", "1 NaN or inf"),
    "inf": (lambda: train.DeviceData.put(_with(_with(X, 0, np.inf), 9, -np.inf), LABELS),
            ValueError, "data", "2 NaN or inf"),
}


@pytest.mark.parametrize("case", NON_FINITE, ids=list(NON_FINITE))
def test_nan_or_inf_in_the_data(case):
    _check(*NON_FINITE[case])


def _other(sizes):
    return mlp.init(jax.random.PRNGKey(0), sizes)


NET = mlp.make([784, 30, 10])
X4 = jnp.zeros((4, 784))
BAD_PARAMS = {
    "not a list": (lambda: mlp.apply({"w": 1}, X4), TypeError, "params", "dict"),
    "missing b": (lambda: mlp.apply([{"w": PARAMS[0]["w"]}, PARAMS[1]], X4), ValueError,
                  "params[0]", "keys ['w']"),
    "b shape": (lambda: mlp.apply([{"w": PARAMS[0]["w"], "b": jnp.zeros(7)}, PARAMS[1]], X4),
                ValueError, "params[0]", "(7,)"),
    "layers do not chain": (lambda: mlp.apply([PARAMS[0], _other([20, 10])[0]], X4),
                            ValueError, "params[1]", "(10, 20)"),
    "integer weights": (lambda: mlp.apply(jax.tree_util.tree_map(
        lambda a: a.astype(jnp.int32), PARAMS), X4), TypeError, "params[0]['w']", "int32"),
    "another network": (lambda: NET.apply(_other([784, 20, 10]), X4), ValueError, "params",
                        "[784, 20, 10]"),
    "another network, jitted": (lambda: jax.jit(NET.logits)(_other([784, 30, 30, 10]), X4),
                                ValueError, "params", "[784, 30, 30, 10]"),
    "forward": (lambda: mlp.forward(_other([100, 10]), X4), ValueError, "x", "(4, 784)"),
}


@pytest.mark.parametrize("case", BAD_PARAMS, ids=list(BAD_PARAMS))
def test_params_that_do_not_match_the_network(case):
    _check(*BAD_PARAMS[case])


def test_manual_grad_backprop_checks_params():
    y = jnp.zeros((4, 10))
    _check(lambda: manual_grad.backprop([PARAMS[0], _other([20, 10])[0]], X4, y),
           ValueError, "params[1]", "(10, 20)")
    _check(lambda: manual_grad.backprop(PARAMS, jnp.zeros((4, 100)), y), ValueError, "x",
           "(4, 100)")


BAD_SIZES = {
    "zero layer": (lambda: mlp.init(jax.random.PRNGKey(0), [784, 0, 10]), ValueError, "sizes",
                   "0"),
    "negative layer": (lambda: experiment.TrainConfig.from_preset(sizes=(784, -3, 10)),
                       ValueError, "sizes", "-3"),
    "one layer": (lambda: mlp.make([784]), ValueError, "sizes", "[784]"),
    "mini-batch 0": (lambda: experiment.TrainConfig.from_preset(mini_batch_size=0), ValueError,
                     "mini_batch_size", "0"),
    "epochs -1": (lambda: experiment.TrainConfig.from_preset(epochs=-1), ValueError, "epochs",
                  "-1"),
    "train_size 0": (lambda: experiment.TrainConfig.from_preset(train_size=0), ValueError,
                     "train_size", "0"),
    "epochs float": (lambda: experiment.TrainConfig.from_preset(epochs=2.5), TypeError,
                     "epochs", "2.5"),
    "checkpoint_every 0": (lambda: checkpoint.SaveEvery(None, 0), ValueError,
                           "checkpoint_every", "0"),
}


@pytest.mark.parametrize("case", BAD_SIZES, ids=list(BAD_SIZES))
def test_zero_or_negative_sizes(case):
    _check(*BAD_SIZES[case])


BAD_HYPER = {
    "eta 0": (lambda: experiment.TrainConfig.from_preset(eta=0.0), ValueError, "eta", "0.0"),
    "eta negative": (lambda: optim.make("sgd", -0.5), ValueError, "eta", "-0.5"),
    "eta nan": (lambda: experiment.TrainConfig.from_preset(eta=float("nan")), ValueError, "eta",
                "nan"),
    "eta string": (lambda: optim.make("sgd", "0.1"), TypeError, "eta", "'0.1'"),
    "l2 negative": (lambda: experiment.TrainConfig.from_preset(l2=-1.0), ValueError, "l2",
                    "-1.0"),
    "l2 inf": (lambda: optim.make("sgd", 0.1, l2=float("inf")), ValueError, "l2", "inf"),
    "dropout 1": (lambda: layers.Dropout(1.0), ValueError, "dropout", "1.0"),
    "dropout negative": (lambda: layers.Dropout(-0.1), ValueError, "dropout", "-0.1"),
}


@pytest.mark.parametrize("case", BAD_HYPER, ids=list(BAD_HYPER))
def test_eta_l2_dropout_out_of_range(case):
    _check(*BAD_HYPER[case])


UNKNOWN = {
    "preset": (lambda: presets.get("ch9"), ValueError, "preset", "'ch9'"),
    "preset via config": (lambda: experiment.TrainConfig.from_preset("nope"), ValueError,
                          "preset", "'nope'"),
    "activation": (lambda: experiment.TrainConfig.from_preset(activation="sigmod"), ValueError,
                   "activation", "'sigmod'"),
    "mlp activation": (lambda: mlp.make([2, 2], activation="relux"), ValueError, "activation",
                       "'relux'"),
    "cost": (lambda: experiment.TrainConfig.from_preset(cost="hinge"), ValueError, "cost",
             "'hinge'"),
    "optimizer": (lambda: optim.make("sgdd", 0.1), ValueError, "optimizer", "'sgdd'"),
    "on_nan": (lambda: train.make_epoch(None, None, mini_batch_size=1, n_train=2,
                                        on_nan="ignore"), ValueError, "on_nan", "'ignore'"),
    "dataset": (lambda: data.load(""), ValueError, "dataset", "''"),
}


@pytest.mark.parametrize("case", UNKNOWN, ids=list(UNKNOWN))
def test_unknown_preset_activation_cost_optimizer_or_dataset(case):
    _check(*UNKNOWN[case])


IGNORED = {  # a setting that would have no effect is refused, not silently dropped
    "maxout pieces, sigmoid": (
        lambda: experiment.TrainConfig.from_preset("ch1-30", maxout_pieces=3), ValueError,
        "maxout_pieces", "'sigmoid'"),
    "sizes, CNN": (
        lambda: experiment.TrainConfig.from_preset("ch6-conv1", sizes=(784, 30, 10)), ValueError,
        "sizes", "'conv1'"),
    "data_dir, embedded mnist": (
        lambda: data.load("mnist", data_dir="/data"), ValueError, "data_dir", "'/data'"),
    "data_dir, mnist config": (
        lambda: experiment.TrainConfig.from_preset("ch1-30", data_dir="/data"), ValueError,
        "data_dir", "'/data'"),
    "maxout pieces, CNN": (
        lambda: experiment.TrainConfig.from_preset("ch6-conv1", maxout_pieces=2), ValueError,
        "maxout_pieces", "'sigmoid'"),
}


@pytest.mark.parametrize("case", IGNORED, ids=list(IGNORED))
def test_settings_that_would_be_ignored(case):
    _check(*IGNORED[case])


def test_unknown_tfds_dataset(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(ValueError, match="dataset: .*'no_such_set'"):
        data.load("no_such_set", data_dir=tmp_path)


def _corrupt(tmp_path, how):
    raw = bytearray(mnist_mod.MNIST_PATH.read_bytes())
    if how == "flip":
        raw[len(raw) // 3] ^= 0x01
    elif how == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = raw + b"\0"
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(bytes(raw))
    return bad


@pytest.mark.parametrize("how", ["flip", "truncate", "append"])
def test_corrupted_embedded_data_file(tmp_path, how):
    bad = _corrupt(tmp_path, how)
    with pytest.raises(ValueError) as info:
        data.load_mnist(path=bad)
    msg = str(info.value)
    assert str(bad) in msg and "checksum mismatch" in msg
    assert f"expected sha256 {data.MNIST_SHA256}" in msg and "got " in msg


# Numerical robustness: saturated outputs keep costs and gradients finite.

SATURATED_Z = np.array([[1e4, -1e4, 1e4], [-1e4, 1e4, -1e4], [3e4, 0.0, -3e4]], np.float32)
ONE_HOT = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], np.float32)


@pytest.mark.parametrize("cost, output", costs.PAIRS)
def test_costs_and_gradients_finite_for_saturated_logits(cost, output):
    fn = costs.from_logits(cost, output)
    z = jnp.asarray(SATURATED_Z)
    value, grads = jax.value_and_grad(fn)(z, jnp.asarray(ONE_HOT))
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grads)).all()
    if cost != "quadratic":  # a confidently wrong output costs a lot, but finitely
        assert float(value) > 1e3


@pytest.mark.parametrize("cost", ["cross_entropy", "log_likelihood", "quadratic"])
def test_textbook_costs_finite_at_exactly_0_and_1(cost):
    a = jnp.asarray([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], jnp.float32)
    value, grads = jax.value_and_grad(costs.get(cost))(a, jnp.asarray(ONE_HOT))
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grads)).all()


@pytest.mark.parametrize("cost, output", [("cross_entropy", "sigmoid"),
                                          ("log_likelihood", "softmax")])
def test_network_gradients_finite_when_the_output_layer_saturates(cost, output):
    net = mlp.make([784, 30, 10], output_activation=output)
    params = net.init(jax.random.PRNGKey(0))
    params[-1]["w"] = params[-1]["w"] * 1e4  # |z^L| ~ 1e4: sigma(z) is exactly 0 or 1
    x = jnp.asarray(np.random.default_rng(0).random((8, 784), np.float32))
    z = net.logits(params, x)
    assert float(jnp.max(jnp.abs(z))) > 1e3
    y = jax.nn.one_hot(jnp.arange(8) % 10, 10)
    grads = experiment.autodiff_grad_fn(net, cost)(params, x, y)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree_util.tree_leaves(grads))
