"""Activation functions sigma(z), one pure function each, and a registry by name.

Every function maps an array of weighted inputs ``z`` to activations elementwise, except
``softmax`` (over the last axis) and ``maxout`` (a layer: the max over groups of units).
``prelu`` takes its slope as an argument because it is a learned parameter; in the registry it
appears with the slope as a second argument, ``prelu(z, alpha)``.

Kink convention: where sigma is not differentiable, sigma' is taken one-sided, from the flatter
side (the side with the smaller slope), and ``jax.grad`` gives exactly that value:
relu'(0) = 0, hard_tanh'(+-1) = 0, hard_sigmoid'(+-2.5) = 0, leaky_relu'(0) = 0.01,
prelu'(0) = alpha (the left side's slope: the flatter one for the usual alpha < 1, the steeper
one for a learned alpha > 1), step'(0) = 0; elu is differentiable at 0 (elu'(0) = 1). This is
why relu uses
``jax.nn.relu`` and the hard functions ``jnp.where`` rather than ``jnp.maximum`` / ``jnp.clip``,
whose gradients split a tie (0.5 at relu's kink).

Derivatives are not written here, with a few exceptions for float32 accuracy (sigmoid, tanh,
elu, softmax and log_softmax have their own derivative rules, because autodiff's formulas
cancel): ``jax.grad`` finds them, and ``manual_grad.activation_prime`` derives them by hand
so the two can be compared.

>>> import jax, jax.numpy as jnp
>>> from jaxnn import activations
>>> float(activations.sigmoid(0.0))
0.5
>>> activations.relu(jnp.array([-1.0, 2.0])).tolist()
[0.0, 2.0]
>>> float(jax.grad(activations.relu)(0.0))    # the kink convention: the flatter side
0.0
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnn import _checks

LEAKY_SLOPE = 0.01  # leaky ReLU: sigma(z) = z for z > 0, 0.01 z otherwise
PRELU_INIT = 0.25  # initial slope of a parametric ReLU (He et al. 2015)
ELU_ALPHA = 1.0


def step(z):
    """Perceptron step: 1 if z > 0 else 0 (the book's threshold rule with bias = -threshold)."""
    return jnp.where(z > 0, 1.0, 0.0).astype(jnp.result_type(z, jnp.float32))


def _sigmoid_slope(z):
    """sigma'(z) = t (1 - t) with t = sigma(-|z|) <= 1/2 (sigma' is even): t has full relative
    precision and 1 - t does not cancel, so sigma' is within 2e-7 (relative) of the exact value
    in float32 for |z| < 87 (beyond, t underflows), against 1e-5 at z = 5 and 100% from
    z = 16.6 for sigma (1 - sigma)."""
    t = jax.nn.sigmoid(-jnp.abs(z))
    return t * (1.0 - t)


@jax.custom_jvp
def sigmoid(z):
    """sigma(z) = 1 / (1 + e^{-z}).

    Its derivative rule (below) is sigma'(z) = sigma'(-|z|), computed where it does not cancel.
    Autodiff's sigma (1 - sigma) cancels in float32 for z > 0: 17% off at z = 15 and exactly 0
    from z = 16.6, where sigma'(z) is still about 4e-8.
    """
    return jax.nn.sigmoid(z)


@sigmoid.defjvp
def _sigmoid_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    return sigmoid(z), _sigmoid_slope(z) * dz


@jax.custom_jvp
def tanh(z):
    """tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z}) = 2 sigma(2z) - 1.

    Its derivative rule (below) is tanh'(z) = 4 sigma'(2z), without cancellation; autodiff's
    1 - tanh^2 cancels in float32 (0 for |z| >= 9, where tanh' is still about 6e-8).
    """
    return jnp.tanh(z)


@tanh.defjvp
def _tanh_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    return tanh(z), 4.0 * _sigmoid_slope(2.0 * z) * dz


def hard_sigmoid(z):
    """Piecewise-linear sigmoid: clip(0.2 z + 0.5, 0, 1) (slope 0.2, saturating at |z| >= 2.5).

    Written with ``jnp.where`` so that at the kinks z = +-2.5 the derivative is the flat side's,
    0 (``jnp.clip`` would split the tie and give 0.1): see the module's kink convention. The
    kinks are tested on z itself, and the middle is (z + 2.5) / 5 on the left and
    1 - (2.5 - z) / 5 on the right, whose differences are exact near the kinks: testing the
    rounded 0.2 z + 0.5 saturated the float just below 2.5 (value 1, slope 0).
    """
    inside = jnp.where(z < 0, (z + 2.5) / 5.0, 1.0 - (2.5 - z) / 5.0)
    return jnp.where(z >= 2.5, 1.0, jnp.where(z <= -2.5, 0.0, inside))


def hard_tanh(z):
    """clip(z, -1, 1); the derivative at z = +-1 is the flat side's, 0 (see the kink convention)."""
    return jnp.where(z >= 1.0, 1.0, jnp.where(z <= -1.0, -1.0, z))


def relu(z):
    """max(0, z); relu'(0) = 0, the flat side (``jax.nn.relu``, not ``jnp.maximum``'s 0.5)."""
    return jax.nn.relu(z)


def leaky_relu(z):
    """z for z > 0, 0.01 z otherwise."""
    return jnp.where(z > 0, z, LEAKY_SLOPE * z)


def prelu(z, alpha=PRELU_INIT):
    """Parametric ReLU: z for z > 0, alpha z otherwise, with alpha learned."""
    return jnp.where(z > 0, z, alpha * z)


@jax.custom_jvp
def elu(z):
    """z for z > 0, alpha (e^z - 1) otherwise (alpha = 1); elu'(0) = alpha e^0 = 1.

    The left branch sees ``where(z > 0, 0, z)``, so e^z is never evaluated for large z and the
    unused branch cannot put an inf * 0 = NaN into the gradient (the "double where").

    elu is the one function here with its own derivative rule (below): autodiff through
    ``expm1`` gives expm1(z) + 1, which cancels in float32 (0 below z of about -17, a few
    digits at z = -5), whereas alpha e^z keeps full relative precision.
    """
    return jnp.where(z > 0, z, ELU_ALPHA * jnp.expm1(jnp.where(z > 0, 0.0, z)))


@elu.defjvp
def _elu_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    slope = jnp.where(z > 0, 1.0, ELU_ALPHA * jnp.exp(jnp.where(z > 0, 0.0, z)))
    return elu(z), slope * dz


def swish(z):
    """z sigma(z) (also called SiLU)."""
    return z * sigmoid(z)


def softplus(z):
    """ln(1 + e^z), the smooth ReLU; computed stably for large |z|."""
    return jnp.logaddexp(z, 0.0)


def gelu(z):
    """z Phi(z), Phi the standard normal CDF (exact form, not the tanh approximation)."""
    return jax.nn.gelu(z, approximate=False)


def identity(z):
    """sigma(z) = z (a linear unit)."""
    return z


def _largest(a):
    """True at one unit of ``a``'s last axis where it is largest (the first, on a tie)."""
    return jnp.arange(a.shape[-1]) == jnp.argmax(a, axis=-1, keepdims=True)


def softmax_complement(a):
    """1 - a for softmax outputs ``a`` (over the last axis), without cancellation.

    Where a unit's output nears 1, 1 - a is a difference of nearly equal floats: in float32
    17% off at a margin of 15 over nine equal logits, and 0 once a rounds to 1. The largest
    unit's complement is taken as the sum of the other outputs, which keep their digits;
    every other output is at most 1/2, and 1 - a does not cancel there."""
    top = _largest(a)
    return jnp.where(top, jnp.sum(jnp.where(top, 0, a), axis=-1, keepdims=True), 1 - a)


def _centred(a, v):
    """v - (a . v) along the last axis, for softmax outputs ``a``, without cancellation at the
    largest unit m: there (1 - a_m) v_m - sum_{j != m} a_j v_j, with 1 - a_m from
    :func:`softmax_complement`; elsewhere v_k - a_m v_m - sum_{j != m} a_j v_j. Linear in v."""
    top = _largest(a)
    others = jnp.sum(jnp.where(top, 0, a * v), axis=-1, keepdims=True)
    at_top = jnp.sum(jnp.where(top, a * v, 0), axis=-1, keepdims=True)
    return jnp.where(top, softmax_complement(a) * v, v - at_top) - others


@jax.custom_jvp
def softmax(z):
    """a_j = e^{z_j} / sum_k e^{z_k} over the last axis (max-shifted: never overflows).

    Its derivative rule (below) is da = a * (dz - a . dz) with the bracket written so that it
    does not cancel at a saturated unit (:func:`softmax_complement`); autodiff's gradient
    through softmax, a * (g - a . g), loses the digits of 1 - a there."""
    return jax.nn.softmax(z, axis=-1)


@softmax.defjvp
def _softmax_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    a = softmax(z)
    return a, a * _centred(a, dz)


@jax.custom_jvp
def log_softmax(z):
    """ln softmax(z)_j = (z_j - max z) - ln(1 + s) over the last axis, s = sum of
    e^{z_k - max z} over every unit but one at the maximum, taken as ``log1p(s)``:
    ``jax.nn.log_softmax`` takes the log of the rounded 1 + s, so a saturated unit's value
    (about -s) is 17% off at a margin of 15 over nine equal logits in float32, and 0 from 17.
    Its derivative rule, d ln a = dz - a . dz, does not cancel either (see :func:`softmax`)."""
    c = jnp.max(z, axis=-1, keepdims=True)  # (the rule below gives the derivatives)
    e = jnp.exp(z - c)
    s = jnp.sum(jnp.where(_largest(z), 0, e), axis=-1, keepdims=True)
    return (z - c) - jnp.log1p(s)


@log_softmax.defjvp
def _log_softmax_jvp(primals, tangents):
    (z,), (dz,) = primals, tangents
    return log_softmax(z), _centred(softmax(z), dz)


def maxout(z, pieces: int):
    """Maxout layer: units come in groups of ``pieces``; each output is the max of its group.

    ``z`` has shape (..., n * pieces); the result has shape (..., n). Group j holds units
    ``j * pieces ... (j + 1) * pieces - 1``.
    """
    _checks.positive("pieces", pieces, integer=True)
    if z.shape[-1] % pieces:
        raise ValueError(
            f"pieces: the last axis ({z.shape[-1]} units) must divide into groups of {pieces}"
        )
    return jnp.max(z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces), axis=-1)


ACTIVATIONS = {
    "step": step,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "hard_sigmoid": hard_sigmoid,
    "hard_tanh": hard_tanh,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "prelu": prelu,
    "elu": elu,
    "swish": swish,
    "softplus": softplus,
    "gelu": gelu,
    "identity": identity,
    "softmax": softmax,
}
"""Every activation by name. ``prelu`` takes ``(z, alpha)``; the rest take ``z``."""

HIDDEN = tuple(n for n in ACTIVATIONS if n not in ("softmax",))
"""Activations usable in hidden layers (``step`` too, though it gives zero gradients)."""

OUTPUTS = ("sigmoid", "softmax", "identity")
"""Activations usable in the output layer."""


def get(name: str):
    """The activation called ``name``; ValueError listing the names otherwise."""
    return _checks.lookup("activation", name, ACTIVATIONS)
