"""Backward passes of the parameter-free layers: softmax, maxout, dropout, flatten.

Each ``*_backward`` takes dC/d(output) and returns dC/d(input) (the chain rule through one
layer, written out), with the same leading batch axis. Shapes and settings are checked
(ValueError naming the argument) on shapes only: under ``jax.jit`` that is once, while tracing.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxnn import _checks


def softmax_backward(da, a):
    """dC/dz_j = sum_k dC/da_k * a_k (delta_kj - a_j) = a_j (dC/da_j - sum_k dC/da_k a_k).

    ``a`` = softmax(z) over the last axis (the Jacobian da_k/dz_j = a_k (delta_kj - a_j));
    ``da`` has ``a``'s shape.
    """
    _checks.same_shape("da", da, "a", a)
    return a * (da - jnp.sum(da * a, axis=-1, keepdims=True))


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
