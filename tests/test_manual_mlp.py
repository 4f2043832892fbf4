"""manual_grad for fully connected networks: sigma', BP1 and BP1-BP4 against jax.grad (float64),
central finite differences, and the course notes' worked examples with their numbers."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import exact_softmax_costs
from hypothesis import example, given, settings
from hypothesis import strategies as st

import manual_grad
from jaxnn import activations, costs, mlp
from manual_grad.check import (
    central_difference,
    fd_error,
    fd_resolution,
    relative_error,
    sample_coordinates,
)

F64 = jnp.float64
TOL = 1e-10  # max relative error, hand vs jax.grad, float64
FD_TOL = 1e-6  # max relative error, hand vs central differences, float64
HIDDEN = (*activations.HIDDEN, "maxout")
SMOOTH = ("sigmoid", "tanh", "swish", "softplus", "gelu", "identity")  # no kinks: safe for FD


pytestmark = pytest.mark.usefixtures("float64")  # conftest: x64 for this module


def reference_cost(params, x, y, *, activation, output_activation, cost, l2):
    """The function both packages differentiate: jaxnn's stable cost plus (l2/2) sum w^2."""
    z = mlp.logits(params, x, activation=activation)
    return costs.from_logits(cost, output_activation)(z, y) + costs.l2_penalty(params, scale=l2)


def autodiff(params, x, y, **kw):
    return jax.grad(reference_cost)(params, x, y, **kw)


def max_tree_error(actual, expected):
    """{leaf path: relative_error}, after checking that both trees have one structure."""
    s_actual, s_expected = (jax.tree_util.tree_structure(t) for t in (actual, expected))
    assert s_actual == s_expected, f"structure {s_actual} != {s_expected}"
    paths = jax.tree_util.tree_flatten_with_path(expected)[0]
    return {jax.tree_util.keystr(p): relative_error(a, e)
            for (p, e), a in zip(paths, jax.tree_util.tree_leaves(actual))}


def make_problem(seed, sizes, m, activation, pieces=2):
    """jaxnn.mlp's layout with default-init values (N(0, 1/n_in) weights, N(0, 1) biases),
    random prelu slopes, normal inputs and one-hot targets, in float64. NumPy draws them: a
    jax.random call compiles anew for every shape, which hypothesis would pay on each example."""
    rng = np.random.default_rng(seed)
    params = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = l < len(sizes) - 2
        units = n_out * pieces if hidden and activation == "maxout" else n_out
        layer = {"w": jnp.asarray(rng.normal(0, n_in**-0.5, (units, n_in)), F64),
                 "b": jnp.asarray(rng.normal(0, 1, units), F64)}
        if hidden and activation == "prelu":
            layer["alpha"] = jnp.asarray(rng.uniform(-0.5, 1.5), F64)
        params.append(layer)
    x = jnp.asarray(rng.normal(0, 1, (m, sizes[0])), F64)
    y = jnp.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], m)], F64)
    return params, x, y


@st.composite
def problems(draw, activations_from=HIDDEN):
    # 0 hidden layers too: sizes [n_0, n_L], where BP2's loop never runs
    hidden = draw(st.integers(0, 4))
    activation = draw(st.sampled_from(activations_from))
    return dict(
        seed=draw(st.integers(0, 2**32 - 1)),
        sizes=[draw(st.integers(1, 40)) for _ in range(hidden + 2)],
        m=draw(st.integers(1, 16)),
        activation=activation,
        # maxout of one piece is the identity: a drawn maxout has 2 or 3 (others ignore it)
        pieces=draw(st.integers(2, 3)) if activation == "maxout" else 1,
        pair=draw(st.sampled_from(costs.PAIRS)),
        l2=draw(st.sampled_from([0.0, 0.0, 0.3, 5.0])),
    )


@functools.partial(jax.jit, static_argnames=("activation", "output_activation", "cost"))
def hand_and_auto(params, x, y, l2, *, activation, output_activation, cost):
    """Both gradients in one compiled call (compiling once per shape beats running op by op)."""
    kw = dict(activation=activation, output_activation=output_activation, cost=cost, l2=l2)
    return manual_grad.backprop(params, x, y, **kw)[0], autodiff(params, x, y, **kw)


def check_against_autodiff(problem, *, jit=True):
    params, x, y = make_problem(problem["seed"], problem["sizes"], problem["m"],
                                problem["activation"], problem.get("pieces", 2))
    cost, out = problem["pair"]
    kw = dict(activation=problem["activation"], output_activation=out, cost=cost)
    if jit:
        grads, expected = hand_and_auto(params, x, y, problem["l2"], **kw)
    else:
        grads, _ = manual_grad.backprop(params, x, y, l2=problem["l2"], **kw)
        expected = autodiff(params, x, y, l2=problem["l2"], **kw)
    errors = max_tree_error(grads, expected)
    assert max(errors.values()) <= TOL, (problem, errors)


# ---------------------------------------------------------------------------------- sigma'

KINKS = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 1e-300, -1e-300, 30.0, -30.0, 700.0, -700.0])


@pytest.mark.parametrize("name", activations.HIDDEN)
def test_activation_prime_matches_jax_grad_including_kinks(name):
    z = jnp.asarray(np.concatenate([KINKS, np.random.default_rng(0).normal(0, 3, 200)]), F64)
    prime = manual_grad.activation_prime(name)
    if name == "prelu":
        for alpha in (0.25, -0.3, 1.7):
            auto = jax.vmap(jax.grad(activations.prelu), in_axes=(0, None))(z, alpha)
            assert relative_error(prime(z, alpha), auto) <= TOL
            auto_alpha = jax.vmap(jax.grad(activations.prelu, argnums=1), in_axes=(0, None))(
                z, alpha)
            assert relative_error(manual_grad.prelu_alpha_prime(z, alpha), auto_alpha) <= TOL
    else:
        auto = jax.vmap(jax.grad(activations.get(name)))(z)
        hand = prime(z)
        assert hand.shape == z.shape and hand.dtype == z.dtype
        assert relative_error(hand, auto) <= TOL, np.c_[z, hand, auto][hand != auto]


def test_kink_conventions_are_jax_grads():
    """The documented one-sided values at kinks (the flatter side), which jax.grad also gives."""
    at = {"relu": [(0.0, 0.0), (-0.0, 0.0)], "hard_tanh": [(1.0, 0.0), (-1.0, 0.0)],
          "hard_sigmoid": [(-2.5, 0.0), (2.5, 0.0)], "elu": [(0.0, 1.0)],
          "leaky_relu": [(0.0, 0.01)], "step": [(0.0, 0.0)]}
    for name, points in at.items():
        for z, value in points:
            z = jnp.asarray(z, F64)
            hand = float(manual_grad.activation_prime(name)(z))
            auto = float(jax.grad(activations.get(name))(z))
            assert hand == pytest.approx(value, abs=1e-15) and auto == hand, (name, z, auto)


def test_maxout_backward_shares_a_tie_equally_as_jax_grad_does():
    """Exact ties within a group (two of three, all three, none) split dC/da equally."""
    z = jnp.asarray([[1.0, 1.0, 0.5, 2.0, 2.0, 2.0, -1.0, 3.0, 0.0],
                     [0.0, 0.0, 0.0, -2.0, 4.0, -2.0, 7.0, 7.0, 6.0]], F64)
    da = jnp.asarray([[0.3, -1.2, 2.0], [1.5, 0.7, -0.9]], F64)
    _, vjp = jax.vjp(lambda z: activations.maxout(z, 3), z)
    hand = manual_grad.maxout_backward(da, z, 3)
    np.testing.assert_allclose(hand, vjp(da)[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(hand[0, :3], [0.15, 0.15, 0.0], rtol=1e-14)


@pytest.mark.parametrize("name", ["softmax", "maxout", "sigmod"])
def test_activation_prime_rejects_non_elementwise_and_unknown(name):
    with pytest.raises(ValueError, match="activation"):
        manual_grad.activation_prime(name)


# ---------------------------------------------------------------------------------- BP1

@pytest.mark.parametrize("targets", ["one-hot", "soft"])
@pytest.mark.parametrize("cost, out", costs.PAIRS)
def test_output_delta_is_the_per_example_gradient_in_z(cost, out, targets):
    """BP1: delta^L_x = dC_x/dz^L; jax.grad of the batch mean gives delta / m. Soft targets
    (any y in [0, 1], rows not summing to 1) too: softmax + log-likelihood's a - y holds only
    for rows that sum to 1."""
    rng = np.random.default_rng(1)
    z = jnp.asarray(rng.normal(0, 2, (7, 5)), F64)
    y = (jax.nn.one_hot(jnp.asarray(rng.integers(0, 5, 7)), 5, dtype=F64) if targets == "one-hot"
         else jnp.asarray(rng.uniform(0, 1, (7, 5)), F64))
    a = activations.get(out)(z)
    delta = manual_grad.output_delta(cost, out, z, a, y)
    auto = jax.grad(costs.from_logits(cost, out))(z, y) * z.shape[0]
    assert relative_error(delta, auto) <= TOL


@pytest.mark.parametrize("dtype", [jnp.float32, F64])
@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_output_delta_keeps_its_precision_where_the_sigmoid_saturates(cost, dtype):
    """a - y cancels where a = sigma(z) nears a target of 1 (17% off at z = 15 in float32, 0
    from z = 17): BP1's delta is within 1e-5 of the exact one in float32 (1e-12 in float64),
    right or wrong, out to z = 40, as the gradient of jaxnn.costs.from_logits is
    (tests/test_costs.py)."""
    zs = np.array([5.0, 10.0, 15.0, 17.0, 25.0, 40.0])
    z = np.concatenate([zs, -zs, -zs, zs])[None, :]
    y = np.concatenate([np.ones(6), np.zeros(6), np.ones(6), np.zeros(6)])[None, :]
    residual = np.where(y == 1, -1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z)))  # sigma(z) - y
    t = np.exp(-np.abs(z))
    exact = residual * (t / (1 + t) ** 2) if cost == "quadratic" else residual
    zz, yy = jnp.asarray(z, dtype), jnp.asarray(y, dtype)
    delta = manual_grad.output_delta(cost, "sigmoid", zz, activations.sigmoid(zz), yy)
    np.testing.assert_allclose(np.asarray(delta, np.float64), exact,
                               rtol=1e-5 if dtype == jnp.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [jnp.float32, F64])
def test_output_delta_keeps_its_precision_where_the_softmax_saturates(dtype):
    """softmax + log-likelihood: BP1's a - y cancels where a nears a target of 1 (17% off at a
    margin of 15 in float32, 0 from 17). Every unit of delta is within 1e-5 of the exact one
    (50-digit decimal) in float32, 1e-12 in float64, right or wrong, out to a margin of 40, as
    the gradient of jaxnn.costs.from_logits is (tests/test_costs.py)."""
    logits = [0.0, 1.5, -0.5, 0.25, 0.0, -2.0, 1.0, -1.0, 0.5, -3.0]
    for d in (5.0, 10.0, 15.0, 17.0, 25.0, 40.0):
        for k in (0, 1):
            z = [d, *logits[1:]]
            zz = jnp.array([z], dtype)
            yy = jax.nn.one_hot(jnp.array([k]), len(z), dtype=dtype)
            delta = manual_grad.output_delta("log_likelihood", "softmax", zz,
                                             activations.softmax(zz), yy)
            np.testing.assert_allclose(np.asarray(delta[0], np.float64),
                                       exact_softmax_costs(z, k)[1], atol=0,
                                       rtol=1e-5 if dtype == jnp.float32 else 1e-12,
                                       err_msg=f"d={d}, k={k}")


@pytest.mark.parametrize("cost, out", [("cross_entropy", "sigmoid"), ("quadratic", "sigmoid")])
def test_bp1_is_nabla_a_c_times_sigma_prime(cost, out):
    """The book's simplification a - y equals nabla_a C ⊙ sigma'(z) written in full."""
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.normal(0, 2, (6, 4)), F64)
    y = jnp.asarray(rng.integers(0, 2, (6, 4)), F64)
    a = activations.sigmoid(z)
    full = manual_grad.cost_derivative(cost, a, y) * manual_grad.activation_prime("sigmoid")(z)
    assert relative_error(manual_grad.output_delta(cost, out, z, a, y), full) <= 1e-12


def test_log_likelihood_cost_derivative_through_softmax_is_bp1():
    """nabla_a C = -y / a for the log-likelihood, through softmax's full Jacobian, is BP1's
    a (sum_j y_j) - y: for one-hot targets and for soft ones."""
    rng = np.random.default_rng(4)
    z = jnp.asarray(rng.normal(0, 2, (7, 5)), F64)
    a = activations.softmax(z)
    for y in (jax.nn.one_hot(rng.integers(0, 5, 7), 5, dtype=F64),
              jnp.asarray(rng.uniform(0, 1, (7, 5)), F64)):
        full = manual_grad.softmax_backward(manual_grad.cost_derivative("log_likelihood", a, y),
                                            a)
        delta = manual_grad.output_delta("log_likelihood", "softmax", z, a, y)
        assert relative_error(delta, full) <= 1e-12


def test_output_delta_rejects_invalid_pair():
    z = jnp.zeros((2, 3), F64)
    with pytest.raises(ValueError, match="cost"):
        manual_grad.output_delta("log_likelihood", "sigmoid", z, z, z)


# ---------------------------------------------------------------------------------- BP1-BP4

@pytest.mark.parametrize("l2", [0.0, 0.5])
@pytest.mark.parametrize("pair", costs.PAIRS, ids="/".join)
@pytest.mark.parametrize("activation", HIDDEN)
def test_every_activation_and_cost_matches_jax_grad(activation, pair, l2):
    """Every hidden activation x every valid (cost, output) pair, l2 off and on, one network
    with 3 hidden layers (the property test below varies the shapes)."""
    check_against_autodiff(dict(seed=7, sizes=[5, 7, 7, 7, 3], m=4, activation=activation,
                                pieces=3, pair=pair, l2=l2), jit=False)


# no hidden layer (BP1, BP3, BP4 only), with and without l2, and a prelu or maxout network
# whose only layer is the output (so it has neither slopes nor pieces)
NO_HIDDEN = dict(seed=11, sizes=[5, 3], m=4, pieces=1)


@given(problems())
@example(dict(NO_HIDDEN, activation="sigmoid", pair=("quadratic", "sigmoid"), l2=0.0))
@example(dict(NO_HIDDEN, activation="prelu", pair=("log_likelihood", "softmax"), l2=0.3))
@example(dict(NO_HIDDEN, activation="maxout", pair=("cross_entropy", "sigmoid"), l2=5.0))
def test_backprop_matches_jax_grad(problem):
    check_against_autodiff(problem)


@settings(max_examples=max(5, settings.default.max_examples // 4))
@given(problems(activations_from=SMOOTH))
def test_backprop_agrees_with_central_differences(problem):
    activation = problem["activation"]
    params, x, y = make_problem(problem["seed"], problem["sizes"], problem["m"], activation)
    cost, out = problem["pair"]
    kw = dict(activation=activation, output_activation=out, cost=cost)
    grads = jax.jit(functools.partial(manual_grad.backprop, **kw))(params, x, y,
                                                                    l2=problem["l2"])[0]
    cost_fn = jax.jit(functools.partial(reference_cost, **kw))
    rng = np.random.default_rng(problem["seed"])
    resolution = fd_resolution(cost_fn(params, x, y, l2=problem["l2"]))
    for l, layer in enumerate(params):
        for name, leaf in layer.items():
            def cost_of(value, l=l, name=name):
                changed = [dict(p) for p in params]
                changed[l][name] = jnp.asarray(value)
                return cost_fn(changed, x, y, l2=problem["l2"])

            g = np.asarray(grads[l][name])
            for index in sample_coordinates(np.shape(leaf), 3, rng):
                fd = central_difference(cost_of, leaf, index)
                error = fd_error(fd, g[index], resolution, tol=FD_TOL)
                assert error <= FD_TOL, (l, name, index, fd, g[index])


def test_info_holds_bp1_to_bp4_step_by_step():
    """info's quantities obey BP1 (a - y) and BP2 (tanh' = sech^2) as written, and BP3, BP4
    hold against jax.grad, example by example and for the batch."""
    sizes, m = [4, 6, 5, 3], 7
    params, x, y = make_problem(3, sizes, m, "tanh")
    kw = dict(activation="tanh", output_activation="sigmoid", cost="cross_entropy")
    grads, info = manual_grad.backprop(params, x, y, **kw)
    zs, acts, deltas = info["zs"], info["activations"], info["deltas"]
    assert [z.shape for z in zs] == [(m, n) for n in sizes[1:]]
    assert [a.shape for a in acts] == [(m, n) for n in sizes]
    np.testing.assert_allclose(deltas[-1], acts[-1] - y, rtol=1e-14)  # BP1 (simplified)
    for l in range(len(params) - 1):  # BP2
        bp2 = (deltas[l + 1] @ params[l + 1]["w"]) / jnp.cosh(zs[l]) ** 2  # tanh' = sech^2
        np.testing.assert_allclose(deltas[l], bp2, rtol=1e-14)
    # BP3 and BP4 per example, against jax.grad of that example's own cost C_x: dC_x/db^l is
    # delta^l_x and dC_x/dw^l is the outer product delta^l_x (a^{l-1}_x)^T; and info's batch
    # means are jax.grad of the batch cost in b, as grads are in b and w.
    cost_kw = dict(kw, l2=0.0)
    per_example = jax.vmap(jax.grad(lambda p, xi, yi: reference_cost(p, xi[None], yi[None],
                                                                     **cost_kw)),
                           in_axes=(None, 0, 0))(params, x, y)
    batch = autodiff(params, x, y, **cost_kw)
    for l in range(len(params)):
        assert relative_error(deltas[l], per_example[l]["b"]) <= TOL, l  # BP3
        outer = jnp.einsum("xj,xk->xjk", deltas[l], acts[l])
        assert relative_error(outer, per_example[l]["w"]) <= TOL, l  # BP4
        assert relative_error(info["mean_deltas"][l], batch[l]["b"]) <= TOL, l
    assert max(max_tree_error(grads, batch).values()) <= TOL
    speeds = manual_grad.speed_of_learning(info)
    assert len(speeds) == 2
    assert float(speeds[0]) == pytest.approx(float(jnp.linalg.norm(grads[0]["b"])), rel=1e-14)


def test_backprop_jits_in_float32_like_training_does():
    """jit and float32 params: float32 gradients, every leaf (same tree) within 1e-5 of the
    float64 jax.grad."""
    params, x, y = make_problem(4, [5, 8, 3], 6, "sigmoid")
    params32 = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    kw = dict(activation="sigmoid", output_activation="sigmoid", cost="quadratic")
    fn = jax.jit(lambda p, x, y: manual_grad.backprop(p, x, y, **kw)[0])
    grads = fn(params32, x.astype(jnp.float32), y.astype(jnp.float32))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(grads))
    expected = autodiff(params, x, y, l2=0.0, **kw)
    errors = max_tree_error(grads, expected)  # checks the tree structure first
    assert sorted(errors) == ["[0]['b']", "[0]['w']", "[1]['b']", "[1]['w']"]
    assert max(errors.values()) <= 1e-5, errors


@pytest.mark.parametrize(
    "change, fragment",
    [
        (dict(activation="sigmod"), "activation: expected one of"),
        (dict(cost="log_likelihood"), "cost: 'log_likelihood' needs"),
        (dict(x=np.zeros((3, 5))), "x: expected 4 features"),
        (dict(y=np.zeros((2, 4))), "y: expected one-hot targets of shape"),
        (dict(l2=-1.0), "l2: expected a finite number >= 0"),
        (dict(params=[{"w": np.zeros((3, 4))}]), "params\\[0\\]"),
        (dict(activation="relu", params="prelu"), "params\\[0\\]: .*'alpha'.*only a prelu"),
        (dict(params="prelu"), "params\\[0\\]: .*'alpha'.*activation='sigmoid'"),
    ],
)
def test_bad_input_names_the_argument(change, fragment):
    params, x, y = make_problem(5, [4, 3], 2, "sigmoid")
    args = dict(params=params, x=x, y=y, activation="sigmoid", output_activation="sigmoid",
                cost="quadratic", l2=0.0)
    args.update(change)
    if isinstance(args["params"], str):  # a prelu network's params (with slopes 'alpha')
        args["params"] = make_problem(5, [4, 3, 2], 2, "prelu")[0]
        args["y"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=fragment):
        manual_grad.backprop(args.pop("params"), args.pop("x"), args.pop("y"), **args)


# ---------------------------------------------------------------------------------- worked examples

def test_worked_example_2_2_1_sigmoid_network_by_hand():
    """The classic hand-worked network (inputs 0.05, 0.10; target 0.01; quadratic cost)."""
    x1, x2, t = 0.05, 0.10, 0.01
    w1, w2, w3, w4, b1 = 0.15, 0.20, 0.25, 0.30, 0.35
    w5, w6, b2 = 0.40, 0.45, 0.60
    params = [{"w": jnp.asarray([[w1, w2], [w3, w4]], F64), "b": jnp.asarray([b1, b1], F64)},
              {"w": jnp.asarray([[w5, w6]], F64), "b": jnp.asarray([b2], F64)}]
    x, y = jnp.asarray([[x1, x2]], F64), jnp.asarray([[t]], F64)
    grads, info = manual_grad.backprop(params, x, y, activation="sigmoid",
                                       output_activation="sigmoid", cost="quadratic")
    # Forward, as the notes write it out.
    h1, h2 = info["activations"][1][0]
    out = info["activations"][2][0, 0]
    assert (float(h1), float(h2)) == pytest.approx((0.593269992, 0.596884378), abs=1e-9)
    assert float(out) == pytest.approx(0.75136507, abs=1e-8)
    assert 0.5 * float(t - out) ** 2 == pytest.approx(0.274811083, abs=1e-9)
    # Backward by the chain rule: dE/dw5 = (out - t) out (1 - out) h1, and so on.
    delta_o = (out - t) * out * (1 - out)
    assert float(delta_o) == pytest.approx(0.138498562, abs=1e-9)
    assert float(grads[1]["w"][0, 0]) == pytest.approx(0.082167041, abs=1e-9)  # dE/dw5
    assert float(grads[1]["w"][0, 1]) == pytest.approx(0.082667628, abs=1e-9)  # dE/dw6
    assert float(grads[1]["b"][0]) == pytest.approx(float(delta_o), rel=1e-14)
    dw1 = delta_o * w5 * h1 * (1 - h1) * x1
    dw4 = delta_o * w6 * h2 * (1 - h2) * x2
    assert float(grads[0]["w"][0, 0]) == pytest.approx(float(dw1), rel=1e-14)
    assert float(grads[0]["w"][0, 0]) == pytest.approx(0.000668396, abs=1e-9)
    assert float(grads[0]["w"][1, 1]) == pytest.approx(0.001499608, abs=1e-9)
    assert float(grads[0]["w"][1, 1]) == pytest.approx(float(dw4), rel=1e-14)


def test_worked_example_linear_hidden_units():
    """loss = (label - y)^2, y = w5 h1 + w6 h2, h1 = w1 x1 + w2 x2, h2 = w3 x1 + w4 x2:
    dloss/dw1 = -2 (label - y) w5 x1. jaxnn's quadratic cost is half of this loss."""
    x1, x2, label = 2.0, 3.0, 1.0
    w1, w2, w3, w4, w5, w6 = 0.11, 0.21, 0.12, 0.08, 0.14, 0.15
    params = [{"w": jnp.asarray([[w1, w2], [w3, w4]], F64), "b": jnp.zeros(2, F64)},
              {"w": jnp.asarray([[w5, w6]], F64), "b": jnp.zeros(1, F64)}]
    grads, info = manual_grad.backprop(
        params, jnp.asarray([[x1, x2]], F64), jnp.asarray([[label]], F64),
        activation="identity", output_activation="identity", cost="quadratic")
    y = float(info["activations"][2][0, 0])
    assert y == pytest.approx(0.191, abs=1e-12)  # h1 = 0.85, h2 = 0.48
    assert (label - y) ** 2 == pytest.approx(0.654481, abs=1e-12)
    dloss = jax.tree_util.tree_map(lambda g: 2 * g, grads)
    assert float(dloss[0]["w"][0, 0]) == pytest.approx(-2 * (label - y) * w5 * x1, rel=1e-12)
    assert float(dloss[0]["w"][0, 0]) == pytest.approx(-0.45304, abs=1e-12)
    assert float(dloss[0]["w"][0, 1]) == pytest.approx(-2 * (label - y) * w5 * x2, rel=1e-12)
    assert float(dloss[0]["w"][1, 0]) == pytest.approx(-2 * (label - y) * w6 * x1, rel=1e-12)
    assert float(dloss[1]["w"][0, 0]) == pytest.approx(-2 * (label - y) * 0.85, rel=1e-12)
    assert float(dloss[1]["w"][0, 1]) == pytest.approx(-2 * (label - y) * 0.48, rel=1e-12)
    assert math.isclose(float(dloss[1]["b"][0]), -2 * (label - y), rel_tol=1e-12)
