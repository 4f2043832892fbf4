"""Weight initialization schemes for a fully connected layer.

Each scheme is ``scheme(key, n_out, n_in, dtype) -> (w, b)`` with ``w`` of shape (n_out, n_in)
(the book's layout) and ``b`` of shape (n_out,).

| name    | weights                       | biases  |
|---------|-------------------------------|---------|
| large   | N(0, 1)                       | N(0, 1) |
| default | N(0, 1/n_in)  (the book's)    | N(0, 1) |
| xavier  | N(0, 2/(n_in + n_out))        | 0       |
| he      | N(0, 2/n_in)                  | 0       |
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnn import _checks


def _normal(key, shape, std, dtype):
    dtype = _checks.floating_dtype("dtype", dtype)
    return std * jax.random.normal(key, shape, dtype)


def large(key, n_out, n_in, dtype=jnp.float32):
    """Chapter 1: weights and biases N(0, 1); z = w . x + b has std sqrt(sum_k x_k^2 + 1)
    (about 9 on MNIST images; the book's example, 500 inputs of 1 and 500 of 0, gives
    sqrt(501) ~ 22.4), so sigmoids saturate."""
    kw, kb = jax.random.split(key)
    return _normal(kw, (n_out, n_in), 1.0, dtype), _normal(kb, (n_out,), 1.0, dtype)


def default(key, n_out, n_in, dtype=jnp.float32):
    """Chapter 3: weights N(0, 1/n_in) so z has std ~ 1; biases N(0, 1)."""
    kw, kb = jax.random.split(key)
    return _normal(kw, (n_out, n_in), n_in**-0.5, dtype), _normal(kb, (n_out,), 1.0, dtype)


def xavier(key, n_out, n_in, dtype=jnp.float32):
    """Glorot & Bengio (2010), normal form: Var(w) = 2 / (n_in + n_out); biases 0."""
    std = (2.0 / (n_in + n_out)) ** 0.5
    return _normal(key, (n_out, n_in), std, dtype), jnp.zeros((n_out,), dtype)


def he(key, n_out, n_in, dtype=jnp.float32):
    """He et al. (2015), for ReLU: Var(w) = 2 / n_in; biases 0."""
    return _normal(key, (n_out, n_in), (2.0 / n_in) ** 0.5, dtype), jnp.zeros((n_out,), dtype)


SCHEMES = {"large": large, "default": default, "xavier": xavier, "he": he}


def get(name: str):
    """The scheme called ``name``."""
    return _checks.lookup("init", name, SCHEMES)
