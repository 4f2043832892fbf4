"""Argument checks shared by the library: fail early, name the argument, say what was expected.

Every public entry point validates its inputs here, on the host, before anything is traced, so a
user never sees an XLA traceback for a typo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def choice(arg: str, value: Any, options: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``options``; otherwise a ValueError listing them."""
    options = list(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{arg}: expected one of {', '.join(options)}; got {value!r}")
    return value


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


def in_unit_interval(arg: str, value: Any) -> float:
    """A probability in [0, 1) (dropout rates and the like)."""
    value = non_negative(arg, value)
    if value >= 1.0:
        raise ValueError(f"{arg}: expected a value in [0, 1); got {value!r}")
    return value


def finite_array(arg: str, x: Any) -> None:
    """Reject NaN or inf in host data (checked once, before it reaches the device)."""
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        bad = int(np.size(a) - np.isfinite(a).sum())
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
