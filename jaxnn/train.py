"""Training: a pure, jit-compiled step and a whole epoch as one compiled call.

The data set lives on the device. An epoch draws a permutation with ``jax.random``, cuts it
into mini-batches and runs the step over them with ``jax.lax.scan``; the host sees only the
metrics that :func:`fit` collects between epochs. Any gradient function works:
``grad_fn(params, x, y) -> grads`` with ``y`` one-hot and ``grads`` a tree like ``params``:
``jax.grad`` of a cost, or the hand-derived gradient of ``manual_grad.backprop``, which returns
``(grads, info)`` and so is wrapped to drop ``info`` (as ``jaxnn.experiment.manual_grad_fn``
does for ``TrainConfig(grads="manual")``)::

    grad_fn = lambda params, x, y: manual_grad.backprop(
        params, x, y, activation="sigmoid", output_activation="sigmoid", cost="quadratic")[0]

When the training-set size n is not a multiple of the mini-batch size m, the last
mini-batch holds the n mod m leftover examples, as in the book's ``network.py``.

Divergence guard (``make_epoch(..., on_nan=...)``, :mod:`jaxnn.guard`): ``"stop"`` checks the
state once per epoch and :func:`fit` raises :class:`Diverged` naming the epoch and step;
``"skip"`` undoes every step whose gradient or new state is not finite, and counts it. Both
check once per epoch and replay only an epoch that ends non-finite.

Determinism: an epoch is a pure function of (params, opt_state, key, data), and the epoch key
is split from ``TrainState.key``; the same seed on the same device and software gives the same
parameters and metrics, bit for bit (XLA's CPU kernels are deterministic). On a GPU, XLA's
autotuner may pick other kernels in another compilation or process, and some reductions are
not deterministic: there, set ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` for repeatable
runs (see docs/reliability.md, Determinism).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxnn import _checks, metrics
from jaxnn._epoch import (  # noqa: F401  (the public names of the epoch, re-exported here)
    LOOPS,
    UNSCALED,
    DeviceData,
    GradFn,
    TrainState,
    auto_loop,
    check_data,
    jit_once,
    make_epoch,
    make_step,
)
from jaxnn.guard import (  # noqa: F401  (re-exported: train.Diverged is the usual name)
    ON_NAN,
    UNLOCATED,
    Diverged,
    EpochHealth,
    all_finite,
    checked_epoch,
)


@jax.jit
def _label_range(labels):
    # one program for both ends (two eager reductions compiled two, about 0.2 s each on the CPU)
    return labels.min(), labels.max()


def _check_labels(data: DeviceData, num_classes: int | None) -> None:
    """ValueError unless ``data``'s labels lie in [0, num_classes): the step's one-hot rows of
    other labels are all zero, so they would train silently on nothing (``DeviceData.put``
    checks this only when it is given ``num_classes``). One compiled call on the device."""
    if num_classes is None:
        return
    low, high = (int(v) for v in jax.device_get(_label_range(data.labels)))
    if low < 0 or high >= num_classes:
        raise ValueError(f"train: expected labels in [0, {num_classes}) (the epoch's "
                         f"num_classes); got range [{low}, {high}]")


Callback = Callable[[dict, TrainState], bool | None]
"""``callback(record, state) -> stop?``, after every epoch of :func:`fit`. ``state`` is live:
the next epoch reuses (donates) its buffers, so keep a copy of anything kept for later."""


class EarlyStopping:
    """A training callback: stop when ``metric`` of the epoch records (default validation
    accuracy) has not improved on its best for ``patience`` epochs (the book's "no improvement
    in n epochs"). ``mode`` is "max" (higher is better) or "min"; by default "min" for a cost
    (a metric named ``*_cost``) and "max" for anything else. ``stopped_epoch`` records the
    epoch at which it stopped."""

    def __init__(self, patience: int, metric: str = "validation_accuracy",
                 mode: str | None = None):
        self.patience = _checks.positive("patience", patience, integer=True)
        self.metric = metric
        if mode is None:
            mode = "min" if metric.endswith("_cost") else "max"
        self.sign = {"max": 1.0, "min": -1.0}[_checks.choice("mode", mode, ("max", "min"))]
        self.best = -float("inf")  # of sign * metric
        self.since_best = 0
        self.stopped_epoch: int | None = None

    def __call__(self, record: dict, state=None) -> bool:
        if self.metric not in record:
            needs = ("the training set monitored: monitor_training" if
                     self.metric.startswith("train_") else "a validation set")
            raise ValueError(f"patience: early stopping needs {self.metric!r} in each epoch's "
                             f"record ({needs})")
        if self.sign * record[self.metric] > self.best:
            self.best, self.since_best = self.sign * record[self.metric], 0
            return False
        self.since_best += 1
        if self.since_best >= self.patience:
            self.stopped_epoch = record["epoch"]
            return True
        return False


def fit(
    state: TrainState,
    *,
    epoch_fn,
    evaluate,
    train: DeviceData,
    validation: DeviceData | None = None,
    test: DeviceData | None = None,
    epochs: int,
    penalty: Callable[[Any], jax.Array] | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | str = True,
    history: list[dict] | None = None,
    eta=None,
    l2=None,
    l1=None,
    monitor_training: bool = True,
) -> tuple[TrainState, list[dict]]:
    """Train from ``state.epoch`` up to ``epochs`` epochs; returns the final state and the
    history, one record per epoch:

    ``epoch, train_cost, train_accuracy``; for each of validation and test given,
    ``<split>_accuracy, <split>_correct, <split>_size``; ``seconds`` (training time of the
    epoch, excluding evaluation). With ``monitor_training=False`` the training set is not
    evaluated and records have no ``train_cost`` or ``train_accuracy`` (chapter 6's network3.py
    reports only validation and test accuracy; on the 250,000-image expanded set, that
    evaluation costs about a fifth of a CPU epoch).

    ``progress`` shows a bar (tqdm, when installed); a string labels it. The bar counts epochs,
    or mini-batch steps for a host loop (``make_epoch(loop="host")``, the CPU's choice for
    CNNs, whose epochs take minutes there): it then moves about every half second.

    ``penalty(params)`` is added to the reported training cost (the book reports
    C = C_0 + (lambda / 2n) sum w^2). A callback returning True stops training after its epoch.
    A callback with an ``on_end(state)`` method has it called once training has ended, at
    ``epochs`` or where a callback stopped it (not after an exception, nor when no epoch was
    left to train): :class:`jaxnn.checkpoint.SaveEvery` saves the last epoch there.

    Divergence: when ``epoch_fn`` is guarded (``make_epoch(on_nan=...)``) and reports a bad
    step, or when the epoch's training cost (without ``monitor_training``: a parameter) is NaN
    or inf, :class:`Diverged` is raised *before* the callbacks run, so no checkpoint or metrics
    line holds the diverged state (``eta``, ``l2`` and ``l1`` only word the message). Records
    of a guarded epoch carry ``skipped_steps`` (0 unless ``on_nan="skip"`` skipped updates).

    Buffers are reused: each epoch donates its input parameters and optimizer state to the
    compiled epoch (:func:`make_epoch`), so the ``state`` passed in, and the state a callback
    sees once the next epoch has run, hold deleted arrays. A callback that keeps parameters
    for later keeps a copy: ``jax.tree.map(jnp.copy, state.params)``.

    A state with a ``model_state`` is trained with a stateful ``epoch_fn`` (see
    :func:`make_epoch`) and evaluated on ``(params, model_state)``. Training labels outside
    the epoch's ``[0, num_classes)`` are refused (ValueError) before the first epoch.
    """
    _checks.positive("epochs", epochs, integer=True)
    for name, split in (("train", train), ("validation", validation), ("test", test)):
        if split is not None:
            check_data(split, name)
            if not len(split):  # a DeviceData built directly (put refuses it)
                raise ValueError(f"{name}: expected at least one example; got none")
    _check_labels(train, getattr(epoch_fn, "num_classes", None))
    history = list(history or [])
    steps = getattr(epoch_fn, "steps_per_epoch", 1)
    bar = _progress_bar(progress, epochs, state.epoch, steps)
    # a host loop (make_epoch(loop="host")) moves the bar step by step: CNN epochs on the CPU
    # take minutes; a scanned epoch is one call, and moves it once
    hook = {} if bar is None or steps == 1 else {"on_step": _StepProgress(bar, steps)}
    trained = False
    try:
        while state.epoch < epochs:
            key, epoch_key = jax.random.split(state.key)
            start = time.perf_counter()
            model_state = state.model_state
            if model_state is None:
                params, opt_state, *health = epoch_fn(state.params, state.opt_state, epoch_key,
                                                      train, **hook)
            else:
                params, opt_state, model_state, *health = epoch_fn(
                    state.params, state.opt_state, epoch_key, train, model_state, **hook)
            jax.block_until_ready(params)
            seconds = time.perf_counter() - start
            bad = int(health[0].first_bad_step) if health else -1
            if bad != -1:
                raise Diverged(state.epoch, bad if bad >= 0 else None, eta, in_cost=False,
                               l2=l2, l1=l1)
            state = TrainState(params, opt_state, key, state.epoch + 1, model_state)
            record = metrics.epoch_record(state, evaluate, train if monitor_training else None,
                                          validation, test, penalty, seconds)
            # without a training cost, the parameters; a guarded epoch (health) checked them
            if not (np.isfinite(record["train_cost"]) if monitor_training
                    else bool(health) or _all_finite(state.params)):
                raise Diverged(record["epoch"], None, eta, l2=l2, l1=l1)
            if health:
                record["skipped_steps"] = int(health[0].skipped)
            history.append(record)
            trained = True
            if bar is not None:
                bar.update(steps * state.epoch - bar.n)  # the epoch's (remaining) steps
                bar.set_postfix(_postfix(record, epochs if steps > 1 else None))
            stop = [cb(record, state) for cb in callbacks]
            if any(stop):
                break
    finally:
        if bar is not None:
            bar.close()
    if trained:  # where training ended: the last epoch, or where a callback stopped it
        for cb in callbacks:
            if hasattr(cb, "on_end"):
                cb.on_end(state)
    return state, history


_all_finite = jax.jit(all_finite)
""":func:`fit`'s divergence check on the parameters when the training cost is not computed."""


def _progress_bar(progress, epochs: int, done: int, steps: int):
    """The tqdm bar of :func:`fit` (None without ``progress`` or tqdm): in epochs, or in
    mini-batch steps when an epoch reports ``steps > 1`` of them (a host loop)."""
    if not progress:
        return None
    from jaxnn import report

    tqdm = report.optional_import("tqdm.auto", "no progress bar is shown")
    if tqdm is None:
        return None
    unit = "step" if steps > 1 else "epoch"
    return tqdm.tqdm(total=epochs * steps, initial=done * steps, unit=unit, leave=False,
                     desc=progress if isinstance(progress, str) else None)


STEP_PROGRESS_SECONDS = 0.5
"""How often :func:`fit`'s bar moves during a host-loop epoch (each move waits for the steps
dispatched so far)."""


class _StepProgress:
    """``on_step`` for a host-loop epoch: moves ``bar`` to the steps finished, at most every
    ``every`` seconds (:data:`STEP_PROGRESS_SECONDS`; each move waits for the step dispatched
    last, so the bar shows work done, not work queued)."""

    def __init__(self, bar, steps: int, every: float | None = None):
        self.bar, self.steps = bar, steps
        self.every = STEP_PROGRESS_SECONDS if every is None else every
        self.last = time.perf_counter()

    def __call__(self, done: int, carry) -> None:
        if time.perf_counter() - self.last < self.every:
            return
        jax.block_until_ready(carry)
        self.last = time.perf_counter()
        epoch_start = self.bar.n - self.bar.n % self.steps  # the bar is at a whole epoch's steps
        self.bar.update(epoch_start + done - self.bar.n)  # when the epoch starts


def _postfix(record: dict, epochs: int | None = None) -> dict:
    out = {"epoch": f"{record['epoch']}/{epochs}"} if epochs is not None else {}
    if "train_cost" in record:
        out["cost"] = f"{record['train_cost']:.4f}"
    for name, short in (("validation", "val"), ("test", "test")):
        if f"{name}_accuracy" in record:
            out[short] = f"{100 * record[f'{name}_accuracy']:.2f}%"
    return out
