"""BP1: the error of the output layer, delta^L = nabla_a C ⊙ sigma'(z^L), per example.

Costs are those of :mod:`jaxnn.costs`; ``C_x`` below is one example's cost, so these deltas are
per example and the mini-batch gradient is their mean (BP3, BP4 divide by m).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxnn import _checks, activations, costs
from manual_grad import layers, primes


def cost_derivative(cost: str, a, y):
    """nabla_a C_x, the textbook derivative of one example's cost in its output activations:

    - quadratic C_x = (1/2)||y - a||^2:                 a - y
    - cross_entropy C_x = -sum y ln a + (1-y) ln(1-a):  (a - y) / (a (1 - a))
    - log_likelihood C_x = -sum y ln a:                 -y / a
    (the last two are what BP1 simplifies away; :func:`output_delta` never divides by a.)
    ``y`` has ``a``'s shape (one-hot rows, not integer labels).
    """
    costs.get(cost)
    _checks.same_shape("y", y, "a", a)
    if cost == "quadratic":
        return a - y
    if cost == "cross_entropy":
        return (a - y) / (a * (1.0 - a))
    return -y / a


def output_delta(cost: str, output_activation: str, z, a, y):
    """BP1: delta^L = nabla_a C_x ⊙ sigma'(z^L), shape (m, n_L), one row per example.

    The book's simplifications are exact, so they are used as such:
    - sigmoid + cross-entropy:   delta^L = a - y   (sigma' cancels the 1/(a(1-a)));
    - softmax + log-likelihood:  delta^L = a (sum_j y_j) - y, which is a - y for one-hot
      rows (the softmax Jacobian cancels -y/a);
    - quadratic + sigmoid:       delta^L = (a - y) ⊙ a (1 - a);
    - quadratic + identity:      delta^L = a - y;
    - quadratic + softmax:       delta^L = J_softmax^T (a - y) = a ⊙ ((a - y) - (a - y)·a).

    For sigmoid and softmax outputs a - y is taken as ``jaxnn.costs.sigmoid_residual(z, y)``
    or as ``jaxnn.costs.softmax_residual`` forms it (from ``a``), the same number written so
    that it does not cancel where a nears a target of 1 (``a - y`` is 17% off at z = 15, or a
    margin of 15 over nine equal logits, in float32, and 0 from 17).

    ``z``, ``a`` and ``y`` have one shape (``y`` one-hot rows, not integer labels; any
    targets in [0, 1] give the gradient of the cost as :mod:`jaxnn.costs` defines it).
    """
    costs.check_pair(cost, output_activation)
    _checks.same_shape("a", a, "z", z)
    _checks.same_shape("y", y, "a", a)
    if output_activation == "sigmoid":  # a - y, without cancelling where a nears y = 1
        g = costs.sigmoid_residual(jnp.asarray(z), y)
        return g if cost == "cross_entropy" else g * primes.activation_prime("sigmoid")(z)
    if output_activation == "identity":  # quadratic: nabla_a C_x = a - y, times sigma' = 1
        return (a - y) * primes.activation_prime(output_activation)(jnp.asarray(z))
    # softmax: a - y as (1 - y) a - y (1 - a), 1 - a summed from the other outputs where a
    # nears 1 (the same number as jaxnn.costs.softmax_residual(z, y), from the a given)
    g = (1 - y) * a - y * activations.softmax_complement(a)
    if cost == "log_likelihood":  # a (sum_j y_j) - y; sum_j y_j - 1 is exactly 0 for one-hot rows
        return g + a * (jnp.sum(y, axis=-1, keepdims=True) - 1)
    return layers.softmax_backward(g, a)  # quadratic: J_softmax^T (a - y)
