"""Fully connected networks in the book's layout, as pure ``init`` / ``apply`` functions.

``params`` is a list with one dict per layer l = 1..L (the input layer has none):
``w`` of shape (n_l, n_{l-1}) and ``b`` of shape (n_l,), plus ``alpha`` (a scalar slope) on the
hidden layers of a ``prelu`` network. A mini-batch is rows, so layer l computes

    z^l = a^{l-1} @ (w^l)^T + b^l,    a^l = sigma(z^l)

and the code reads like the equations. A ``maxout`` network's hidden layer l has
n_l * pieces units whose groups of ``pieces`` are reduced by max, so the next layer sees n_l.

Names of activations are static (Python strings), so wrap these functions with
``functools.partial`` before ``jax.jit``, or use :func:`make`.

>>> import jax, jax.numpy as jnp
>>> from jaxnn import mlp
>>> net = mlp.make([784, 30, 10])                 # the book's chapter-1 network
>>> params = net.init(jax.random.key(0))
>>> [layer["w"].shape for layer in params]        # w^l is (n_l, n_{l-1})
[(30, 784), (10, 30)]
>>> net.apply(params, jnp.zeros((5, 784))).shape  # a mini-batch of 5 rows -> a^L
(5, 10)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnn import _checks, activations
from jaxnn import init as init_schemes


def init(
    key,
    sizes,
    *,
    scheme: str = "default",
    activation: str = "sigmoid",
    pieces: int = 2,
    dtype=jnp.float32,
):
    """Parameters for a network with layer sizes ``sizes`` = [n_0, n_1, ..., n_L].

    ``scheme`` names a :mod:`jaxnn.init` scheme: ``"default"`` is N(0, 1/n_in), chapter 3's
    (the book's name for it); chapter 1's N(0, 1) is ``"large"``, which ``TrainConfig`` (field
    ``init``) and the ch1 presets use. ``activation`` matters only for ``prelu``
    (adds a slope ``alpha`` per hidden layer) and ``maxout`` (hidden layers get
    ``n_l * pieces`` units).
    """
    sizes = _checks.sizes("sizes", sizes)
    make_layer = init_schemes.get(scheme)
    _check_hidden(activation)
    if activation == "maxout":
        _checks.positive("pieces", pieces, integer=True)
    dtype = _checks.floating_dtype("dtype", dtype)
    keys = jax.random.split(key, len(sizes) - 1)
    params = []
    for l, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:]), start=1):
        hidden = l < len(sizes) - 1
        units = n_out * pieces if hidden and activation == "maxout" else n_out
        w, b = make_layer(k, units, n_in, dtype)
        layer = {"w": w, "b": b}
        if hidden and activation == "prelu":
            layer["alpha"] = jnp.asarray(activations.PRELU_INIT, dtype)
        params.append(layer)
    return params


def _check_hidden(activation):
    _checks.choice("activation", activation, (*activations.HIDDEN, "maxout"))


def _output(output_activation):
    """sigma_out, with a ValueError naming ``output_activation`` unless it is an output one."""
    return activations.get(_checks.choice("output_activation", output_activation,
                                          activations.OUTPUTS))


X_HINT = " (scale images with jaxnn.data.to_inputs)"


def hidden_activation(activation: str, layer, z, n_next_in: int | None = None):
    """a = sigma(z) for a hidden layer, with the layer's own slope (prelu) or grouping (maxout)."""
    if activation == "prelu":
        return activations.prelu(z, layer["alpha"])
    if activation == "maxout":
        return activations.maxout(z, z.shape[-1] // n_next_in)
    return activations.get(activation)(z)


def sizes_of(params) -> tuple[int, ...]:
    """Layer sizes [n_0, ..., n_L] as the network sees them (a maxout group counts once)."""
    return (*(layer["w"].shape[1] for layer in params), params[-1]["w"].shape[0])


def check_params(params, x=None, *, sizes=None, activation: str = "sigmoid",
                 pieces: int | None = None) -> None:
    """ValueError unless ``params`` is a list of {'w', 'b'} layers whose shapes chain (and fit
    ``x``'s last axis, when given, and the network's layer ``sizes``, when given).

    Layer l's w must have n_{l-1} columns, the rows of layer l-1's w; for a ``maxout`` network
    the rows of a hidden layer are n_{l-1} groups of equal size (``pieces`` each, when given).
    A ``prelu`` network's hidden layers need their slope ``alpha``, and no other layer may have
    one (another ``activation`` would silently ignore it). ``x`` must be floating-point
    (TypeError: images are scaled with ``jaxnn.data.to_inputs`` first).

    Shared by every entry point that takes a params pytree (:func:`forward`, :func:`logits`,
    :func:`apply`, :func:`make`'s functions, and ``manual_grad.backprop``). It reads shapes and
    dtypes only, which are static, so under ``jax.jit`` this runs once, at trace time, and costs
    nothing per step.
    """
    if not isinstance(params, list | tuple) or not params:
        raise TypeError(f"params: expected a non-empty list of layer dicts; got {type(params)}")
    for l, layer in enumerate(params, start=1):
        if not isinstance(layer, dict) or "w" not in layer or "b" not in layer:
            got = f"keys {sorted(layer)}" if isinstance(layer, dict) else type(layer).__name__
            raise ValueError(f"params[{l - 1}]: expected a dict with 'w' and 'b'; got {got}")
        for name in ("w", "b"):
            dtype = jnp.result_type(layer[name])
            if not jnp.issubdtype(dtype, jnp.floating):
                raise TypeError(
                    f"params[{l - 1}]['{name}']: expected a floating-point array; got {dtype}"
                )
        w, b = jnp.shape(layer["w"]), jnp.shape(layer["b"])
        if len(w) != 2 or b != (w[0],):
            raise ValueError(
                f"params[{l - 1}]: expected w of shape (n_l, n_prev) and b of shape (n_l,); "
                f"got w {w} and b {b}"
            )
        if activation == "prelu" and l < len(params) and "alpha" not in layer:
            raise ValueError(
                f"params[{l - 1}]: expected a prelu hidden layer with 'w', 'b' and a slope "
                f"'alpha'; got keys {sorted(layer)}"
            )
        if "alpha" in layer and l == len(params):
            raise ValueError(
                f"params[{l - 1}]: expected no slope 'alpha' on the output layer (a prelu "
                f"network's slopes are on its hidden layers); got keys {sorted(layer)}"
            )
        if "alpha" in layer and activation != "prelu":
            raise ValueError(
                f"params[{l - 1}]: has a slope 'alpha', which only a prelu network uses (it "
                f"would be ignored); got activation={activation!r}: pass activation='prelu' "
                f"for these params"
            )
    for l in range(1, len(params)):
        units, n_in = params[l - 1]["w"].shape[0], params[l]["w"].shape[1]
        got = tuple(params[l]["w"].shape)
        if activation != "maxout" and units != n_in:
            raise ValueError(
                f"params[{l}]: w expects {n_in} inputs but layer {l} has {units} units: "
                f"expected w of shape (n, {units}); got {got}"
            )
        if activation == "maxout" and (units % n_in if pieces is None else
                                       units != n_in * pieces):
            if pieces is None:
                want = f"(n, k) with k dividing {units}"
            else:
                groups = units // pieces if units % pieces == 0 else f"{units}/{pieces}"
                want = f"(n, {groups}) for groups of {pieces}"
            raise ValueError(
                f"params[{l}]: w expects {n_in} inputs but layer {l} has {units} maxout units: "
                f"expected w of shape {want}; got {got}"
            )
    if sizes is not None and tuple(sizes_of(params)) != tuple(sizes):
        raise ValueError(
            f"params: expected a network of sizes {list(sizes)}; got layers of sizes "
            f"{list(sizes_of(params))}"
        )
    if x is not None:
        if jnp.ndim(x) < 1 or jnp.shape(x)[-1] != params[0]["w"].shape[1]:
            raise ValueError(
                f"x: expected {params[0]['w'].shape[1]} features per example (the network's "
                f"n_0); got shape {jnp.shape(x)}"
            )
        _checks.floating_array("x", x, X_HINT)


def forward(params, x, *, activation: str = "sigmoid", output_activation: str = "sigmoid"):
    """Feedforward keeping every layer: returns ``(zs, activations)``.

    ``zs[l-1] = z^l`` for l = 1..L and ``activations[l] = a^l`` for l = 0..L, with
    ``activations[0] = x`` (the book's ``network.py`` naming and index shift).
    """
    _check_hidden(activation)
    sigma_out = _output(output_activation)
    check_params(params, x, activation=activation)
    a = x
    zs, acts = [], [x]
    for l, layer in enumerate(params):
        z = a @ layer["w"].T + layer["b"]
        if l < len(params) - 1:
            a = hidden_activation(activation, layer, z, params[l + 1]["w"].shape[1])
        else:
            a = sigma_out(z)
        zs.append(z)
        acts.append(a)
    return zs, acts


def logits(params, x, *, activation: str = "sigmoid"):
    """z^L, the output layer's weighted input (what the stable costs take)."""
    _check_hidden(activation)
    check_params(params, x, activation=activation)
    a = x
    for l, layer in enumerate(params[:-1]):
        a = hidden_activation(activation, layer, a @ layer["w"].T + layer["b"],
                              params[l + 1]["w"].shape[1])
    return a @ params[-1]["w"].T + params[-1]["b"]


def apply(params, x, *, activation: str = "sigmoid", output_activation: str = "sigmoid"):
    """a^L = sigma_out(z^L): the network's output for inputs ``x`` of shape (m, n_0)."""
    sigma_out = _output(output_activation)
    return sigma_out(logits(params, x, activation=activation))


class Network(NamedTuple):
    """An MLP's pure functions with its static choices bound.

    ``init(key) -> params``; ``logits(params, x) -> z^L``; ``apply(params, x) -> a^L``.
    """

    sizes: tuple[int, ...]
    activation: str
    output_activation: str
    init: object
    logits: object
    apply: object


def make(
    sizes,
    *,
    activation: str = "sigmoid",
    output_activation: str = "sigmoid",
    scheme: str = "default",
    pieces: int = 2,
    dtype=jnp.float32,
) -> Network:
    """Bind an architecture's static choices; every returned function is jit-friendly.
    ``scheme`` is :func:`init`'s (default N(0, 1/n_in); ``"large"`` is chapter 1's N(0, 1))."""
    sizes = _checks.sizes("sizes", sizes)
    _check_hidden(activation)
    _checks.choice("output_activation", output_activation, activations.OUTPUTS)
    init_schemes.get(scheme)
    if activation == "maxout":
        _checks.positive("pieces", pieces, integer=True)
    dtype = _checks.floating_dtype("dtype", dtype)
    maxout_pieces = pieces if activation == "maxout" else None

    def _init(key):
        return init(key, sizes, scheme=scheme, activation=activation, pieces=pieces, dtype=dtype)

    def _logits(params, x):
        check_params(params, x, sizes=sizes, activation=activation, pieces=maxout_pieces)
        return logits(params, x, activation=activation)

    def _apply(params, x):
        return activations.get(output_activation)(_logits(params, x))

    return Network(sizes, activation, output_activation, _init, _logits, _apply)
