"""Perceptrons (chapter 1): step-function neurons, logic gates, and XOR.

A perceptron outputs 1 if w . x + b > 0 else 0, with the bias b = -threshold. The book's NAND
gate is w = (-2, -2), b = 3; NAND is universal, so XOR is built from four NANDs, or from one
hidden layer (OR and NAND) feeding an AND. No single perceptron computes XOR: its two classes
are not linearly separable, and the perceptron learning rule never converges on it.

>>> from jaxnn import perceptron
>>> [int(perceptron.gate(perceptron.NAND)(a, b)) for a, b in [(0, 0), (0, 1), (1, 0), (1, 1)]]
[1, 1, 1, 0]
>>> [int(perceptron.xor_from_nand(a, b)) for a, b in [(0, 0), (0, 1), (1, 0), (1, 1)]]
[0, 1, 1, 0]
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jaxnn import _checks
from jaxnn.activations import step


class Perceptron(NamedTuple):
    """Weights ``w`` (n_in,) and bias ``b`` (= -threshold)."""

    w: jnp.ndarray
    b: float


def fire(p: Perceptron, x):
    """output = step(w . x + b) for inputs ``x`` of shape (..., n_in)."""
    return step(jnp.asarray(x, jnp.float32) @ jnp.asarray(p.w, jnp.float32) + p.b)


NAND = Perceptron(jnp.array([-2.0, -2.0]), 3.0)
AND = Perceptron(jnp.array([1.0, 1.0]), -1.5)
OR = Perceptron(jnp.array([1.0, 1.0]), -0.5)
NOT = Perceptron(jnp.array([-1.0]), 0.5)

INPUTS = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1]], jnp.float32)
"""The four input pairs of a two-input gate, in truth-table order."""


def gate(p: Perceptron):
    """A function of two bit arrays: ``gate(NAND)(x1, x2)``."""
    return lambda x1, x2: fire(p, jnp.stack([jnp.asarray(x1), jnp.asarray(x2)], axis=-1))


def xor_from_nand(x1, x2):
    """XOR from four NAND gates (the book's adder circuit)."""
    nand = gate(NAND)
    n = nand(x1, x2)
    return nand(nand(x1, n), nand(x2, n))


def xor_two_layer(x1, x2):
    """XOR as a two-layer network: hidden units OR and NAND, output AND of the two."""
    h = jnp.stack([gate(OR)(x1, x2), gate(NAND)(x1, x2)], axis=-1)
    return fire(AND, h)


def _check_training(x, y, epochs, eta):
    """``x`` (n, n_in) finite, ``y`` n labels in {0, 1}, as float64 arrays; epochs and eta > 0."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x: expected inputs of shape (n, n_in) with n >= 1; got {x.shape}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x: expected numbers (bits or reals); got dtype {x.dtype}")
    _checks.finite_array("x", x)
    if y.shape != (len(x),):
        raise ValueError(f"y: expected {len(x)} labels, one per row of x, shape ({len(x)},); "
                         f"got {y.shape}")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise ValueError(f"y: expected labels 0 or 1; got values {np.unique(y).tolist()}")
    _checks.positive("epochs", epochs, integer=True)
    _checks.positive("eta", eta)
    return x.astype(np.float64), y.astype(np.float64)


def train(x, y, *, epochs: int = 100, eta: float = 1.0, seed: int = 0):
    """Rosenblatt's learning rule: w <- w + eta (y - output) x, b <- b + eta (y - output).

    Returns ``(perceptron, converged)``; ``converged`` is True once an epoch makes no mistake,
    which happens exactly when the data are linearly separable (given enough epochs).
    Runs on the host with NumPy: it is a teaching loop over a handful of points.
    """
    x, y = _check_training(x, y, epochs, eta)
    rng = np.random.default_rng(seed)
    w, b = rng.normal(scale=0.1, size=x.shape[1]), 0.0
    for _ in range(epochs):
        mistakes = 0
        for xi, yi in zip(x, y):
            out = float(xi @ w + b > 0)
            if out != yi:
                w, b = w + eta * (yi - out) * xi, b + eta * (yi - out)
                mistakes += 1
        if mistakes == 0:
            return Perceptron(jnp.asarray(w), float(b)), True
    return Perceptron(jnp.asarray(w), float(b)), False
