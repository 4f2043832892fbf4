"""Cost functions C, averaged over the mini-batch, and the weight penalties.

Two forms of each cost:

- the textbook form ``cost(a, y)`` on output activations, exactly as the book writes it; only an
  output of 0 (or a subnormal one) or exactly 1 is moved, to the smallest normal float or the
  float below 1, so it costs a large finite amount instead of inf (every other output's cost and
  gradient are the formula's, the smallest normal float and the float below 1 included, and
  a = y costs exactly 0; a moved output's own term has gradient 0, and second derivatives at
  a = 0 can be NaN, since 1/a^2 overflows at the smallest normal float). An output outside
  [0, 1], where the logarithms are undefined, costs NaN: it is never moved into range;
- the stable form ``from_logits(cost, output_activation)(z, y)`` on the output layer's weighted
  input z, which training uses: softplus and logsumexp never overflow, its gradient at
  |z| = 1e4 is still finite, and an output's a - y does not cancel where it saturates at its
  target of 1 (:func:`sigmoid_residual`, :func:`softmax_residual`).

``y`` is one-hot (or any target in [0, 1]) with the same shape as ``a``; the leading axis is the
mini-batch and every cost is averaged over it: C = (1/m) sum_x C_x. Integer labels (m,) or any
other shape of ``y`` is a ValueError naming ``y``, never a broadcast: shapes are static, so the
check runs once while ``jax.jit`` traces and costs nothing per step.

>>> import jax.numpy as jnp
>>> from jaxnn import costs
>>> a, y = jnp.array([[0.8, 0.2]]), jnp.array([[1.0, 0.0]])
>>> round(float(costs.quadratic(a, y)), 6)       # (1/2) (0.2^2 + 0.2^2)
0.04
>>> round(float(costs.cross_entropy(a, y)), 4)   # -(ln 0.8 + ln 0.8)
0.4463
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnn import _checks, activations


def _y_ln(y, a):
    """y ln a, with a = 0 read as the smallest normal float (ln is -87.3 in float32), so that
    y ln a is 0 where y = 0 and finite everywhere. Any a > 0 is used as it is (clipping at
    machine epsilon instead would cap the cost at 15.9 and zero its gradient below 1.2e-7)."""
    tiny = jnp.finfo(jnp.result_type(a, jnp.float32)).tiny
    # where, not maximum: at a = tiny exactly, maximum's gradient would be split between its two
    # equal arguments, half the formula's; a < 0 is outside the formula and stays NaN
    return y * jnp.log(jnp.where((a >= 0) & (a < tiny), tiny, a))


def _y_ln1m(y, a):
    """y ln(1 - a), with a = 1 read as the float just below 1 (so finite), and 0 where y = 0."""
    below_one = 1.0 - jnp.finfo(jnp.result_type(a, jnp.float32)).epsneg
    # (where: as in _y_ln; a > 1 stays NaN)
    return y * jnp.log1p(-jnp.where((a > below_one) & (a <= 1), below_one, a))


def _batch_mean(per_example):
    return jnp.mean(per_example)


def _check_targets(a, y, arg="a"):
    """ValueError unless ``a`` has a units axis and ``y`` has exactly ``a``'s shape."""
    if jnp.ndim(a) < 1:
        raise ValueError(f"{arg}: expected outputs of shape (m, n_L) or (n_L,); got shape ()")
    _checks.same_shape("y", y, arg, a)


def _half_squared_norm(residual):
    return 0.5 * _batch_mean(jnp.sum(residual**2, axis=-1))


def quadratic(a, y):
    """C = (1/2m) sum_x ||y(x) - a(x)||^2."""
    _check_targets(a, y)
    return _half_squared_norm(a - y)


def sigmoid_residual(z, y):
    """sigma(z) - y, written (1 - y) sigma(z) - y sigma(-z) so that it does not cancel.

    ``sigmoid(z) - y`` loses the digits of a saturated output: where sigma(z) nears a target
    of 1, 1 - sigma(z) = sigma(-z) is a difference of nearly equal floats, 4.6e-4 off (relative)
    at z = 10 in float32, 17% at z = 15, and 0 from z = 17, where sigma(z) rounds to 1 (in
    float64 from z = 37). The two forms are equal for any y (sigma(z) + sigma(-z) = 1); for
    the one-hot targets of training, this one is sigma(z) exactly where y = 0 and -sigma(-z)
    where y = 1: within 1.4e-7 (relative) of the exact value in float32 for |z| <= 80. The
    quadratic cost's stable form uses it, and so do :func:`manual_grad.output_delta`'s sigmoid
    outputs. ``y`` must have ``z``'s shape (ValueError naming ``y`` otherwise)."""
    _check_targets(z, y, "z")
    return (1 - y) * activations.sigmoid(z) - y * activations.sigmoid(-z)


def softmax_residual(z, y):
    """softmax(z) - y, written (1 - y) a - y (1 - a) with 1 - a from
    :func:`jaxnn.activations.softmax_complement`, so that it does not cancel.

    ``softmax(z) - y`` loses the digits of a saturated output: where a = softmax(z)_k nears a
    target of 1, a - 1 is a difference of nearly equal floats: in float32, with nine other
    logits equal, 4e-4 off (relative) at a margin of 10 over them, 17% at 15, and 0 from 17.
    This form is the same number for any y; for one-hot targets every unit is within 1e-5 of
    the exact value in float32 for margins up to 40 (most of that is the rounding of
    z_j - max z itself; tests/test_costs.py). It is the log-likelihood's gradient in z for
    targets that sum to 1 (:func:`manual_grad.output_delta`) and the quadratic cost's residual
    for softmax outputs. ``y`` must have ``z``'s shape (ValueError naming ``y`` otherwise)."""
    _check_targets(z, y, "z")
    a = activations.softmax(z)
    return (1 - y) * a - y * activations.softmax_complement(a)


def cross_entropy(a, y):
    """The book's cross-entropy for sigmoid outputs:
    C = -(1/m) sum_x sum_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]."""
    _check_targets(a, y)
    return -_batch_mean(jnp.sum(_y_ln(y, a) + _y_ln1m(1 - y, a), axis=-1))


def log_likelihood(a, y):
    """Log-likelihood for softmax outputs: C = -(1/m) sum_x ln a_{y(x)} = -(1/m) sum_x y . ln a."""
    _check_targets(a, y)
    return -_batch_mean(jnp.sum(_y_ln(y, a), axis=-1))


COSTS = {"quadratic": quadratic, "cross_entropy": cross_entropy, "log_likelihood": log_likelihood}

VALID_OUTPUTS = {
    "quadratic": ("sigmoid", "softmax", "identity"),
    "cross_entropy": ("sigmoid",),
    "log_likelihood": ("softmax",),
}
"""Output activations each cost is defined for (cross-entropy needs a in (0, 1) per unit;
log-likelihood needs a probability distribution)."""

PAIRS = tuple((c, o) for c, outs in VALID_OUTPUTS.items() for o in outs)
"""Every valid (cost, output activation) pair."""


def get(name: str):
    """The textbook cost ``cost(a, y)`` called ``name``."""
    return _checks.lookup("cost", name, COSTS)


def check_pair(cost: str, output_activation: str) -> None:
    """ValueError unless ``cost`` is defined for ``output_activation``."""
    _checks.choice("cost", cost, COSTS)
    _checks.choice("output_activation", output_activation, activations.OUTPUTS)
    if output_activation not in VALID_OUTPUTS[cost]:
        allowed = " or ".join(repr(o) for o in VALID_OUTPUTS[cost])
        raise ValueError(f"cost: {cost!r} needs the output activation {allowed}; got "
                         f"{output_activation!r}")


def from_logits(cost: str, output_activation: str):
    """``fn(z, y) -> C``: the cost of ``output_activation(z)``, in a numerically stable form.

    - cross_entropy + sigmoid: C_x = sum_j [y_j softplus(-z_j) + (1 - y_j) softplus(z_j)]
    - log_likelihood + softmax: C_x = -sum_j y_j ln softmax(z)_j, with
      :func:`jaxnn.activations.log_softmax`, whose value and derivative rule keep their
      digits where the output saturates
    - quadratic: (1/2) ||a - y||^2, with a - y from :func:`sigmoid_residual` or
      :func:`softmax_residual` (it has no logs to overflow, but ``a - y`` cancels where the
      output saturates at its target of 1).

    ``y`` must have ``z``'s shape (ValueError naming ``y`` otherwise).
    """
    check_pair(cost, output_activation)
    if cost == "cross_entropy":

        def ce(z, y):
            _check_targets(z, y, "z")
            per_unit = y * jnp.logaddexp(0.0, -z) + (1 - y) * jnp.logaddexp(0.0, z)
            return _batch_mean(jnp.sum(per_unit, axis=-1))

        return ce
    if cost == "log_likelihood":

        def ll(z, y):
            _check_targets(z, y, "z")
            return -_batch_mean(jnp.sum(y * activations.log_softmax(z), axis=-1))

        return ll
    sigma = activations.get(output_activation)

    def quad(z, y):
        _check_targets(z, y, "z")
        if output_activation == "sigmoid":
            return _half_squared_norm(sigmoid_residual(z, y))
        if output_activation == "softmax":
            return _half_squared_norm(softmax_residual(z, y))
        return _half_squared_norm(sigma(z) - y)

    return quad


WEIGHT_NAMES = ("w", "kernel")
"""Leaf names that hold weights (penalized); biases, slopes and norm scales are not."""


def weight_mask(params):
    """A pytree of bools, True at the weight leaves (``w`` in jaxnn.mlp, ``kernel`` in Flax,
    also inside an NNX ``State`` of ``nnx.Param`` Variables, whose leaf path ends in ``.value``)."""

    def is_weight(path, _):
        names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        if names and names[-1] == "value":  # a Flax NNX Variable's array: its owner names it
            names = names[:-1]
        return bool(names) and names[-1] in WEIGHT_NAMES

    return jax.tree_util.tree_map_with_path(is_weight, params)


def _weights(params):
    leaves = jax.tree_util.tree_leaves(params)
    mask = jax.tree_util.tree_leaves(weight_mask(params))
    return [w for w, m in zip(leaves, mask) if m]


def l2_penalty(params, scale=1.0):
    """(scale / 2) sum_w w^2 over the weights only. The book's chapter 3 uses scale = lambda / n."""
    return 0.5 * scale * sum(jnp.sum(w**2) for w in _weights(params))


def l1_penalty(params, scale=1.0):
    """scale * sum_w |w| over the weights only. The book's chapter 3 uses scale = lambda / n.

    Its gradient is scale * sgn(w) with sgn(0) = 0, the book's convention (a weight at 0 is
    not pushed either way); ``jnp.abs``'s own gradient at 0 would be 1. Written as
    ``w * stop_gradient(sgn(w))``, which equals |w| everywhere."""
    return scale * sum(jnp.sum(w * jax.lax.stop_gradient(jnp.sign(w))) for w in _weights(params))
