"""The four equations of backpropagation for jaxnn's fully connected networks, by hand.

With the book's layout (w^l of shape (n_l, n_{l-1}), a mini-batch as rows, so
z^l = a^{l-1} (w^l)^T + b^l and a^l = sigma(z^l)), for one example x:

    BP1  delta^L = nabla_a C_x ⊙ sigma'(z^L)
    BP2  delta^l = ((w^{l+1})^T delta^{l+1}) ⊙ sigma'(z^l)       (rows: delta^{l+1} @ w^{l+1})
    BP3  dC_x/db^l_j = delta^l_j
    BP4  dC_x/dw^l_jk = a^{l-1}_k delta^l_j

and the mini-batch cost C = (1/m) sum_x C_x + (l2/2) sum_w w^2 has the mean of BP3 and BP4
over the batch plus l2 w (weights only). The forward pass is jaxnn.mlp.forward itself, so
``backprop`` differentiates exactly the function that JAX's autodiff differentiates.

Index shift (as in the book's ``network.py``): ``zs[l-1] = z^l`` for l = 1..L and
``activations[l] = a^l`` with ``activations[0] = x``; ``deltas[l-1] = delta^l``.

>>> import jax, jax.numpy as jnp
>>> import manual_grad
>>> from jaxnn import costs, mlp
>>> params = mlp.make([4, 3, 2]).init(jax.random.key(1))
>>> x = jax.random.normal(jax.random.key(2), (6, 4))
>>> y = jax.nn.one_hot(jnp.arange(6) % 2, 2)
>>> grads, info = manual_grad.backprop(params, x, y, activation="sigmoid",
...                                    output_activation="sigmoid", cost="quadratic")
>>> sorted(info)
['activations', 'deltas', 'mean_deltas', 'zs']
>>> def cost(w00):  # C as a function of one weight, w^1_00, the others fixed
...     p = [dict(params[0], w=params[0]["w"].at[0, 0].set(w00)), params[1]]
...     return float(costs.quadratic(mlp.apply(p, x), y))
>>> w00, h = float(params[0]["w"][0, 0]), 1e-2
>>> central = (cost(w00 + h) - cost(w00 - h)) / (2 * h)  # a central difference, no autodiff
>>> abs(float(grads[0]["w"][0, 0]) - central) < 1e-5     # BP4 gives the same slope
True
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxnn import _checks, activations, costs, mlp
from manual_grad import layers, primes
from manual_grad.output import output_delta


def _check(params, x, y, activation, output_activation, cost, l2):
    _checks.choice("activation", activation, (*activations.HIDDEN, "maxout"))
    mlp.check_params(params, x, activation=activation)  # the network's shapes, then options
    costs.check_pair(cost, output_activation)
    if jnp.ndim(x) != 2:
        raise ValueError(f"x: expected shape (m, n_0); got {jnp.shape(x)}")
    n_out = params[-1]["w"].shape[0]
    if jnp.shape(y) != (jnp.shape(x)[0], n_out):
        raise ValueError(
            f"y: expected one-hot targets of shape (m, n_L) = ({jnp.shape(x)[0]}, {n_out}); "
            f"got {jnp.shape(y)}"
        )
    _checks.non_negative_scalar("l2", l2)  # a number >= 0, or a 0-d array (a traced l2 is not read)


def backprop(params, x, y, *, activation="sigmoid", output_activation="sigmoid",
             cost="quadratic", l2=0.0):
    """Gradients of C = (1/m) sum_x C_x + (l2/2) sum_l ||w^l||^2 by BP1-BP4.

    ``params`` is a jaxnn.mlp params list, ``x`` (m, n_0), ``y`` one-hot (m, n_L). Returns
    ``(grads, info)``: ``grads`` has the structure of ``params`` (``w``, ``b`` and, for prelu,
    ``alpha``); ``info`` holds the intermediate quantities so each equation can be inspected:

    - ``zs``: [z^1 .. z^L], each (m, n_l);  ``activations``: [a^0 = x, a^1 .. a^L];
    - ``deltas``: [delta^1 .. delta^L], one row per example (BP1, BP2);
    - ``mean_deltas``: the batch means of ``deltas``, which are nabla_b (BP3).

    Maxout hidden layers have n_l * pieces units, so their z^l and delta^l do too.
    ``activation`` must be the network's: a prelu network's params (slopes ``alpha``) with
    any other activation are refused (ValueError), not differentiated without their slopes.
    """
    _check(params, x, y, activation, output_activation, cost, l2)
    zs, acts = mlp.forward(params, x, activation=activation, output_activation=output_activation)
    m = x.shape[0]
    L = len(params)

    # BP1: the output layer's error, per example.
    deltas = [None] * L
    deltas[L - 1] = output_delta(cost, output_activation, zs[-1], acts[-1], y)
    nabla_alpha = [None] * L

    # BP2: move the error back one layer at a time, delta^l from delta^{l+1}.
    sigma_prime = None if activation in ("maxout", "prelu") else primes.activation_prime(activation)
    for l in range(L - 2, -1, -1):
        da = deltas[l + 1] @ params[l + 1]["w"]  # (w^{l+1})^T delta^{l+1}: dC_x/da^l
        z = zs[l]
        if activation == "maxout":
            deltas[l] = layers.maxout_backward(da, z, z.shape[-1] // da.shape[-1])
        elif activation == "prelu":
            alpha = params[l]["alpha"]
            deltas[l] = da * primes.prelu_prime(z, alpha)
            # the slope is a parameter too: dC/dalpha^l = mean_x sum_j dC_x/da^l_j da^l_j/dalpha
            nabla_alpha[l] = (jnp.sum(da * primes.prelu_alpha_prime(z)) / m).astype(
                jnp.result_type(alpha))
        else:
            deltas[l] = da * sigma_prime(z)

    grads = []
    for l, layer in enumerate(params):
        nabla_b = jnp.mean(deltas[l], axis=0)  # BP3, averaged over the mini-batch
        nabla_w = deltas[l].T @ acts[l] / m  # BP4: sum_x delta^l_x (a^{l-1}_x)^T / m
        if not (isinstance(l2, int | float) and l2 == 0):
            nabla_w = nabla_w + l2 * layer["w"]  # d/dw (l2/2) ||w||^2 = l2 w
        g = {"w": nabla_w, "b": nabla_b}
        if nabla_alpha[l] is not None:
            g["alpha"] = nabla_alpha[l]
        grads.append(g)

    info = {
        "zs": zs,
        "activations": acts,
        "deltas": deltas,
        "mean_deltas": [jnp.mean(d, axis=0) for d in deltas],
    }
    return grads, info


def speed_of_learning(info) -> list:
    """||delta^l|| for each hidden layer l = 1..L-1, first hidden layer first (chapter 5).

    The book's measure: the norm of the batch-averaged error, i.e. of nabla_b^l (BP3), over the
    mini-batch that ``info`` (from :func:`backprop`) was computed on.
    """
    return [jnp.linalg.norm(d) for d in info["mean_deltas"][:-1]]
