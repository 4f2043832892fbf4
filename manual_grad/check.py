"""Measures for comparing gradients: a relative error that is safe near zero, and central finite
differences on sampled coordinates (plain function evaluations, no differentiation transform).
"""

from __future__ import annotations

import numpy as np

FLOOR = 1e-3
"""Entries below FLOOR x the largest |entry| of their array are compared on that scale."""


def relative_error(actual, expected, *, floor: float = FLOOR) -> float:
    """max_i |actual_i - expected_i| / max(|actual_i|, |expected_i|, floor * max_j |expected_j|).

    An ordinary relative error for the entries that matter, and, for entries that are zero up to
    rounding (where |a - e| / |e| would be meaningless), the error measured against the scale of
    the whole array. 0 when both arrays are all zero; inf on a shape mismatch or NaN.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    diff = np.abs(a - e)
    if not np.all(np.isfinite(diff)):
        return float("inf")
    scale = floor * np.max(np.abs(e))
    denom = np.maximum(np.maximum(np.abs(a), np.abs(e)), scale)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / np.where(denom > 0, denom, 1.0))
    ratio = np.where((diff > 0) & (denom == 0), np.inf, ratio)
    return float(np.max(ratio))


def sample_coordinates(shape, k: int, rng) -> list[tuple[int, ...]]:
    """Up to ``k`` distinct coordinates of an array of ``shape``, drawn with ``rng``."""
    size = int(np.prod(shape, dtype=np.int64))
    flat = rng.choice(size, size=min(k, size), replace=False) if size else []
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat]


def central_difference(fn, leaf, index, h: float = 1e-3) -> float:
    """dfn/dleaf[index] by the central five-point stencil

        f'(t) ~ (f(t - 2h) - 8 f(t - h) + 8 f(t + h) - f(t + 2h)) / 12h,

    whose error is O(h^4): with h = 1e-3 in float64 the truncation error (~h^4 f^(5) / 30) and the
    rounding error (~eps |f| / h) both stay near 1e-13, so a 1e-6 relative agreement is a real
    test even for gradient entries of order 1e-6. ``fn`` maps one array (``leaf`` changed at
    ``index``) to a scalar.
    """
    leaf = np.asarray(leaf, dtype=np.float64)

    def at(step):
        moved = leaf.copy()
        moved[index] += step
        return float(fn(moved))

    return (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h)


def fd_resolution(value: float, h: float = 1e-3) -> float:
    """The absolute resolution of :func:`central_difference` on a function of size ``value``:
    rounding C to float64 (eps |C|) divided by the step, times the stencil's weight sum 18/12.
    Derivatives smaller than this cannot be measured by differences at all."""
    return 1.5 * float(np.finfo(np.float64).eps) * abs(float(value)) / h


def fd_error(fd: float, grad: float, resolution: float, *, tol: float) -> float:
    """|fd - grad| / max(|grad|, |fd|, resolution / tol, 1e-300): the relative error, except
    that an entry too small for differences to resolve is held to the resolution instead
    (<= tol either way); the 1e-300 floor only avoids 0 / 0."""
    return abs(fd - grad) / max(abs(grad), abs(fd), resolution / tol, 1e-300)
