"""Argument checks shared by the library: fail early, name the argument, say what was expected.

Every public entry point validates its inputs here, on the host, before anything is traced, so a
user never sees an XLA traceback for a typo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def choice(arg: str, value: Any, options: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``options``; otherwise a ValueError listing them, with
    the closest option suggested (another case, - for _, or a typo: 'sigmod')."""
    options = list(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{arg}: expected one of {', '.join(options)}; got {value!r}"
                         f"{did_you_mean(value, options)}")
    return value


def did_you_mean(value: Any, options: Iterable[str]) -> str:
    """`` (did you mean 'relu'?)`` for the option ``value`` was most likely meant to be, or ''."""
    if not isinstance(value, str) or not value:
        return ""
    import difflib

    def folded(name: str) -> str:
        return name.lower().replace("-", "_")

    options = list(options)
    close = [o for o in options if folded(o) == folded(value)] or difflib.get_close_matches(
        folded(value), [folded(o) for o in options], n=1, cutoff=0.75)
    if close and close[0] not in options:  # a folded match: name the option as it is spelled
        close = [o for o in options if folded(o) == close[0]]
    return f" (did you mean {close[0]!r}?)" if close else ""


def lookup(arg: str, value: Any, registry: Mapping[str, Any]) -> Any:
    """``registry[value]`` with a ValueError naming ``arg`` and the known names."""
    return registry[choice(arg, value, registry)]


def positive(arg: str, value: Any, *, integer: bool = False) -> Any:
    """A number > 0 (an int when ``integer``)."""
    kind = "a positive integer" if integer else "a positive number"
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{arg}: expected {kind}; got {type(value).__name__} {value!r}")
    if integer and not isinstance(value, int | np.integer):
        raise TypeError(f"{arg}: expected {kind}; got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{arg}: expected {kind}; got {value!r}")
    return value


def non_negative(arg: str, value: Any) -> float:
    """A finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{arg}: expected a number >= 0; got {type(value).__name__} {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{arg}: expected a finite number >= 0; got {value!r}")
    return float(value)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def at_most_float32(arg: str, value: Any) -> Any:
    """A number of magnitude at most float32's largest (3.4e38): a float32 network turns a
    larger learning rate or regularization strength into inf at its first step."""
    if isinstance(value, int | float | np.integer | np.floating) and abs(value) > FLOAT32_MAX:
        raise ValueError(f"{arg}: expected at most float32's largest number, "
                         f"{FLOAT32_MAX:.3g} (the network trains in float32); got {value!r}")
    return value


def in_unit_interval(arg: str, value: Any) -> float:
    """A probability in [0, 1) (dropout rates and the like)."""
    value = non_negative(arg, value)
    if value >= 1.0:
        raise ValueError(f"{arg}: expected a value in [0, 1); got {value!r}")
    return value


def finite_array(arg: str, x: Any) -> None:
    """Reject NaN or inf in data (checked once, before training; a device array is checked on
    its device)."""
    xp = jnp if isinstance(x, jax.Array) else np
    a = x if isinstance(x, jax.Array) else np.asarray(x)
    if jnp.issubdtype(a.dtype, jnp.floating) and not bool(xp.isfinite(a).all()):
        bad = int(np.size(a) - xp.isfinite(a).sum())
        raise ValueError(f"{arg}: expected finite values; got {bad} NaN or inf entries")


def sizes(arg: str, value: Any) -> tuple[int, ...]:
    """Layer sizes: at least two positive integers."""
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{arg}: expected a sequence of positive integers; got {value!r}") from None
    if len(out) < 2 or any(v <= 0 for v in out) or any(v != w for v, w in zip(out, value)):
        raise ValueError(f"{arg}: expected at least two positive integers; got {value!r}")
    return out


# Array checks. They read only shapes and dtypes, which are static under ``jax.jit``: inside a
# jitted function they run once, while tracing, and cost nothing per call.


def _dtype(x: Any):
    import jax.numpy as jnp

    return jnp.result_type(x) if hasattr(x, "dtype") else np.asarray(x).dtype


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(np.shape(x))


def floating_dtype(arg: str, dtype: Any):
    """``dtype`` as a NumPy dtype if it is a floating one (bfloat16 included); TypeError else."""
    import jax.numpy as jnp

    expected = f"{arg}: expected a floating dtype such as float32"
    try:
        out = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{expected}; got {dtype!r}") from None
    if not jnp.issubdtype(out, jnp.floating):
        raise TypeError(f"{expected}; got {out}")
    return out


def floating_array(arg: str, x: Any, hint: str = "") -> None:
    """TypeError unless ``x`` holds floating-point values (``hint`` ends the message)."""
    import jax.numpy as jnp

    dtype = _dtype(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{arg}: expected floating-point values{hint}; got dtype {dtype}")


def same_shape(arg: str, x: Any, other_arg: str, other: Any) -> tuple[int, ...]:
    """ValueError unless ``x`` has the shape of ``other`` (no broadcasting)."""
    want, got = _shape(other), _shape(x)
    if got != want:
        raise ValueError(f"{arg}: expected the shape of {other_arg}, {want}; got {got}")
    return got


def shape(arg: str, x: Any, expected: tuple, what: str = "shape") -> tuple[int, ...]:
    """ValueError unless ``x``'s shape matches ``expected``, whose ints must match exactly and
    whose strings (names such as ``"batch"``) match any size."""
    got = _shape(x)
    if len(got) != len(expected) or any(
        not isinstance(e, str) and e != g for e, g in zip(expected, got)
    ):
        want = "(" + ", ".join(map(str, expected)) + ("," if len(expected) == 1 else "") + ")"
        raise ValueError(f"{arg}: expected {what} {want}; got shape {got}")
    return got


def non_negative_scalar(arg: str, value: Any) -> Any:
    """A finite number >= 0, or a 0-d array of numbers (a traced value is not read)."""
    import jax.numpy as jnp

    if isinstance(value, bool) or value is None or isinstance(value, str):
        raise TypeError(f"{arg}: expected a number >= 0; got {type(value).__name__} {value!r}")
    if isinstance(value, int | float | np.integer | np.floating):
        return non_negative(arg, value)
    if not hasattr(value, "dtype") or not hasattr(value, "shape"):
        raise TypeError(f"{arg}: expected a number >= 0; got {type(value).__name__} {value!r}")
    if np.shape(value) != () or not (jnp.issubdtype(_dtype(value), jnp.floating)
                                     or jnp.issubdtype(_dtype(value), jnp.integer)):
        raise TypeError(
            f"{arg}: expected a number >= 0 or a 0-d numeric array; got {_dtype(value)} "
            f"array of shape {np.shape(value)}"
        )
    return value
