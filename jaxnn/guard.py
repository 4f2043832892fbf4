"""The divergence guard of :func:`jaxnn.train.make_epoch`: what a guarded epoch reports, the
error :func:`jaxnn.train.fit` raises, and the guarded epoch, which checks once per epoch.

``make_epoch(..., on_nan=...)``: ``"stop"`` checks, once at the end of
the epoch, that params, optimizer state and model state are finite; a non-finite entry never
turns finite again (``p + u`` is NaN or inf when ``p`` is; so are the optimizers' running sums),
so this sees every bad step. Only when it fails is the epoch replayed from a copy of its start
with a check after every step, to find the first step whose gradient or new state is not
finite; :func:`jaxnn.train.fit` raises :class:`Diverged` naming the epoch and step. ``"skip"``
runs the same once-per-epoch check; when it fails, the epoch is replayed from its start with
every step checked, leaving params, optimizer state and model state unchanged on a bad step
(inside the compiled step, a ``jnp.where``) and counting it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

ON_NAN = ("stop", "skip")
UNLOCATED = -2
"""``EpochHealth.first_bad_step`` of a ``"stop"`` epoch that ended with a non-finite state
whose replay, step by step, found no bad step (two compilations of the same steps may round
differently); -1 means no bad step."""


class EpochHealth(NamedTuple):
    """What a guarded epoch reports next to (params, opt_state): ``first_bad_step`` (the index
    in the epoch of the first step with a non-finite gradient, params, optimizer state or model
    state after the update, -1 if none, :data:`UNLOCATED` if the epoch ended non-finite but the
    step could not be found) and ``skipped`` (steps whose update was skipped, with
    ``on_nan="skip"``)."""

    first_bad_step: jax.Array
    skipped: jax.Array


class Diverged(ValueError):
    """Training produced NaN or inf (``on_nan="stop"``); names the epoch and step, and the
    settings that scale the updates: ``eta``, and ``l2`` and ``l1`` where they are given and
    non-zero (the weight decay eta * l2 / n can blow up as well as eta can)."""

    def __init__(self, epoch: int, step: int | None, eta=None, *, in_cost: bool = True,
                 l2=None, l1=None):
        self.epoch, self.step = epoch, step
        if step is None and in_cost:  # found in the epoch's training cost
            what = f"the training cost after epoch {epoch}"
        elif step is None:  # found in the state after the epoch, at a step not located
            what = f"the parameters, optimizer or model state after epoch {epoch}"
        else:  # found by the guard inside the compiled epoch
            what = (f"the gradient or the updated parameters, optimizer or model state at "
                    f"epoch {epoch}, step {step}")
        super().__init__(f"training diverged: NaN or inf in {what}; "
                         f"{_likely_cause(eta, l2, l1)}")


def _likely_cause(eta, l2, l1) -> str:
    """The hint of :class:`Diverged`: the learning rate, and the regularization when set."""
    def number(value) -> bool:
        return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool)

    eta_text = f"eta={float(eta):g}" if number(eta) else "eta"
    strong = [(name, float(v)) for name, v in (("l2", l2), ("l1", l1)) if number(v) and v > 0]
    if not strong:
        return f"the learning rate ({eta_text}) is likely too large: try a smaller --eta"
    shown = ", ".join(f"{name}={v:g}" for name, v in strong)
    flags = " or ".join(f"--{name}" for name, _ in strong)
    return (f"the learning rate ({eta_text}) or the regularization ({shown}) is likely too "
            f"large: try a smaller --eta or {flags}")


def all_finite(tree) -> jax.Array:
    """One bool: every floating-point entry of ``tree`` is finite, ``all(isfinite(x))`` per
    leaf joined by logical and (exact: unlike a sum, large finite entries cannot overflow)."""
    ok = jnp.array(True)
    for x in jax.tree_util.tree_leaves(tree):
        if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            ok = ok & jnp.all(jnp.isfinite(x))
    return ok


def checked_epoch(program, on_nan: str):
    """The guarded epoch of :func:`jaxnn.train.make_epoch` for ``on_nan`` ("stop" or "skip"):
    ``program("end")`` runs the epoch with no check inside the loop and one at the end. Only
    when that finds a non-finite state is the epoch replayed (compiled then) from a copy of its
    start, checking every step: ``program("step")`` to name the first bad step ("stop", the
    fast run's state is returned), or ``program("skip")`` to undo the bad steps ("skip", the
    replay's state is returned). A clean epoch (the usual case) costs a copy of the state and
    one check; its result is the unguarded epoch's, as the per-step guard's would be (bit for
    bit on the CPU; on a GPU the two compilations may pick different kernels, so the last bits
    may differ, as they may between any two compilations there)."""
    fast = program("end")
    replay = functools.cache(lambda: program("step" if on_nan == "stop" else "skip"))

    def epoch(params, opt_state, key, data, model_state=None, **progress):  # host: on_step=
        # the fast epoch donates (and the host loop's steps, model_state too): keep a copy
        start = jax.tree_util.tree_map(jnp.copy, (params, opt_state, model_state))
        *out, health = fast(params, opt_state, key, data, model_state, **progress)
        if int(health.first_bad_step) == -1:
            return (*out, health)
        replayed = replay()(*start[:2], key, data, start[2])
        if on_nan == "skip":
            return replayed
        bad = int(replayed[-1].first_bad_step)
        return (*out, EpochHealth(jnp.int32(bad if bad >= 0 else UNLOCATED), health.skipped))

    if hasattr(fast, "steps_per_epoch"):  # a host loop: it reports its steps (the replay not)
        epoch.steps_per_epoch = fast.steps_per_epoch
    return epoch
