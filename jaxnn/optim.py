"""Optimizers by name, all optax ``GradientTransformation``s, with the book's L2 chained in.

Chapter 3's L2-regularized update is

    w <- (1 - eta lambda / n) w - (eta / m) sum_x grad C_x,

weight decay on the weights only (not the biases). Chaining ``optax.add_decayed_weights(l2 / n)``
*before* the optimizer adds (lambda / n) w to the gradient, so for plain SGD the step is exactly
the book's; for adaptive optimizers it is L2 in the gradient (coupled), which is what
"L2 regularization" means there. ``adamw`` instead decouples the decay as its paper says.

The updates, for a gradient g (after L2 and clipping) and learning rate eta; every state
starts at 0 unless given (tests/test_optim.py checks each against these formulas):

| name     | update                                                                          |
|----------|---------------------------------------------------------------------------------|
| sgd      | theta <- theta - eta g                                                          |
| momentum | v <- mu v + g,  theta <- theta - eta v  (mu = 0.9; for a constant eta this is    |
|          | the book's v <- mu v - eta g, theta <- theta + v, whose v is -eta times this v)  |
| nesterov | v <- mu v + g,  theta <- theta - eta (g + mu v)                                 |
| adagrad  | G <- G + g^2 (G starts at 0.1),  theta <- theta - eta g / sqrt(G + 1e-7)        |
| rmsprop  | G <- 0.9 G + 0.1 g^2,  theta <- theta - eta g / sqrt(G + 1e-8)                  |
| adam     | m <- 0.9 m + 0.1 g,  s <- 0.999 s + 0.001 g^2,  at step t = 1, 2, ...:          |
|          | theta <- theta - eta (m / (1 - 0.9^t)) / (sqrt(s / (1 - 0.999^t)) + 1e-8)        |

These are optax's defaults, spelled out. Adagrad's G_0 = 0.1 and the epsilon inside the root
are optax's choices: the textbook form starts G at 0 with epsilon outside the root, which makes
the first step eta sign(g) for every coordinate, however small g is.
"""

from __future__ import annotations

import optax

from jaxnn import _checks
from jaxnn.costs import weight_mask

MOMENTUM = 0.9  # the usual coefficient for momentum and Nesterov
ADAGRAD_G0, ADAGRAD_EPS = 0.1, 1e-7
RMSPROP_DECAY, RMSPROP_EPS = 0.9, 1e-8
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8


def _sgd(eta):
    return optax.sgd(eta)


def _momentum(eta):
    return optax.sgd(eta, momentum=MOMENTUM)


def _nesterov(eta):
    return optax.sgd(eta, momentum=MOMENTUM, nesterov=True)


def _adagrad(eta):
    return optax.adagrad(eta, initial_accumulator_value=ADAGRAD_G0, eps=ADAGRAD_EPS)


def _rmsprop(eta):
    return optax.rmsprop(eta, decay=RMSPROP_DECAY, eps=RMSPROP_EPS)


def _adam(eta):
    return optax.adam(eta, b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS)


OPTIMIZERS = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": None,  # built below: its weight decay is decoupled
}


SCHEDULES = ("constant", "step", "cosine", "one-cycle")


def schedule(name: str, eta: float, total_steps: int):
    """Learning rate eta_t at step t (an optax schedule) over ``total_steps`` steps:

    - constant: eta_t = eta;
    - step: eta, then eta / 10 after half the steps and eta / 100 after three quarters;
    - cosine: eta_t = eta (1 + cos(pi t / T)) / 2, decaying to 0 at T;
    - one-cycle: warm up from eta / 25 to eta over the first 30% of the steps, then cosine
      annealing down to eta / 25e4 (optax.cosine_onecycle_schedule).
    """
    _checks.choice("schedule", name, SCHEDULES)
    eta = _checks.positive("eta", eta)
    total_steps = _checks.positive("total_steps", total_steps, integer=True)
    if name == "constant":
        return optax.constant_schedule(eta)
    if name == "step":
        return optax.piecewise_constant_schedule(
            eta, {max(1, total_steps // 2): 0.1, max(2, (3 * total_steps) // 4): 0.1})
    if name == "cosine":
        return optax.cosine_decay_schedule(eta, total_steps)
    return optax.cosine_onecycle_schedule(total_steps, eta)


def make(name: str, eta, *, l2: float = 0.0, n_train: int = 1,
         clip_norm: float | None = None) -> optax.GradientTransformation:
    """Optimizer ``name`` with learning rate ``eta`` (a float or an optax schedule) and the book's
    chapter-3 L2 penalty ``l2`` (lambda) for a training set of ``n_train`` examples.

    ``eta`` is the per-mini-batch step of the *averaged* gradient, as in the book's
    ``w -> w - (eta / m) sum_x grad C_x``.

    ``clip_norm`` rescales the cost gradient g (before L2) to g min(1, clip_norm / ||g||)
    (``optax.clip_by_global_norm``) before the optimizer sees it. Chapter 6's L2 convention
    (cost + 0.5 lambda sum w^2 / number of mini-batches) is this with ``n_train`` = the number of
    mini-batches per epoch.
    """
    if clip_norm is not None:
        clip_norm = _checks.positive("clip_norm", clip_norm)
        return optax.chain(optax.clip_by_global_norm(clip_norm),
                           make(name, eta, l2=l2, n_train=n_train))
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
