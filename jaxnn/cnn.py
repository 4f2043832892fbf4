"""Convolutional networks as Flax NNX modules, built from a :class:`jaxnn.layers.CNNSpec`.

:class:`CNN` holds one Flax submodule per parametric layer of the spec (``nnx.Conv``,
``nnx.Linear``, ``nnx.BatchNorm``) and computes, for NHWC images x,

    conv-pool block:  a = pool(sigma(x * K + b))      (VALID or SAME, any stride)
    dense layer:      a = sigma(a W + b),  dropout before it when the spec says so
    output:           z^L = a W^L + b^L,   softmax(z^L) the network's output

exactly as :func:`jaxnn.layers.forward` does over the pure parameter layout:
``layers.forward(spec, pure_params(model), x, batch_stats=pure_batch_stats(model))`` equals
``model(x)`` (evaluation mode), and ``layers.forward(spec, pure_params(model), x, key=key)``
equals ``model(x, train=True, key=key)`` (a BatchNorm normalising with the batch's statistics).

Training does not go through ``nnx.jit``: :func:`split` separates the module once into a static
graph, its ``nnx.Param`` state (what the optimizer updates) and the rest (batch-norm running
statistics); :func:`make_grad_fn` and :func:`make_logits_fn` are pure functions over those that
:mod:`jaxnn.train` jit-compiles and scans. Dropout takes an explicit ``key`` per step.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

try:
    from flax import nnx
except (ImportError, AttributeError) as e:  # flax 0.12.8 with jax 0.11.2: hijax.HiPrimitive
    raise ImportError(
        f"jaxnn.cnn: flax does not import with jax {jax.__version__} ({type(e).__name__}: {e}); "
        "jax 0.11.2 and later need flax 0.12.10 or later: pip install -U 'flax>=0.12.10'"
    ) from e

from jaxnn import activations, layers
from jaxnn.architectures import ARCHITECTURES, architecture, has_convolutions  # noqa: F401
from jaxnn.layers import CNNSpec, Conv, Dense, Dropout, Flatten, Pool


class CNN(nnx.Module):
    """A convolutional network from ``spec``; ``rngs`` initialise the parameters (Flax's
    defaults: LeCun-normal kernels, zero biases)."""

    def __init__(self, spec: CNNSpec, *, rngs: nnx.Rngs, param_dtype=jnp.float32):
        self.spec = spec
        shape = tuple(spec.input_shape)
        modules = {}
        with jax.ensure_compile_time_eval():  # static shapes, also when traced (eval_shape)
            out_shapes = layers.shapes(spec)
        for i, (layer, out_shape) in enumerate(zip(spec.layers, out_shapes)):
            if isinstance(layer, Conv):
                modules[str(i)] = nnx.Conv(shape[-1], layer.features, layer.kernel,
                                           layer.stride, padding=layer.padding, rngs=rngs,
                                           param_dtype=param_dtype)
            elif isinstance(layer, Dense):
                modules[str(i)] = nnx.Linear(shape[0], layer.features, rngs=rngs,
                                             param_dtype=param_dtype)
            elif isinstance(layer, layers.BatchNorm):
                # Two-pass variance, E[(x - mean)^2]: Flax's default E[x^2] - mean^2 cancels
                # when a channel's mean is large against its spread (an error of 0.28 in the
                # normalised output for mean 300, std 0.3, in float32).
                bn = nnx.BatchNorm(shape[-1], momentum=layer.momentum, epsilon=layer.epsilon,
                                   rngs=rngs, param_dtype=param_dtype, use_fast_variance=False)
                # Flax keeps the running statistics in float32 whatever param_dtype is; a
                # float64 network keeps them in float64 too (and updates them without a cast).
                bn.mean = nnx.BatchStat(jnp.zeros(shape[-1], param_dtype))
                bn.var = nnx.BatchStat(jnp.ones(shape[-1], param_dtype))
                modules[str(i)] = bn
            shape = out_shape
        self.layers = nnx.Dict(modules)

    def __call__(self, x, *, train: bool = False, key=None):
        """Logits z^L. ``train`` uses and updates batch statistics; ``key`` enables dropout
        (a fresh key every step; None at evaluation)."""
        spec = self.spec
        layers.check_images(spec, x)
        sigma = activations.get(spec.activation)
        last = len(spec.layers) - 1
        a = x
        for i, layer in enumerate(spec.layers):
            if isinstance(layer, Conv | Dense):
                z = self.layers[str(i)](a)
                a = z if i == last else sigma(z)
            elif isinstance(layer, Pool):
                a = layers.pool(a, kind=layer.kind, window=layer.window, stride=layer.stride)
            elif isinstance(layer, Flatten):
                a = a.reshape(a.shape[0], -1)
            elif isinstance(layer, layers.BatchNorm):
                a = self.layers[str(i)](a, use_running_average=not train)
            elif isinstance(layer, Dropout) and key is not None and layer.rate > 0:
                key, sub = jax.random.split(key)
                keep = jax.random.bernoulli(sub, 1.0 - layer.rate, a.shape)
                a = jnp.where(keep, a / (1.0 - layer.rate), 0.0)
        return a


def split(model: CNN):
    """``(graphdef, params, rest)``: the static graph, the ``nnx.Param`` state and everything
    else (batch-norm statistics), as ``nnx.split(model, nnx.Param, ...)``."""
    return nnx.split(model, nnx.Param, ...)


def make_logits_fn(graphdef):
    """``logits((params, rest), x) -> z^L`` in evaluation mode (pure; for ``make_evaluate``)."""

    def logits(bundle, x):
        params, rest = bundle
        return nnx.merge(graphdef, params, rest)(x)

    return logits


def make_grad_fn(graphdef, cost_fn, penalty=None):
    """``grad_fn(params, rest, x, y, key) -> (grads, rest')``: the gradient of
    C = cost(z^L(x), y) [+ penalty(params)] in training mode, and the updated batch statistics."""

    def loss(params, rest, x, y, key):
        model = nnx.merge(graphdef, params, rest, copy=True)  # fresh Variables in this trace
        c = cost_fn(model(x, train=True, key=key), y)
        if penalty is not None:
            c = c + penalty(params)
        return c, nnx.split(model, nnx.Param, ...)[2]

    grad = jax.grad(loss, has_aux=True)

    def grad_fn(params, rest, x, y, key):
        return grad(params, rest, x, y, key)

    return grad_fn


def pure_params(model_or_params) -> dict:
    """The pure layout of :mod:`jaxnn.layers`: ``{"layers": {i: {"kernel", "bias"}}}`` for every
    Conv and Dense layer i and ``{i: {"scale", "bias"}}`` for every BatchNorm, from a
    :class:`CNN` or from its ``nnx.Param`` state (so a gradient State converts the same way and
    lines up with ``manual_grad``)."""
    return _pure(model_or_params, nnx.Param, ("kernel", "scale"), ("bias",))


def pure_batch_stats(model_or_rest) -> dict:
    """Every BatchNorm layer's running averages, ``{i: {"mean", "var"}}``, from a :class:`CNN`
    or from its non-parameter state (``rest`` of :func:`split`): the ``batch_stats`` that
    :func:`jaxnn.layers.forward` evaluates with."""
    return _pure(model_or_rest, nnx.BatchStat, ("mean",), ("var",))["layers"]


def _pure(model_or_state, kind, firsts, seconds) -> dict:
    """``{"layers": {i: {first: ..., second: ...}}}`` for every layer whose state has a leaf
    named in ``firsts`` (and the one of ``seconds`` beside it)."""
    state = (nnx.state(model_or_state, kind) if isinstance(model_or_state, CNN)
             else model_or_state)
    out = {}
    for key, sub in (state["layers"] if "layers" in state else {}).items():  # (none: no batch norm)
        first = next((name for name in firsts if name in sub), None)
        second = next((name for name in seconds if name in sub), None)
        if first is not None and second is not None:
            out[int(key)] = {first: _value(sub[first]), second: _value(sub[second])}
    return {"layers": dict(sorted(out.items()))}


def from_pure(state, pure: dict):
    """``state`` (an ``nnx.State`` such as ``params`` or ``rest`` of :func:`split`) with every
    leaf replaced by the same leaf of ``pure``, ``{"layers": {i: {name: array}}}`` (the layout of
    :func:`pure_params`, or ``{"layers": pure_batch_stats(...)}``): so gradients computed on the
    pure layout (``manual_grad.cnn_backprop``) become a State the optimizer can apply."""

    def leaf(path, _):
        layer, name = path[1].key, path[2].key
        return pure["layers"][int(layer)][name]

    return jax.tree_util.tree_map_with_path(leaf, state)


def _value(v):
    return v.get_value() if hasattr(v, "get_value") else getattr(v, "value", v)


def make(spec: CNNSpec, key) -> CNN:
    """A fresh :class:`CNN` for ``spec`` initialised from ``key``."""
    return CNN(spec, rngs=nnx.Rngs(params=key))


def replace(spec: CNNSpec, **changes) -> CNNSpec:
    """``spec`` with some fields changed (``input_shape``, ``layers``, ``activation``)."""
    return dataclasses.replace(spec, **changes)
