"""manual_grad's convolution, pooling and whole-CNN backprop against jax.lax and jax.grad.

Float64 property tests (hypothesis): random batch, image, channel, kernel (1-5, non-square, at
most the input), stride (1-3, int or pair) and padding for conv2d / conv2d_backward; random
windows and strides for max/avg pooling; then cnn_backprop against jax.grad of
jaxnn.layers.forward and, in float32, against jax.grad of the Flax NNX model (jaxnn.cnn).
Shapes are small and the example counts a third of the profile's, to stay fast on CPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import manual_grad
from jaxnn import cnn, costs
from jaxnn import layers as jl
from manual_grad.check import relative_error

F64 = jnp.float64
TOL = 1e-10  # max relative error, float64
FEW = settings(max_examples=max(5, settings().max_examples // 3))


pytestmark = pytest.mark.usefixtures("float64")  # conftest: x64 for this module


def normal(seed, shape, dtype=F64):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


stride_st = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


@st.composite
def conv_problems(draw):
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["VALID", "SAME"]))
    # VALID needs the kernel inside the input; SAME pads, so a kernel may be larger than it
    top_h, top_w = (5, 5) if padding == "SAME" else (min(5, h), min(5, w))
    kh, kw = draw(st.integers(1, top_h)), draw(st.integers(1, top_w))
    return {"x": (n, h, w, c_in), "w": (kh, kw, c_in, c_out), "stride": draw(stride_st),
            "padding": padding, "seed": draw(st.integers(0, 99))}


def reference_conv(x, w, b, stride, padding):
    s = (stride, stride) if isinstance(stride, int) else stride
    return jax.lax.conv_general_dilated(x, w, s, padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC")) + b


@FEW
@given(conv_problems())
# even kernels, SAME: uneven padding (totals 1 and 3) whose odd row or column goes after
@example({"x": (2, 5, 6, 2), "w": (2, 4, 2, 3), "stride": 1, "padding": "SAME", "seed": 0})
@example({"x": (1, 7, 4, 1), "w": (4, 2, 1, 2), "stride": (2, 1), "padding": "SAME",
          "seed": 1})
# a SAME kernel larger than its input, strided
@example({"x": (2, 2, 3, 1), "w": (5, 4, 1, 2), "stride": (2, 3), "padding": "SAME",
          "seed": 2})
# VALID with strides that do not tile the input (rows and columns left over at the end)
@example({"x": (2, 8, 7, 1), "w": (3, 2, 1, 2), "stride": (2, 3), "padding": "VALID",
          "seed": 6})
# SAME with a stride larger than the kernel: a negative padding total, clamped to none
@example({"x": (1, 6, 6, 2), "w": (1, 2, 2, 2), "stride": (4, 5), "padding": "SAME",
          "seed": 7})
def test_conv2d_and_its_backward_match_lax_and_vjp(p):
    x, w = normal(p["seed"], p["x"]), normal(p["seed"] + 1, p["w"])
    b = normal(p["seed"] + 2, p["w"][-1:])
    kw = {"stride": p["stride"], "padding": p["padding"]}
    z, vjp = jax.vjp(lambda x, w, b: reference_conv(x, w, b, **kw), x, w, b)
    assert relative_error(manual_grad.conv2d(x, w, b, **kw), z) <= TOL
    dy = normal(p["seed"] + 3, z.shape)
    for name, hand, auto in zip(("dx", "dw", "db"), manual_grad.conv2d_backward(dy, x, w, **kw),
                                vjp(dy)):
        assert hand.shape == auto.shape, name
        assert relative_error(hand, auto) <= TOL, (name, p)


@st.composite
def pool_problems(draw):
    n, h, w, c = (draw(st.integers(1, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7)),
                  draw(st.integers(1, 3)))
    window = (draw(st.integers(1, min(4, h))), draw(st.integers(1, min(4, w))))
    return {"x": (n, h, w, c), "window": window, "stride": draw(stride_st),
            "ties": draw(st.booleans()), "seed": draw(st.integers(0, 99))}


def reference_pool(x, kind, window, stride):
    s = (stride, stride) if isinstance(stride, int) else stride
    dims, strides = (1, *window, 1), (1, *s, 1)
    if kind == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, "VALID")
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, "VALID") / (
        window[0] * window[1])


@FEW
@given(pool_problems(), st.sampled_from(["max", "avg"]))
# stride = window on an input the window does not tile: the backward pass's own path for
# non-overlapping windows, whose leftover rows and columns (at the end) get no gradient
@example({"x": (2, 5, 7, 2), "window": (2, 3), "stride": (2, 3), "ties": False, "seed": 3},
         "max")
@example({"x": (2, 5, 7, 2), "window": (2, 3), "stride": (2, 3), "ties": True, "seed": 4},
         "max")
@example({"x": (1, 7, 5, 1), "window": (3, 2), "stride": (3, 2), "ties": False, "seed": 5},
         "avg")
# overlapping windows, where one input's gradient adds up from several windows; with ties
@example({"x": (2, 6, 7, 1), "window": (3, 3), "stride": (1, 2), "ties": True, "seed": 6},
         "max")
@example({"x": (1, 6, 5, 2), "window": (2, 3), "stride": (1, 1), "ties": False, "seed": 7},
         "avg")
def test_pooling_and_its_backward_match_reduce_window_and_vjp(p, kind):
    x = normal(p["seed"], p["x"])
    if p["ties"]:
        x = jnp.round(x)  # a few distinct values: ties inside windows (first maximum wins)
    kw = {"window": p["window"], "stride": p["stride"]}
    forward = manual_grad.max_pool if kind == "max" else manual_grad.avg_pool
    backward = manual_grad.max_pool_backward if kind == "max" else manual_grad.avg_pool_backward
    y, vjp = jax.vjp(lambda x: reference_pool(x, kind, **kw), x)
    assert relative_error(forward(x, **kw), y) <= TOL
    dy = normal(p["seed"] + 1, y.shape)
    assert relative_error(backward(dy, x, **kw), vjp(dy)[0]) <= TOL, p


@FEW
@given(pool_problems(), st.sampled_from(["max", "avg"]))
def test_jaxnn_pool_and_its_gradient_match_reduce_window(p, kind):
    """jaxnn.layers.pool (strided views, first-maximum select) is reduce_window, value and
    autodiff gradient, ties included."""
    x = normal(p["seed"], p["x"])
    if p["ties"]:
        x = jnp.round(x)
    s = p["stride"]
    kw = {"window": p["window"], "stride": (s, s) if isinstance(s, int) else s}
    y, vjp = jax.vjp(lambda x: jl.pool(x, kind=kind, **kw), x)
    y_ref, vjp_ref = jax.vjp(lambda x: reference_pool(x, kind, **kw), x)
    assert relative_error(y, y_ref) <= TOL
    dy = normal(p["seed"] + 1, y.shape)
    assert relative_error(vjp(dy)[0], vjp_ref(dy)[0]) <= TOL, p


def test_max_pool_propagates_nan():
    x = jnp.zeros((1, 2, 2, 1), F64).at[0, 1, 1, 0].set(jnp.nan)
    assert jnp.isnan(jl.pool(x, kind="max", window=(2, 2), stride=(2, 2))).all()


@pytest.mark.parametrize("nans", [(1,), (1, 2), (0, 3), (2, 3), (0, 1, 2, 3)])
def test_max_pool_routes_the_gradient_to_the_first_nan_like_the_hand_backward(nans):
    """A NaN counts as the window's maximum; with several, the first (row-major) takes dy in
    both jaxnn.layers.pool's autodiff and manual_grad.max_pool_backward."""
    x = jnp.array([1.0, 5.0, 3.0, 2.0], F64).at[jnp.array(nans)].set(jnp.nan).reshape(1, 2, 2, 1)
    kw = {"window": (2, 2), "stride": (2, 2)}
    auto = jax.grad(lambda x: jl.pool(x, kind="max", **kw).sum())(x)
    hand = manual_grad.max_pool_backward(jnp.ones((1, 1, 1, 1), F64), x, **kw)
    expected = jnp.zeros(4, F64).at[min(nans)].set(1.0).reshape(x.shape)
    np.testing.assert_array_equal(auto, expected)
    np.testing.assert_array_equal(hand, expected)


SPECS = {
    "same-stride2-max-dropout": jl.CNNSpec(
        (7, 6, 2), (jl.Conv(3, (3, 2), stride=2, padding="SAME"), jl.Pool("max", (2, 1)),
                    jl.Flatten(), jl.Dropout(0.4), jl.Dense(5), jl.Dropout(0.3), jl.Dense(4)),
        activation="relu"),
    "valid-overlapping-avg-tanh": jl.CNNSpec(
        (8, 8, 1), (jl.Conv(2, (3, 3)), jl.Pool("avg", (3, 2), stride=(1, 2)),
                    jl.Conv(3, (2, 2), stride=(2, 1), padding="SAME"), jl.Pool("max", (2, 2)),
                    jl.Flatten(), jl.Dense(3)),
        activation="tanh"),
    # a hidden fully connected layer with a smooth activation: relu'(relu(z)) = relu'(z)
    # would hide sigma' taken at a instead of z there
    "hidden-dense-sigmoid": jl.CNNSpec(
        (6, 6, 1), (jl.Conv(2, (3, 3)), jl.Pool("max", (2, 2)), jl.Flatten(), jl.Dense(4),
                    jl.Dense(3)),
        activation="sigmoid"),
    # batch norm after a convolution (statistics over the batch and every position) and after
    # a hidden dense layer, with dropout after it
    "batch-norm-conv-and-dense-swish": jl.CNNSpec(
        (6, 5, 2), (jl.Conv(3, (3, 2)), jl.BatchNorm(epsilon=1e-3), jl.Pool("avg", (2, 2)),
                    jl.Flatten(), jl.Dense(4), jl.BatchNorm(), jl.Dropout(0.25), jl.Dense(3)),
        activation="swish"),
}


def cnn_problem(spec, seed, m, dtype):
    """Parameters from jaxnn.layers.init, except that a BatchNorm's scale and bias are drawn
    around 1 and 0 (as initialised, a scale of 1 and a bias of 0 would hide either one missing
    from a gradient); images and one-hot labels."""
    params = jl.init(spec, jax.random.key(seed), dtype=dtype)
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, jl.BatchNorm):
            n = params["layers"][i]["scale"].shape
            params["layers"][i] = {"scale": 1 + 0.5 * normal(seed + i, n, dtype),
                                   "bias": 0.5 * normal(seed + i + 1, n, dtype)}
    x = normal(seed, (m, *spec.input_shape), dtype)
    labels = np.random.default_rng(seed).integers(0, spec.layers[-1].features, m)
    return params, x, jax.nn.one_hot(labels, spec.layers[-1].features, dtype=dtype)


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("dropout, soft", [(False, False), (True, False), (False, True)])
def test_cnn_backprop_matches_jax_grad(name, dropout, soft):
    """One-hot targets, and soft ones (rows in [0, 1] not summing to 1: BP1 is then
    a (sum_j y_j) - y, not a - y)."""
    spec = SPECS[name]
    params, x, y = cnn_problem(spec, 0, 5, F64)
    if soft:
        y = jnp.asarray(np.random.default_rng(3).uniform(0, 1, y.shape), F64)
    key = jax.random.key(7) if dropout else None
    cost = costs.from_logits("log_likelihood", "softmax")
    expected = jax.jit(jax.grad(lambda p: cost(jl.forward(spec, p, x, key=key), y)))(params)
    grads, info = jax.jit(lambda p: manual_grad.cnn_backprop(spec, p, x, y, key=key))(params)
    assert sorted(grads["layers"]) == sorted(expected["layers"])
    for i, leaves in expected["layers"].items():
        assert sorted(grads["layers"][i]) == sorted(leaves)
        for leaf, ref in leaves.items():
            err = relative_error(grads["layers"][i][leaf], ref)
            assert err <= TOL, (name, i, leaf, err)
    assert bool(info["masks"]) == (dropout and any(isinstance(x, jl.Dropout) for x in spec.layers))
    norms = [i for i, layer in enumerate(spec.layers) if isinstance(layer, jl.BatchNorm)]
    assert sorted(info["batch_stats"]) == norms
    for i in norms:  # the statistics that normalised layer i's input, its mean and biased var
        a = np.asarray(info["inputs"][i])
        a = a.reshape(-1, a.shape[-1])
        np.testing.assert_allclose(info["batch_stats"][i]["mean"], a.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(info["batch_stats"][i]["var"], a.var(axis=0), rtol=1e-10)


@st.composite
def batch_norm_problems(draw):
    """x of shape (N, C) or (N, H, W, C), N * H * W from 1 (var = 0: x_hat = 0) up."""
    lead = draw(st.one_of(st.tuples(st.integers(1, 6)),
                          st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4))))
    return {"x": (*lead, draw(st.integers(1, 4))), "seed": draw(st.integers(0, 99)),
            "epsilon": draw(st.sampled_from([1e-5, 1e-3, 0.5])),
            "offset": draw(st.sampled_from([0.0, 30.0]))}


@FEW
@given(batch_norm_problems())
@example({"x": (1, 3), "seed": 0, "epsilon": 1e-5, "offset": 0.0})  # one value per feature
@example({"x": (2, 3, 3, 2), "seed": 1, "epsilon": 1e-5, "offset": 30.0})
def test_batch_norm_and_its_backward_match_the_formula_and_vjp(p):
    """jaxnn.layers.batch_norm is scale (x - mu) / sqrt(var + eps) + bias with the batch's mean
    and biased variance per feature (over every axis but the last), and
    manual_grad.batch_norm_backward is its vector-Jacobian product, through mu and var too.
    ``offset`` moves every feature's mean far from 0 against a spread of about 1."""
    x = normal(p["seed"], p["x"]) + p["offset"]
    c = p["x"][-1]
    scale, bias = 1 + normal(p["seed"] + 1, (c,)), normal(p["seed"] + 2, (c,))
    eps, dy = p["epsilon"], normal(p["seed"] + 3, p["x"])

    @jax.jit  # one compile per shape instead of one per operation
    def both(x, scale, bias, dy):
        y, vjp = jax.vjp(lambda x, s, b: jl.batch_norm(x, s, b, epsilon=eps), x, scale, bias)
        return y, vjp(dy), manual_grad.batch_norm_backward(dy, x, scale, epsilon=eps)

    y, autodiff, hand = both(x, scale, bias, dy)
    rows = np.asarray(x).reshape(-1, c)
    mu, var = rows.mean(axis=0), rows.var(axis=0)
    expected = scale * (rows - mu) / np.sqrt(var + eps) + bias
    assert relative_error(y.reshape(-1, c), expected) <= TOL
    for name, h, auto in zip(("dx", "dscale", "dbias"), hand, autodiff):
        assert h.shape == auto.shape, name
        assert relative_error(h, auto) <= TOL, (name, p)


def test_batch_norm_backward_takes_away_the_shift_and_scale_of_each_feature():
    """Normalising makes y blind to a feature's shift (and, for eps = 0, its scale): so dC/dx
    sums to 0 over each feature's values and is orthogonal to x_hat, whatever dy is."""
    x, dy = normal(0, (4, 3, 2, 5)) * 3 + 2, normal(1, (4, 3, 2, 5))
    dx, dscale, dbias = manual_grad.batch_norm_backward(dy, x, 1 + normal(2, (5,)), epsilon=0.0)
    np.testing.assert_allclose(jnp.sum(dx, axis=(0, 1, 2)), 0.0, atol=1e-12)
    x_hat = (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))
    np.testing.assert_allclose(jnp.sum(dx * x_hat, axis=(0, 1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(dbias, jnp.sum(dy, axis=(0, 1, 2)), rtol=1e-14)
    np.testing.assert_allclose(dscale, jnp.sum(dy * x_hat, axis=(0, 1, 2)), rtol=1e-12)


@pytest.mark.parametrize("call, fragment", [
    (lambda: manual_grad.batch_norm_backward(jnp.ones((2, 3)), jnp.ones((2, 4)), jnp.ones(4)),
     "dy: "),
    (lambda: manual_grad.batch_norm_backward(jnp.ones(3), jnp.ones(3), jnp.ones(3)),
     "x: expected a batch"),
    (lambda: manual_grad.batch_norm_backward(jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.ones(4)),
     "scale: expected one value per feature, shape (3,); got shape (4,)"),
    (lambda: jl.batch_norm(jnp.ones((2, 3)), 1.0, 0.0, epsilon=1e-5, mean=jnp.zeros(3)),
     "expected both mean and var"),
])
def test_batch_norm_refuses_mismatched_arguments(call, fragment):
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value)


def test_a_batch_norm_layer_needs_its_scale_and_bias_and_its_running_averages():
    """A BatchNorm without {'scale', 'bias'} in params is a ValueError naming the layer, in
    the pure forward and in cnn_backprop; so is evaluation with batch_stats that lack it."""
    spec = jl.CNNSpec((6, 6, 1), (jl.Conv(2, 3), jl.BatchNorm(), jl.Flatten(), jl.Dense(3)))
    params = jl.init(spec, jax.random.key(0), dtype=F64)
    assert sorted(params["layers"][1]) == ["bias", "scale"]
    np.testing.assert_array_equal(params["layers"][1]["scale"], jnp.ones(2, F64))
    np.testing.assert_array_equal(params["layers"][1]["bias"], jnp.zeros(2, F64))
    x, y = jnp.zeros((2, 6, 6, 1)), jnp.eye(3)[:2]
    without = {"layers": {i: p for i, p in params["layers"].items() if i != 1}}
    with pytest.raises(ValueError, match=r"params: .*layer 1 \(BatchNorm\)"):
        jl.forward(spec, without, x)
    with pytest.raises(ValueError, match=r"params: no entry for layer 1 \(BatchNorm\)"):
        manual_grad.cnn_backprop(spec, without, x, y)
    kernel = {"layers": {**params["layers"], 1: {"kernel": jnp.ones(2), "bias": jnp.zeros(2)}}}
    with pytest.raises(ValueError, match=r"params: expected \{'scale', 'bias'\} for layer 1"):
        manual_grad.cnn_backprop(spec, kernel, x, y)
    with pytest.raises(ValueError, match=r"batch_stats: expected \{'mean', 'var'\} for layer 1"):
        jl.forward(spec, params, x, batch_stats={})
    x = normal(0, (2, 6, 6, 1))
    stats = {1: {"mean": normal(1, (2,)), "var": 1 + jnp.abs(normal(2, (2,)))}}
    a = jax.nn.relu(jl.conv(x, params["layers"][0]["kernel"], params["layers"][0]["bias"],
                            stride=(1, 1), padding="VALID"))
    running, batch = (stats[1]["mean"], stats[1]["var"]), jl.batch_statistics(a)
    for batch_stats, (mean, var) in ((stats, running), (None, batch)):
        normalised = ((a - mean) / jnp.sqrt(var + 1e-5)).reshape(2, -1)
        expected = normalised @ params["layers"][3]["kernel"] + params["layers"][3]["bias"]
        got = jl.forward(spec, params, x, batch_stats=batch_stats)
        assert relative_error(got, expected) <= TOL


def test_batch_norm_in_a_float64_flax_model_matches_the_pure_layout_and_manual_grad():
    """A Flax NNX model with batch norm, in float64: its training-mode logits and, after that
    step moved the running averages, its evaluation logits equal the pure forward's; its
    gradient (jax.grad of the module) equals cnn_backprop's to float64 precision."""
    from flax import nnx

    spec = cnn.architecture("conv1", input_shape=(10, 10, 1), activation="sigmoid",
                            batch_norm=True)
    model = cnn.CNN(spec, rngs=nnx.Rngs(params=jax.random.key(1)), param_dtype=F64)
    graphdef, params, rest = cnn.split(model)
    pure = cnn.pure_params(model)
    assert sorted(pure["layers"]) == [0, 1, 4, 5, 6]
    for i in (1, 5):  # move scale and bias off 1 and 0
        n = pure["layers"][i]["scale"].shape
        pure["layers"][i] = {"scale": 1 + 0.5 * normal(i, n), "bias": 0.5 * normal(i + 1, n)}
        params["layers"][str(i)]["scale"][...] = pure["layers"][i]["scale"]
        params["layers"][str(i)]["bias"][...] = pure["layers"][i]["bias"]
    _, x, y = cnn_problem(spec, 2, 6, F64)
    cost = costs.from_logits("log_likelihood", "softmax")
    auto, moved = jax.jit(cnn.make_grad_fn(graphdef, cost))(params, rest, x, y, None)
    model = nnx.merge(graphdef, params, moved)
    stats = cnn.pure_batch_stats(model)
    assert sorted(stats) == [1, 5]
    assert not np.allclose(stats[1]["mean"], 0.0)  # the step moved them
    assert relative_error(model(x), jl.forward(spec, pure, x, batch_stats=stats)) <= TOL
    assert relative_error(model(x, train=True), jl.forward(spec, pure, x)) <= TOL
    expected = cnn.pure_params(auto)
    grads, _ = jax.jit(lambda p: manual_grad.cnn_backprop(spec, p, x, y))(pure)
    assert sorted(grads["layers"]) == sorted(expected["layers"])
    for i, leaves in expected["layers"].items():
        for leaf, ref in leaves.items():
            assert relative_error(grads["layers"][i][leaf], ref) <= TOL, (i, leaf)


def test_cnn_backprop_on_a_flax_model_matches_its_jax_grad():
    """float32: the Flax NNX model's own loss, differentiated by jax.grad, vs manual_grad on its
    pure parameters (no dropout in this spec: the model and jaxnn.layers split keys their way)."""
    spec = SPECS["valid-overlapping-avg-tanh"]
    model = cnn.make(spec, jax.random.key(3))
    graphdef, params, rest = cnn.split(model)
    _, x, y = cnn_problem(spec, 1, 6, jnp.float32)
    cost = costs.from_logits("log_likelihood", "softmax")
    auto, _ = jax.jit(cnn.make_grad_fn(graphdef, cost))(params, rest, x, y,
                                                         jax.random.key(0))
    expected = cnn.pure_params(auto)
    grads, _ = jax.jit(lambda p: manual_grad.cnn_backprop(spec, p, x, y))(cnn.pure_params(model))
    # the two convolutions and the dense layer, each with a kernel and a bias: no more, no less
    assert sorted(expected["layers"]) == [0, 2, 5]
    assert all(sorted(leaves) == ["bias", "kernel"] for leaves in expected["layers"].values())
    s_hand, s_ref = jax.tree_util.tree_structure(grads), jax.tree_util.tree_structure(expected)
    assert s_hand == s_ref, f"structure {s_hand} != {s_ref}"
    paths = jax.tree_util.tree_flatten_with_path(expected)[0]
    assert len(paths) == 6
    for (path, ref), hand in zip(paths, jax.tree_util.tree_leaves(grads)):
        where = jax.tree_util.keystr(path)
        assert hand.dtype == jnp.float32, where
        assert relative_error(hand, ref) <= 1e-4, where


def test_the_pure_init_is_he_normal_by_fan_in():
    """jaxnn.layers.init: kernels N(0, 2 / fan_in), fan_in = kh kw c_in for a convolution and
    the inputs for a dense layer (not the outputs), and zero biases; normal by the kurtosis,
    which a uniform of the same variance is not."""
    spec = jl.CNNSpec((12, 12, 3), (jl.Conv(64, (5, 4)), jl.Flatten(), jl.Dense(300),
                                    jl.Dense(10)))
    params = jl.init(spec, jax.random.key(0), dtype=jnp.float32)["layers"]
    fan_ins = {0: 5 * 4 * 3, 2: 8 * 9 * 64, 3: 300}
    assert sorted(params) == sorted(fan_ins)
    for i, fan_in in fan_ins.items():
        kernel = np.asarray(params[i]["kernel"], np.float64).ravel()
        np.testing.assert_allclose(np.std(kernel), (2 / fan_in) ** 0.5, rtol=0.05)
        assert not np.any(params[i]["bias"])
        # Normal, not only its variance: a normal sample's excess kurtosis is 0 with standard
        # error sqrt(24 / n) (n = 3000 .. 1.4M here: 0.09 .. 0.004); a uniform's is -1.2 with
        # standard error sqrt(1.3 / n) < 0.021. Six standard errors (bound <= 0.54): a normal
        # fails ~1e-8 of the time for a new key, a uniform (>= 1.07 away) never; the large
        # layer's bound (0.025) also rejects a normal truncated at 2 sigma (-0.63).
        d = kernel - kernel.mean()
        excess_kurtosis = np.mean(d**4) / np.mean(d**2) ** 2 - 3
        bound = 6 * (24 / kernel.size) ** 0.5
        assert bound < 0.55 and abs(excess_kurtosis) <= bound, (i, excess_kurtosis, bound)
