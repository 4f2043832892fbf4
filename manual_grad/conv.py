"""2-D convolution (cross-correlation) and its backward pass, derived by hand.

Layouts: x is NHWC (N, H, W, C_in), w is HWIO (kh, kw, C_in, C_out), b is (C_out,).
With the input padded by (p_top, p_bottom) rows and (p_left, p_right) columns into x_p,

    z[n, i, j, o] = b[o] + sum_{p, q, c} x_p[n, s_h i + p, s_w j + q, c] w[p, q, c, o]

so, for an incoming error dy = dC/dz of shape (N, H_out, W_out, C_out):

    db[o]          = sum_{n, i, j} dy[n, i, j, o]
    dw[p, q, c, o] = sum_{n, i, j} x_p[n, s_h i + p, s_w j + q, c] dy[n, i, j, o]
                     (x_p correlated with dy dilated by the stride: the batch is summed over)
    dx_p[n, h, w, c] = sum_{i, j, o: s_h i + p = h, s_w j + q = w} dy[n, i, j, o] w[p, q, c, o]
                     (dy dilated by the stride, correlated with w flipped in space and with
                      C_in and C_out swapped: a "transposed convolution"), cropped to x.

Each sum is itself a cross-correlation, so all three are computed with
``jax.lax.conv_general_dilated`` (a forward convolution op, not a differentiation transform).
Padding "VALID" means none; "SAME" means jax.lax's: H_out = ceil(H / s_h), total padding
max((H_out - 1) s_h + kh - H, 0), the odd row at the end (bottom/right).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnn import _checks
from jaxnn import layers as jl


def pair(arg: str, v) -> tuple[int, int]:
    """An int or a pair of positive ints, as a pair."""
    return jl._pair(arg, v)


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """jax.lax's SAME padding (before, after) along one axis: out = ceil(n / s)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def paddings(x_shape, w_shape, stride, padding) -> list[tuple[int, int]]:
    """[(top, bottom), (left, right)] for ``padding`` "VALID" or "SAME"."""
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    return [same_padding(n, k, s) for n, k, s in zip(x_shape[1:3], w_shape[:2], stride)]


def _check(x, w, stride, padding, b=None, dy=None):
    stride = pair("stride", stride)
    _checks.choice("padding", padding, ("VALID", "SAME"))
    if jnp.ndim(x) != 4:
        raise ValueError(f"x: expected NHWC images (N, H, W, C_in); got shape {jnp.shape(x)}")
    if jnp.ndim(w) != 4 or w.shape[2] != x.shape[3]:
        raise ValueError(
            f"w: expected an HWIO kernel (kh, kw, {x.shape[3]}, C_out); got shape {jnp.shape(w)}"
        )
    if padding == "VALID" and (w.shape[0] > x.shape[1] or w.shape[1] > x.shape[2]):
        raise ValueError(
            f"w: a VALID kernel must fit the {x.shape[1]}x{x.shape[2]} input; got {w.shape[:2]}"
        )
    if b is not None and jnp.shape(b) != (w.shape[3],):
        raise ValueError(f"b: expected shape ({w.shape[3]},); got {jnp.shape(b)}")
    if dy is not None:
        out = tuple(jl.conv_output_size(n, k, s, padding)
                    for n, k, s in zip(x.shape[1:3], w.shape[:2], stride))
        expected = (x.shape[0], *out, w.shape[3])
        if jnp.shape(dy) != expected:
            raise ValueError(f"dy: expected dC/dz of shape {expected}; got {jnp.shape(dy)}")
    return stride


def conv2d(x, w, b, *, stride=1, padding="VALID"):
    """z = x ⋆ w + b (cross-correlation, every framework's "convolution"); NHWC in and out."""
    stride = _check(x, w, stride, padding, b=b)
    return jl.conv(x, w, b, stride=stride, padding=padding)


def conv2d_backward(dy, x, w, *, stride=1, padding="VALID"):
    """``(dx, dw, db)`` = (dC/dx, dC/dw, dC/db) given dy = dC/dz for z = conv2d(x, w, b).

    The three sums of the module docstring; dx has x's shape, dw w's, db (C_out,).
    """
    stride = _check(x, w, stride, padding, dy=dy)
    (sh, sw), (kh, kw) = stride, w.shape[:2]
    (H, W), (Ho, Wo) = x.shape[1:3], dy.shape[1:3]
    (pt, _), (pl, _) = paddings(x.shape, w.shape, stride, padding)

    db = jnp.sum(dy, axis=(0, 1, 2))

    # dw: correlate x_p (channels as the batch, the batch as features) with the stride-dilated
    # dy (examples as input features); the padding after is chosen so exactly kh x kw positions
    # come out (negative: rows the forward pass never reached are cropped).
    dw = jax.lax.conv_general_dilated(
        x, dy, window_strides=(1, 1),
        padding=[(pt, kh + (Ho - 1) * sh - H - pt), (pl, kw + (Wo - 1) * sw - W - pl)],
        rhs_dilation=(sh, sw), dimension_numbers=("CHWN", "IHWO", "HWNC"),
    )

    # dx: the transposed convolution. Dilating dy by the stride and padding it by kh - 1 - top
    # before and H + top - 1 - (Ho - 1) sh after gives exactly H rows of dx.
    dx = jax.lax.conv_general_dilated(
        dy, jnp.flip(w, axis=(0, 1)), window_strides=(1, 1),
        padding=[(kh - 1 - pt, H + pt - 1 - (Ho - 1) * sh),
                 (kw - 1 - pl, W + pl - 1 - (Wo - 1) * sw)],
        lhs_dilation=(sh, sw), dimension_numbers=("NHWC", "HWOI", "NHWC"),
    )
    return dx, dw, db
