"""manual_grad.check, the judge of every hand-vs-autodiff and hand-vs-differences test: known
answers for relative_error, central_difference, fd_resolution, fd_error and sample_coordinates,
each derived from the function's docstring and the maths (float64)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from manual_grad.check import (
    FLOOR,
    central_difference,
    fd_error,
    fd_resolution,
    relative_error,
    sample_coordinates,
)

F64 = jnp.float64
EPS = 2.0**-52  # float64 machine epsilon
INF = float("inf")
NAN = float("nan")

pytestmark = pytest.mark.usefixtures("float64")  # conftest: x64 for this module

finite_arrays = hnp.arrays(
    np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    # no entries within 2^40 of the subnormals, so that scaling by 2^-40 stays exact
    elements=st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: 0.0 if abs(v) < 1e-200 else v))


# ---------------------------------------------------------------------------------- relative_error

def test_relative_error_of_a_one_part_in_a_million_change_is_one_in_a_million():
    """|1 - e| / max(1, e) with e = 1 + 1e-6: (e - 1) / e, about 1e-6."""
    e = 1.0 + 1e-6
    assert relative_error([1.0], [e]) == pytest.approx((e - 1) / e, rel=1e-12)
    assert relative_error([1.0], [e]) == pytest.approx(1e-6, rel=1e-5)
    assert relative_error([e], [1.0]) == pytest.approx((e - 1) / e, rel=1e-12)


def test_relative_error_is_the_worst_entry():
    """The max over entries: 0.2 / 2.2 from the middle one, 0 from the others."""
    assert relative_error([1.0, 2.0, 3.0], [1.0, 2.2, 3.0]) == pytest.approx(0.2 / 2.2, rel=1e-12)
    assert relative_error([[1.0, -4.0]], [[1.5, -4.0]]) == pytest.approx(0.5 / 1.5, rel=1e-12)


def test_relative_error_of_opposite_signs_is_two():
    """|a - (-a)| / max(|a|, |-a|) = 2 for every nonzero entry."""
    assert relative_error([2.0, -3.0], [-2.0, 3.0]) == 2.0
    assert relative_error([1e-300], [-1e-300]) == 2.0


def test_relative_error_of_all_zeros_is_zero():
    """Documented: 0 when both arrays are all zero (0 / 0 is not a NaN here), empty ones too."""
    assert relative_error(np.zeros(4), np.zeros(4)) == 0.0
    assert relative_error(np.zeros((2, 3)), -np.zeros((2, 3))) == 0.0
    assert relative_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0


def test_relative_error_of_zero_against_nonzero_is_one():
    """|0 - e| / max(0, |e|, floor |e|) = 1; and against an all-zero expected array (floor
    scale 0) the denominator is |a| itself: 1 again, not inf."""
    assert relative_error([0.0, 0.0], [0.0, 5.0]) == 1.0
    assert relative_error([0.0, 5.0], [0.0, 0.0]) == 1.0
    assert relative_error([1e-12, 0.0], [0.0, 0.0]) == 1.0


def test_relative_error_holds_near_zero_entries_to_the_arrays_scale():
    """An entry of 1e-8 beside one of 1 is compared on FLOOR x 1 = 1e-3: an error of 1e-9
    there counts 1e-9 / 1e-3 = 1e-6, not 1e-9 / 1.1e-8 = 1/11 (which floor=0 gives)."""
    assert FLOOR == 1e-3
    expected, actual = [1.0, 1e-8], [1.0, 1e-8 + 1e-9]
    assert relative_error(actual, expected) == pytest.approx(1e-9 / FLOOR, rel=1e-6)
    assert relative_error(actual, expected, floor=0.0) == pytest.approx(1 / 11, rel=1e-6)
    assert relative_error(actual, expected, floor=1e-2) == pytest.approx(1e-7, rel=1e-6)
    # the scale is the expected array's largest entry: x 1000 everywhere, the same answer
    big = relative_error(np.multiply(actual, 1e3), np.multiply(expected, 1e3))
    assert big == pytest.approx(1e-6, rel=1e-6)


@pytest.mark.parametrize("actual, expected", [
    (np.ones(3), np.ones(4)),
    (np.ones(3), np.ones((3, 1))),  # would broadcast; still a mismatch
    (np.ones((1, 3)), np.ones(3)),
    (np.ones(()), np.ones(1)),
])
def test_relative_error_of_a_shape_mismatch_is_inf(actual, expected):
    assert relative_error(actual, expected) == INF


@pytest.mark.parametrize("actual, expected", [
    ([NAN], [1.0]), ([1.0], [NAN]), ([NAN], [NAN]), ([1.0, NAN], [1.0, 2.0]),
])
def test_relative_error_with_a_nan_is_inf(actual, expected):
    """Documented: inf on NaN, including NaN against NaN, never NaN (NaN <= tol is False, but
    inf also says which way it failed)."""
    assert relative_error(actual, expected) == INF


@given(finite_arrays)
def test_relative_error_of_an_array_with_itself_is_zero(x):
    assert relative_error(x, x) == 0.0


@given(finite_arrays)
def test_relative_error_of_an_array_against_its_negative_is_two(x):
    assert relative_error(x, -x) == (2.0 if np.any(x) else 0.0)


@given(finite_arrays, st.integers(-40, 40), st.integers(0, 2**32 - 1))
def test_relative_error_is_scale_free_and_bounded_by_the_entrywise_relative_change(x, p, seed):
    """actual = expected (1 + r): each ratio is |r_i e_i| / max(|a_i|, |e_i|, ...) <= |r_i|,
    and the largest entry of expected reaches |r| / (1 + |r|) at least. Scaling both by 2^p
    (exact) changes nothing."""
    r = np.random.default_rng(seed).uniform(-0.5, 0.5, x.shape)
    a = x * (1 + r)
    err = relative_error(a, x)
    assert err <= np.max(np.abs(r), initial=0.0) * (1 + 1e-12)
    if np.any(x):
        top = np.argmax(np.abs(x))
        assert err >= abs(r.flat[top]) / (1 + abs(r.flat[top])) * (1 - 1e-12)
    assert relative_error(a * 2.0**p, x * 2.0**p) == err


# ---------------------------------------------------------------------------------- differences

def cubes(v):
    return jnp.sum(jnp.asarray(v) ** 3)


def fourths(v):
    return jnp.sum(jnp.asarray(v) ** 4)


@given(hnp.arrays(np.float64, (2, 3), elements=st.floats(-2, 2)))
def test_central_difference_of_a_cubic_is_3t2(leaf):
    """The five-point stencil is exact up to degree 4, so only rounding (~eps |f| / h < 1e-11
    here) is left: within 1e-10 of 3 t^2 at every index. The three-point (f(t+h) - f(t-h)) / 2h
    would be off by h^2 = 1e-6. Only the indexed entry moves (else the sum of all 3 t^2), and
    the leaf itself is left as it was."""
    before = leaf.copy()
    for index in np.ndindex(leaf.shape):
        assert central_difference(cubes, leaf, index) == pytest.approx(3 * leaf[index] ** 2,
                                                                      abs=1e-10)
        assert central_difference(fourths, leaf, index) == pytest.approx(4 * leaf[index] ** 3,
                                                                        abs=1e-10)
    np.testing.assert_array_equal(leaf, before)


def test_central_difference_on_a_0d_leaf_and_an_exact_step():
    """A 0-d leaf (a prelu slope) with index (); a large step still exact for a cubic."""
    leaf = np.asarray(1.5)
    assert central_difference(cubes, leaf, ()) == pytest.approx(3 * 1.5**2, abs=1e-10)
    assert central_difference(cubes, leaf, (), h=0.25) == pytest.approx(3 * 1.5**2, abs=1e-12)


def test_central_difference_truncation_error_is_h4_f5_over_30():
    """For sin, f^(5) = cos: the error is h^4 cos(xi) / 30, so it is at most h^4 / 30 and
    halving h divides it by about 16 (a second-order rule: 4)."""
    t = 0.3
    errors = []
    for h in (0.2, 0.1):
        d = central_difference(lambda v: jnp.sum(jnp.sin(v)), np.asarray([t]), (0,), h=h)
        errors.append(abs(d - math.cos(t)))
        assert errors[-1] <= h**4 / 30 and errors[-1] >= 0.5 * h**4 / 30 * math.cos(t + 2 * h)
    assert 14 < errors[0] / errors[1] < 18


def test_fd_resolution_is_the_stencils_rounding_over_the_step():
    """1.5 eps |C| / h, from 18/12 (the stencil's weights) x eps |C| / h."""
    assert fd_resolution(1.0) == pytest.approx(1.5 * EPS / 1e-3, rel=1e-15)
    assert fd_resolution(-2.0, h=1e-2) == pytest.approx(1.5 * EPS * 2 / 1e-2, rel=1e-15)
    assert fd_resolution(0.0) == 0.0


def test_central_difference_rounding_stays_within_fd_resolution():
    """f(v) = C + g v with a large C: the difference's error is all rounding of f, about half
    of fd_resolution(C) at worst (f rounded to half an ulp), and it does reach a tenth of it, so
    the resolution is neither too small nor far too large."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(300):
        c, g, t = rng.uniform(100, 1e4), rng.uniform(-1, 1), rng.uniform(-1, 1)
        d = central_difference(lambda v, c=c, g=g: c + g * v[0], np.asarray([t]), (0,))
        ratio = abs(d - g) / fd_resolution(c + g * t)
        assert ratio <= 1.0, (c, g, t, d)
        worst = max(worst, ratio)
    assert worst >= 0.1


# ---------------------------------------------------------------------------------- fd_error

def test_fd_error_known_answers():
    """|fd - g| / max(|g|, |fd|, resolution / tol, 1e-300)."""
    assert fd_error(1.0 + 1e-7, 1.0, 0.0, tol=1e-6) == pytest.approx(1e-7 / (1 + 1e-7),
                                                                     rel=1e-8)
    assert fd_error(3.0, -3.0, 1e-13, tol=1e-6) == 2.0  # a flipped sign
    assert fd_error(0.0, 0.0, 0.0, tol=1e-6) == 0.0  # 0 / 1e-300, not NaN
    assert fd_error(2.0, 0.0, 0.0, tol=1e-6) == 1.0  # over |fd| when the gradient is 0
    assert fd_error(0.0, 2.0, 0.0, tol=1e-6) == 1.0
    # an entry below what differences resolve: held to the resolution, 5e-14 / (1e-13 / 1e-6)
    assert fd_error(0.0, 5e-14, 1e-13, tol=1e-6) == pytest.approx(5e-7, rel=1e-12)
    assert fd_error(0.0, 5e-14, 0.0, tol=1e-6) == 1.0  # without it: a full miss


@given(st.floats(-1e3, 1e3), st.floats(0, 1), st.floats(1e-15, 1e-9),
       st.sampled_from([1e-6, 1e-4]))
def test_fd_error_passes_whatever_lies_within_the_resolution(grad, frac, resolution, tol):
    """Documented: an error no larger than the resolution is <= tol, whatever the size of the
    entry (the difference cannot tell it from 0)."""
    # (+ eps: grad + frac resolution rounds by up to an ulp of grad, over a denominator >= |grad|)
    assert fd_error(grad + frac * resolution, grad, resolution, tol=tol) <= tol + 2.3e-16


def test_fd_error_passes_a_true_gradient_and_fails_a_flipped_or_slightly_wrong_one():
    """C(v) = sum sin(v) v^2 + 0.1 sum v, differentiated by jax.grad, against central
    differences at h = 1e-3: within 1e-6 everywhere; a flipped sign gives 2, a 1e-4 relative
    slip more than 1e-6, at every entry that differences resolve."""
    def cost(v):
        v = jnp.asarray(v, F64)
        return jnp.sum(jnp.sin(v) * v**2) + 0.1 * jnp.sum(v)

    leaf = np.random.default_rng(1).normal(0, 2, (4, 5))
    grad = np.asarray(jax.grad(cost)(jnp.asarray(leaf)))
    resolution = fd_resolution(cost(leaf))
    resolved = 0
    for index in np.ndindex(leaf.shape):
        fd = central_difference(cost, leaf, index)
        assert fd_error(fd, grad[index], resolution, tol=1e-6) <= 1e-6, index
        if abs(grad[index]) > resolution / 1e-6:
            resolved += 1
            assert fd_error(fd, -grad[index], resolution, tol=1e-6) == pytest.approx(2, rel=1e-6)
            assert fd_error(fd, grad[index] * (1 + 1e-4), resolution, tol=1e-6) > 1e-6, index
    assert resolved >= 18


# ---------------------------------------------------------------------------------- coordinates

@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), st.integers(0, 10),
       st.integers(0, 2**32 - 1))
def test_sample_coordinates_are_distinct_in_bounds_and_min_k_size(shape, k, seed):
    size = math.prod(shape)
    coords = sample_coordinates(shape, k, np.random.default_rng(seed))
    assert len(coords) == min(k, size)
    assert len(set(coords)) == len(coords)
    for c in coords:
        assert isinstance(c, tuple) and len(c) == len(shape)
        assert all(type(i) is int and 0 <= i < n for i, n in zip(c, shape))
    if k >= size:
        assert set(coords) == set(np.ndindex(shape))
    assert coords == sample_coordinates(shape, k, np.random.default_rng(seed))


def test_sample_coordinates_of_a_scalar_and_of_an_empty_array():
    assert sample_coordinates((), 3, np.random.default_rng(0)) == [()]
    assert sample_coordinates((0, 3), 3, np.random.default_rng(0)) == []
