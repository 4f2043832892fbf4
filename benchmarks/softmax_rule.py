"""What softmax's derivative rules cost, and what they buy: one training epoch of a softmax
network whose log-likelihood gradient comes from jaxnn's cost (``costs.from_logits``, with
``activations.log_softmax`` and its derivative rule) beside the same epoch with
``jax.nn.log_softmax`` (what jaxnn used before 2026-11-25), side by side in one process; and
how far each float32 gradient is from the exact one where the right class's output nears 1.

The network is ch6-fc100's, the book's one fully connected chapter-6 row, as a ``jaxnn.mlp``:
[784, 100, 10] sigmoid/softmax, log-likelihood, N(0, 1/n_in) weights, SGD eta 0.1, no L2. The
smaller the network, the larger the cost's share of a step, so this is where the rule costs
most; a convolutional network spends a smaller share of its step there. It is
timed with mini-batches of 10 (the book's; 5,000 steps an epoch) and of 100. Both variants are
compiled first; then they take turns, one epoch each, for ``--rounds`` rounds, each round
starting with the other variant, so that the machine's load hits both alike. The ratio is the
new cost's median over the old one's.

The accuracy table takes logits z = [d, 0, ..., 0] with the right class first (the softmax
output of the right class is 1 / (1 + 9 e^-d)) and compares the float32 gradient of the cost
with respect to z with the exact one, -9 e^-d / (1 + 9 e^-d) at the right class and
e^-d / (1 + 9 e^-d) at the others (computed in float64 from e^-d, which loses nothing).

    python benchmarks/softmax_rule.py [--rounds 8] [--mini-batch-sizes 10 100] [--train-size N]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    environment,
    interleaved_epochs,
    markdown_table,
    own_state,
    positive_int,
    script_parser,
    write_json,
)

VARIANTS = ("jax.nn.log_softmax", "jaxnn")
MARGINS = (5, 10, 15, 17, 20, 30)


def old_cost(z, y):
    """The log-likelihood as jaxnn computed it before softmax's derivative rules."""
    import jax
    import jax.numpy as jnp

    return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(z, axis=-1), axis=-1))


def cost_fns() -> dict:
    from jaxnn import costs

    return {"jax.nn.log_softmax": old_cost, "jaxnn": costs.from_logits("log_likelihood",
                                                                       "softmax")}


def accuracy_rows(margins=MARGINS) -> list[dict]:
    """For each margin d: the largest relative error of each variant's float32 gradient over the
    ten units, against the exact gradient."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rows = []
    y = jnp.eye(10, dtype=jnp.float32)[:1]
    for d in margins:
        z = jnp.zeros((1, 10), jnp.float32).at[0, 0].set(d)
        small = np.exp(-float(d))
        exact = np.full(10, small / (1 + 9 * small))
        exact[0] = -9 * small / (1 + 9 * small)
        row = {"margin": d}
        for name, cost in cost_fns().items():
            grad = np.asarray(jax.grad(cost)(z, y), np.float64)[0]
            row[name] = float(np.max(np.abs(grad - exact) / np.abs(exact)))
        rows.append(row)
    return rows


def _epochs(mini_batch_size: int, train_size: int | None):
    """The prepared data, and for each variant its compiled epoch and fresh state."""
    import jax

    from jaxnn import experiment, train

    config = experiment.TrainConfig(sizes=(784, 100, 10), output_activation="softmax",
                                    cost="log_likelihood", init="default", eta=0.1,
                                    mini_batch_size=mini_batch_size, train_size=train_size)
    prepared = experiment.prepare(config)
    n = len(prepared.train)
    network = prepared.network
    optimizer = experiment.make_optimizer(config, n)
    params = network.init(jax.random.key(0))
    out = {}
    for name, cost in cost_fns().items():
        grad_fn = jax.grad(lambda p, x, y, cost=cost: cost(network.logits(p, x), y))
        epoch = train.make_epoch(grad_fn, optimizer, mini_batch_size=mini_batch_size,
                                 n_train=n)
        out[name] = (epoch, own_state(params, optimizer))
    return prepared.train, out


def measure(mini_batch_size: int, rounds: int, train_size: int | None) -> list[dict]:
    data, variants = _epochs(mini_batch_size, train_size)
    first, wall, _ = interleaved_epochs(variants, data, rounds)
    base = statistics.median(wall[VARIANTS[0]])
    return [{"mini_batch_size": mini_batch_size, "cost": name,
             "wall_median_s": statistics.median(wall[name]), "wall_min_s": min(wall[name]),
             "first_call_s": first[name], "ratio_to_old": statistics.median(wall[name]) / base,
             "wall_s": wall[name]} for name in variants]


def main(argv=None) -> dict:
    parser = script_parser(__doc__)
    parser.add_argument("--rounds", type=positive_int, default=8,
                        help="epochs timed per variant (default 8)")
    parser.add_argument("--mini-batch-sizes", type=positive_int, nargs="+", default=[10, 100])
    parser.add_argument("--train-size", type=positive_int, default=None,
                        help="first N training images (default all 50,000)")
    parser.add_argument("--json", type=Path, default=RESULTS / "softmax_rule.json")
    args = parser.parse_args(argv)
    env = environment()
    accuracy = accuracy_rows()
    print(f"Largest relative error of the float32 gradient dC/dz, z = [d, 0 x 9], right class "
          f"first ({env['device']}, jax {env['jax']})")
    print(markdown_table(["margin d", *VARIANTS],
                         [[r["margin"], *(f"{r[v]:.1e}" for v in VARIANTS)] for r in accuracy]))
    timing = [row for m in args.mini_batch_sizes for row in measure(m, args.rounds,
                                                                      args.train_size)]
    n = args.train_size or 50_000
    print(f"\n[784, 100, 10] sigmoid/softmax epoch on {n:,} images, median of {args.rounds} "
          "interleaved rounds")
    print(markdown_table(
        ["mini-batch", "cost", "wall median s/epoch", "wall min", "first call (compiles)",
         "ratio to jax.nn.log_softmax"],
        [[r["mini_batch_size"], r["cost"], f"{r['wall_median_s']:.3f}", f"{r['wall_min_s']:.3f}",
          f"{r['first_call_s']:.2f}", f"{r['ratio_to_old']:.2f}"] for r in timing]))
    payload = {"environment": env,
               "settings": {"rounds": args.rounds, "train_size": n, "sizes": [784, 100, 10],
                            "mini_batch_sizes": args.mini_batch_sizes},
               "accuracy": accuracy, "results": timing}
    print(f"wrote {write_json(args.json, payload)}")
    return payload


if __name__ == "__main__":
    main()
