"""Determinism: the same seed on the same device gives identical metrics and parameters."""

import functools

import jax
import numpy as np
import pytest
from helpers import host

from jaxnn import experiment


@functools.cache
def _run(seed, attempt, optimizer="adam"):
    """A short run: Adam (a non-trivial optimizer state to compare) or the book's plain SGD."""
    eta = {"adam": 0.01, "sgd": 0.5}[optimizer]
    config = experiment.TrainConfig.from_preset(
        "ch3-ce-30", epochs=2, train_size=1000, seed=seed, optimizer=optimizer, eta=eta)
    return experiment.run(config, progress=False)


def _metrics(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def _leaves(state):
    return [host(x) for x in jax.tree_util.tree_leaves(
        (state.params, state.opt_state, state.key, state.epoch))]


@pytest.mark.parametrize("optimizer, leaves", [("adam", 6), ("sgd", 5)])
def test_same_seed_same_metrics_and_params(optimizer, leaves):
    a, b = _run(3, attempt=0, optimizer=optimizer), _run(3, attempt=1, optimizer=optimizer)
    assert _metrics(a.history) == _metrics(b.history)
    leaves_a, leaves_b = _leaves(a.state), _leaves(b.state)
    assert len(leaves_a) == len(leaves_b) > leaves
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and np.array_equal(x, y)  # bit for bit


def test_different_seed_differs():
    a, c = _run(3, attempt=0), _run(4, attempt=0)
    assert not np.array_equal(np.asarray(a.state.params[0]["w"]),
                              np.asarray(c.state.params[0]["w"]))
    assert _metrics(a.history) != _metrics(c.history)
