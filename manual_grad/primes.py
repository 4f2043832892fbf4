"""sigma'(z) derived by hand for every activation of :mod:`jaxnn.activations`.

Each derivative is the textbook formula, written next to the function it differentiates.
Where an activation has a kink, the derivative *at* the kink follows jaxnn's convention
(:mod:`jaxnn.activations`): one-sided, from the flatter side, which is also what JAX's autodiff
gives for jaxnn's definitions, so hand and automatic gradients agree everywhere, kinks included:

- relu'(0) = 0 (``jax.nn.relu``), hard_tanh'(+-1) = 0, hard_sigmoid'(+-2.5) = 0 (the saturated
  side; both are written with ``jnp.where`` on closed intervals);
- leaky_relu'(0) = 0.01, prelu'(0) = alpha (``jnp.where(z > 0, ...)`` takes the left branch);
- elu'(0) = 1 (both sides agree: e^0 = 1); step'(z) = 0 everywhere.

``softmax`` (a vector function) and ``maxout`` (a layer) are not elementwise: their backward
passes are :func:`manual_grad.layers.softmax_backward` and
:func:`manual_grad.layers.maxout_backward`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxnn import _checks
from jaxnn import activations as A


def _kink(u, lo, hi):
    """d clip(u, lo, hi) / du: 1 strictly inside (lo, hi), 0 outside and at the ends."""
    return jnp.where((u > lo) & (u < hi), 1.0, 0.0).astype(u.dtype)


def step_prime(z):
    """step'(z) = 0 (the threshold is flat on both sides; autodiff also gives 0 at z = 0)."""
    return jnp.zeros_like(z)


def sigmoid_prime(z):
    """sigma'(z) = sigma(z) (1 - sigma(z)), computed as t (1 - t) with t = sigma(-|z|).

    sigma' is even (sigma'(z) = sigma'(-z)). For z > 0, 1 - sigma(z) cancels in float32
    (1e-5 off at z = 5, exactly 0 from z = 16.6); with t = sigma(-|z|) <= 1/2 nothing cancels.
    """
    t = jax.nn.sigmoid(-jnp.abs(z))
    return t * (1.0 - t)


def tanh_prime(z):
    """tanh'(z) = 1 - tanh(z)^2 = 4 e / (1 + e)^2 with e = e^{-2|z|}.

    tanh(z) = 2 sigma(2z) - 1, so tanh'(z) = 4 sigma'(2z); 1 - tanh^2 itself cancels in float32
    (0 for |z| >= 9)."""
    return 4.0 * sigmoid_prime(2.0 * z)


def hard_sigmoid_prime(z):
    """d/dz clip(0.2 z + 0.5, 0, 1) = 0.2 inside (-2.5, 2.5), 0 outside and at the kinks."""
    return 0.2 * _kink(z, -2.5, 2.5)


def hard_tanh_prime(z):
    """d/dz clip(z, -1, 1) = 1 inside (-1, 1), 0 outside and at z = +-1."""
    return _kink(z, -1.0, 1.0)


def relu_prime(z):
    """relu'(z) = 1 for z > 0, 0 for z <= 0 (the flat side at the kink, as jax.nn.relu)."""
    return jnp.where(z > 0, 1.0, 0.0).astype(z.dtype)


def leaky_relu_prime(z):
    """1 for z > 0, 0.01 for z <= 0."""
    return jnp.where(z > 0, 1.0, A.LEAKY_SLOPE).astype(z.dtype)


def prelu_prime(z, alpha=A.PRELU_INIT):
    """d/dz prelu(z, alpha) = 1 for z > 0, alpha for z <= 0."""
    return jnp.where(z > 0, jnp.ones_like(z), alpha * jnp.ones_like(z))


def prelu_alpha_prime(z, alpha=A.PRELU_INIT):
    """d/d alpha prelu(z, alpha) = 0 for z > 0, z for z <= 0 (elementwise; sum it for alpha)."""
    del alpha
    return jnp.where(z > 0, 0.0, z).astype(z.dtype)


def elu_prime(z):
    """1 for z > 0; alpha e^z for z <= 0 (1 at z = 0: both sides agree)."""
    left = A.ELU_ALPHA * jnp.exp(jnp.where(z > 0, 0.0, z))
    return jnp.where(z > 0, 1.0, left).astype(z.dtype)


def swish_prime(z):
    """d/dz z sigma(z) = sigma(z) + z sigma'(z)."""
    return jax.nn.sigmoid(z) + z * sigmoid_prime(z)


def softplus_prime(z):
    """d/dz ln(1 + e^z) = sigma(z)."""
    return jax.nn.sigmoid(z)


def gelu_prime(z):
    """d/dz z Phi(z) = Phi(z) + z phi(z).

    Phi(z) = erfc(-z / sqrt 2) / 2 and phi(z) = e^{-z^2 / 2} / sqrt(2 pi).
    """
    cdf = 0.5 * jax.lax.erfc(-z * math.sqrt(0.5))
    pdf = jnp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return cdf + z * pdf


def identity_prime(z):
    """identity'(z) = 1."""
    return jnp.ones_like(z)


PRIMES = {
    "step": step_prime,
    "sigmoid": sigmoid_prime,
    "tanh": tanh_prime,
    "hard_sigmoid": hard_sigmoid_prime,
    "hard_tanh": hard_tanh_prime,
    "relu": relu_prime,
    "leaky_relu": leaky_relu_prime,
    "prelu": prelu_prime,
    "elu": elu_prime,
    "swish": swish_prime,
    "softplus": softplus_prime,
    "gelu": gelu_prime,
    "identity": identity_prime,
}
"""sigma' for every elementwise activation (``prelu_prime`` takes ``(z, alpha)``)."""


def activation_prime(name: str):
    """The hand-derived sigma'(z) of activation ``name`` (elementwise, same shape as z).

    ``prelu`` gives ``fn(z, alpha)``; its derivative in alpha is :func:`prelu_alpha_prime`.
    ``softmax`` and ``maxout`` are not elementwise: ValueError pointing at their backward passes.
    """
    if name in ("softmax", "maxout"):
        raise ValueError(
            f"activation: {name!r} is not elementwise; use manual_grad.{name}_backward "
            f"(expected one of {', '.join(PRIMES)})"
        )
    return _checks.lookup("activation", name, PRIMES)
