"""jaxnn.cnn: Flax NNX modules built from a CNNSpec, their pure layout, and training them."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_close

from jaxnn import cnn, costs, data, experiment, layers, metrics, optim, presets, train
from jaxnn.architectures import ARCHITECTURES

CNN_PRESETS = [n for n in presets.PRESETS if presets.get(n).get("model", "mlp") != "mlp"]


def _spec(name, **kw):
    return cnn.architecture(name, input_shape=(28, 28, 1), **kw)


@pytest.mark.parametrize("name", CNN_PRESETS)
def test_forward_shapes_of_every_cnn_preset(name):
    config = experiment.TrainConfig.from_preset(name)
    spec = _spec(config.model, activation=config.activation, dropout=config.dropout,
                 batch_norm=config.batch_norm)
    key, x = jax.random.key(0), jnp.zeros((3, 28, 28, 1), jnp.float32)
    # abstract evaluation: shapes only, no parameter initialisation or arithmetic
    assert jax.eval_shape(lambda x: cnn.make(spec, key)(x), x).shape == (3, 10)
    training = jax.eval_shape(
        lambda x: cnn.make(spec, key)(x, train=True, key=jax.random.key(1)), x)
    assert training.shape == (3, 10)
    pure = jax.eval_shape(lambda: cnn.pure_params(cnn.make(spec, key)))
    shapes = layers.shapes(spec)
    assert sorted(pure["layers"]) == [i for i, layer in enumerate(spec.layers)
                                      if isinstance(layer, layers.PARAMETRIC)]
    for i, p in pure["layers"].items():
        layer = spec.layers[i]
        if isinstance(layer, layers.BatchNorm):  # one scale and bias per feature of its input
            assert p["scale"].shape == p["bias"].shape == shapes[i][-1:]
        else:
            assert p["kernel"].shape[-1] == layer.features
            assert p["bias"].shape == (layer.features,)


@pytest.mark.parametrize("name", sorted(cnn.ARCHITECTURES))
def test_flax_logits_equal_the_pure_forward_in_eval_mode(name):
    spec = _spec(name, activation="sigmoid")
    model = cnn.make(spec, jax.random.key(2))
    x = jax.random.uniform(jax.random.key(3), (4, 28, 28, 1), jnp.float32)
    pure = cnn.pure_params(model)
    np.testing.assert_allclose(jax.jit(lambda x: model(x))(x),
                               jax.jit(lambda x: layers.forward(spec, pure, x))(x),
                               rtol=1e-5, atol=1e-6)


def test_the_pure_forward_of_a_batch_norm_network_is_the_flax_models():
    """With batch norm, jaxnn.layers.forward on pure_params is the Flax model in training mode
    (the batch's statistics, in two passes: inputs of mean 300 and spread 0.3 give relu
    features whose mean dwarfs their spread) and, with the running averages that step left
    (pure_batch_stats), in evaluation mode."""
    from flax import nnx

    spec = _spec("conv1", activation="relu", batch_norm=True)
    spec = cnn.replace(spec, layers=tuple(
        layers.BatchNorm(momentum=0.5, epsilon=1e-3) if isinstance(x, layers.BatchNorm) else x
        for x in spec.layers))
    model = cnn.make(spec, jax.random.key(2))
    assert model.layers["1"].epsilon == 1e-3 and model.layers["1"].momentum == 0.5
    x = 300.0 + 0.3 * jax.random.normal(jax.random.key(3), (8, 28, 28, 1), jnp.float32)
    graphdef, params, rest = cnn.split(model)
    for k, leaf in enumerate(params["layers"]["1"].values()):  # scale and bias off 1 and 0
        leaf[...] = 1.0 + jax.random.normal(jax.random.key(4 + k), leaf[...].shape)
    pure = cnn.pure_params(params)
    assert sorted(pure["layers"]) == [0, 1, 4, 5, 6]
    training = jax.jit(lambda x: nnx.merge(graphdef, params, rest, copy=True)(x, train=True))(x)
    np.testing.assert_allclose(jax.jit(lambda x: layers.forward(spec, pure, x))(x), training,
                               rtol=1e-5, atol=1e-5)
    _, moved = jax.jit(cnn.make_grad_fn(graphdef, costs.from_logits(
        "log_likelihood", "softmax")))(params, rest, x, jax.nn.one_hot(jnp.arange(8), 10), None)
    stats = cnn.pure_batch_stats(moved)
    assert sorted(stats) == [1, 5]
    np.testing.assert_allclose(stats[1]["mean"], 0.5 * np.asarray(
        layers.batch_statistics(jax.nn.relu(layers.conv(
            x, pure["layers"][0]["kernel"], pure["layers"][0]["bias"], stride=(1, 1),
            padding="VALID")))[0]), rtol=1e-5)
    evaluation = jax.jit(lambda x: nnx.merge(graphdef, params, moved)(x))(x)
    np.testing.assert_allclose(
        jax.jit(lambda x: layers.forward(spec, pure, x, batch_stats=stats))(x), evaluation,
        rtol=1e-5, atol=1e-5)
    assert not np.allclose(evaluation, training, atol=1e-3)


def test_flax_gradients_line_up_with_the_pure_layout():
    spec = _spec("conv1", activation="relu", dropout=0.5)
    model = cnn.make(spec, jax.random.key(4))
    graphdef, params, rest = cnn.split(model)
    x = jax.random.uniform(jax.random.key(5), (6, 28, 28, 1), jnp.float32)
    y = jax.nn.one_hot(jnp.arange(6) % 10, 10, dtype=jnp.float32)
    cost_fn = costs.from_logits("log_likelihood", "softmax")
    key = jax.random.key(6)
    grads, _ = jax.jit(cnn.make_grad_fn(graphdef, cost_fn))(params, rest, x, y, key)
    pure = cnn.pure_params(model)
    expected = jax.jit(jax.grad(
        lambda p: cost_fn(layers.forward(spec, p, x, key=key), y)))(pure)
    assert_trees_close(cnn.pure_params(grads), expected, rtol=1e-4, atol=1e-6, name="grads")


def test_dropout_is_off_at_evaluation_and_differs_between_keys():
    spec = _spec("fc100", dropout=0.5)
    assert [type(x).__name__ for x in spec.layers] == [
        "Flatten", "Dropout", "Dense", "Dropout", "Dense"]
    model = cnn.make(spec, jax.random.key(0))
    x = jax.random.uniform(jax.random.key(1), (5, 28, 28, 1), jnp.float32)
    run = jax.jit(lambda x, key: model(x, train=True, key=key))
    evaluate = jax.jit(lambda x: model(x))
    # the network without dropout, by hand in float64 NumPy: z = relu(x W1 + b1) W2 + b2
    p = {i: {k: np.asarray(v, np.float64) for k, v in layer.items()}
         for i, layer in cnn.pure_params(model)["layers"].items()}
    hidden = np.maximum(np.asarray(x, np.float64).reshape(5, -1) @ p[2]["kernel"]
                        + p[2]["bias"], 0.0)
    np.testing.assert_allclose(evaluate(x), hidden @ p[4]["kernel"] + p[4]["bias"],
                               rtol=1e-5, atol=1e-6)
    a = run(x, jax.random.key(2))
    b = run(x, jax.random.key(3))
    assert not np.allclose(a, b)
    assert not np.allclose(a, evaluate(x))


def _passthrough_spec(middle, n):
    """Flatten, ``middle``, then a Dense output layer (identity kernel, zero bias where set)."""
    return layers.CNNSpec((1, 1, n), (layers.Flatten(), middle, layers.Dense(n)), "sigmoid")


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_dropout_keeps_a_unit_with_probability_one_minus_rate_and_scales_it_up(rate):
    """Inverted dropout: in training a unit is kept with probability 1 - rate and divided by
    1 - rate, so its mean over keys is its value; evaluation is the identity. The Flax module
    drops the same units as the pure forward pass for the same key."""
    n, value = 64, 0.75
    spec = _passthrough_spec(layers.Dropout(rate), n)
    params = {"layers": {2: {"kernel": jnp.eye(n), "bias": jnp.zeros(n)}}}
    x = jnp.full((32, 1, 1, n), value)
    keys = jax.random.split(jax.random.key(0), 200)
    out = np.asarray(jax.jit(jax.vmap(lambda k: layers.forward(spec, params, x, key=k)))(keys))
    kept = out != 0
    np.testing.assert_allclose(out[kept], value / (1 - rate), rtol=1e-6)
    # 409,600 draws: the fraction kept has a standard deviation below 0.001
    assert abs(kept.mean() - (1 - rate)) < 0.005
    assert abs(out.mean() - value) < 0.005
    np.testing.assert_array_equal(layers.forward(spec, params, x), x.reshape(32, n))
    model = cnn.make(spec, jax.random.key(1))
    pure = cnn.pure_params(model)
    for key in keys[:3]:
        np.testing.assert_array_equal(model(x, train=True, key=key),
                                      layers.forward(spec, pure, x, key=key))


def test_batch_norm_uses_the_batch_in_training_and_running_averages_at_evaluation():
    """y = scale (a - mu) / sqrt(var + eps) + bias with the mini-batch's mu and (biased) var in
    training, which also moves the running averages by ``momentum``, and those averages at
    evaluation: so one example alone is not normalised to the bias."""
    n, momentum = 6, 0.9
    model = cnn.make(_passthrough_spec(layers.BatchNorm(momentum), n), jax.random.key(1))
    bn, dense = model.layers["1"], model.layers["2"]
    dense.kernel[...], dense.bias[...] = jnp.eye(n), jnp.zeros(n)
    r = np.random.default_rng(0)
    mean, scale, bias = (jnp.asarray(r.normal(size=n), jnp.float32) for _ in range(3))
    var = jnp.asarray(r.uniform(0.5, 2.0, n), jnp.float32)
    bn.mean[...], bn.var[...], bn.scale[...], bn.bias[...] = mean, var, scale, bias
    x = jnp.asarray(r.normal(size=(5, 1, 1, n)) * 3 + 1, jnp.float32)
    a = x.reshape(5, n)

    def normalised(a, mu, v):
        return scale * (a - mu) / jnp.sqrt(v + bn.epsilon) + bias

    np.testing.assert_allclose(model(x), normalised(a, mean, var), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(x[:1]), normalised(a[:1], mean, var), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model(x[:1]), bias, atol=1e-3)
    mu, v = a.mean(axis=0), a.var(axis=0)
    np.testing.assert_allclose(model(x, train=True, key=jax.random.key(0)),
                               normalised(a, mu, v), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.mean[...], momentum * mean + (1 - momentum) * mu, rtol=1e-6)
    np.testing.assert_allclose(bn.var[...], momentum * var + (1 - momentum) * v, rtol=1e-6)


@pytest.mark.parametrize("loop", ["scan", "host"])
def test_stateful_epoch_draws_a_fresh_key_every_step(loop):
    steps = 7

    def grad_fn(params, state, x, y, key):
        seen = state["seen"].at[state["i"]].set(jax.random.key_data(key))
        return jax.tree_util.tree_map(jnp.zeros_like, params), {"i": state["i"] + 1,
                                                                "seen": seen}

    opt = optim.make("sgd", 0.1)
    params = {"w": jnp.ones(3)}
    epoch = train.make_epoch(grad_fn, opt, mini_batch_size=2, n_train=2 * steps - 1,
                             stateful=True, loop=loop)
    d = train.DeviceData.put(np.zeros((2 * steps - 1, 3), np.float32), np.zeros(2 * steps - 1,
                                                                                np.int32))
    state0 = {"i": jnp.asarray(0), "seen": jnp.zeros((steps, 2), jnp.uint32)}
    _, _, state = epoch(params, opt.init(params), jax.random.key(0), d, state0)
    assert int(state["i"]) == steps  # 6 full mini-batches and the remainder
    assert len({tuple(r) for r in np.asarray(state["seen"]).tolist()}) == steps


@pytest.mark.parametrize("name, batch_norm", [("conv2", False), ("conv2-dropout", True),
                                              ("flax-mnist", False)])
def test_the_compiled_initial_draw_equals_the_eager_one_bit_for_bit(name, batch_norm):
    """experiment draws a CNN's initial weights as one program (train.jit_once: on the CPU,
    LLVM optimization level 1, which compiles about 3x faster); the bits must be those of
    building the model eagerly, which every recorded result started from."""
    spec = _spec(name, batch_norm=batch_norm)
    config = experiment.TrainConfig.from_preset("ch6-relu")
    for seed in (0, 1):
        config = dataclasses.replace(config, seed=seed)
        compiled = experiment.initial_params(config, spec)
        init_key = jax.random.split(jax.random.key(seed))[0]
        _, eager, _ = cnn.split(cnn.make(spec, init_key))
        assert jax.tree.structure(compiled) == jax.tree.structure(eager)
        for a, b in zip(jax.tree.leaves(compiled), jax.tree.leaves(eager)):
            assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b)), name


def _layers(name, **kw):
    return _spec(name, **kw).layers


def _conv(features, size=5, padding="VALID"):
    return layers.Conv(features, size, 1, padding)


# network3.py's chapter-6 networks (nielsen-book.md): ConvPoolLayer = a valid 5x5 convolution,
# stride 1, then 2x2 max pooling; 20 feature maps, then 40; FullyConnectedLayer widths; a
# SoftmaxLayer of 10 (the logits, Dense(10)). Dropout (rate 0.5) only in the dropout network,
# before every fully connected layer, softmax included (docs/techniques-and-reproduce.md).
_CONV20 = (_conv(20), layers.Pool("max", 2))
_CONV40 = (_conv(40), layers.Pool("max", 2))
_DROP = layers.Dropout(0.5)
BOOK_LAYERS = {
    "fc100": (layers.Flatten(), layers.Dense(100), layers.Dense(10)),
    "conv1": (*_CONV20, layers.Flatten(), layers.Dense(100), layers.Dense(10)),
    "conv2": (*_CONV20, *_CONV40, layers.Flatten(), layers.Dense(100), layers.Dense(10)),
    "conv2-fc300": (*_CONV20, *_CONV40, layers.Flatten(), layers.Dense(300), layers.Dense(10)),
    "conv2-fc1000": (*_CONV20, *_CONV40, layers.Flatten(), layers.Dense(1000),
                     layers.Dense(10)),
    "conv2-2fc": (*_CONV20, *_CONV40, layers.Flatten(), layers.Dense(100), layers.Dense(100),
                  layers.Dense(10)),
    "conv2-2fc300": (*_CONV20, *_CONV40, layers.Flatten(), layers.Dense(300),
                     layers.Dense(300), layers.Dense(10)),
    "conv2-2fc1000": (*_CONV20, *_CONV40, layers.Flatten(), layers.Dense(1000),
                      layers.Dense(1000), layers.Dense(10)),
    "conv2-dropout": (*_CONV20, *_CONV40, layers.Flatten(), _DROP, layers.Dense(1000), _DROP,
                      layers.Dense(1000), _DROP, layers.Dense(10)),
    # Flax's MNIST example: SAME 3x3 convolutions of 32 and 64 features, 2x2 average pooling
    "flax-mnist": (_conv(32, 3, "SAME"), layers.Pool("avg", 2), _conv(64, 3, "SAME"),
                   layers.Pool("avg", 2), layers.Flatten(), layers.Dense(256),
                   layers.Dense(10)),
}


def test_every_architecture_has_its_expected_layers():
    assert set(BOOK_LAYERS) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(BOOK_LAYERS))
def test_the_architectures_are_the_books_and_flaxs_layers(name):
    """Each architecture, layer by layer, is the book's network3 call (or Flax's example)."""
    assert _layers(name) == BOOK_LAYERS[name]


def test_architecture_options_dropout_batch_norm_and_classes():
    """``dropout`` replaces every existing rate; ``batch_norm`` follows every convolution and
    hidden Dense (not the logits); ``num_classes`` sizes the last layer."""
    rates = [x.rate for x in _layers("conv2-dropout", dropout=0.2)
             if isinstance(x, layers.Dropout)]
    assert rates == [0.2, 0.2, 0.2]
    kinds = [type(x).__name__ for x in _layers("conv1", batch_norm=True)]
    assert kinds == ["Conv", "BatchNorm", "Pool", "Flatten", "Dense", "BatchNorm", "Dense"]
    assert _layers("conv1", num_classes=3)[-1] == layers.Dense(3)


def test_a_cnn_gradient_includes_its_l1_penalty():
    """A CNN's L1 term is in the cost it differentiates (L2 goes through the optimizer): the
    gradient with penalty (lambda) * sum |w| is the one without plus lambda * sgn(w)."""
    spec = cnn.architecture("fc100", input_shape=(4, 4, 1))
    graphdef, params, rest = cnn.split(cnn.make(spec, jax.random.key(0)))
    x = jax.random.uniform(jax.random.key(1), (3, 4, 4, 1))
    y = jax.nn.one_hot(jnp.arange(3), 10)
    cost_fn = costs.from_logits("log_likelihood", "softmax")
    with_l1, _ = cnn.make_grad_fn(graphdef, cost_fn, lambda p: 0.5 * costs.l1_penalty(p))(
        params, rest, x, y, None)
    without, _ = cnn.make_grad_fn(graphdef, cost_fn)(params, rest, x, y, None)
    pure = [cnn.pure_params(t)["layers"] for t in (params, with_l1, without)]
    for i in pure[0]:
        diff = pure[1][i]["kernel"] - pure[2][i]["kernel"]
        np.testing.assert_allclose(diff, 0.5 * jnp.sign(pure[0][i]["kernel"]), atol=1e-6)
        np.testing.assert_array_equal(pure[1][i]["bias"], pure[2][i]["bias"])  # not penalised


def test_a_fresh_batch_norm_layer_evaluates_with_unit_variance_and_flaxs_epsilon():
    """Before any training step the running statistics are mean 0 and variance 1, so in
    evaluation batch norm is x / sqrt(1 + eps), eps = 1e-5 (Flax's default)."""
    spec = layers.CNNSpec((1, 1, 4), (layers.Flatten(), layers.BatchNorm(), layers.Dense(4)),
                          "sigmoid")
    model = cnn.make(spec, jax.random.key(0))
    assert model.layers["1"].epsilon == 1e-5
    model.layers["2"].kernel[...] = jnp.eye(4)
    x = jnp.arange(8.0).reshape(2, 1, 1, 4)
    np.testing.assert_allclose(model(x), x.reshape(2, 4) / np.sqrt(1 + 1e-5), rtol=1e-6)


@pytest.fixture(scope="module")
def tiny_config():
    return dict(train_size=300, eval_size=100, epochs=1, mini_batch_size=10)


def test_one_epoch_on_a_small_subset_lowers_the_cost(tiny_config):
    config = experiment.TrainConfig.from_preset("ch6-conv1", monitor_training=True,
                                                **tiny_config)
    prepared = experiment.prepare(config)
    cost_fn = costs.from_logits(config.cost, config.output_activation)
    model = cnn.make(prepared.network, jax.random.key(config.seed))
    graphdef, params, rest = cnn.split(model)
    evaluate = metrics.make_evaluate(cnn.make_logits_fn(graphdef), cost_fn)
    cost0, _ = evaluate((params, rest), prepared.train)
    result = experiment.run(config, progress=False)
    assert result.history[0]["train_cost"] < float(cost0)
    # the state returned is the trained network, in the layout it started from (conv1 without
    # batch norm: no running statistics), and it has the cost the history recorded (l2 = 0)
    trained = (result.state.params, result.state.model_state)
    assert jax.tree.structure(trained) == jax.tree.structure((params, rest))
    assert not jax.tree.leaves(result.state.model_state)
    cost1, _ = evaluate(trained, prepared.train)
    np.testing.assert_allclose(float(cost1), result.history[0]["train_cost"], rtol=1e-5)


def test_a_cnn_is_evaluated_on_the_cpu_in_small_chunks_that_count_the_same(monkeypatch):
    """On the CPU a convolutional network is evaluated in eval_chunk's small chunks (faster
    there: benchmarks/eval_chunk_cpu.py), an MLP in larger ones. 130 images in chunks of 50
    pad the last chunk with 20 rows: the count equals one whole chunk's and the cost agrees."""
    built = []
    make_evaluate = metrics.make_evaluate

    def recording(*args, **kwargs):
        built.append(kwargs["chunk"])
        return make_evaluate(*args, **kwargs)

    monkeypatch.setattr(metrics, "make_evaluate", recording)
    small = dict(train_size=130, eval_size=10, epochs=1)
    experiment.run(experiment.TrainConfig.from_preset("ch6-conv1", **small), progress=False)
    experiment.run(experiment.TrainConfig.from_preset("ch1-30", **small), progress=False)
    conv, fully_connected = (metrics.eval_chunk("cpu", convolutional=c) for c in (True, False))
    assert built == [conv, fully_connected] and 130 % conv and conv < fully_connected

    config = experiment.TrainConfig.from_preset("ch6-relu", train_size=130, eval_size=10)
    prepared = experiment.prepare(config)
    graphdef, params, rest = cnn.split(cnn.make(prepared.network, jax.random.key(0)))
    cost_fn = costs.from_logits(config.cost, config.output_activation)
    chunked = make_evaluate(cnn.make_logits_fn(graphdef), cost_fn, chunk=conv)
    whole = make_evaluate(cnn.make_logits_fn(graphdef), cost_fn, chunk=130)
    (cost, correct), (cost_whole, correct_whole) = (
        evaluate((params, rest), prepared.train) for evaluate in (chunked, whole))
    assert int(correct) == int(correct_whole)
    np.testing.assert_allclose(float(cost), float(cost_whole), rtol=1e-6)


def test_batch_norm_statistics_travel_in_the_state(tiny_config):
    config = experiment.TrainConfig.from_preset("ch6-relu", model="fc100", batch_norm=True,
                                                dropout=0.2, monitor_training=True,
                                                **tiny_config)
    result = experiment.run(config, progress=False)
    means = [v for path, v in jax.tree_util.tree_leaves_with_path(result.state.model_state)
             if "mean" in jax.tree_util.keystr(path)]
    assert means and any(float(jnp.abs(m).max()) > 0 for m in means)
    assert np.isfinite(result.history[0]["train_cost"])


def test_cnns_on_the_cpu_step_from_the_host_and_match_the_scan(tiny_config):
    """loop="auto" picks the host loop for a network with convolutions on the CPU (and scan for
    fully connected ones and on a GPU); both loops train the same network: dropout keys,
    batch-norm statistics and all."""
    config = experiment.TrainConfig.from_preset("ch6-relu", model="fc100", batch_norm=True,
                                                dropout=0.2, **tiny_config)
    for model in ("conv1", "conv2-dropout", "flax-mnist"):
        conv = dataclasses.replace(config, model=model)
        assert experiment.epoch_loop(conv, "cpu") == "host"
        assert experiment.epoch_loop(conv, "gpu") == "scan"
    assert experiment.epoch_loop(config, "cpu") == "scan"  # fc100: no convolution
    assert experiment.epoch_loop(experiment.TrainConfig(), "cpu") == "scan"
    runs = {loop: experiment.run(dataclasses.replace(config, loop=loop), progress=False)
            for loop in ("scan", "host")}
    scan, host = runs["scan"].state, runs["host"].state
    # fc100 with batch norm and dropout: Flatten, Dropout, Dense 100, BatchNorm (3), Dropout,
    # Dense 10; so the state carries layer 3's running mean and variance, moved off 0 and 1
    for state in (scan, host):
        stats = cnn.pure_batch_stats(state.model_state)
        assert sorted(stats) == [3] and sorted(stats[3]) == ["mean", "var"]
        assert not np.allclose(stats[3]["mean"], 0.0)
    assert_trees_close(host.params, scan.params, rtol=1e-4, atol=1e-5, name="params")
    assert_trees_close(host.model_state, scan.model_state, rtol=1e-4, atol=1e-5,
                       name="model_state")


def test_a_kernel_larger_than_the_input_fails_clearly():
    with pytest.raises(ValueError, match="larger than"):
        cnn.architecture("conv1", input_shape=(4, 4, 1))


def test_unknown_architecture_fails_clearly():
    with pytest.raises(ValueError, match="model"):
        cnn.architecture("conv9", input_shape=(28, 28, 1))


def test_expanded_prepare_has_five_times_the_images():
    config = experiment.TrainConfig.from_preset("ch6-conv1", train_size=20, expanded=True,
                                                eval_size=10, mini_batch_size=10)
    prepared = experiment.prepare(config)
    x = np.asarray(prepared.train.x)
    assert x.shape == (100, 28, 28, 1)
    originals, up = x[:20], x[20:40]
    np.testing.assert_array_equal(up[:, :-1], originals[:, 1:])
    assert not up[:, -1].any()
    np.testing.assert_array_equal(np.asarray(prepared.train.labels[20:40]),
                                  np.asarray(prepared.train.labels[:20]))
    assert data.expand  # the shift itself is tested in test_data


def test_batch_norm_normalises_a_channel_whose_mean_dwarfs_its_spread():
    """Batch statistics use the two-pass variance E[(x - mean)^2]: Flax's default
    E[x^2] - mean^2 cancels in float32 for a channel of mean 300 and std 0.3 (an error of 0.28
    in the normalised output)."""
    from flax import nnx

    spec = _spec("fc100", activation="relu", batch_norm=True)
    model = cnn.make(spec, jax.random.key(0))
    bn = next(m for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm))
    features = bn.scale[...].shape[0]
    rng = np.random.default_rng(0)
    x = 300.0 + 0.3 * rng.standard_normal((64, features))
    got = bn(jnp.asarray(x, jnp.float32), use_running_average=False)
    x32 = np.asarray(x, np.float32).astype(np.float64)  # the float32 input, exactly
    expected = (x32 - x32.mean(0)) / np.sqrt(x32.var(0) + bn.epsilon)
    np.testing.assert_allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_manual_grad_fn_is_the_autodiff_one_with_dropout(batch_norm):
    """experiment.manual_cnn_grad_fn (manual_grad.cnn_backprop on the pure layout, written back
    into the module's State) returns what cnn.make_grad_fn returns by jax.grad: the gradient in
    training mode, with the same dropout masks from the same key, and the batch norms' running
    averages moved the same way (a network without batch norm has no such state)."""
    spec = _spec("conv1", activation="relu", dropout=0.3, batch_norm=batch_norm)
    graphdef, params, rest = cnn.split(cnn.make(spec, jax.random.key(0)))
    x = jax.random.uniform(jax.random.key(1), (16, 28, 28, 1), jnp.float32)
    y = jax.nn.one_hot(jnp.arange(16) % 10, 10, dtype=jnp.float32)
    key = jax.random.key(2)
    cost_fn = costs.from_logits("log_likelihood", "softmax")
    auto = jax.jit(cnn.make_grad_fn(graphdef, cost_fn))(params, rest, x, y, key)
    hand = jax.jit(experiment.manual_cnn_grad_fn(spec))(params, rest, x, y, key)
    for name, a, h in zip(("grads", "rest"), auto, hand):
        assert jax.tree_util.tree_structure(h) == jax.tree_util.tree_structure(a), name
    assert_trees_close(hand[0], auto[0], rtol=1e-3, atol=1e-6, name="grads")
    assert_trees_close(hand[1], auto[1], rtol=1e-5, atol=1e-7, name="rest")
    moved = cnn.pure_batch_stats(hand[1])
    norms = [i for i, layer in enumerate(spec.layers) if isinstance(layer, layers.BatchNorm)]
    assert sorted(moved) == norms and len(norms) == (2 if batch_norm else 0)
    for i in norms:
        assert not np.allclose(moved[i]["mean"], 0.0) and not np.allclose(moved[i]["var"], 1.0)


def test_grads_manual_trains_a_cnn_like_jax_grad():
    """``--grads manual`` for a CNN (``TrainConfig(grads="manual")``): ten steps of the
    chapter-6 conv1 network with batch norm and dropout end within float32 rounding of the
    autodiff run, batch-norm statistics included."""
    kw = dict(train_size=200, eval_size=100, epochs=1, mini_batch_size=20, batch_norm=True,
              dropout=0.3, monitor_training=True)
    runs = {g: experiment.run(experiment.TrainConfig.from_preset("ch6-conv1", grads=g, **kw),
                              progress=False) for g in ("auto", "manual")}
    auto, hand = runs["auto"].state, runs["manual"].state
    assert_trees_close(cnn.pure_params(hand.params), cnn.pure_params(auto.params), rtol=1e-3,
                       atol=1e-6, name="params")
    assert_trees_close(cnn.pure_batch_stats(hand.model_state),
                       cnn.pure_batch_stats(auto.model_state), rtol=1e-5, atol=1e-6,
                       name="batch_stats")
    assert abs(runs["manual"].history[0]["train_cost"] - runs["auto"].history[0]["train_cost"]) \
        < 1e-4
