"""Bad input fails early with ValueError/TypeError naming the argument, what was expected and
what came: one table per case of issue 7, each row one way to get it wrong."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import manual_grad
from jaxnn import (
    activations,
    checkpoint,
    cnn,
    costs,
    data,
    experiment,
    layers,
    mlp,
    optim,
    perceptron,
    presets,
    train,
)
from jaxnn.data import mnist as mnist_mod

X = np.zeros((4, 784), np.float32)
LABELS = np.array([0, 1, 2, 3], np.int32)
PARAMS = mlp.init(jax.random.key(0), [784, 30, 10])


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
    "labels one-hot": (lambda: train.DeviceData.put(X, np.eye(10, dtype=np.int32)[LABELS]),
                       ValueError, "data", "class indices"),
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
    return mlp.init(jax.random.key(0), sizes)


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
    "zero layer": (lambda: mlp.init(jax.random.key(0), [784, 0, 10]), ValueError, "sizes",
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
    "eval_size 0": (lambda: experiment.TrainConfig.from_preset(eval_size=0), ValueError,
                    "eval_size", "got 0"),
    "fractional layer": (lambda: experiment.TrainConfig.from_preset(sizes=(784, 30.5, 10)),
                         ValueError, "sizes", "30.5"),  # never truncated to 30
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
    "seed 2**32": (lambda: experiment.TrainConfig.from_preset(seed=2**32), ValueError, "seed",
                   "[0, 2**32)"),
    "seed negative": (lambda: experiment.TrainConfig.from_preset(seed=-1), ValueError, "seed",
                      "-1"),
    "seed float": (lambda: experiment.TrainConfig.from_preset(seed=1.0), TypeError, "seed",
                   "1.0"),
    "dropout negative": (lambda: layers.Dropout(-0.1), ValueError, "dropout", "-0.1"),
    "batch norm epsilon 0": (lambda: layers.BatchNorm(epsilon=0.0), ValueError, "epsilon",
                             "0.0"),
    "batch norm momentum 1": (lambda: layers.BatchNorm(momentum=1.0), ValueError, "momentum",
                              "1.0"),
    "patience 0": (lambda: experiment.TrainConfig.from_preset(patience=0), ValueError,
                   "patience", "got 0"),
    # member 1 would take seed 2**32, which jax.random.key would wrap to 0 (member 0's of seed 0)
    "seed + ensemble past 2**32": (
        lambda: experiment.TrainConfig.from_preset(seed=2**32 - 1, ensemble=2), ValueError,
        "seed", "at most 4294967294 with ensemble 2"),
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
    # preset is only a label on a config built directly, but an unknown one is still refused
    "preset of a config built directly": (
        lambda: experiment.TrainConfig(preset="ch1-31").validated(), ValueError, "preset",
        "'ch1-31' (did you mean 'ch1-30'?)"),
    "preset not a string": (lambda: experiment.TrainConfig(preset=3).validated(), ValueError,
                            "preset", "3"),
}


@pytest.mark.parametrize("case", UNKNOWN, ids=list(UNKNOWN))
def test_unknown_preset_activation_cost_optimizer_or_dataset(case):
    _check(*UNKNOWN[case])


def test_the_edges_of_the_ranges_are_accepted():
    """The largest seed an ensemble of 2 can take (its members: 2**32 - 2 and 2**32 - 1), and
    dropout 0 for an MLP (no dropout, not a setting without effect)."""
    assert experiment.TrainConfig.from_preset(seed=2**32 - 2, ensemble=2).seed == 2**32 - 2
    assert experiment.TrainConfig.from_preset("ch1-30", dropout=0.0).dropout == 0.0


CNN = dict(cost="log_likelihood", output_activation="softmax")
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
    "sizes, CNN built directly": (
        lambda: experiment.TrainConfig(model="conv1", sizes=(784, 100, 10), **CNN).validated(),
        ValueError, "sizes", "(784, 100, 10)"),
    "init, CNN built directly": (
        lambda: experiment.TrainConfig(model="conv1", init="he", **CNN).validated(), ValueError,
        "init", "'he'"),
    "init, CNN by replace": (
        lambda: dataclasses.replace(experiment.TrainConfig.from_preset("ch6-fc100"),
                                    init="default").validated(), ValueError, "init", "'default'"),
}


@pytest.mark.parametrize("case", IGNORED, ids=list(IGNORED))
def test_settings_that_would_be_ignored(case):
    _check(*IGNORED[case])


def test_mlp_settings_of_a_preset_are_dropped_for_a_cnn():
    """--preset ch1-100 --model conv1: the preset's sizes and init are an MLP's, which the CNN
    does not use; they become the defaults rather than being refused or recorded."""
    config = experiment.TrainConfig.from_preset("ch5-2hidden", model="conv1", **CNN)
    default = experiment.TrainConfig()
    assert (config.sizes, config.init) == (default.sizes, default.init)
    assert config.preset == "ch5-2hidden"  # from_preset with overrides keeps its label
    # a config.json written before the check held them too: --resume still reads it
    saved = {**config.to_json(), "sizes": [784, 30, 30, 10], "init": "default"}
    assert experiment.TrainConfig.from_json(saved).validated() == config


BAD_FLAGS = {
    "expanded 'no'": (lambda: experiment.TrainConfig(expanded="no").validated(), TypeError,
                      "expanded", "str 'no'"),
    "batch_norm 1": (lambda: experiment.TrainConfig(batch_norm=1, model="fc100",
                                                    **CNN).validated(),
                     TypeError, "batch_norm", "int 1"),
    "batch_norm 0": (lambda: experiment.TrainConfig(batch_norm=0).validated(), TypeError,
                     "batch_norm", "int 0"),
    "expanded None": (lambda: experiment.TrainConfig(expanded=None).validated(), TypeError,
                      "expanded", "None"),
    "expanded via from_preset": (lambda: experiment.TrainConfig.from_preset(expanded="yes"),
                                 TypeError, "expanded", "'yes'"),
}


@pytest.mark.parametrize("case", BAD_FLAGS, ids=list(BAD_FLAGS))
def test_on_off_settings_take_only_true_or_false(case):
    _check(*BAD_FLAGS[case])


def test_numpy_bools_become_python_bools():
    config = experiment.TrainConfig(expanded=np.True_).validated()
    assert config.expanded is True


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



# The newcomer audit: each row returned a number, accepted a bad setting or raised an error that
# named no argument, at the commit before these checks.

GATE = perceptron.INPUTS
BAD_PERCEPTRON = {
    "3 labels for 4 inputs": (lambda: perceptron.train(GATE, [0, 0, 1]), ValueError, "y",
                              "(3,)"),
    "labels 2-d": (lambda: perceptron.train(GATE, [[0], [0], [0], [1]]), ValueError, "y",
                   "(4, 1)"),
    "label 2": (lambda: perceptron.train(GATE, [0, 0, 2, 1]), ValueError, "y", "2"),
    "x 1-d": (lambda: perceptron.train([0.0, 1.0, 1.0, 0.0], [0, 1, 1, 0]), ValueError, "x",
              "(4,)"),
    "no examples": (lambda: perceptron.train(np.zeros((0, 2)), []), ValueError, "x", "(0, 2)"),
    "x nan": (lambda: perceptron.train(_with(np.asarray(GATE), 0, np.nan), [0, 0, 0, 1]),
              ValueError, "x", "1 NaN"),
    "epochs 0": (lambda: perceptron.train(GATE, [0, 0, 0, 1], epochs=0), ValueError, "epochs",
                 "0"),
    "epochs float": (lambda: perceptron.train(GATE, [0, 0, 0, 1], epochs=2.5), TypeError,
                     "epochs", "2.5"),
    "eta -1": (lambda: perceptron.train(GATE, [0, 0, 0, 1], eta=-1), ValueError, "eta", "-1"),
    "eta 0": (lambda: perceptron.train(GATE, [0, 0, 0, 1], eta=0.0), ValueError, "eta", "0.0"),
}


@pytest.mark.parametrize("case", BAD_PERCEPTRON, ids=list(BAD_PERCEPTRON))
def test_perceptron_training_data_and_settings(case):
    _check(*BAD_PERCEPTRON[case])


A10 = jnp.full((10, 10), 0.1)
A4 = jnp.full((4, 10), 0.1)
BAD_COST_TARGETS = {}
for _name, _fn in costs.COSTS.items():
    BAD_COST_TARGETS |= {
        # integer labels where one-hot rows belong; the batch size equals the class count, so
        # (10, 10) - (10,) used to broadcast and give a number
        f"{_name}, labels as big as the batch": (functools.partial(_fn, A10, jnp.arange(10)),
                                                 ValueError, "y", "(10,)"),
        f"{_name}, labels": (functools.partial(_fn, A4, jnp.arange(4)), ValueError, "y",
                             "(4,)"),
        f"{_name}, other width": (functools.partial(_fn, A4, jnp.zeros((4, 3))), ValueError,
                                  "y", "(4, 3)"),
        f"{_name}, a scalar": (functools.partial(_fn, jnp.float32(0.5), jnp.float32(1.0)),
                               ValueError, "a", "()"),
    }
for _cost, _out in costs.PAIRS:
    _fn = costs.from_logits(_cost, _out)
    BAD_COST_TARGETS |= {
        f"from_logits({_cost}, {_out}), labels as big as the batch": (
            functools.partial(_fn, A10, jnp.arange(10)), ValueError, "y", "(10,)"),
        f"from_logits({_cost}, {_out}), other width": (
            functools.partial(_fn, A4, jnp.zeros((4, 3))), ValueError, "y", "(4, 3)"),
        f"from_logits({_cost}, {_out}), jitted": (
            functools.partial(jax.jit(_fn), A10, jnp.arange(10)), ValueError, "y", "(10,)"),
    }


for _residual in (costs.sigmoid_residual, costs.softmax_residual):
    BAD_COST_TARGETS |= {
        f"{_residual.__name__}, labels as big as the batch": (
            functools.partial(_residual, A10, jnp.arange(10)), ValueError, "y", "(10,)"),
        f"{_residual.__name__}, other width": (
            functools.partial(_residual, A4, jnp.zeros((4, 3))), ValueError, "y", "(4, 3)"),
    }


@pytest.mark.parametrize("case", BAD_COST_TARGETS, ids=list(BAD_COST_TARGETS))
def test_costs_need_targets_of_the_outputs_shape(case):
    _check(*BAD_COST_TARGETS[case])


def _layer(n_out, n_in):
    return {"w": jnp.zeros((n_out, n_in)), "b": jnp.zeros(n_out)}


MAXOUT3 = mlp.init(jax.random.key(0), [784, 30, 10], activation="maxout", pieces=3)
BAD_MLP = {
    "layers do not chain, width a multiple": (
        lambda: mlp.apply([_layer(60, 784), _layer(10, 30)], X4), ValueError, "params[1]",
        "(10, 30)"),
    "layers do not chain, backprop": (
        lambda: manual_grad.backprop([_layer(60, 784), _layer(10, 30)], X4, jnp.zeros((4, 10))),
        ValueError, "params[1]", "(10, 30)"),
    "maxout groups of another size": (
        lambda: mlp.make([784, 30, 10], activation="maxout", pieces=2).apply(MAXOUT3, X4),
        ValueError, "params[1]", "(10, 30)"),
    "maxout groups that do not divide": (
        lambda: mlp.apply([_layer(70, 784), _layer(10, 30)], X4, activation="maxout"),
        ValueError, "params[1]", "(10, 30)"),
    "prelu without a slope": (lambda: mlp.apply(PARAMS, X4, activation="prelu"), ValueError,
                              "params[0]", "keys ['b', 'w']"),
    "output_activation unknown": (lambda: mlp.apply(PARAMS, X4, output_activation="bad"),
                                  ValueError, "output_activation", "'bad'"),
    "output_activation relu": (lambda: mlp.apply(PARAMS, X4, output_activation="relu"),
                               ValueError, "output_activation", "'relu'"),
    "forward output_activation relu": (
        lambda: mlp.forward(PARAMS, X4, output_activation="relu"), ValueError,
        "output_activation", "'relu'"),
    "apply activation unknown": (lambda: mlp.apply(PARAMS, X4, activation="relux"), ValueError,
                                 "activation", "'relux'"),
    "x uint8": (lambda: mlp.apply(PARAMS, np.zeros((4, 784), np.uint8)), TypeError, "x",
                "uint8"),
    "x uint8, backprop": (
        lambda: manual_grad.backprop(PARAMS, np.zeros((4, 784), np.uint8), jnp.zeros((4, 10))),
        TypeError, "x", "uint8"),
    "x int32, made network": (lambda: NET.apply(PARAMS, jnp.zeros((4, 784), jnp.int32)),
                              TypeError, "x", "int32"),
    "init dtype int32": (lambda: mlp.init(jax.random.key(0), [2, 2], dtype=jnp.int32),
                         TypeError, "dtype", "int32"),
    "make dtype int32": (lambda: mlp.make([2, 2], dtype=jnp.int32), TypeError, "dtype",
                         "int32"),
    "make dtype nonsense": (lambda: mlp.make([2, 2], dtype="float33"), TypeError, "dtype",
                            "'float33'"),
    "maxout pieces 0": (lambda: mlp.make([2, 3, 2], activation="maxout", pieces=0), ValueError,
                        "pieces", "0"),
}


@pytest.mark.parametrize("case", BAD_MLP, ids=list(BAD_MLP))
def test_mlp_arguments(case):
    _check(*BAD_MLP[case])


def test_integer_images_point_at_to_inputs():
    with pytest.raises(TypeError, match=r"x: .*jaxnn\.data\.to_inputs.*got dtype uint8"):
        mlp.apply(PARAMS, np.zeros((4, 784), np.uint8))


Z4, Y4 = jnp.zeros((4, 10)), jnp.zeros((4, 10))
BAD_MANUAL = {
    "l2 None": (lambda: manual_grad.backprop(PARAMS, X4, Y4, l2=None), TypeError, "l2",
                "None"),
    "l2 string": (lambda: manual_grad.backprop(PARAMS, X4, Y4, l2="a"), TypeError, "l2", "'a'"),
    "l2 vector": (lambda: manual_grad.backprop(PARAMS, X4, Y4, l2=jnp.ones(3)), TypeError,
                  "l2", "(3,)"),
    "maxout pieces 0": (lambda: manual_grad.maxout_backward(jnp.zeros((4, 3)),
                                                            jnp.zeros((4, 9)), 0),
                        ValueError, "pieces", "0"),
    "maxout pieces do not divide": (
        lambda: manual_grad.maxout_backward(jnp.zeros((4, 3)), jnp.zeros((4, 9)), 2),
        ValueError, "pieces", "2"),
    "maxout da": (lambda: manual_grad.maxout_backward(jnp.zeros((4, 2)), jnp.zeros((4, 9)), 3),
                  ValueError, "da", "(4, 2)"),
    "output_delta y": (lambda: manual_grad.output_delta("quadratic", "sigmoid", Z4, Z4,
                                                        jnp.zeros((4, 3))),
                       ValueError, "y", "(4, 3)"),
    "output_delta labels": (lambda: manual_grad.output_delta("log_likelihood", "softmax",
                                                             A10, A10, jnp.arange(10)),
                            ValueError, "y", "(10,)"),
    "output_delta a": (lambda: manual_grad.output_delta("quadratic", "sigmoid", Z4,
                                                        jnp.zeros((4, 3)), Z4),
                       ValueError, "a", "(4, 3)"),
    "cost_derivative y": (lambda: manual_grad.cost_derivative("quadratic", Z4, jnp.zeros(10)),
                          ValueError, "y", "(10,)"),
    "softmax_backward da": (lambda: manual_grad.softmax_backward(jnp.zeros((4, 3)), Z4),
                            ValueError, "da", "(4, 3)"),
    "flatten_backward da": (lambda: manual_grad.flatten_backward(jnp.zeros((4, 100)),
                                                                 (4, 28, 28, 1)),
                            ValueError, "da", "(4, 100)"),
    "dropout_backward keep": (lambda: manual_grad.dropout_backward(Z4, jnp.ones((4, 3), bool),
                                                                   0.5),
                              ValueError, "keep", "(4, 3)"),
    "dropout_backward rate 1": (lambda: manual_grad.dropout_backward(
        Z4, jnp.ones((4, 10), bool), 1.0), ValueError, "rate", "1.0"),
}


@pytest.mark.parametrize("case", BAD_MANUAL, ids=list(BAD_MANUAL))
def test_manual_grad_arguments(case):
    _check(*BAD_MANUAL[case])


SPEC = layers.CNNSpec((28, 28, 1), (layers.Conv(2, 5), layers.Pool("max", 2), layers.Flatten(),
                                    layers.Dense(10)))
SPEC_PARAMS = layers.init(SPEC, jax.random.key(0))
BAD_CNN_INPUT = {
    "flat x": (lambda: layers.forward(SPEC, SPEC_PARAMS, jnp.zeros((4, 784))), ValueError, "x",
               "(4, 784)"),
    "32x32 for a 28x28 spec": (lambda: layers.forward(SPEC, SPEC_PARAMS,
                                                      jnp.zeros((4, 32, 32, 1))),
                               ValueError, "x", "(4, 32, 32, 1)"),
    "no channel axis": (lambda: layers.forward(SPEC, SPEC_PARAMS, jnp.zeros((4, 28, 28))),
                        ValueError, "x", "(4, 28, 28)"),
    "jitted": (lambda: jax.jit(functools.partial(layers.forward, SPEC))(
        SPEC_PARAMS, jnp.zeros((4, 32, 32, 1))), ValueError, "x", "(4, 32, 32, 1)"),
    "uint8 images": (lambda: layers.forward(SPEC, SPEC_PARAMS, np.zeros((4, 28, 28, 1),
                                                                          np.uint8)),
                     TypeError, "x", "uint8"),
}


BAD_CNN_INPUT["flax model, flat x"] = (lambda: cnn.make(SPEC, jax.random.key(0))(
    jnp.zeros((4, 784))), ValueError, "x", "(4, 784)")


@pytest.mark.parametrize("case", BAD_CNN_INPUT, ids=list(BAD_CNN_INPUT))
def test_cnn_input_of_the_wrong_shape(case):
    _check(*BAD_CNN_INPUT[case])


def test_cnn_input_message_names_the_layout():
    with pytest.raises(ValueError, match=r"x: expected NHWC images \(batch, 28, 28, 1\)"):
        layers.forward(SPEC, SPEC_PARAMS, jnp.zeros((4, 784)))


def _bare_logits(params, x):
    a = activations.sigmoid(x @ params[0]["w"].T + params[0]["b"])  # with its derivative rule
    return a @ params[1]["w"].T + params[1]["b"]


def _bare_cnn(params, x):
    from manual_grad.cnn import forward  # the same layers, with no input check

    return forward(SPEC, params, x)[0]


CHECKED_AND_BARE = {  # (checked function, the same maths without checks, arguments)
    "costs.quadratic": (costs.quadratic,
                        lambda a, y: 0.5 * jnp.mean(jnp.sum((a - y) ** 2, axis=-1)), (A4, A4)),
    "mlp.logits": (mlp.logits, _bare_logits, (PARAMS, X4)),
    "layers.forward": (functools.partial(layers.forward, SPEC), _bare_cnn,
                       (SPEC_PARAMS, jnp.zeros((2, 28, 28, 1)))),
}


@pytest.mark.parametrize("case", CHECKED_AND_BARE, ids=list(CHECKED_AND_BARE))
def test_checks_add_nothing_to_the_compiled_function(case):
    """The checks read shapes and dtypes while tracing: the jaxpr is that of the bare maths."""
    checked, bare, args = CHECKED_AND_BARE[case]
    assert str(jax.make_jaxpr(checked)(*args)) == str(jax.make_jaxpr(bare)(*args))


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
    params = net.init(jax.random.key(0))
    params[-1]["w"] = params[-1]["w"] * 1e4  # |z^L| ~ 1e4: sigma(z) is exactly 0 or 1
    x = jnp.asarray(np.random.default_rng(0).random((8, 784), np.float32))
    z = net.logits(params, x)
    assert float(jnp.max(jnp.abs(z))) > 1e3
    y = jax.nn.one_hot(jnp.arange(8) % 10, 10)
    grads = experiment.autodiff_grad_fn(net, cost)(params, x, y)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree_util.tree_leaves(grads))


def test_device_arrays_are_checked_on_the_device_and_kept():
    """put() of arrays already on the device keeps them (no round trip through the host) and
    still checks them: shape, labels' range, NaN."""
    x, labels = jnp.asarray(X), jnp.asarray(LABELS)
    placed = train.DeviceData.put(x, labels, num_classes=10)
    assert placed.x is x and placed.labels is labels
    with pytest.raises(ValueError, match=r"train: expected labels in \[0, 3\)"):
        train.DeviceData.put(x, labels, arg="train", num_classes=3)
    with pytest.raises(ValueError, match="train: expected finite values; got 1 NaN"):
        train.DeviceData.put(x.at[1, 2].set(jnp.nan), labels, arg="train")


def test_bfloat16_inputs_are_floating_point_and_checked_for_nan():
    x = X.astype(jnp.bfloat16)
    assert train.DeviceData.put(x, LABELS).x.dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="data: expected finite values; got 1 NaN"):
        train.DeviceData.put(_with(x, 3, np.nan), LABELS)


@pytest.mark.parametrize("kwargs, expected, not_expected", [
    (dict(eta=3.0), "the learning rate (eta=3) is likely too large: try a smaller --eta",
     "--l"),
    (dict(eta=3.0, l2=0.0, l1=0.0), "the learning rate (eta=3) is likely too large", "--l"),
    (dict(eta=3.0, l2=5.0, l1=0.0),
     "the learning rate (eta=3) or the regularization (l2=5) is likely too large: try a "
     "smaller --eta or --l2", "--l1"),
    (dict(eta=0.5, l2=5.0, l1=2.0), "(l2=5, l1=2) is likely too large: try a smaller --eta or "
     "--l2 or --l1", "eta=3"),
])
def test_diverged_names_the_likelier_cause(kwargs, expected, not_expected):
    message = str(train.Diverged(0, 3, **kwargs))
    assert message.startswith("training diverged: NaN or inf in the gradient") and (
        expected in message and not_expected not in message), message


@pytest.mark.parametrize("name", ["eta", "l2", "l1"])
def test_a_setting_beyond_float32_is_refused_before_training(name):
    with pytest.raises(ValueError, match=rf"^{name}: expected at most float32's largest number, "
                       r"3.4e\+38 \(the network trains in float32\); got 1e\+300$"):
        experiment.TrainConfig.from_preset("ch1-30", **{name: 1e300})


def test_new_run_dir_names_a_file_where_its_base_should_be(tmp_path):
    from jaxnn import report

    (tmp_path / "runs").write_text("")
    for base in (tmp_path / "runs", tmp_path / "runs" / "deeper"):
        with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'runs'} is a file, not a "
                           "directory.*--out DIR"):
            report.new_run_dir(base, "x")
    assert report.new_run_dir(tmp_path / "fresh", "x").is_dir()


@pytest.mark.parametrize("value, suggestion", [
    ("swi", "swish"),      # similarity 0.75 (difflib's ratio 2 M / T = 6 / 8): the cutoff, kept
    ("idnty", "identity"),  # 0.77
    ("sgmd", None),        # 0.73: too far from 'sigmoid' to guess
    ("sigm", None),        # 0.73
])
def test_a_suggestion_needs_a_similarity_of_three_quarters(value, suggestion):
    """did_you_mean suggests the closest option only from a similarity of 0.75 up (difflib's
    ratio): a looser cutoff would guess wildly, a stricter one would miss short typos."""
    from jaxnn import _checks

    said = _checks.did_you_mean(value, activations.HIDDEN)
    assert said == ("" if suggestion is None else f" (did you mean {suggestion!r}?)")
