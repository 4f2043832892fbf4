import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import exact_softmax_costs

from jaxnn import activations, costs

pytestmark = pytest.mark.usefixtures("float64")  # conftest: x64 for this module only

A = np.array([[0.8, 0.1, 0.3], [0.2, 0.6, 0.9]], np.float64)
Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float64)


def test_quadratic_by_hand():
    per = [0.5 * (0.2**2 + 0.1**2 + 0.3**2), 0.5 * (0.2**2 + 0.6**2 + 0.1**2)]
    np.testing.assert_allclose(costs.quadratic(A, Y), np.mean(per), rtol=1e-12)


def test_cross_entropy_by_hand():
    a, y = np.asarray(A), np.asarray(Y)
    per = -(y * np.log(a) + (1 - y) * np.log(1 - a)).sum(axis=1)
    np.testing.assert_allclose(costs.cross_entropy(A, Y), per.mean(), rtol=1e-12)


def test_log_likelihood_is_minus_log_of_the_true_class():
    a = activations.softmax(jnp.array([[2.0, 1.0, 0.1], [0.0, 0.5, 3.0]]))
    expected = -(np.log(a[0, 0]) + np.log(a[1, 2])) / 2
    np.testing.assert_allclose(costs.log_likelihood(a, Y), expected, rtol=1e-12)


@pytest.mark.parametrize("cost", sorted(costs.COSTS))
def test_costs_are_zero_at_the_target_and_positive_elsewhere(cost):
    """At a = y (one-hot) every cost is exactly 0 (no clipping of a lifts it); at A, above."""
    fn = costs.get(cost)
    assert float(fn(Y, Y)) == 0.0
    assert float(fn(A, Y)) > 0


@pytest.mark.parametrize("cost, output", costs.PAIRS)
def test_from_logits_equals_textbook_form(cost, output):
    z = jnp.array([[1.5, -0.3, 0.2], [-2.0, 0.7, 1.1]], jnp.float64)
    a = activations.get(output)(z)
    np.testing.assert_allclose(costs.from_logits(cost, output)(z, Y), costs.get(cost)(a, Y),
                               rtol=1e-12)


@pytest.mark.parametrize("cost, output", [("cross_entropy", "sigmoid"),
                                          ("log_likelihood", "softmax")])
def test_stable_costs_finite_when_saturated(cost, output):
    z = jnp.array([[1e4, -1e4, 1e4], [-1e4, 1e4, -1e4]], jnp.float32)
    fn = costs.from_logits(cost, output)
    value = fn(z, Y.astype(jnp.float32))
    grads = jax.grad(fn)(z, Y.astype(jnp.float32))
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grads)).all()
    a = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], jnp.float32)  # exactly 0 and 1
    assert np.isfinite(float(costs.get(cost)(a, Y.astype(jnp.float32))))


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_sigmoid_costs_are_the_textbook_forms_for_soft_targets(cost):
    """For targets anywhere in [0, 1] (not only 0 and 1, where the stable forms' terms in y
    and 1 - y each vanish in turn), sigmoid_residual is sigma(z) - y, and both sigmoid costs
    from logits and on activations, with their gradients in z, are the textbook formulas in
    NumPy (float64)."""
    rng = np.random.default_rng(1)
    z, y = rng.normal(0, 3, (6, 5)), rng.uniform(0, 1, (6, 5))
    m = z.shape[0]
    a = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(costs.sigmoid_residual(z, y), a - y, rtol=1e-12, atol=1e-15)
    if cost == "quadratic":
        per = 0.5 * np.sum((a - y) ** 2, axis=1)
        grad = (a - y) * a * (1 - a) / m
    else:
        per = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a), axis=1)
        grad = (a - y) / m
    value, got = jax.value_and_grad(costs.from_logits(cost, "sigmoid"))(z, y)
    np.testing.assert_allclose(float(value), per.mean(), rtol=1e-12)
    np.testing.assert_allclose(got, grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(costs.get(cost)(a, y), per.mean(), rtol=1e-12)


def exact_sigmoid_residual(z, y):
    """sigma(z) - y for a target y of 0 or 1, in float64 without cancellation: sigma(z), or
    -sigma(-z) = -1 / (1 + e^z)."""
    return 1 / (1 + math.exp(-z)) if y == 0 else -1 / (1 + math.exp(z))


def exact_sigmoid_slope(z):
    t = math.exp(-abs(z))
    return t / (1 + t) ** 2


SATURATED = [(z, y) for z0 in (5.0, 10.0, 15.0, 17.0, 25.0, 40.0)
             for z, y in ((z0, 1.0), (-z0, 0.0), (-z0, 1.0), (z0, 0.0))]
"""(z, y) pairs of one output unit, right (z > 0 for y = 1) and wrong, out to where sigma(z)
rounds to 1 in float32 (z >= 17) and in float64 (z >= 37)."""


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
def test_sigmoid_costs_keep_their_precision_where_the_output_saturates(cost, dtype):
    """sigma(z) - y cancels where sigma(z) nears a target of 1: the quadratic cost and its
    gradient were 17% off at z = 15 in float32 and 0 from z = 17, where sigma(z) rounds to 1
    (in float64 from z = 37). The value and the gradient of both sigmoid costs are within 1e-5
    of the exact ones in float32, 1e-12 in float64, right or wrong, out to z = 40."""
    fn = costs.from_logits(cost, "sigmoid")
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    for z, y in SATURATED:
        r = exact_sigmoid_residual(z, y)
        if cost == "quadratic":
            exact_cost, exact_grad = 0.5 * r * r, r * exact_sigmoid_slope(z)
        else:  # -ln(1 - sigma(z)) = softplus(z) for y = 0, -ln sigma(z) = softplus(-z) for 1
            s = z if y == 0 else -z
            exact_cost, exact_grad = max(s, 0.0) + math.log1p(math.exp(-abs(s))), r
        zz, yy = jnp.array([[z]], dtype), jnp.array([[y]], dtype)
        value, grad = jax.value_and_grad(fn)(zz, yy)
        np.testing.assert_allclose(float(value), exact_cost, rtol=rtol, err_msg=f"z={z}, y={y}")
        np.testing.assert_allclose(float(grad[0, 0]), exact_grad, rtol=rtol,
                                   err_msg=f"z={z}, y={y}")


def test_sigmoid_residual_is_within_2e_7_of_the_exact_value_in_float32():
    """What sigmoid_residual's docstring promises: sigma(z) - y for y = 0 and 1, on a grid of
    200,001 points in [-80, 80], within 2e-7 (relative) of the exact value at the float32 z."""
    z = np.linspace(-80, 80, 200_001).astype(np.float32)
    for y in (0.0, 1.0):
        got = costs.sigmoid_residual(jnp.asarray(z[None]), jnp.full((1, z.size), y, jnp.float32))
        z64 = z.astype(np.float64)
        exact = -1 / (1 + np.exp(z64)) if y == 1 else 1 / (1 + np.exp(-z64))
        np.testing.assert_allclose(np.asarray(got[0], np.float64), exact, rtol=2e-7, atol=0)


LOGITS = [0.0, 1.5, -0.5, 0.25, 0.0, -2.0, 1.0, -1.0, 0.5, -3.0]
"""Nine logits that one unit's ``d`` stands out from (exact in float32: their differences are
too)."""

SOFTMAX_SATURATED = [(d, k) for d in (5.0, 10.0, 15.0, 17.0, 25.0, 40.0) for k in (0, 1)]
"""(d, true class): z = LOGITS with z_0 = d, right (k = 0, softmax(z)_0 nears 1: 1 - 4e-17
at d = 40) and wrong (k = 1)."""


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("cost", ["log_likelihood", "quadratic"])
def test_softmax_costs_keep_their_precision_where_the_output_saturates(cost, dtype):
    """softmax(z) - y cancels where softmax(z) nears a target of 1, and log_softmax's
    ln(1 + s) loses s: the log-likelihood and its gradient were 4e-4 off (relative) at a
    margin of 10 in float32, 17% at 15 and 100% (0) from 17. Value and gradient of both softmax
    costs are within 1e-5 of the exact ones (50-digit decimal) in float32, 1e-12 in float64,
    right or wrong, out to a margin of 40: every unit of the gradient, not only the largest."""
    fn = costs.from_logits(cost, "softmax")
    rtol = 1e-5 if dtype == jnp.float32 else 1e-12
    for d, k in SOFTMAX_SATURATED:
        z = [d, *LOGITS[1:]]
        ll, ll_grad, quad, quad_grad = exact_softmax_costs(z, k)
        exact_cost, exact_grad = (ll, ll_grad) if cost == "log_likelihood" else (quad, quad_grad)
        zz = jnp.array([z], dtype)
        yy = jax.nn.one_hot(jnp.array([k]), len(z), dtype=dtype)
        value, grad = jax.value_and_grad(fn)(zz, yy)
        np.testing.assert_allclose(float(value), exact_cost, rtol=rtol, err_msg=f"d={d}, k={k}")
        np.testing.assert_allclose(np.asarray(grad[0], np.float64), exact_grad, rtol=rtol,
                                   atol=0, err_msg=f"d={d}, k={k}")


def test_softmax_residual_is_exact_to_float32_on_random_logits():
    """softmax_residual(z, y) = softmax(z) - y for one-hot y, on 1,000 rows of 10 logits drawn
    N(0, 10^2) (margins past 40 included), every unit within 1e-5 (relative) of the exact value
    at the float32 logits; and it equals softmax(z) - y computed plainly, in float64, for soft
    targets that do not sum to 1."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 10, (1000, 10)).astype(np.float32)
    k = rng.integers(0, 10, 1000)
    got = np.asarray(costs.softmax_residual(jnp.asarray(z), jax.nn.one_hot(k, 10)), np.float64)
    exact = np.array([exact_softmax_costs(row, c)[1] for row, c in zip(z, k)])
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=0)
    z64, y = rng.normal(0, 2, (5, 10)), rng.uniform(0, 1, (5, 10))
    np.testing.assert_allclose(costs.softmax_residual(z64, y),
                               activations.softmax(z64) - y, rtol=1e-12, atol=1e-15)


def test_log_likelihood_has_the_second_derivatives_of_ln_softmax():
    """Its derivative rule is itself differentiable: the Hessian in z is diag(p) - p p^T, and
    the gradient in y is -ln softmax(z) (both per example; the batch mean divides by m)."""
    fn = costs.from_logits("log_likelihood", "softmax")
    z = jnp.array([[1.5, -0.3, 0.2, 0.9]])
    y = jnp.array([[0.0, 1.0, 0.0, 0.0]])
    p = np.asarray(activations.softmax(z[0]))
    hessian = jax.hessian(fn)(z, y)[0, :, 0, :]
    np.testing.assert_allclose(hessian, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(jax.grad(fn, argnums=1)(z, y)[0], -np.log(p), rtol=1e-12)
    mixed = jax.jacfwd(jax.grad(fn, argnums=1), argnums=0)(z, y)[0, :, 0, :]  # d/dz (-ln p)
    np.testing.assert_allclose(mixed, np.outer(np.ones(4), p) - np.eye(4), rtol=1e-12,
                               atol=1e-15)


def test_cross_entropy_gradient_has_no_sigma_prime():
    # dC/dz = (a - y) / m for sigmoid + cross-entropy: the book's cure for the learning slowdown
    z = jnp.array([[3.0, -2.0]], jnp.float64)
    y = jnp.array([[0.0, 1.0]], jnp.float64)
    g = jax.grad(costs.from_logits("cross_entropy", "sigmoid"))(z, y)
    np.testing.assert_allclose(g, activations.sigmoid(z) - y, rtol=1e-12)


def test_bad_pairs_and_names():
    with pytest.raises(ValueError, match="cost: 'log_likelihood' needs the output activation "
                                         "'softmax'; got 'sigmoid'"):
        costs.check_pair("log_likelihood", "sigmoid")
    with pytest.raises(ValueError, match="cost: expected one of"):
        costs.get("hinge")


def test_penalties_count_weights_only():
    params = [{"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([10.0])},
              {"w": jnp.array([[3.0]]), "b": jnp.array([-7.0]), "alpha": jnp.array(5.0)}]
    np.testing.assert_allclose(costs.l2_penalty(params), 0.5 * (1 + 4 + 9))
    np.testing.assert_allclose(costs.l2_penalty(params, scale=0.1), 0.05 * 14)
    np.testing.assert_allclose(costs.l1_penalty(params, scale=2.0), 2 * 6)
    mask = costs.weight_mask(params)
    assert mask == [{"w": True, "b": False}, {"w": True, "b": False, "alpha": False}]


def test_l1_gradient_is_the_books_sign_with_sgn_0_equal_0():
    params = [{"w": jnp.array([[0.0, -1.0, 2.0, -0.0]]), "b": jnp.array([0.0])}]
    grad = jax.grad(lambda p: costs.l1_penalty(p, scale=0.5))(params)
    np.testing.assert_array_equal(grad[0]["w"], [[0.0, -0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(grad[0]["b"], [0.0])
    assert float(costs.l1_penalty(params, scale=0.5)) == 1.5


def test_penalties_see_the_kernels_of_an_nnx_state():
    """A jaxnn.cnn model's Param state (Variables, leaf paths ending in .value) masks its
    kernels as a pure dict does, so CNN presets get their L2 decay and penalty."""
    from flax import nnx

    from jaxnn import cnn

    spec = cnn.architecture("conv1", input_shape=(12, 12, 1))
    _, params, _ = cnn.split(cnn.make(spec, jax.random.key(0)))
    pure = nnx.as_pure(params)
    assert jax.tree_util.tree_leaves(costs.weight_mask(params)) == \
        jax.tree_util.tree_leaves(costs.weight_mask(pure))
    kernels = [p["kernel"] for p in cnn.pure_params(params)["layers"].values()]
    want = 0.5 * sum(float(jnp.sum(k**2)) for k in kernels)
    assert want > 0
    np.testing.assert_allclose(costs.l2_penalty(params), want, rtol=1e-5)
    np.testing.assert_allclose(costs.l2_penalty(pure), want, rtol=1e-5)


@pytest.mark.parametrize("cost, output", costs.PAIRS)
def test_targets_of_the_outputs_shape_are_accepted_in_every_form(cost, output):
    """One example (n_L,), integer one-hot rows and a jitted call all pass the shape check and
    give the value of the float batch."""
    z = jnp.array([[1.5, -0.3, 0.2], [-2.0, 0.7, 1.1]], jnp.float64)
    a = activations.get(output)(z)
    textbook, stable = costs.get(cost), costs.from_logits(cost, output)
    want = float(textbook(a, Y))
    np.testing.assert_allclose(textbook(a, Y.astype(np.int32)), want, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(stable)(z, Y), want, rtol=1e-12)
    single = [float(textbook(a[i], Y[i])) for i in range(2)]
    np.testing.assert_allclose(np.mean(single), want, rtol=1e-12)


@pytest.mark.parametrize("cost", costs.COSTS)
def test_integer_labels_are_refused_not_broadcast(cost):
    """(m, n) outputs with (m,) labels where m = n used to broadcast to an (m, m) cost."""
    a = jnp.full((3, 3), 0.5)
    with pytest.raises(ValueError, match=r"^y: expected the shape of a, \(3, 3\); got \(3,\)$"):
        costs.get(cost)(a, jnp.arange(3))


def test_textbook_costs_are_the_formula_away_from_exactly_0_and_1():
    """Only outputs of exactly 0 or 1 are moved (to finite costs); any other output costs what
    the formula says, and its gradient is the formula's: clipping at machine epsilon capped the
    cost at 15.9 and zeroed the gradient of a saturated sigmoid, the slowdown cross-entropy
    cures."""
    one, zero = jnp.ones((1, 1), jnp.float32), jnp.zeros((1, 1), jnp.float32)
    near_one = jnp.full((1, 1), np.nextafter(np.float32(1), np.float32(0)))
    np.testing.assert_allclose(costs.cross_entropy(jnp.full((1, 1), 1e-10), one),
                               -np.log(1e-10), rtol=1e-6)
    np.testing.assert_allclose(costs.cross_entropy(near_one, zero), 24 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(costs.log_likelihood(jnp.array([[1e-10, 1.0]]),
                                                    jnp.array([[1.0, 0.0]])),
                               -np.log(1e-10), rtol=1e-6)
    a = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], jnp.float32)
    for cost in (costs.cross_entropy, costs.log_likelihood):
        assert float(cost(a, a)) == 0.0  # a = y exactly costs nothing
    # Through a saturating output the textbook gradient is a - y, as from the logits.
    for z in (-15.0, -16.0, -20.0, -40.0):
        zs = jnp.full((1, 1), z, jnp.float32)
        textbook = jax.grad(lambda z: costs.cross_entropy(activations.sigmoid(z), one))(zs)
        stable = jax.grad(lambda z: costs.from_logits("cross_entropy", "sigmoid")(z, one))(zs)
        np.testing.assert_allclose(textbook, stable, rtol=1e-6)
    z = jnp.array([[0.0, 16.0]], jnp.float32)
    y = jnp.array([[1.0, 0.0]], jnp.float32)
    textbook = jax.grad(lambda z: costs.log_likelihood(activations.softmax(z), y))(z)
    stable = jax.grad(lambda z: costs.from_logits("log_likelihood", "softmax")(z, y))(z)
    np.testing.assert_allclose(textbook, stable, rtol=1e-6)


@pytest.mark.parametrize("a, y", [([[1.5]], [[0.0]]), ([[-0.5]], [[1.0]]),
                                  ([[1.0 + 2**-20]], [[0.0]]), ([[-(2.0**-126)]], [[1.0]])])
def test_textbook_cross_entropy_of_an_output_outside_0_1_is_nan_not_moved(a, y):
    """Only 0 and 1 themselves are moved into range: an output outside [0, 1] (no sigmoid's)
    has no logarithm, and costs NaN rather than a plausible finite number."""
    assert np.isnan(float(costs.cross_entropy(jnp.asarray(a), jnp.asarray(y))))


def test_textbook_log_likelihood_of_a_negative_output_is_nan():
    a, y = jnp.array([[-0.2, 1.2]]), jnp.array([[1.0, 0.0]])
    assert np.isnan(float(costs.log_likelihood(a, y)))
    assert float(costs.log_likelihood(jnp.array([[-0.0, 1.0]]), y)) > 700  # -0.0 is 0: moved


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_textbook_gradients_are_the_formulas_on_the_clamp_values_themselves(dtype):
    """The smallest normal float and the float just below 1 are kept, not moved: their
    gradients are the formula's -y/a and (1 - y)/(1 - a) in full (jnp.maximum/minimum would
    split the gradient between two equal arguments and give half)."""
    info = jnp.finfo(dtype)
    one, zero = jnp.ones((1, 1), dtype), jnp.zeros((1, 1), dtype)
    tiny, below_one = jnp.full((1, 1), info.tiny, dtype), jnp.full((1, 1), 1 - info.epsneg, dtype)
    for cost in (costs.cross_entropy, costs.log_likelihood):
        np.testing.assert_allclose(jax.grad(cost)(tiny, one), -1 / tiny, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(costs.cross_entropy)(below_one, zero),
                               1 / (1 - below_one), rtol=1e-6)
    # one float further in, as before: and a moved output (0, or exactly 1) has gradient 0
    assert float(jax.grad(costs.cross_entropy)(zero, one)[0, 0]) == 0.0
    assert float(jax.grad(costs.cross_entropy)(one, zero)[0, 0]) == 0.0

