"""Optimizers by name, all optax ``GradientTransformation``s, with the book's L2 chained in.

Chapter 3's L2-regularized update is

    w <- (1 - eta lambda / n) w - (eta / m) sum_x grad C_x,

weight decay on the weights only (not the biases). Chaining ``optax.add_decayed_weights(l2 / n)``
*before* the optimizer adds (lambda / n) w to the gradient, so for plain SGD the step is exactly
the book's; for adaptive optimizers it is L2 in the gradient (coupled), which is what
"L2 regularization" means there. ``adamw`` instead decouples the decay as its paper says.
"""

from __future__ import annotations

import optax

from jaxnn import _checks
from jaxnn.costs import weight_mask

MOMENTUM = 0.9  # the usual coefficient for momentum and Nesterov


def _sgd(eta):
    return optax.sgd(eta)


def _momentum(eta):
    return optax.sgd(eta, momentum=MOMENTUM)


def _nesterov(eta):
    return optax.sgd(eta, momentum=MOMENTUM, nesterov=True)


def _adagrad(eta):
    return optax.adagrad(eta)


def _rmsprop(eta):
    return optax.rmsprop(eta)


def _adam(eta):
    return optax.adam(eta)


OPTIMIZERS = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": None,  # built below: its weight decay is decoupled
}


def make(name: str, eta, *, l2: float = 0.0, n_train: int = 1) -> optax.GradientTransformation:
    """Optimizer ``name`` with learning rate ``eta`` (a float or an optax schedule) and the book's
    chapter-3 L2 penalty ``l2`` (lambda) for a training set of ``n_train`` examples.

    ``eta`` is the per-mini-batch step of the *averaged* gradient, as in the book's
    ``w -> w - (eta / m) sum_x grad C_x``.
    """
    _checks.choice("optimizer", name, OPTIMIZERS)
    if not callable(eta):
        _checks.positive("eta", eta)
    l2 = _checks.non_negative("l2", l2)
    _checks.positive("n_train", n_train, integer=True)
    if name == "adamw":
        return optax.adamw(eta, weight_decay=l2 / n_train, mask=weight_mask)
    opt = OPTIMIZERS[name](eta)
    if l2 == 0.0:
        return opt
    return optax.chain(optax.add_decayed_weights(l2 / n_train, mask=weight_mask), opt)
