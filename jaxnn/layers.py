"""A convolutional network as data: layer specs and a pure forward pass over plain arrays.

Both the Flax modules of :mod:`jaxnn.cnn` and the hand-derived gradients of
:mod:`manual_grad` are built from the same :class:`CNNSpec`, and both use the same pure
parameter layout, so their gradients can be compared leaf by leaf:

    params = {"layers": {i: {"kernel": ..., "bias": ...}}}

for every *parametric* layer i (its index in ``spec.layers``): ``Conv`` kernels are HWIO
(kh, kw, c_in, c_out) and ``Dense`` kernels are (n_in, n_out) (Flax's layouts); a ``BatchNorm``
has ``{"scale": ..., "bias": ...}``, one of each per feature. Images are NHWC.

The network is ``layers`` in order; every Conv and every Dense except the last is followed by
``spec.activation``; the last Dense gives the logits z^L of the softmax output.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import jax
import jax.numpy as jnp

from jaxnn import _checks, activations


def _pair(arg, v) -> tuple[int, int]:
    v = (v, v) if isinstance(v, int) else tuple(v)
    if len(v) != 2 or any(not isinstance(i, int) or i <= 0 for i in v):
        raise ValueError(f"{arg}: expected a positive int or a pair of them; got {v!r}")
    return v


@dataclasses.dataclass(frozen=True)
class Conv:
    """``features`` filters of size ``kernel``, ``stride``, padding "VALID" or "SAME"
    (jax.lax's meaning: SAME gives ceil(in / stride), extra padding at the end)."""

    features: int
    kernel: tuple[int, int] = (5, 5)
    stride: tuple[int, int] = (1, 1)
    padding: Literal["VALID", "SAME"] = "VALID"

    def __post_init__(self):
        _checks.positive("features", self.features, integer=True)
        object.__setattr__(self, "kernel", _pair("kernel", self.kernel))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        _checks.choice("padding", self.padding, ("VALID", "SAME"))


@dataclasses.dataclass(frozen=True)
class Pool:
    """Max or average pooling over ``window`` with ``stride`` (default: the window), VALID."""

    kind: Literal["max", "avg"] = "max"
    window: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None

    def __post_init__(self):
        _checks.choice("pool", self.kind, ("max", "avg"))
        object.__setattr__(self, "window", _pair("window", self.window))
        stride = self.window if self.stride is None else self.stride
        object.__setattr__(self, "stride", _pair("stride", stride))


@dataclasses.dataclass(frozen=True)
class Flatten:
    """(N, H, W, C) -> (N, H*W*C), row-major."""


@dataclasses.dataclass(frozen=True)
class Dense:
    """A fully connected layer of ``features`` units."""

    features: int

    def __post_init__(self):
        _checks.positive("features", self.features, integer=True)


@dataclasses.dataclass(frozen=True)
class Dropout:
    """Dropout with drop probability ``rate`` in [0, 1): kept units are scaled by 1/(1-rate)
    in training (inverted dropout), so evaluation is the identity."""

    rate: float = 0.5

    def __post_init__(self):
        _checks.in_unit_interval("dropout", self.rate)


@dataclasses.dataclass(frozen=True)
class BatchNorm:
    """Batch normalization over the last (feature) axis:
    y = scale (a - mu) / sqrt(var + epsilon) + bias, with mu and var (the biased variance) of
    the mini-batch in training and running averages (``momentum``) at evaluation; ``epsilon``
    is Flax's default. Its ``scale`` and ``bias`` are in the pure layout; the running averages
    are not parameters: :func:`forward` takes them as ``batch_stats``."""

    momentum: float = 0.99
    epsilon: float = 1e-5

    def __post_init__(self):
        _checks.in_unit_interval("momentum", self.momentum)
        _checks.positive("epsilon", self.epsilon)


Layer = Conv | Pool | Flatten | Dense | Dropout | BatchNorm
PARAMETRIC = (Conv, Dense, BatchNorm)

ACTIVATIONS = tuple(n for n in activations.HIDDEN if n != "prelu")
"""The hidden activations a :class:`CNNSpec` takes: every one of :data:`jaxnn.activations.HIDDEN`
but ``prelu``, whose slope alpha is a learned parameter that the pure layout
(``kernel``, ``bias``), :mod:`jaxnn.cnn` and ``manual_grad``'s CNN backprop do not have (it would
stay fixed at ``PRELU_INIT``); a :mod:`jaxnn.mlp` network learns it."""


def check_activation(activation, where: str = "a CNNSpec") -> str:
    """``activation`` if a CNN can use it (:data:`ACTIVATIONS`); otherwise a ValueError naming
    ``activation`` (for prelu: why not, and what to use instead)."""
    if activation == "prelu":
        raise ValueError(f"activation: 'prelu' is not available for {where}: its slope alpha "
                         f"is not a parameter of a jaxnn.cnn network, so it would stay fixed "
                         f"at {activations.PRELU_INIT} (use leaky_relu or relu, or prelu in "
                         f"an MLP, which learns alpha); got 'prelu'")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(ACTIVATIONS)} for {where}; "
                         f"got {activation!r}")
    return activation


@dataclasses.dataclass(frozen=True)
class CNNSpec:
    """A whole network: ``input_shape`` (H, W, C), ``layers``, hidden ``activation`` (one of
    :data:`ACTIVATIONS`: not prelu)."""

    input_shape: tuple[int, int, int]
    layers: tuple
    activation: str = "relu"

    def __post_init__(self):
        check_activation(self.activation)
        if not self.layers or not isinstance(self.layers[-1], Dense):
            raise ValueError("layers: expected the last layer to be Dense (the logits)")
        shapes(self)  # validates that every layer fits its input


def conv_output_size(n: int, k: int, s: int, padding: str) -> int:
    """VALID: floor((n - k) / s) + 1; SAME: ceil(n / s)."""
    return (n - k) // s + 1 if padding == "VALID" else -(-n // s)


def shapes(spec: CNNSpec) -> list[tuple[int, ...]]:
    """The per-example shape after each layer; ValueError when a layer does not fit."""
    shape: tuple[int, ...] = tuple(spec.input_shape)
    out = []
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, Conv | Pool):
            if len(shape) != 3:
                got = (f"input_shape {shape}: expected (height, width, channels)" if i == 0
                       else f"its input is {shape}")
                raise ValueError(f"layers[{i}]: {type(layer).__name__} needs an image input; "
                                 f"{got}")
            (h, w, c) = shape
            k = layer.kernel if isinstance(layer, Conv) else layer.window
            padding = layer.padding if isinstance(layer, Conv) else "VALID"
            if padding == "VALID" and (k[0] > h or k[1] > w):
                raise ValueError(
                    f"layers[{i}]: kernel {k} is larger than its {h}x{w} input"
                )
            shape = (conv_output_size(h, k[0], layer.stride[0], padding),
                     conv_output_size(w, k[1], layer.stride[1], padding),
                     layer.features if isinstance(layer, Conv) else c)
        elif isinstance(layer, Flatten):
            shape = (math.prod(shape),)
        elif isinstance(layer, Dense):
            if len(shape) != 1:
                raise ValueError(f"layers[{i}]: Dense needs a flat input; add Flatten() first")
            shape = (layer.features,)
        out.append(shape)
    return out


def init(spec: CNNSpec, key, dtype=jnp.float32) -> dict:
    """He-normal kernels and zero biases in the pure layout, and scale 1 and bias 0 for a
    BatchNorm (for tests and manual_grad; jaxnn.cnn's Flax modules use their own
    initializers)."""
    params = {}
    shape = tuple(spec.input_shape)
    for i, (layer, out_shape) in enumerate(zip(spec.layers, shapes(spec))):
        key, sub = jax.random.split(key)
        if isinstance(layer, BatchNorm):
            params[i] = {"scale": jnp.ones(shape[-1:], dtype), "bias": jnp.zeros(shape[-1:], dtype)}
            continue
        if isinstance(layer, Conv):
            kshape = (*layer.kernel, shape[-1], layer.features)
        elif isinstance(layer, Dense):
            kshape = (shape[0], layer.features)
        else:
            shape = out_shape
            continue
        fan_in = math.prod(kshape[:-1])
        params[i] = {"kernel": jax.random.normal(sub, kshape, dtype) * (2.0 / fan_in) ** 0.5,
                     "bias": jnp.zeros((kshape[-1],), dtype)}
        shape = out_shape
    return {"layers": params}


def add_bias(y, bias):
    """``y + bias`` in ``y``'s dtype. A bias wider than ``y`` (float32 beside bfloat16
    compute, as in :mod:`jaxnn.speedrun`) is added in the wider type, so that its gradient, a
    sum over the batch and every position, is accumulated in that type too (a bfloat16 sum
    keeps 8 significant bits). With equal dtypes this is plain ``y + bias``."""
    if bias.dtype == y.dtype:
        return y + bias
    wide = jnp.promote_types(y.dtype, bias.dtype)
    return (y.astype(wide) + bias.astype(wide)).astype(y.dtype)


def conv(x, kernel, bias, *, stride, padding):
    """z = x * kernel + bias (cross-correlation, as every framework's "convolution"); the
    bias is added by :func:`add_bias`."""
    y = jax.lax.conv_general_dilated(x, kernel, tuple(stride), padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return add_bias(y, bias)


def pool(x, *, kind, window, stride):
    """Max or average pooling, VALID: y[n, i, j, c] = max (or mean) over p < kh, q < kw of
    x[n, s_h i + p, s_w j + q, c].

    Computed from the kh * kw strided views of ``x`` (one per window offset) with elementwise
    operations only. For max pooling the output is the view at the *first* maximum (row-major
    window order), so autodiff routes dC/dy to that one input, as ``jax.lax.reduce_window``'s
    gradient and ``manual_grad.max_pool_backward`` do. A NaN counts as a maximum, so it
    propagates, and the window's first NaN takes dC/dy, as in ``max_pool_backward`` (whose
    ``jnp.argmax`` picks it; ``reduce_window``'s gradient sends it elsewhere).
    ``reduce_window``'s gradient is a select-and-scatter, which XLA's CPU backend runs slowly:
    the jitted gradient of a 2x2 max pool over a 500x24x24x32 batch took 0.446 s with
    ``reduce_window`` and 0.061 s in this form (median of 20 calls, 2-core CPU shared with a
    training job, 2026-11-23), and the two gradients were equal.
    """
    n, h, w, c = x.shape
    ho, wo = conv_output_size(h, window[0], stride[0], "VALID"), conv_output_size(
        w, window[1], stride[1], "VALID")
    views = [x[:, p : p + (ho - 1) * stride[0] + 1 : stride[0],
               q : q + (wo - 1) * stride[1] + 1 : stride[1], :]
             for p in range(window[0]) for q in range(window[1])]
    if kind == "avg":
        return sum(views[1:], views[0]) / len(views)
    y = views[0]
    for v in views[1:]:  # strictly greater: a tie keeps the earlier view (and its gradient),
        # and the first NaN, once taken, stays (a NaN is the maximum, as in jnp.argmax)
        y = jnp.where((v > y) | (jnp.isnan(v) & ~jnp.isnan(y)), v, y)
    return y


def batch_statistics(a):
    """The mean and the biased variance of every feature (the last axis) over all the other
    axes, the variance in two passes, E[(a - mu)^2], as :mod:`jaxnn.cnn`'s batch norm
    computes it (E[a^2] - mu^2 cancels when a feature's mean is large against its spread)."""
    axes = tuple(range(a.ndim - 1))
    mu = jnp.mean(a, axis=axes)
    return mu, jnp.mean(jnp.square(a - mu), axis=axes)


def batch_norm(a, scale, bias, *, epsilon, mean=None, var=None):
    """y = (a - mean) * (scale / sqrt(var + epsilon)) + bias over the last (feature) axis, in
    Flax's order of operations; without ``mean`` and ``var`` those of the batch
    (:func:`batch_statistics`: training mode)."""
    if (mean is None) != (var is None):
        raise ValueError("batch_norm: expected both mean and var (running averages) or neither "
                         "(the batch's own)")
    if mean is None:
        mean, var = batch_statistics(a)
    return (a - mean) * (scale * jax.lax.rsqrt(var + epsilon)) + bias


def _batch_norm_params(params, i):
    p = params["layers"].get(i)
    if not isinstance(p, dict) or "scale" not in p or "bias" not in p:
        raise ValueError(f"params: expected {{'scale', 'bias'}} for layer {i} (BatchNorm) in "
                         f"params['layers'][{i}] (jaxnn.layers.init and jaxnn.cnn.pure_params "
                         f"give them); got {None if p is None else sorted(p)}")
    return p


def _running_stats(batch_stats, i):
    s = batch_stats.get(i) if isinstance(batch_stats, dict) else None
    if not isinstance(s, dict) or "mean" not in s or "var" not in s:
        raise ValueError(f"batch_stats: expected {{'mean', 'var'}} for layer {i} (BatchNorm) "
                         f"in batch_stats[{i}] (jaxnn.cnn.pure_batch_stats gives them), or "
                         f"batch_stats=None for the mini-batch's own statistics; got "
                         f"{None if s is None else sorted(s) if isinstance(s, dict) else s}")
    return s["mean"], s["var"]


def check_images(spec: CNNSpec, x) -> None:
    """``x`` is a floating-point batch of ``spec.input_shape`` NHWC images (shapes and dtypes
    only, so under jit it runs once, while tracing)."""
    _checks.shape("x", x, ("batch", *spec.input_shape), "NHWC images")
    _checks.floating_array("x", x, " (scale images with jaxnn.data.to_inputs)")


def forward(spec: CNNSpec, params: dict, x, *, key=None, batch_stats=None):
    """Logits z^L for NHWC images ``x``. ``key`` enables dropout (training); None = evaluation.

    A BatchNorm layer i normalises with the running averages ``batch_stats[i]["mean"]`` and
    ``["var"]`` when ``batch_stats`` is given (evaluation; :func:`jaxnn.cnn.pure_batch_stats`
    reads them from a model), and with the mini-batch's own statistics when it is None (training
    mode, the cost that training differentiates).

    ``x`` must be floating-point of shape (batch, *spec.input_shape) (checked on shapes and
    dtypes only: once, while tracing, under ``jax.jit``)."""
    check_images(spec, x)
    sigma = activations.get(spec.activation)
    last = len(spec.layers) - 1
    a = x
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, Conv):
            p = params["layers"][i]
            a = sigma(conv(a, p["kernel"], p["bias"], stride=layer.stride, padding=layer.padding))
        elif isinstance(layer, Pool):
            a = pool(a, kind=layer.kind, window=layer.window, stride=layer.stride)
        elif isinstance(layer, Flatten):
            a = a.reshape(a.shape[0], -1)
        elif isinstance(layer, Dense):
            p = params["layers"][i]
            z = add_bias(a @ p["kernel"], p["bias"])
            a = z if i == last else sigma(z)
        elif isinstance(layer, BatchNorm):
            p = _batch_norm_params(params, i)
            mean, var = (None, None) if batch_stats is None else _running_stats(batch_stats, i)
            a = batch_norm(a, p["scale"], p["bias"], epsilon=layer.epsilon, mean=mean, var=var)
        elif isinstance(layer, Dropout) and key is not None and layer.rate > 0:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - layer.rate, a.shape)
            a = jnp.where(keep, a / (1.0 - layer.rate), 0.0)
    return a
