"""Ensembles: several networks trained from different seeds, combined by majority vote.

The ensemble's prediction for image x is the label most of the members predict,
argmax_j #{k : argmax z_k(x) = j} (ties go to the smallest label), as the book's chapter 6
does with five dropout networks.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import _checks, metrics


def majority_vote(predictions) -> jax.Array:
    """predictions (k members, N examples) int labels -> (N,) the most frequent label per
    example, argmax_j #{k : predictions[k, n] = j}; ties go to the smallest label.

    The labels must be class indices, non-negative integers (TypeError for another dtype,
    ValueError for a negative label), and there must be at least one member."""
    predictions = jnp.asarray(predictions)
    if predictions.ndim != 2:
        raise ValueError(f"predictions: expected shape (members, examples); got "
                         f"{predictions.shape}")
    if not jnp.issubdtype(predictions.dtype, jnp.integer):
        raise TypeError(f"predictions: expected integer class labels; got dtype "
                        f"{predictions.dtype}")
    if predictions.shape[0] == 0:
        raise ValueError(f"predictions: expected at least one member's labels; got shape "
                         f"{predictions.shape}")
    if predictions.size and int(predictions.min()) < 0:
        bad = np.argwhere(np.asarray(predictions) < 0)[0]
        raise ValueError(f"predictions: expected non-negative class labels; got "
                         f"{int(predictions[tuple(bad)])} at member {bad[0]}, example {bad[1]}")
    num_classes = int(predictions.max()) + 1 if predictions.size else 1
    votes = jax.nn.one_hot(predictions, num_classes, dtype=jnp.int32).sum(axis=0)
    return jnp.argmax(votes, axis=-1)


def run(config, *, callbacks=(), progress: bool = True, devices: int | str = 1, grad_fn=None,
        on_nan: str | None = "stop", member_run=None):
    """Train ``config.ensemble`` members (seeds seed, seed + 1, ...) and vote on the test set.

    The members train one after another, each data-parallel over ``devices`` when that is not
    1, each with ``grad_fn`` (None: ``jax.grad`` of the cost) and the divergence guard
    ``on_nan`` (see :func:`jaxnn.experiment.run`; "stop" raises :class:`jaxnn.train.Diverged`
    in the member that diverges). The summary holds each member's summary,
    ``member_skipped_steps`` (the updates each member's ``on_nan="skip"`` guard skipped) and
    ``ensemble_test_accuracy``, the vote of the members' final parameters on the test set
    (and ``ensemble_validation_accuracy``, their vote on the validation set, when there is one:
    :mod:`jaxnn.reproduce` picks the best of several ensembles by it).
    The ``callbacks`` see each epoch's record with the ``member`` (0, 1, ...) and its ``seed``
    added, so that one metrics file tells the members apart.

    ``member_run(i, member_config, train_member, initial_state) -> Result`` takes over each
    member's training, e.g. to keep it in a run directory of its own and take it up again
    there (``jaxnn reproduce`` and ``jaxnn train --checkpoint-every`` do):
    ``train_member(config, *, callbacks, progress, resume) -> Result`` trains it with the
    ensemble's data and compiled programs (the
    ``callbacks`` above included), and ``initial_state(seed)`` is a template of its state to
    restore a checkpoint into. The member's ``Result`` must hold its final state: the vote
    uses its parameters."""
    from jaxnn import experiment

    k = _checks.positive("ensemble", config.ensemble, integer=True)
    config = config.validated()
    experiment.check_grad_fn_model(grad_fn, config)  # before the data is prepared
    # one copy of the data for the vote and every member, and one set of compiled programs:
    # only the seed differs, and neither depends on it (the vote reads the data as prepared,
    # on the default device; the trainer's copy may be placed over a mesh)
    one = dataclasses.replace(config, ensemble=1)
    prepared = experiment.prepare(one)
    training = experiment.Trainer(one, grad_fn=grad_fn, on_nan=on_nan, devices=devices,
                                  prepared=prepared)
    members = []
    splits = {"test": prepared.test}
    if prepared.validation is not None:
        splits["validation"] = prepared.validation
    votes = {name: [] for name in splits}
    logits_fn = jax.jit(training.logits)  # one compiled vote for every member
    if config.model != "mlp":
        logits_fn = functools.partial(_chunked, logits_fn)
    for i in range(k):
        member = dataclasses.replace(config, ensemble=1, seed=config.seed + i)
        tagged = [functools.partial(_tagged, cb, i, member.seed) for cb in callbacks]

        def train_member(cfg, *, callbacks=(), progress=progress, resume=None, tagged=tagged):
            return training.run_config(cfg, callbacks=[*tagged, *callbacks],
                                       progress=progress, resume=resume)

        if member_run is None:
            result = train_member(member)
        else:
            result = member_run(i, member, train_member, training.initial_state)
        members.append(result)
        params = metrics.eval_params(result.state)
        if devices != 1:  # replicated over the mesh; the vote runs on the default device
            params = jax.device_put(jax.device_get(params))
        for name, split in splits.items():
            votes[name].append(jnp.argmax(logits_fn(params, split.x), axis=-1))
    accuracy = {name: float(jnp.mean(majority_vote(jnp.stack(votes[name])) == split.labels))
                for name, split in splits.items()}
    last = members[-1]
    summary = {"preset": config.preset, "ensemble": k,
               "members": [m.summary for m in members],
               "member_test_at_best_validation": [
                   m.summary.get("test_at_best_validation") for m in members],
               "member_skipped_steps": [m.summary.get("skipped_steps", 0) for m in members],
               "skipped_steps": sum(m.summary.get("skipped_steps", 0) for m in members),
               "ensemble_test_accuracy": accuracy["test"],
               "epochs": max(m.summary["epochs"] for m in members)}
    if "validation" in accuracy:
        summary["ensemble_validation_accuracy"] = accuracy["validation"]
    return experiment.Result(config, last.state, last.history, summary)


def _tagged(callback, member: int, seed: int, record: dict, state):
    return callback({"member": member, "seed": seed, **record}, state)


def _chunked(fn, params, x, chunk=2000):
    return jnp.concatenate([fn(params, x[i:i + chunk]) for i in range(0, len(x), chunk)])


def vote_accuracy(predictions, labels) -> float:
    """Fraction of examples whose majority vote equals the label."""
    return float(np.mean(np.asarray(majority_vote(predictions)) == np.asarray(labels)))
