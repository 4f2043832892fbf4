"""Determinism: the same seed on the same device gives identical metrics and parameters."""

import jax
import numpy as np

from jaxnn import experiment


def _run(seed, optimizer="sgd"):
    config = experiment.TrainConfig.from_preset(
        "ch3-ce-30", epochs=2, train_size=1000, seed=seed, optimizer=optimizer,
        eta=0.5 if optimizer == "sgd" else 0.01)
    return experiment.run(config, progress=False)


def _metrics(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_same_seed_same_metrics_and_params():
    a, b = _run(seed=3), _run(seed=3)
    assert _metrics(a.history) == _metrics(b.history)
    leaves_a = jax.tree_util.tree_leaves((a.state.params, a.state.opt_state, a.state.key))
    leaves_b = jax.tree_util.tree_leaves((b.state.params, b.state.opt_state, b.state.key))
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        assert np.array_equal(np.asarray(x), np.asarray(y))  # bit for bit


def test_different_seed_differs():
    a, c = _run(seed=3), _run(seed=4)
    assert not np.array_equal(np.asarray(a.state.params[0]["w"]),
                              np.asarray(c.state.params[0]["w"]))
    assert _metrics(a.history) != _metrics(c.history)


def test_adam_is_deterministic_too():
    a, b = _run(seed=1, optimizer="adam"), _run(seed=1, optimizer="adam")
    assert _metrics(a.history) == _metrics(b.history)
    for x, y in zip(jax.tree_util.tree_leaves(a.state), jax.tree_util.tree_leaves(b.state)):
        assert np.array_equal(np.asarray(x), np.asarray(y))
