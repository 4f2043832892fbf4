"""Checkpoints of a training run with orbax: save every N epochs, resume from the last good one.

A checkpoint of :class:`jaxnn.train.TrainState` after epoch k (orbax step k) lives in
``RUN_DIR/checkpoints/<k>/`` and holds two items:

- ``state``: the leaves of ``(params, opt_state, key)``, and of ``model_state`` for a model
  that has one (a :mod:`jaxnn.cnn` network: batch-norm statistics), as numbered arrays (orbax
  ``StandardSave``);
- ``meta``: JSON with the epoch, the history (one record per epoch so far), the tree structure,
  each leaf's shape and dtype, a sha256 ``digest`` of every leaf's bytes, and ``extra`` settings
  (``checkpoint_every``, ``on_nan``).

Writes are atomic: orbax writes a step into a temporary directory and renames it when the write
is complete, so a run killed mid-save leaves no step directory (the temporary one is ignored,
and removed by the next save). A step that exists but does not restore, or whose arrays do
not match the digest (a damaged file), is reported and the previous step is used.

Because the epoch key is split from ``state.key``, the state after epoch k determines the rest
of the run: resuming gives the same parameters, bit for bit on the same device with the same
jax and jaxlib, as a run that was never interrupted (on the CPU; on a GPU only with
``--xla_gpu_deterministic_ops=true``, since a resumed process compiles again and may get other
kernels).
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import _checks
from jaxnn.train import TrainState

CHECKPOINT_DIR = "checkpoints"
FORMAT = 1


class CheckpointWarning(UserWarning):
    """A checkpoint step was skipped because it is incomplete or corrupt."""


class Restored(NamedTuple):
    """What :meth:`Checkpointer.restore` returns: the ``state`` and ``history`` of the newest
    good step, that ``epoch``, its ``extra`` settings, and the ``problems`` met on the way
    (one line per skipped step)."""

    state: TrainState
    history: list[dict]
    epoch: int
    extra: dict
    problems: list[str]


def _flatten(state: TrainState):
    """Numbered host arrays of what a checkpoint holds, their tree structure, and whether
    the key is a typed PRNG key. A state without ``model_state`` (an MLP) flattens as
    ``(params, opt_state, key)``, as checkpoints did before CNN states were saved."""
    key = state.key
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if typed:
        key = jax.random.key_data(key)
    tree = (state.params, state.opt_state, key)
    if state.model_state is not None:
        tree = (*tree, state.model_state)
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    arrays = {f"{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    return arrays, treedef, typed


def digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes (in name order)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _leaf_specs(arrays):
    return [[list(a.shape), a.dtype.str] for _, a in sorted(arrays.items())]


def _quiet_stray_loop_callbacks() -> None:
    """After a failed read of a step's arrays, tensorstore may finish the other reads in flight
    on the event loop that orbax's ``asyncio.run`` has closed by then: each prints "Exception
    ignored ... RuntimeError: Event loop is closed" to stderr, at random and after the warning
    that names the damaged step. Installed before the first read of a step's arrays (once
    the read has failed, a stray callback can already have fired), this process drops exactly
    those unraisable errors; every other one still reaches the hook that was there before."""
    previous = sys.unraisablehook
    if getattr(previous, "jaxnn_quiet_closed_loop", False):
        return

    def hook(unraisable):
        error = unraisable.exc_value
        if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
            return
        previous(unraisable)

    hook.jaxnn_quiet_closed_loop = True
    sys.unraisablehook = hook


class Checkpointer:
    """Saves and restores :class:`~jaxnn.train.TrainState` in ``run_dir/checkpoints/``,
    keeping the newest ``max_to_keep`` steps (older ones are the fallback if the newest is
    damaged)."""

    def __init__(self, run_dir: str | Path, *, max_to_keep: int = 3):
        import orbax.checkpoint as ocp

        _checks.positive("max_to_keep", max_to_keep, integer=True)
        self._ocp = ocp
        self.directory = Path(run_dir).absolute() / CHECKPOINT_DIR
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False,
            cleanup_tmp_directories=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def _all_steps(self) -> list[int]:
        self.manager.reload()
        return list(self.manager.all_steps())

    def steps(self) -> list[int]:
        """Complete steps on disk (epochs with a checkpoint), oldest first."""
        return sorted(self._all_steps())

    def save(self, state: TrainState, history: Sequence[dict] = (), *,
             extra: dict | None = None) -> Path:
        """Write ``state`` as step ``state.epoch``, atomically, and wait until it is on disk."""
        ocp = self._ocp
        arrays, treedef, typed = _flatten(state)
        meta = {
            "format": FORMAT,
            "epoch": int(state.epoch),
            "history": list(history),
            "treedef": str(treedef),
            "typed_key": typed,
            "leaves": _leaf_specs(arrays),
            "digest": digest(arrays),
            "extra": dict(extra or {}),
        }
        step = int(state.epoch)
        if step in self._all_steps():
            self.manager.delete(step)  # a step left by a run we resumed from an older one
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()
        return self.directory / str(step)

    def restore(self, template: TrainState, *, warn: bool = True) -> Restored:
        """The newest step that restores and matches its digest, shaped like ``template``
        (a fresh state of the same network and optimizer).

        FileNotFoundError if there is no step; ValueError if the checkpoints were written for
        a different network or optimizer, or if no step is intact. Skipped steps are listed
        in ``problems`` (and warned about with :class:`CheckpointWarning` when ``warn``).
        """
        ocp = self._ocp
        steps = sorted(self._all_steps(), reverse=True)
        if not steps:
            raise FileNotFoundError(
                f"{self.directory}: no complete checkpoint to resume from (they are written "
                "by jaxnn train --checkpoint-every N, or a SaveEvery callback)"
            )
        t_arrays, t_treedef, t_typed = _flatten(template)
        problems: list[str] = []
        for step in steps:
            try:
                meta = self.manager.restore(
                    step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
                if meta.get("format") != FORMAT or "digest" not in meta:
                    raise ValueError("missing or unknown metadata")
            except Exception as e:  # noqa: BLE001 - any failure means this step is unusable
                problems.append(self._problem(step, e))
                continue
            if meta["treedef"] != str(t_treedef) or meta["leaves"] != _leaf_specs(t_arrays):
                raise ValueError(
                    f"checkpoint: {self.directory / str(step)} was saved for a different "
                    "network or optimizer than the configuration asks for (parameter shapes "
                    "or optimizer state differ)"
                )
            _quiet_stray_loop_callbacks()
            try:
                arrays = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(t_arrays)))["state"]
                arrays = {k: np.asarray(v) for k, v in arrays.items()}
                if digest(arrays) != meta["digest"]:
                    raise ValueError("the arrays do not match their sha256 digest")
            except Exception as e:  # noqa: BLE001
                problems.append(self._problem(step, e))
                continue
            leaves = [jnp.asarray(arrays[k]) for k in sorted(arrays)]
            params, opt_state, key, *model_state = jax.tree_util.tree_unflatten(
                t_treedef, leaves)
            if meta["typed_key"]:
                key = jax.random.wrap_key_data(key)
            if warn:
                for p in problems:
                    warnings.warn(p, CheckpointWarning, stacklevel=2)
            state = TrainState(params, opt_state, key, int(meta["epoch"]),
                               model_state[0] if model_state else None)
            return Restored(state, list(meta["history"]), int(meta["epoch"]),
                            dict(meta["extra"]), problems)
        raise ValueError(
            f"checkpoint: no intact checkpoint in {self.directory}: " + "; ".join(problems)
        )

    def _problem(self, step, e) -> str:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return (f"checkpoint {self.directory / str(step)} is incomplete or corrupt "
                f"({type(e).__name__}: {reason[:160]}); using the previous one")

    def close(self) -> None:
        self.manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def saved_steps(run_dir: str | Path) -> list[int]:
    """The epochs after which ``run_dir/checkpoints/`` holds a committed checkpoint, in order,
    read from the folder's names without opening orbax (it names a committed step by its
    number; one still being written has a temporary name)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) \
        if folder.is_dir() else []


def restore_latest(run_dir: str | Path, template: TrainState, *, warn: bool = True) -> Restored:
    """:meth:`Checkpointer.restore` for ``run_dir``."""
    ckpt = Checkpointer(run_dir)
    try:
        return ckpt.restore(template, warn=warn)
    finally:
        ckpt.close()


class SaveEvery:
    """A :func:`jaxnn.train.fit` callback that saves the state every ``every`` epochs and where
    training ends (after ``fit``'s last epoch, or the epoch at which a callback such as early
    stopping ended it), together with the history so far, which starts at ``history`` (the
    restored one when resuming). To go on with a run, pass :meth:`resume`, which restores the
    latest checkpoint and takes up its history, so that later checkpoints hold every epoch::

        saver = SaveEvery(Checkpointer(run_dir), 1)
        experiment.run(config, callbacks=[saver], resume=saver.resume)
    """

    def __init__(self, checkpointer: Checkpointer, every: int, *, history: Sequence[dict] = (),
                 extra: dict | None = None):
        self.checkpointer = checkpointer
        self.every = _checks.positive("checkpoint_every", every, integer=True)
        self.history = list(history)
        self.extra = dict(extra or {}, checkpoint_every=every)
        self.saved_epoch: int | None = None  # the epoch this saver saved last
        self.restored: Restored | None = None  # what resume restored

    def resume(self, template: TrainState) -> tuple[TrainState, list[dict]]:
        """``(state, history)`` of the latest checkpoint (:meth:`Checkpointer.restore`), whose
        history the next saves continue: ``experiment.run(..., resume=saver.resume)``. The
        whole :class:`Restored` (its ``extra`` too) is kept as ``self.restored``."""
        self.restored = restored = self.checkpointer.restore(template)
        self.history = list(restored.history)
        return restored.state, list(restored.history)

    def __call__(self, record: dict, state: TrainState) -> None:
        self.history.append(record)
        if state.epoch % self.every == 0:
            self._save(state)

    def on_end(self, state: TrainState) -> None:
        """Called by :func:`jaxnn.train.fit` after its last epoch: save it, unless it was just
        saved."""
        if state.epoch != self.saved_epoch:
            self._save(state)

    def _save(self, state: TrainState) -> None:
        self.checkpointer.save(state, self.history, extra=self.extra)
        self.saved_epoch = state.epoch


__all__ = ["CHECKPOINT_DIR", "CheckpointWarning", "Checkpointer", "Restored", "SaveEvery",
           "digest", "restore_latest", "saved_steps"]
