"""Backward passes of the parameter-free layers: softmax, maxout, dropout, flatten.

Each ``*_backward`` takes dC/d(output) and returns dC/d(input) (the chain rule through one
layer, written out), with the same leading batch axis.
"""

from __future__ import annotations

import jax.numpy as jnp


def softmax_backward(da, a):
    """dC/dz_j = sum_k dC/da_k * a_k (delta_kj - a_j) = a_j (dC/da_j - sum_k dC/da_k a_k).

    ``a`` = softmax(z) over the last axis (the Jacobian da_k/dz_j = a_k (delta_kj - a_j)).
    """
    return a * (da - jnp.sum(da * a, axis=-1, keepdims=True))


def maxout_backward(da, z, pieces: int):
    """dC/dz for a = maxout(z, pieces): each group's gradient goes to its maximum.

    ``z`` has shape (..., n * pieces) and ``da`` (..., n). A tie within a group shares the
    gradient equally among the tied units (as JAX's autodiff of ``jnp.max`` does).
    """
    groups = z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces)
    is_max = (groups == jnp.max(groups, axis=-1, keepdims=True)).astype(z.dtype)
    share = is_max / jnp.sum(is_max, axis=-1, keepdims=True)
    return (share * da[..., None]).reshape(z.shape)


def dropout_backward(da, keep, rate: float):
    """Inverted dropout a = keep * x / (1 - rate): dC/dx = keep * dC/da / (1 - rate)."""
    return jnp.where(keep, da / (1.0 - rate), 0.0).astype(da.dtype)


def flatten_backward(da, shape):
    """Flatten is a reshape (N, H, W, C) -> (N, H*W*C): its backward reshapes back."""
    return da.reshape(shape)
