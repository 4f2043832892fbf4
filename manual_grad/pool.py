"""Max and average pooling (VALID) and their backward passes, derived by hand.

For a window (kh, kw) and stride (s_h, s_w), output position (i, j) of channel c reads the
window x[n, s_h i + p, s_w j + q, c] for p < kh, q < kw.

- max pooling: y = max over the window, so dC/dx is dy routed to the window's maximum
  (BP for a max: the derivative is 1 at the arg max, 0 elsewhere). A tie goes to the first
  maximum in row-major window order, which is what JAX's autodiff of ``reduce_window`` (and of
  ``jaxnn.layers.pool``) does;
  overlapping windows (stride < window) add their contributions.
- average pooling: y = (1 / (kh kw)) sum over the window, so every input of the window gets
  dy / (kh kw), again added over overlapping windows.

Both are written with kh * kw strided slices of x, one per window offset (p, q).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxnn import layers as jl
from manual_grad.conv import pair


def _check(x, window, stride, dy=None):
    window, stride = pair("window", window), pair("stride", stride)
    if jnp.ndim(x) != 4:
        raise ValueError(f"x: expected NHWC images (N, H, W, C); got shape {jnp.shape(x)}")
    if window[0] > x.shape[1] or window[1] > x.shape[2]:
        raise ValueError(
            f"window: expected at most the {x.shape[1]}x{x.shape[2]} input; got {window}"
        )
    out = tuple(jl.conv_output_size(n, k, s, "VALID")
                for n, k, s in zip(x.shape[1:3], window, stride))
    if dy is not None and jnp.shape(dy) != (x.shape[0], *out, x.shape[3]):
        raise ValueError(
            f"dy: expected dC/dy of shape {(x.shape[0], *out, x.shape[3])}; got {jnp.shape(dy)}"
        )
    return window, stride, out


def _offsets(window):
    return [(p, q) for p in range(window[0]) for q in range(window[1])]


def _window_slice(out, stride, p, q):
    """The index that picks x[:, s_h i + p, s_w j + q, :] for every output (i, j)."""
    return (slice(None), slice(p, p + (out[0] - 1) * stride[0] + 1, stride[0]),
            slice(q, q + (out[1] - 1) * stride[1] + 1, stride[1]), slice(None))


def _scatter(x, parts, window, stride, out):
    """dx = sum over offsets (p, q) of parts[(p, q)] placed at x[:, s_h i + p, s_w j + q, :]."""
    n, h, w, c = x.shape
    if stride == window:  # non-overlapping: interleave the parts by a reshape, no adds
        ho, wo = out
        kh, kw = window
        blocks = jnp.stack(parts).reshape(kh, kw, n, ho, wo, c)
        dx = blocks.transpose(2, 3, 0, 4, 1, 5).reshape(n, ho * kh, wo * kw, c)
        return jnp.pad(dx, ((0, 0), (0, h - ho * kh), (0, w - wo * kw), (0, 0)))
    dx = jnp.zeros_like(x)
    for (p, q), part in zip(_offsets(window), parts):
        dx = dx.at[_window_slice(out, stride, p, q)].add(part)
    return dx


def max_pool(x, *, window, stride):
    """y[n, i, j, c] = max_{p, q} x[n, s_h i + p, s_w j + q, c] (VALID)."""
    window, stride, _ = _check(x, window, stride)
    return jl.pool(x, kind="max", window=window, stride=stride)


def max_pool_backward(dy, x, *, window, stride):
    """dC/dx for y = max_pool(x): each dy goes to its window's (first) maximum."""
    window, stride, out = _check(x, window, stride, dy)
    views = jnp.stack([x[_window_slice(out, stride, p, q)] for p, q in _offsets(window)])
    first = jnp.argmax(views, axis=0)  # the first maximum wins a tie
    parts = [jnp.where(first == k, dy, 0.0).astype(dy.dtype) for k in range(len(views))]
    return _scatter(x, parts, window, stride, out)


def avg_pool(x, *, window, stride):
    """y[n, i, j, c] = (1 / (kh kw)) sum_{p, q} x[n, s_h i + p, s_w j + q, c] (VALID)."""
    window, stride, _ = _check(x, window, stride)
    return jl.pool(x, kind="avg", window=window, stride=stride)


def avg_pool_backward(dy, x, *, window, stride):
    """dC/dx for y = avg_pool(x): every input of a window gets dy / (kh kw)."""
    window, stride, out = _check(x, window, stride, dy)
    share = dy / (window[0] * window[1])
    return _scatter(x, [share] * (window[0] * window[1]), window, stride, out)
