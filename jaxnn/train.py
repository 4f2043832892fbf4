"""Training: a pure, jit-compiled step and a whole epoch as one compiled call.

The data set lives on the device. An epoch draws a permutation with ``jax.random``, cuts it
into mini-batches and runs the step over them with ``jax.lax.scan``; the host sees only the
metrics that :func:`fit` collects between epochs. Any gradient function works:
``grad_fn(params, x, y) -> grads`` with ``y`` one-hot, ``jax.grad`` of a cost or the hand-derived
``manual_grad.backprop``.

When the training-set size n is not a multiple of the mini-batch size m, the last
mini-batch holds the n mod m leftover examples, as in the book's ``network.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import _checks

GradFn = Callable[[Any, jax.Array, jax.Array], Any]


class TrainState(NamedTuple):
    """Everything that changes during training: ``params``, ``opt_state``, the RNG ``key``,
    the number of finished ``epoch``s and, for stateful models (:mod:`jaxnn.cnn`), the
    ``model_state`` that is not trained by the optimizer (batch-norm statistics; None for MLPs)."""

    params: Any
    opt_state: Any
    key: jax.Array
    epoch: int = 0
    model_state: Any = None


class DeviceData(NamedTuple):
    """A split resident on the device: model inputs ``x`` and int32 ``labels``."""

    x: jax.Array
    labels: jax.Array

    @staticmethod
    def put(x, labels, *, arg: str = "data") -> DeviceData:
        """Check host arrays once and copy them to the default device."""
        x = np.asarray(x)
        labels = np.asarray(labels)
        if len(x) != len(labels):
            raise ValueError(
                f"{arg}: expected one label per example; got {len(x)} and {len(labels)}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"{arg}: expected integer labels; got {labels.dtype}")
        _checks.finite_array(arg, x)
        return DeviceData(jnp.asarray(x), jnp.asarray(labels, jnp.int32))

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def make_step(grad_fn: GradFn, optimizer: optax.GradientTransformation, num_classes: int):
    """``step(params, opt_state, x, labels) -> (params, opt_state)``: one optimizer update on
    the mini-batch-averaged gradient."""

    def step(params, opt_state, x, labels):
        y = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
        grads = grad_fn(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step


def make_epoch(
    grad_fn: GradFn,
    optimizer: optax.GradientTransformation,
    *,
    mini_batch_size: int,
    n_train: int,
    num_classes: int = 10,
    stateful: bool = False,
):
    """``epoch(params, opt_state, key, data) -> (params, opt_state)``, jit-compiled.

    Shuffles with ``jax.random.permutation(key, n)`` and scans the step over the
    ``n // m`` full mini-batches (then one step on the remainder, if any).

    ``stateful=True`` is for models with state and randomness (:mod:`jaxnn.cnn`):
    ``grad_fn(params, model_state, x, y, key) -> (grads, model_state)`` gets a fresh key every
    step (for dropout), and the epoch is
    ``epoch(params, opt_state, key, data, model_state) -> (params, opt_state, model_state)``.
    """
    if stateful:
        return _make_stateful_epoch(grad_fn, optimizer, mini_batch_size=mini_batch_size,
                                    n_train=n_train, num_classes=num_classes)
    m = _checks.positive("mini_batch_size", mini_batch_size, integer=True)
    n = _checks.positive("n_train", n_train, integer=True)
    if m > n:
        raise ValueError(f"mini_batch_size: expected at most the {n} training examples; got {m}")
    step = make_step(grad_fn, optimizer, num_classes)
    full, rest = divmod(n, m)

    def epoch(params, opt_state, key, data: DeviceData):
        perm = jax.random.permutation(key, n)

        def body(carry, idx):
            return step(*carry, data.x[idx], data.labels[idx]), None

        (params, opt_state), _ = jax.lax.scan(
            body, (params, opt_state), perm[: full * m].reshape(full, m)
        )
        if rest:
            tail = perm[full * m :]
            params, opt_state = step(params, opt_state, data.x[tail], data.labels[tail])
        return params, opt_state

    return jax.jit(epoch, donate_argnums=(0, 1))


def _make_stateful_epoch(grad_fn, optimizer, *, mini_batch_size, n_train, num_classes):
    m = _checks.positive("mini_batch_size", mini_batch_size, integer=True)
    n = _checks.positive("n_train", n_train, integer=True)
    if m > n:
        raise ValueError(f"mini_batch_size: expected at most the {n} training examples; got {m}")
    full, rest = divmod(n, m)

    def step(carry, x, labels, key):
        params, opt_state, model_state = carry
        y = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
        grads, model_state = grad_fn(params, model_state, x, y, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, model_state

    def epoch(params, opt_state, key, data: DeviceData, model_state):
        perm_key, step_key = jax.random.split(key)
        perm = jax.random.permutation(perm_key, n)
        keys = jax.random.split(step_key, full + 1)

        def body(carry, xs):
            idx, k = xs
            return step(carry, data.x[idx], data.labels[idx], k), None

        carry, _ = jax.lax.scan(body, (params, opt_state, model_state),
                                (perm[: full * m].reshape(full, m), keys[:full]))
        if rest:
            tail = perm[full * m:]
            carry = step(carry, data.x[tail], data.labels[tail], keys[full])
        return carry

    return jax.jit(epoch, donate_argnums=(0, 1))


def make_evaluate(logits_fn, cost_fn, *, num_classes: int = 10, chunk: int = 10_000):
    """``evaluate(params, data) -> (mean cost, number correct)``, jit-compiled.

    ``logits_fn(params, x) -> z^L``; ``cost_fn(z, y)`` is a batch-averaged cost from logits.
    Large splits are evaluated ``chunk`` examples at a time (``lax.map``) to bound memory.
    """

    def on_chunk(params, x, labels, weight):
        z = logits_fn(params, x)
        y = jax.nn.one_hot(labels, num_classes, dtype=z.dtype)
        per_example = jax.vmap(lambda zi, yi: cost_fn(zi[None], yi[None]))(z, y)
        correct = (jnp.argmax(z, axis=-1) == labels) * weight
        return jnp.sum(per_example * weight), jnp.sum(correct)

    def evaluate(params, data: DeviceData):
        n = data.labels.shape[0]
        if n <= chunk:
            total, correct = on_chunk(params, data.x, data.labels, jnp.ones((n,), data.x.dtype))
        else:
            k = -(-n // chunk)
            pad = k * chunk - n
            x = jnp.pad(data.x, [(0, pad)] + [(0, 0)] * (data.x.ndim - 1))
            labels = jnp.pad(data.labels, (0, pad))
            weight = (jnp.arange(k * chunk) < n).astype(data.x.dtype)
            totals, corrects = jax.lax.map(
                lambda c: on_chunk(params, *c),
                (x.reshape(k, chunk, *x.shape[1:]), labels.reshape(k, chunk),
                 weight.reshape(k, chunk)),
            )
            total, correct = jnp.sum(totals), jnp.sum(corrects)
        return total / n, correct

    return jax.jit(evaluate)


Callback = Callable[[dict, TrainState], bool | None]


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
    progress: bool = True,
    history: list[dict] | None = None,
) -> tuple[TrainState, list[dict]]:
    """Train from ``state.epoch`` up to ``epochs`` epochs; returns the final state and the
    history, one record per epoch:

    ``epoch, train_cost, train_accuracy, validation_accuracy, test_accuracy, test_correct,
    seconds`` (training time of the epoch, excluding evaluation).

    ``penalty(params)`` is added to the reported training cost (the book reports
    C = C_0 + (lambda / 2n) sum w^2). A callback returning True stops training after its epoch.
    A state with a ``model_state`` is trained with a stateful ``epoch_fn`` (see
    :func:`make_epoch`) and evaluated on ``(params, model_state)``.
    """
    _checks.positive("epochs", epochs, integer=True)
    history = list(history or [])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, initial=state.epoch, unit="epoch", leave=False)
    try:
        while state.epoch < epochs:
            key, epoch_key = jax.random.split(state.key)
            start = time.perf_counter()
            model_state = state.model_state
            if model_state is None:
                params, opt_state = epoch_fn(state.params, state.opt_state, epoch_key, train)
            else:
                params, opt_state, model_state = epoch_fn(
                    state.params, state.opt_state, epoch_key, train, model_state)
            jax.block_until_ready(params)
            seconds = time.perf_counter() - start
            state = TrainState(params, opt_state, key, state.epoch + 1, model_state)
            record = _record(state, evaluate, train, validation, test, penalty, seconds)
            history.append(record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(_postfix(record))
            stop = [cb(record, state) for cb in callbacks]
            if any(stop):
                break
    finally:
        if bar is not None:
            bar.close()
    return state, history


def eval_params(state: TrainState):
    """What ``evaluate`` takes: ``params``, or ``(params, model_state)`` for stateful models."""
    return state.params if state.model_state is None else (state.params, state.model_state)


def _record(state, evaluate, train, validation, test, penalty, seconds) -> dict:
    cost, correct = evaluate(eval_params(state), train)
    if penalty is not None:
        cost = cost + penalty(state.params)
    record = {
        "epoch": state.epoch - 1,
        "train_cost": float(cost),
        "train_accuracy": float(correct) / len(train),
    }
    for name, split in (("validation", validation), ("test", test)):
        if split is not None:
            _, correct = evaluate(eval_params(state), split)
            record[f"{name}_accuracy"] = float(correct) / len(split)
            record[f"{name}_correct"] = int(correct)
            record[f"{name}_size"] = len(split)
    record["seconds"] = seconds
    return record


def _postfix(record: dict) -> dict:
    out = {"cost": f"{record['train_cost']:.4f}"}
    for name in ("validation", "test"):
        if f"{name}_accuracy" in record:
            out[name[:4]] = f"{100 * record[f'{name}_accuracy']:.2f}%"
    return out


def summarize(history: Sequence[dict]) -> dict:
    """The figures the book quotes: peak and final test accuracy, best validation accuracy and
    the test accuracy at that epoch (chapter 6's measure), and seconds per epoch."""
    if not history:
        raise ValueError("history: expected at least one epoch")
    out: dict[str, Any] = {"epochs": len(history)}
    if "test_accuracy" in history[0]:
        tests = [r["test_accuracy"] for r in history]
        out["peak_test_accuracy"] = max(tests)
        out["final_test_accuracy"] = tests[-1]
    if "validation_accuracy" in history[0]:
        vals = [r["validation_accuracy"] for r in history]
        best = int(np.argmax(vals))
        out["best_validation_accuracy"] = vals[best]
        out["best_validation_epoch"] = history[best]["epoch"]
        if "test_accuracy" in history[best]:
            out["test_at_best_validation"] = history[best]["test_accuracy"]
    out["final_train_cost"] = history[-1]["train_cost"]
    seconds = [r["seconds"] for r in history]
    out["first_epoch_seconds"] = seconds[0]  # includes compilation
    later = seconds[1:] or seconds
    out["seconds_per_epoch"] = float(np.median(later))
    out["total_seconds"] = float(sum(seconds))
    return out
