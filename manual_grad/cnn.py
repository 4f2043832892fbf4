"""Backpropagation through a whole convolutional network of :mod:`jaxnn.layers`, by hand.

The network is a :class:`jaxnn.layers.CNNSpec` with the pure parameter layout
``{"layers": {i: {"kernel", "bias"}}}``; the cost is the log-likelihood of softmax(z^L),
averaged over the mini-batch. The forward pass repeats :func:`jaxnn.layers.forward` step by step
(with the same dropout masks, from the same key splits) and keeps every layer's input and z;
the backward pass applies, from the last layer to the first:

- softmax + log-likelihood (BP1):  delta^L = a^L - y
- Dense  z = a W + b:   dW = a^T delta / m (BP4),  db = mean delta (BP3),  da = delta W^T
- activation a = sigma(z):  delta = da ⊙ sigma'(z)  (BP2's Hadamard factor)
- Conv:  :func:`manual_grad.conv.conv2d_backward` (BP3, BP4 and BP2 for shared weights)
- Pool:  :func:`manual_grad.pool.max_pool_backward` / ``avg_pool_backward``
- Flatten: a reshape back;  Dropout: the same mask, scaled by 1 / (1 - rate).
- BatchNorm (training mode, the batch's statistics):
  :func:`manual_grad.layers.batch_norm_backward` (dscale, dbias, and dx through mu and var)

Deltas are carried per example (dC_x/dz) and parameter gradients divide by m once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnn import _checks, activations
from jaxnn import layers as jl
from manual_grad import layers, pool, primes
from manual_grad.conv import conv2d_backward
from manual_grad.output import output_delta


def _check(spec, params, x, y):
    if not isinstance(spec, jl.CNNSpec):
        raise TypeError(f"spec: expected a jaxnn.layers.CNNSpec; got {type(spec).__name__}")
    if jnp.ndim(x) != 4 or tuple(x.shape[1:]) != tuple(spec.input_shape):
        raise ValueError(
            f"x: expected NHWC images (m, {', '.join(map(str, spec.input_shape))}); "
            f"got shape {jnp.shape(x)}"
        )
    _checks.floating_array("x", x, " (scale images with jaxnn.data.to_inputs)")
    n_out = spec.layers[-1].features
    if jnp.shape(y) != (x.shape[0], n_out):
        raise ValueError(f"y: expected one-hot targets ({x.shape[0]}, {n_out}); got {jnp.shape(y)}")
    if not isinstance(params, dict) or "layers" not in params:
        raise ValueError("params: expected {'layers': {i: {'kernel', 'bias'}}}")
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, jl.PARAMETRIC) and i not in params["layers"]:
            raise ValueError(f"params: no entry for layer {i} ({type(layer).__name__})")
        leaves = ("scale", "bias") if isinstance(layer, jl.BatchNorm) else ("kernel", "bias")
        if isinstance(layer, jl.PARAMETRIC) and not all(k in params["layers"][i] for k in leaves):
            raise ValueError(f"params: expected {{{', '.join(map(repr, leaves))}}} for layer {i} "
                             f"({type(layer).__name__}); got {sorted(params['layers'][i])}")


def forward(spec, params, x, *, key=None):
    """:func:`jaxnn.layers.forward`, keeping what backprop needs.

    Returns ``(logits, tape)`` where ``tape`` has ``inputs`` (each layer's input a, a list),
    ``zs`` ({i: z} for Conv and Dense), ``masks`` ({i: keep} for the dropouts applied) and
    ``batch_stats`` ({i: {"mean", "var"}}: each BatchNorm's statistics of this mini-batch).
    """
    sigma = activations.get(spec.activation)
    last = len(spec.layers) - 1
    a = x
    inputs, zs, masks, stats = [], {}, {}, {}
    for i, layer in enumerate(spec.layers):
        inputs.append(a)
        if isinstance(layer, jl.Conv):
            p = params["layers"][i]
            zs[i] = jl.conv(a, p["kernel"], p["bias"], stride=layer.stride, padding=layer.padding)
            a = sigma(zs[i])
        elif isinstance(layer, jl.Pool):
            a = jl.pool(a, kind=layer.kind, window=layer.window, stride=layer.stride)
        elif isinstance(layer, jl.Flatten):
            a = a.reshape(a.shape[0], -1)
        elif isinstance(layer, jl.Dense):
            p = params["layers"][i]
            zs[i] = jl.add_bias(a @ p["kernel"], p["bias"])
            a = zs[i] if i == last else sigma(zs[i])
        elif isinstance(layer, jl.BatchNorm):
            p = params["layers"][i]
            mean, var = jl.batch_statistics(a)
            stats[i] = {"mean": mean, "var": var}
            a = jl.batch_norm(a, p["scale"], p["bias"], epsilon=layer.epsilon, mean=mean, var=var)
        elif isinstance(layer, jl.Dropout) and key is not None and layer.rate > 0:
            key, sub = jax.random.split(key)  # the same splits as jaxnn.layers.forward
            masks[i] = jax.random.bernoulli(sub, 1.0 - layer.rate, a.shape)
            a = jnp.where(masks[i], a / (1.0 - layer.rate), 0.0)
    return a, {"inputs": inputs, "zs": zs, "masks": masks, "batch_stats": stats}


def cnn_backprop(spec, params, x, y, *, key=None):
    """Gradients of C = -(1/m) sum_x ln softmax(z^L(x))_{y(x)} for the network ``spec``.

    ``x`` (m, H, W, C) NHWC, ``y`` one-hot (m, n_out) (or any targets in [0, 1], for
    C = -(1/m) sum_x y . ln softmax(z^L(x))); ``key`` enables dropout exactly as in
    :func:`jaxnn.layers.forward`. A BatchNorm normalises with the mini-batch's statistics, as
    in training (``layers.forward`` with ``batch_stats=None``), so the examples' costs are
    coupled through it; its gradients are ``{"scale", "bias"}``.

    Returns ``(grads, info)``: ``grads`` in the structure of ``params``; ``info`` has ``inputs``
    (each layer's input), ``zs`` and ``deltas`` ({i: dC_x/dz^i} per example for Conv and Dense
    layers), ``masks`` (dropout), ``batch_stats`` (each BatchNorm's mean and biased variance
    over this mini-batch: what moves its running averages) and ``output`` (softmax
    probabilities a^L).
    """
    _check(spec, params, x, y)
    z_last, tape = forward(spec, params, x, key=key)
    sigma_prime = primes.activation_prime(spec.activation)
    m = x.shape[0]
    last = len(spec.layers) - 1
    a_out = jax.nn.softmax(z_last, axis=-1)
    delta_out = output_delta("log_likelihood", "softmax", z_last, a_out, y)  # BP1
    da = None  # dC_x/d(output of the current layer), per example
    deltas, grads = {}, {}
    for i in range(last, -1, -1):
        layer, a_in = spec.layers[i], tape["inputs"][i]
        if isinstance(layer, jl.Dense | jl.Conv):
            z = tape["zs"][i]
            # BP1 for the output layer; otherwise BP2's factor sigma'(z).
            delta = delta_out if i == last else da * sigma_prime(z)
            deltas[i] = delta
            kernel = params["layers"][i]["kernel"]
            if isinstance(layer, jl.Dense):
                nabla_w = a_in.T @ delta / m  # BP4 (Flax layout: (n_in, n_out))
                nabla_b = jnp.mean(delta, axis=0)  # BP3
                da = delta @ kernel.T
            else:
                da, nabla_w, nabla_b = conv2d_backward(delta, a_in, kernel, stride=layer.stride,
                                                       padding=layer.padding)
                nabla_w, nabla_b = nabla_w / m, nabla_b / m
            grads[i] = {"kernel": nabla_w, "bias": nabla_b}
        elif isinstance(layer, jl.Pool):
            backward = pool.max_pool_backward if layer.kind == "max" else pool.avg_pool_backward
            da = backward(da, a_in, window=layer.window, stride=layer.stride)
        elif isinstance(layer, jl.Flatten):
            da = layers.flatten_backward(da, a_in.shape)
        elif isinstance(layer, jl.BatchNorm):
            da, nabla_scale, nabla_bias = layers.batch_norm_backward(
                da, a_in, params["layers"][i]["scale"], epsilon=layer.epsilon)
            grads[i] = {"scale": nabla_scale / m, "bias": nabla_bias / m}
        elif isinstance(layer, jl.Dropout) and i in tape["masks"]:
            da = layers.dropout_backward(da, tape["masks"][i], layer.rate)
    grads = {"layers": {i: grads[i] for i in sorted(grads)}}
    info = {**tape, "deltas": deltas, "output": a_out}
    return grads, info
