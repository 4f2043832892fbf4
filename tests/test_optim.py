"""jaxnn.optim: each optimizer's update is the formula in the module's docstring, step by step,
written out in NumPy (float64, so that only rounding at 1e-16 separates them)."""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import optimizer_by_hand

from jaxnn import optim

GRADS = np.array([[0.5, -0.01, 2.0, 0.0], [0.3, 0.02, -1.0, 1e-3], [-0.4, 0.0, 0.5, 3.0]])
ETA = 0.1
F64 = jnp.float64
pytestmark = pytest.mark.usefixtures("float64")


def by_hand(name, theta, grads, decay=0.0):
    return optimizer_by_hand(name, theta, grads, eta=ETA, decay=decay)


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


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_l2_decays_the_weights_only_as_documented(name):
    """With l2 > 0 every optimizer's step is the by-hand one with (l2 / n_train) w added to the
    weights' gradient before the optimizer (adamw: decoupled, after it); the biases, started
    away from 0 and given their own gradients, are never decayed."""
    l2, n = 3.0, 20
    w0, b0 = np.array([1.0, -2.0, 0.5, 0.0]), np.array([0.7, -0.3, 1.5, -2.0])
    grads_w, grads_b = GRADS, GRADS[::-1] * 0.5 + 0.1
    opt = optim.make(name, ETA, l2=l2, n_train=n)
    params = {"w": jnp.asarray(w0, F64), "b": jnp.asarray(b0, F64)}
    state = opt.init(params)
    for gw, gb in zip(grads_w, grads_b):
        updates, state = opt.update({"w": jnp.asarray(gw, F64), "b": jnp.asarray(gb, F64)},
                                    state, params)
        params = {k: params[k] + updates[k] for k in params}
    np.testing.assert_allclose(params["w"], by_hand(name, w0, grads_w, decay=l2 / n),
                               rtol=1e-12, atol=1e-15, err_msg="w")
    np.testing.assert_allclose(params["b"], by_hand(name, b0, grads_b), rtol=1e-12, atol=1e-15,
                               err_msg="b")


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
