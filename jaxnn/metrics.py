"""Evaluation and the figures the book reports.

:func:`make_evaluate` compiles the mean cost and the number of correct answers on a split
resident on the device; :func:`epoch_record` is one line of :func:`jaxnn.train.fit`'s history;
:func:`summarize` turns a history into the book's figures (peak and final test accuracy, and
chapter 6's test accuracy at the epoch of best validation accuracy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:
    from jaxnn.train import DeviceData, TrainState


def eval_chunk(platform: str, *, convolutional: bool) -> int:
    """Examples per chunk for :func:`make_evaluate` on ``platform`` ("cpu", "gpu", "tpu").

    On the CPU small chunks are faster: a chunk's activations then stay in the caches. The
    chapter-6 conv2 network evaluated 2.5-2.8x as many images a second in chunks of 50 as in
    chunks of 2,000, and [784, 100, 10] 1.7-2.0x as many in chunks of 2,000 as in chunks of
    10,000 (``python benchmarks/eval_chunk_cpu.py``, 2026-11-25). Accelerators keep large chunks:
    every chunk is one more iteration of the compiled loop."""
    if platform == "cpu":
        return 50 if convolutional else 2000
    return 2000 if convolutional else 10_000


def make_evaluate(logits_fn, cost_fn, *, num_classes: int = 10, chunk: int = 10_000):
    """``evaluate(params, data) -> (mean cost, number correct)``, jit-compiled; the cost is
    computed and summed in float32 or wider and the count is an integer, for any input dtype
    (bfloat16 too).

    ``logits_fn(params, x) -> z^L``; ``cost_fn(z, y)`` is a batch-averaged cost from logits.
    Large splits are evaluated ``chunk`` examples at a time (``lax.map``) to bound memory.
    """

    def on_chunk(params, x, labels, real):
        # the cost in float32 at least and the count in integers, whatever the inputs' dtype
        # (a bfloat16 sum of 5,000 ones is 4,992)
        z = logits_fn(params, x)
        z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
        y = jax.nn.one_hot(labels, num_classes, dtype=z.dtype)
        per_example = jax.vmap(lambda zi, yi: cost_fn(zi[None], yi[None]))(z, y)
        total = jnp.sum(jnp.where(real, per_example, 0))
        return total, jnp.sum((jnp.argmax(z, axis=-1) == labels) & real)

    def evaluate(params, data: DeviceData):
        from jaxnn.train import check_data  # (train imports this module)

        check_data(data)
        n = data.labels.shape[0]
        if n <= chunk:
            total, correct = on_chunk(params, data.x, data.labels, jnp.ones((n,), bool))
        else:
            k = -(-n // chunk)
            pad = k * chunk - n
            x = jnp.pad(data.x, [(0, pad)] + [(0, 0)] * (data.x.ndim - 1))
            labels = jnp.pad(data.labels, (0, pad))
            real = jnp.arange(k * chunk) < n  # the padded rows count for nothing
            totals, corrects = jax.lax.map(
                lambda c: on_chunk(params, *c),
                (x.reshape(k, chunk, *x.shape[1:]), labels.reshape(k, chunk),
                 real.reshape(k, chunk)),
            )
            total, correct = jnp.sum(totals), jnp.sum(corrects)
        return total / n, correct

    return jax.jit(evaluate)


def eval_params(state: TrainState):
    """What ``evaluate`` takes: ``params``, or ``(params, model_state)`` for stateful models."""
    return state.params if state.model_state is None else (state.params, state.model_state)


def epoch_record(state, evaluate, train, validation, test, penalty, seconds) -> dict:
    """One line of :func:`jaxnn.train.fit`'s history: the epoch just finished (``state.epoch - 1``),
    the training cost C (``penalty(params)`` added when given) and accuracy (unless ``train``
    is None: the training set is not monitored), the validation and test accuracies and counts
    of correct answers, and the epoch's training ``seconds``."""
    record: dict[str, Any] = {"epoch": state.epoch - 1}
    if train is not None:
        cost, correct = evaluate(eval_params(state), train)
        if penalty is not None:
            cost = cost + penalty(state.params)
        record["train_cost"] = float(cost)
        record["train_accuracy"] = float(correct) / len(train)
    for name, split in (("validation", validation), ("test", test)):
        if split is not None:
            _, correct = evaluate(eval_params(state), split)
            record[f"{name}_accuracy"] = float(correct) / len(split)
            record[f"{name}_correct"] = int(correct)
            record[f"{name}_size"] = len(split)
    record["seconds"] = seconds
    return record


def summarize(history: Sequence[dict]) -> dict:
    """The figures the book quotes: peak and final test accuracy, final and best validation
    accuracy and the test accuracy at the best's epoch (chapter 6's measure; of epochs tied
    for the best validation accuracy the *last*, as network3.py's ``>=`` keeps it), and
    seconds per epoch (the median of the epochs after the first, whose time includes
    compilation; with one epoch, that epoch's); with a divergence guard (``on_nan``),
    ``skipped_steps``, the updates ``"skip"`` skipped in all epochs (0 otherwise); and the
    final training cost where the last epoch has one (``fit(monitor_training=False)`` leaves
    it out)."""
    if not history:
        raise ValueError("history: expected at least one epoch")
    out: dict[str, Any] = {"epochs": len(history)}
    if "test_accuracy" in history[0]:
        tests = [r["test_accuracy"] for r in history]
        out["peak_test_accuracy"] = max(tests)
        out["final_test_accuracy"] = tests[-1]
    if "validation_accuracy" in history[0]:
        vals = [r["validation_accuracy"] for r in history]
        best = len(vals) - 1 - int(np.argmax(vals[::-1]))  # the last best, as the book's ">="
        out["final_validation_accuracy"] = vals[-1]
        out["best_validation_accuracy"] = vals[best]
        out["best_validation_epoch"] = history[best]["epoch"]
        if "test_accuracy" in history[best]:
            out["test_at_best_validation"] = history[best]["test_accuracy"]
    if "train_cost" in history[-1]:  # (a run that monitors its training set)
        out["final_train_cost"] = history[-1]["train_cost"]
    seconds = [r["seconds"] for r in history]
    out["first_epoch_seconds"] = seconds[0]  # includes compilation
    later = seconds[1:] or seconds
    out["seconds_per_epoch"] = float(np.median(later))
    out["total_seconds"] = float(sum(seconds))
    if any("skipped_steps" in r for r in history):
        out["skipped_steps"] = sum(r.get("skipped_steps", 0) for r in history)
    return out
