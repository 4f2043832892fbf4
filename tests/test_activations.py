import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxnn import activations as act

Z = jnp.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 4.0])


def test_sigmoid_values():
    np.testing.assert_allclose(act.sigmoid(jnp.array([0.0, 1.0, -1.0])),
                               [0.5, 1 / (1 + np.e**-1), 1 / (1 + np.e)], rtol=1e-6)


def test_sigmoid_prime_is_s_times_one_minus_s():
    s = act.sigmoid(Z)
    np.testing.assert_allclose(jax.vmap(jax.grad(act.sigmoid))(Z), s * (1 - s), rtol=1e-5)


def test_sigmoid_symmetry_and_saturation():
    """sigma(100) rounds to 1; far left, sigma(z) = e^z / (1 + e^z) keeps its relative digits
    (no clipping of z or of the output): at z = -80 in float32 (a normal float there), at -100
    in float64 (e^-100 is below float32's normal range)."""
    np.testing.assert_allclose(act.sigmoid(-Z), 1 - act.sigmoid(Z), atol=1e-7)
    assert float(act.sigmoid(jnp.float32(100.0))) == 1.0
    exact = lambda z: np.exp(z) / (1 + np.exp(z))  # noqa: E731  (float64, z < 0)
    np.testing.assert_allclose(float(act.sigmoid(jnp.float32(-80.0))), exact(-80.0), rtol=1e-6)
    with jax.enable_x64(True):
        np.testing.assert_allclose(float(act.sigmoid(jnp.float64(-100.0))), exact(-100.0),
                                   rtol=1e-6)
        assert float(act.sigmoid(jnp.float64(100.0))) == 1.0


def test_tanh_is_rescaled_sigmoid():
    np.testing.assert_allclose(act.tanh(Z), 2 * act.sigmoid(2 * Z) - 1, atol=1e-6)


def test_step_values():
    np.testing.assert_array_equal(act.step(Z), [0, 0, 0, 0, 1, 1, 1])


@pytest.mark.parametrize(
    "name, expected",
    [
        ("hard_sigmoid", [0.0, 0.3, 0.45, 0.5, 0.6, 0.9, 1.0]),
        ("hard_tanh", [-1.0, -1.0, -0.25, 0.0, 0.5, 1.0, 1.0]),
        ("relu", [0.0, 0.0, 0.0, 0.0, 0.5, 2.0, 4.0]),
        ("leaky_relu", [-0.03, -0.01, -0.0025, 0.0, 0.5, 2.0, 4.0]),
        ("elu", [np.expm1(-3.0), np.expm1(-1.0), np.expm1(-0.25), 0.0, 0.5, 2.0, 4.0]),
        ("identity", [-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 4.0]),
    ],
)
def test_piecewise_values(name, expected):
    np.testing.assert_allclose(act.get(name)(Z), expected, rtol=1e-6, atol=1e-7)


def test_prelu_uses_its_slope():
    np.testing.assert_allclose(act.prelu(Z, 0.5), jnp.where(Z > 0, Z, 0.5 * Z))
    np.testing.assert_allclose(act.prelu(Z), act.prelu(Z, act.PRELU_INIT))


def test_swish_softplus_gelu_values():
    z = np.array([-2.0, 0.0, 1.5])
    np.testing.assert_allclose(act.swish(z), z / (1 + np.exp(-z)), rtol=1e-6)
    np.testing.assert_allclose(act.softplus(z), np.log1p(np.exp(z)), rtol=1e-6)
    from math import erf, sqrt

    np.testing.assert_allclose(act.gelu(z), [x * 0.5 * (1 + erf(x / sqrt(2))) for x in z],
                               rtol=1e-6, atol=1e-7)


def test_softplus_is_stable_and_its_derivative_is_sigmoid():
    assert float(act.softplus(jnp.float32(1000.0))) == 1000.0
    assert float(act.softplus(jnp.float32(-1000.0))) == 0.0
    np.testing.assert_allclose(jax.vmap(jax.grad(act.softplus))(Z), act.sigmoid(Z), rtol=1e-6)


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=12))
def test_softmax_is_a_distribution(zs):
    """A distribution, and the one e^z / sum e^z gives (float64, at the float32 logits)."""
    z = jnp.array(zs, jnp.float32)
    a = act.softmax(z)
    e = np.exp(np.asarray(z, np.float64) - np.max(np.asarray(z, np.float64)))
    np.testing.assert_allclose(a, e / e.sum(), rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(float(jnp.sum(a)), 1.0, rtol=1e-5)


def test_softmax_shift_invariant_and_no_overflow():
    z = jnp.array([1000.0, 1001.0, 999.0])
    a = act.softmax(z)
    assert np.isfinite(np.asarray(a)).all()
    np.testing.assert_allclose(a, act.softmax(z - 1000.0), rtol=1e-6)


def test_maxout_groups():
    z = jnp.array([[1.0, 5.0, -2.0, -1.0, 3.0, 3.5]])
    np.testing.assert_array_equal(act.maxout(z, 2), [[5.0, -1.0, 3.5]])
    np.testing.assert_array_equal(act.maxout(z, 3), [[5.0, 3.5]])
    with pytest.raises(ValueError, match="pieces"):
        act.maxout(z, 4)


@pytest.mark.parametrize("name", act.HIDDEN)
def test_every_hidden_activation_is_elementwise_and_finite(name):
    f = act.get(name)
    z = jnp.linspace(-30, 30, 61)
    a = f(z)
    assert a.shape == z.shape and np.isfinite(np.asarray(a)).all()
    np.testing.assert_allclose(f(z[::-1]), a[::-1])


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "relu",
                                  "leaky_relu", "prelu", "elu", "swish", "softplus", "gelu"])
def test_monotone_where_expected(name):
    z = jnp.linspace(-5, 5, 101)
    a = np.asarray(act.get(name)(z))
    if name == "swish" or name == "gelu":
        a = a[z > 0]  # non-monotone dip for z < 0
    assert np.all(np.diff(a) >= -1e-7)


def test_unknown_activation_names_the_argument():
    with pytest.raises(ValueError, match="activation: expected one of .*got 'sigmod'"):
        act.get("sigmod")


@pytest.mark.parametrize("name, kinks, expected", [
    ("relu", [0.0], [0.0]),
    ("hard_tanh", [-1.0, 1.0], [0.0, 0.0]),
    ("hard_sigmoid", [-2.5, 2.5], [0.0, 0.0]),
    ("leaky_relu", [0.0], [act.LEAKY_SLOPE]),
    ("elu", [0.0], [1.0]),
    ("prelu", [0.0], [act.PRELU_INIT]),  # the module's convention: prelu'(0) = alpha
    ("step", [0.0], [0.0]),
])
def test_derivative_at_a_kink_is_one_sided(name, kinks, expected):
    """Kink convention: jax.grad gives the flatter side's slope, never a split tie (0.5)."""
    z = jnp.array(kinks, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    np.testing.assert_array_equal(jax.vmap(jax.grad(act.get(name)))(z),
                                  np.asarray(expected, z.dtype))


@pytest.mark.parametrize("name", ["hard_sigmoid", "hard_tanh", "relu", "elu"])
def test_where_forms_keep_the_clip_and_maximum_values(name):
    z = jnp.concatenate([jnp.linspace(-6, 6, 241), jnp.array([-2.5, -1.0, 0.0, 1.0, 2.5])])
    old = {"hard_sigmoid": lambda z: jnp.clip(0.2 * z + 0.5, 0.0, 1.0),
           "hard_tanh": lambda z: jnp.clip(z, -1.0, 1.0),
           "relu": lambda z: jnp.maximum(z, 0.0),
           "elu": lambda z: jnp.where(z > 0, z, jnp.expm1(jnp.minimum(z, 0.0)))}[name]
    if name == "hard_sigmoid":  # rounded differently near its kinks (more exactly): 1 ulp
        np.testing.assert_allclose(act.get(name)(z), old(z), rtol=0, atol=6e-8)
    else:
        np.testing.assert_array_equal(act.get(name)(z), old(z))


def test_elu_gradient_is_finite_for_large_inputs():
    z = jnp.array([-1000.0, -5.0, 0.0, 50.0, 100.0, 1000.0], jnp.float32)
    g = np.asarray(jax.vmap(jax.grad(act.elu))(z))
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, [0.0, np.exp(-5.0), 1.0, 1.0, 1.0, 1.0], rtol=1e-6)


def test_elu_gradient_is_e_to_the_z_to_float32_rounding_on_the_left():
    """elu'(z) = e^z for z <= 0. Autodiff through expm1 gives expm1(z) + 1, which cancels:
    0 in float32 below about z = -17 and only a few digits right at z = -5. elu has its own
    derivative rule so the gradient keeps full relative precision."""
    z = jnp.linspace(-80.0, 0.0, 321, dtype=jnp.float32)
    g = np.asarray(jax.vmap(jax.grad(act.elu))(z))
    np.testing.assert_allclose(g, np.exp(np.asarray(z, np.float64)), rtol=2e-7)
    np.testing.assert_allclose(jax.vmap(jax.grad(act.elu))(-z), np.ones_like(z))


def test_elu_derivative_rule_matches_finite_differences_and_keeps_the_value():
    """elu's own derivative rule, checked independently of manual_grad: against central
    differences (float64, both sides of 0 and across it), and its primal equals elu itself."""
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        for z0 in (-30.0, -3.0, -0.5, 0.5, 3.0):
            check_grads(act.elu, (jnp.float64(z0),), order=2, modes=("fwd", "rev"))
        z = jnp.linspace(-90.0, 90.0, 3601)
        value, _ = jax.jvp(act.elu, (z,), (jnp.ones_like(z),))
        np.testing.assert_array_equal(value, act.elu(z))


def test_softmax_and_log_softmax_derivative_rules_are_their_jacobians():
    """softmax's and log_softmax's own derivative rules, checked independently of manual_grad:
    forward and reverse Jacobians are diag(a) - a a^T and I - 1 a^T (float64, rows of a batch
    with and without a tie at the maximum), second order against central differences; the
    primals are jax.nn.softmax's bits and log_softmax's values to float64 rounding."""
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        z = jnp.array([[1.5, -0.3, 0.2, 0.9, -2.0], [0.7, 0.7, -1.0, 0.0, 0.3]])
        for row in z:
            a = np.asarray(jax.nn.softmax(row))
            for jac in (jax.jacfwd, jax.jacrev):
                np.testing.assert_allclose(jac(act.softmax)(row), np.diag(a) - np.outer(a, a),
                                           rtol=1e-12, atol=1e-15)
                np.testing.assert_allclose(jac(act.log_softmax)(row),
                                           np.eye(5) - np.outer(np.ones(5), a),
                                           rtol=1e-12, atol=1e-15)
        check_grads(act.softmax, (z,), order=2, modes=("fwd", "rev"))
        check_grads(act.log_softmax, (z,), order=2, modes=("fwd", "rev"))
        np.testing.assert_array_equal(act.softmax(z), jax.nn.softmax(z, axis=-1))
        np.testing.assert_allclose(act.log_softmax(z), jax.nn.log_softmax(z, axis=-1),
                                   rtol=1e-14)


def test_softmax_complement_and_log_softmax_keep_their_digits_where_softmax_saturates():
    """1 - a and ln a at a unit whose output nears 1 (margins 10 to 40 over the others, where
    the plain forms are more than 1% off in float32 from 17): within 1e-5 (relative) of the
    exact values in float32, where 1 - a and jax.nn.log_softmax lose them."""
    for d in (10.0, 17.0, 25.0, 40.0):
        z = jnp.array([[d, 0.0, -1.0, 0.5]], jnp.float32)
        s = sum(np.exp(np.float64(v) - d) for v in (0.0, -1.0, 0.5))  # the others' share
        exact_complement, exact_log = s / (1 + s), -np.log1p(s)
        a = act.softmax(z)
        np.testing.assert_allclose(float(act.softmax_complement(a)[0, 0]), exact_complement,
                                   rtol=1e-5)
        np.testing.assert_allclose(float(act.log_softmax(z)[0, 0]), exact_log, rtol=1e-5)
        np.testing.assert_allclose(act.softmax_complement(a)[0, 1:], 1 - a[0, 1:], rtol=1e-7)
        if d >= 17:  # the plain forms are off by more than 1% (0 from 25 here)
            assert abs(float(1 - a[0, 0]) - exact_complement) > 0.01 * exact_complement
            assert abs(float(jax.nn.log_softmax(z)[0, 0]) - exact_log) > 0.01 * -exact_log


# sigma' and tanh' keep full relative precision in float32 for every z (reference: float64).
def _sigmoid_prime_64(z):
    e = np.exp(-np.abs(z))
    return e / (1 + e) ** 2


@pytest.mark.parametrize("name, reference, scale", [
    ("sigmoid", _sigmoid_prime_64, 1.0),
    ("tanh", lambda z: 4 * _sigmoid_prime_64(2 * z), 0.5),
])
def test_sigmoid_and_tanh_gradients_keep_relative_precision_for_large_z(name, reference, scale):
    """Autodiff's sigma (1 - sigma) and 1 - tanh^2 cancel in float32 for large z: sigma' was
    17% off at z = 15 and exactly 0 from z = 16.6, tanh' 0 from |z| = 9. jaxnn's derivative
    rules, and manual_grad's primes, are within float32 rounding of the float64 values."""
    from manual_grad import activation_prime

    z = jnp.linspace(-80.0, 80.0, 641, dtype=jnp.float32) * scale  # e^-80 is a normal float32
    expected = reference(np.asarray(z, np.float64))
    for got in (jax.vmap(jax.grad(act.get(name)))(z), activation_prime(name)(z)):
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(act.swish))(z[z > 0]),
                               [float(1 / (1 + np.exp(-x)) + x * _sigmoid_prime_64(x))
                                for x in np.asarray(z[z > 0], np.float64)], rtol=1e-6)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_sigmoid_and_tanh_derivative_rules_match_finite_differences(name):
    """The derivative rules checked independently of manual_grad: central differences in
    float64 up to second order (across z = 0, where |z| has its kink), and the primal is the
    function's own value."""
    from jax.test_util import check_grads

    fn = act.get(name)
    with jax.enable_x64(True):
        for z0 in (-20.0, -2.0, 0.0, 0.7, 12.0):
            check_grads(fn, (jnp.float64(z0),), order=2, modes=("fwd", "rev"))
        z = jnp.linspace(-40.0, 40.0, 801)
        value, _ = jax.jvp(fn, (z,), (jnp.ones_like(z),))
        np.testing.assert_array_equal(value, fn(z))
        np.testing.assert_array_equal(value, jax.nn.sigmoid(z) if name == "sigmoid"
                                      else jnp.tanh(z))


def test_hard_sigmoid_is_exact_next_to_its_kinks():
    """The kinks are tested on z, not on the rounded 0.2 z + 0.5: the float just below 2.5 is
    inside, with slope 0.2 and a value below 1, and the one just above -2.5 keeps its digits."""
    from manual_grad import activation_prime

    below = np.nextafter(np.float32(2.5), np.float32(0))
    above = np.nextafter(np.float32(-2.5), np.float32(0))
    z = jnp.array([above, below], jnp.float32)
    exact = (np.asarray(z, np.float64) + 2.5) / 5
    np.testing.assert_allclose(act.hard_sigmoid(z), exact, rtol=1e-7)
    assert float(act.hard_sigmoid(z)[1]) < 1.0
    for slope in (jax.vmap(jax.grad(act.hard_sigmoid))(z), activation_prime("hard_sigmoid")(z)):
        np.testing.assert_allclose(slope, [0.2, 0.2], rtol=1e-7)
    kinks = jnp.array([-2.5, 2.5], jnp.float32)  # the convention at the kinks is unchanged
    np.testing.assert_array_equal(act.hard_sigmoid(kinks), [0.0, 1.0])
    np.testing.assert_array_equal(jax.vmap(jax.grad(act.hard_sigmoid))(kinks), [0.0, 0.0])
