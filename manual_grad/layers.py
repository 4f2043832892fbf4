"""Backward passes of the layers between the weighted ones: softmax, maxout, dropout, flatten,
and batch normalization (whose scale and bias are learned).

Each ``*_backward`` takes dC/d(output) and returns dC/d(input) (the chain rule through one
layer, written out), with the same leading batch axis; ``batch_norm_backward`` also returns
dC/d(scale) and dC/d(bias). Shapes and settings are checked
(ValueError naming the argument) on shapes only: under ``jax.jit`` that is once, while tracing.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxnn import _checks, activations
from jaxnn import layers as jl


def softmax_backward(da, a):
    """dC/dz_j = sum_k dC/da_k * a_k (delta_kj - a_j) = a_j (dC/da_j - sum_k dC/da_k a_k).

    ``a`` = softmax(z) over the last axis (the Jacobian da_k/dz_j = a_k (delta_kj - a_j));
    ``da`` has ``a``'s shape. The bracket is summed so that it does not cancel where the
    largest output a_m nears 1: with r = sum_{k != m} dC/da_k a_k, it is
    (1 - a_m) dC/da_m - r at m (1 - a_m from ``jaxnn.activations.softmax_complement``, the sum
    of the other outputs) and dC/da_j - a_m dC/da_m - r elsewhere; the plain
    dC/da_m - sum_k dC/da_k a_k loses the digits of 1 - a_m.
    """
    _checks.same_shape("da", da, "a", a)
    m = jnp.arange(a.shape[-1]) == jnp.argmax(a, axis=-1, keepdims=True)  # the largest output
    r = jnp.sum(jnp.where(m, 0, da * a), axis=-1, keepdims=True)
    da_m_a_m = jnp.sum(jnp.where(m, da * a, 0), axis=-1, keepdims=True)
    return a * (jnp.where(m, da * activations.softmax_complement(a), da - da_m_a_m) - r)


def maxout_backward(da, z, pieces: int):
    """dC/dz for a = maxout(z, pieces): each group's gradient goes to its maximum.

    ``z`` has shape (..., n * pieces) and ``da`` (..., n). A tie within a group shares the
    gradient equally among the tied units (as JAX's autodiff of ``jnp.max`` does).
    """
    _checks.positive("pieces", pieces, integer=True)
    n_units = jnp.shape(z)[-1] if jnp.ndim(z) else 0
    if jnp.ndim(z) < 1 or n_units % pieces:
        raise ValueError(
            f"pieces: expected a divisor of z's last axis ({n_units} units); got {pieces}"
        )
    _checks.shape("da", da, (*jnp.shape(z)[:-1], n_units // pieces), "dC/da of shape")
    groups = z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces)
    is_max = (groups == jnp.max(groups, axis=-1, keepdims=True)).astype(z.dtype)
    share = is_max / jnp.sum(is_max, axis=-1, keepdims=True)
    return (share * da[..., None]).reshape(z.shape)


def dropout_backward(da, keep, rate: float):
    """Inverted dropout a = keep * x / (1 - rate): dC/dx = keep * dC/da / (1 - rate).

    ``keep`` (the forward pass's mask) has ``da``'s shape; ``rate`` is in [0, 1).
    """
    _checks.same_shape("keep", keep, "da", da)
    if isinstance(rate, int | float):  # a traced rate is not read
        _checks.in_unit_interval("rate", rate)
    return jnp.where(keep, da / (1.0 - rate), 0.0).astype(da.dtype)


def flatten_backward(da, shape):
    """Flatten is a reshape (N, H, W, C) -> (N, H*W*C): its backward reshapes back.

    ``da`` has shape (N, H*W*C) for the input ``shape`` (N, H, W, C).
    """
    shape = tuple(shape)
    _checks.shape("da", da, (shape[0], math.prod(shape[1:])) if shape else (0,),
                  f"dC/da of the flattened {shape}, shape")
    return da.reshape(shape)


def batch_norm_backward(dy, x, scale, *, epsilon=jl.BatchNorm.epsilon):
    """Backward of batch normalization in training mode, y = scale * x_hat + bias with
    x_hat = (x - mu) / sqrt(var + epsilon), mu and the biased var taken over every axis of ``x``
    but the last (N values per feature: the batch, and in a conv layer every position).

    Returns ``(dx, dscale, dbias)`` for ``dy`` = dC/dy of ``x``'s shape:

    - dbias = sum dy,  dscale = sum dy * x_hat  (sums over the N values of each feature);
    - dx = scale / sqrt(var + epsilon) * (dy - mean(dy) - x_hat * mean(dy * x_hat)).

    The last line is the chain rule through mu and var as well as x: every x_i moves the
    batch's mean and variance, so dC/dx_i collects dy from all N values; dy's mean and its
    component along x_hat are what normalising takes away (y is unchanged when a feature of
    x is shifted, and, for epsilon = 0, when it is scaled).
    """
    _checks.same_shape("dy", dy, "x", x)
    if jnp.ndim(x) < 2:
        raise ValueError(f"x: expected a batch (N, ..., features) of at least 2 axes; got shape "
                         f"{jnp.shape(x)}")
    _checks.shape("scale", scale, (jnp.shape(x)[-1],), "one value per feature, shape")
    mean, var = jl.batch_statistics(x)
    inv_std = jax.lax.rsqrt(var + epsilon)
    x_hat = (x - mean) * inv_std
    axes = tuple(range(x.ndim - 1))
    dbias = jnp.sum(dy, axis=axes)
    dscale = jnp.sum(dy * x_hat, axis=axes)
    n = math.prod(x.shape[:-1])
    dx = (scale * inv_std) * (dy - dbias / n - x_hat * (dscale / n))
    return dx, dscale, dbias
