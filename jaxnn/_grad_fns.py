"""The gradient a run trains with, and the checks a user's ``grad_fn`` meets before any
training: ``jax.grad`` of the cost (:func:`autodiff_grad_fn`), ``manual_grad.cnn_backprop`` as
a CNN's stateful gradient (:func:`manual_cnn_grad_fn`), and :func:`check_grad_fn_model`,
:func:`check_grad_fn`. :mod:`jaxnn.experiment` re-exports them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from jaxnn import costs, layers, mlp

if TYPE_CHECKING:
    from jaxnn.config import TrainConfig


def autodiff_grad_fn(network: mlp.Network, cost: str, *, l1=None):
    """``jax.grad`` of the mini-batch-averaged cost (L2 is applied by the optimizer);
    ``l1(params)``, when given, is added to the cost: C = C_0 + (lambda_1 / n) sum |w|."""
    cost_fn = costs.from_logits(cost, network.output_activation)
    if l1 is None:
        return jax.grad(lambda params, x, y: cost_fn(network.logits(params, x), y))
    return jax.grad(lambda params, x, y: cost_fn(network.logits(params, x), y) + l1(params))


def check_grad_fn_model(grad_fn, config: TrainConfig) -> None:
    """A ``grad_fn`` must be callable, and only an MLP (model "mlp") takes one: a
    :mod:`jaxnn.cnn` model builds its own gradient (:func:`jaxnn.cnn.make_grad_fn`), so
    ``grad_fn`` would be ignored there (TypeError / ValueError naming ``grad_fn``)."""
    if grad_fn is None:
        return
    if not callable(grad_fn):
        raise TypeError(f"grad_fn: expected a callable grad_fn(params, x, y) -> grads; "
                        f"got {type(grad_fn).__name__} {grad_fn!r:.60}")
    if config.model != "mlp":
        raise ValueError(f"grad_fn: only for model 'mlp' (a jaxnn.cnn model builds its own "
                         f"gradient); got model {config.model!r}")


def check_grad_fn(grad_fn, params, x_shape, num_classes: int, dtype) -> None:
    """Trace ``grad_fn(params, x, y)`` once on one mini-batch of shape ``x_shape`` (one-hot
    ``y`` of ``num_classes``, ``jax.eval_shape``: nothing is computed) and check it returns a
    tree with the structure, leaf shapes and dtypes of ``params``; TypeError naming
    ``grad_fn`` and what came back otherwise (before any training, instead of an XLA error
    from inside the compiled epoch)."""
    x = jax.ShapeDtypeStruct(tuple(x_shape), dtype)
    y = jax.ShapeDtypeStruct((x_shape[0], num_classes), dtype)
    try:
        out = jax.eval_shape(grad_fn, params, x, y)
    except Exception as e:
        e.add_note(f"grad_fn: raised while traced as grad_fn(params, x, y) on one mini-batch "
                   f"x {x.dtype}{list(x.shape)}, y one-hot {y.dtype}{list(y.shape)}")
        raise
    expected = jax.tree_util.tree_structure(params)
    if jax.tree_util.tree_structure(out) != expected:
        hint = ""
        if (isinstance(out, tuple | list) and len(out) == 2
                and jax.tree_util.tree_structure(out[0]) == expected):
            hint = (" (manual_grad.backprop returns (grads, info): wrap it as "
                    "lambda params, x, y: manual_grad.backprop(params, x, y, ...)[0], "
                    "see jaxnn.train)")
        raise TypeError(f"grad_fn: expected gradients with the structure of params "
                        f"({_shorten(str(expected))}); got {_describe(out)}{hint}")
    got = jax.tree_util.tree_leaves(out)
    for (path, p), g in zip(jax.tree_util.tree_flatten_with_path(params)[0], got):
        if tuple(g.shape) != tuple(jnp.shape(p)) or g.dtype != jnp.result_type(p):
            raise TypeError(f"grad_fn: expected gradients with the shapes and dtypes of params; "
                            f"at {jax.tree_util.keystr(path)} got {_leaf(g)}, expected "
                            f"{_leaf(p)}")


def _leaf(a) -> str:
    return f"{jnp.result_type(a)}{list(jnp.shape(a))}"


def _describe(tree) -> str:
    """A short description of a returned tree: its container and length, or an array's shape."""
    if isinstance(tree, tuple | list):
        return f"a {type(tree).__name__} of {len(tree)}"
    if isinstance(tree, dict):
        return f"a dict with keys {_shorten(str(sorted(map(str, tree))))}"
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return f"an array {_leaf(tree)}"
    return f"{type(tree).__name__} {_shorten(str(jax.tree_util.tree_structure(tree)))}"


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def manual_cnn_grad_fn(spec: layers.CNNSpec):
    """``manual_grad.cnn_backprop`` for a :mod:`jaxnn.cnn` model of ``spec``, as the stateful
    ``grad_fn(params, rest, x, y, key) -> (grads, rest')`` that :func:`jaxnn.cnn.make_grad_fn`
    builds by autodiff: the gradient of the log-likelihood in training mode (dropout from
    ``key``, batch norm with the mini-batch's statistics), and ``rest`` with every batch norm's
    running averages moved as Flax moves them, mean' = momentum mean + (1 - momentum) mu (var
    likewise, with the batch's biased variance). What ``--grads manual`` trains a CNN with."""
    import manual_grad
    from jaxnn import cnn

    norms = {i: layer for i, layer in enumerate(spec.layers)
             if isinstance(layer, layers.BatchNorm)}

    def grad_fn(params, rest, x, y, key):
        grads, info = manual_grad.cnn_backprop(spec, cnn.pure_params(params), x, y, key=key)
        running = cnn.pure_batch_stats(rest)
        for i, layer in norms.items():
            running[i] = {k: layer.momentum * running[i][k] + (1 - layer.momentum) * batch
                          for k, batch in info["batch_stats"][i].items()}
        return cnn.from_pure(params, grads), cnn.from_pure(rest, {"layers": running})

    return grad_fn
