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
