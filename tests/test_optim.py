"""jaxnn.optim: each optimizer's update is the formula in the module's docstring, step by step,
written out in NumPy (float64, so that only rounding at 1e-16 separates them)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnn import optim

GRADS = np.array([[0.5, -0.01, 2.0, 0.0], [0.3, 0.02, -1.0, 1e-3], [-0.4, 0.0, 0.5, 3.0]])
ETA = 0.1
F64 = jnp.float64
pytestmark = pytest.mark.usefixtures("float64")


def by_hand(name, theta, grads):
    """The docstring's table, step by step, in float64."""
    theta = theta.astype(np.float64)
    v = np.zeros_like(theta)
    G = np.full_like(theta, 0.1 if name == "adagrad" else 0.0)  # the documented G_0
    m, s = np.zeros_like(theta), np.zeros_like(theta)
    mu = 0.9
    for t, g in enumerate(grads, start=1):
        if name == "sgd":
            theta = theta - ETA * g
        elif name == "momentum":
            v = mu * v + g
            theta = theta - ETA * v
        elif name == "nesterov":
            v = mu * v + g
            theta = theta - ETA * (g + mu * v)
        elif name == "adagrad":
            G = G + g**2
            theta = theta - ETA * g / np.sqrt(G + 1e-7)
        elif name == "rmsprop":
            G = 0.9 * G + 0.1 * g**2
            theta = theta - ETA * g / np.sqrt(G + 1e-8)
        elif name == "adam":
            m = 0.9 * m + 0.1 * g
            s = 0.999 * s + 0.001 * g**2
            theta = theta - ETA * (m / (1 - 0.9**t)) / (np.sqrt(s / (1 - 0.999**t)) + 1e-8)
    return theta


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_update_is_the_documented_formula(name):
    opt = optim.make(name, ETA)
    theta = jnp.array([1.0, -2.0, 0.5, 0.0], F64)
    state = opt.init(theta)
    for g in GRADS:
        updates, state = opt.update(jnp.asarray(g, F64), state, theta)
        theta = theta + updates
    np.testing.assert_allclose(theta, by_hand(name, np.array([1.0, -2.0, 0.5, 0.0]), GRADS),
                               rtol=1e-12, atol=1e-15)


def test_momentum_is_the_books_form_for_a_constant_eta():
    """The book's v <- mu v - eta g, w <- w + v gives the same parameters."""
    opt = optim.make("momentum", ETA)
    theta = jnp.zeros(4, F64)
    state = opt.init(theta)
    w, v = np.zeros(4), np.zeros(4)
    for g in GRADS:
        updates, state = opt.update(jnp.asarray(g, F64), state, theta)
        theta = theta + updates
        v = 0.9 * v - ETA * g
        w = w + v
    np.testing.assert_allclose(theta, w, rtol=1e-12, atol=1e-15)


def test_adamw_decays_the_weights_by_l2_over_n_decoupled():
    """adamw: the Adam step on g plus eta (l2 / n_train) w, on the weights only (not the biases)."""
    l2, n = 3.0, 20
    opt = optim.make("adamw", ETA, l2=l2, n_train=n)
    w0, b0 = np.array([1.0, -2.0, 0.5, 0.0]), np.array([0.7, -0.3, 1.5, 2.0])
    params = {"w": jnp.asarray(w0, F64), "b": jnp.asarray(b0, F64)}
    state = opt.init(params)
    w, b = w0.copy(), b0.copy()
    m, s = {k: np.zeros(4) for k in "wb"}, {k: np.zeros(4) for k in "wb"}
    for t, g in enumerate(GRADS, start=1):
        updates, state = opt.update({"w": jnp.asarray(g, F64), "b": jnp.asarray(g, F64)},
                                    state, params)
        params = {k: params[k] + updates[k] for k in params}
        for k in "wb":
            m[k] = 0.9 * m[k] + 0.1 * g
            s[k] = 0.999 * s[k] + 0.001 * g**2
        adam = {k: (m[k] / (1 - 0.9**t)) / (np.sqrt(s[k] / (1 - 0.999**t)) + 1e-8) for k in "wb"}
        w = w - ETA * (adam["w"] + (l2 / n) * w)
        b = b - ETA * adam["b"]
    np.testing.assert_allclose(params["w"], w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(params["b"], b, rtol=1e-12, atol=1e-15)


def test_clipping_acts_on_the_cost_gradient_before_l2():
    """clip_norm rescales g to norm clip_norm, then L2 adds (l2 / n) w on the weights only."""
    l2, n, clip = 5.0, 10, 0.5
    opt = optim.make("sgd", 1.0, l2=l2, n_train=n, clip_norm=clip)
    params = {"w": jnp.array([1.0, -2.0, 0.5], F64), "b": jnp.array([0.3, -0.1], F64)}
    g = {"w": jnp.array([30.0, -40.0, 10.0], F64), "b": jnp.array([20.0, 5.0], F64)}
    updates, _ = opt.update(g, opt.init(params), params)
    norm = np.sqrt(sum(np.sum(np.asarray(v) ** 2) for v in g.values()))
    clipped = {k: np.asarray(v) * clip / norm for k, v in g.items()}
    assert np.sqrt(sum(np.sum(v**2) for v in clipped.values())) == pytest.approx(clip)
    np.testing.assert_allclose(updates["w"], -(clipped["w"] + (l2 / n) * np.asarray(params["w"])),
                               rtol=1e-12)
    np.testing.assert_allclose(updates["b"], -clipped["b"], rtol=1e-12)
