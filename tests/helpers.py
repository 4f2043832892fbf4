"""Importable test helpers (conftest's fixtures are not importable by name)."""

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
