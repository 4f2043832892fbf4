"""Importable test helpers (conftest's fixtures are not importable by name)."""

from pathlib import Path

import numpy as np
from conftest import assert_trees_close, host  # noqa: F401


def exact_softmax_costs(z, k):
    """The exact softmax costs of one example with logits ``z`` (floats) and true class ``k``,
    from 50-digit decimal arithmetic: ``(log_likelihood, its gradient in z, quadratic, its
    gradient in z)`` as floats, the gradients as lists. Exact references for where float
    softmax saturates and softmax(z) - y cancels."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 50
        e = [Decimal(float(v)).exp() for v in z]
        total = sum(e)
        p = [v / total for v in e]
        r = [pj - (1 if j == k else 0) for j, pj in enumerate(p)]  # softmax(z) - y
        rp = sum(rj * pj for rj, pj in zip(r, p))
        quadratic_grad = [pj * (rj - rp) for rj, pj in zip(r, p)]  # J_softmax^T r
        quadratic = sum(rj * rj for rj in r) / 2
        return (float(-p[k].ln()), [float(v) for v in r], float(quadratic),
                [float(v) for v in quadratic_grad])


def optimizer_by_hand(name, theta, grads, *, eta, decay=0.0):
    """jaxnn.optim's docstring table for optimizer ``name`` (learning rate ``eta``), step by step
    over ``grads``, in float64 NumPy. ``decay`` is the L2 coefficient l2 / n_train of a
    weight leaf (0 for a bias): added to the gradient before the optimizer
    (coupled, as chained in optim.make), or for adamw subtracted as eta decay theta after the
    Adam step (decoupled)."""
    theta = theta.astype(np.float64)
    v = np.zeros_like(theta)
    G = np.full_like(theta, 0.1 if name == "adagrad" else 0.0)  # the documented G_0
    m, s = np.zeros_like(theta), np.zeros_like(theta)
    mu = 0.9
    for t, g in enumerate(grads, start=1):
        if name != "adamw":
            g = g + decay * theta  # coupled: the optimizer sees the L2 term as gradient
        if name == "sgd":
            theta = theta - eta * g
        elif name == "momentum":
            v = mu * v + g
            theta = theta - eta * v
        elif name == "nesterov":
            v = mu * v + g
            theta = theta - eta * (g + mu * v)
        elif name == "adagrad":
            G = G + g**2
            theta = theta - eta * g / np.sqrt(G + 1e-7)
        elif name == "rmsprop":
            G = 0.9 * G + 0.1 * g**2
            theta = theta - eta * g / np.sqrt(G + 1e-8)
        elif name in ("adam", "adamw"):
            m = 0.9 * m + 0.1 * g
            s = 0.999 * s + 0.001 * g**2
            step = (m / (1 - 0.9**t)) / (np.sqrt(s / (1 - 0.999**t)) + 1e-8)
            theta = theta - eta * (step + (decay * theta if name == "adamw" else 0.0))
        else:
            raise AssertionError(f"no by-hand update for {name!r}")
    return theta


def corrupt_checkpoint(run_dir, step) -> None:
    """Flip a byte in every data file of the arrays of ``run_dir``'s checkpoint ``step``."""
    chunks = [p for p in (Path(run_dir) / "checkpoints" / str(step) / "state").rglob("*")
              if p.is_file() and p.parent.name == "d"]
    assert chunks
    for p in chunks:
        raw = bytearray(p.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        p.write_bytes(bytes(raw))
