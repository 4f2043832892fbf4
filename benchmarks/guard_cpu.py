"""What the divergence guard costs: seconds per epoch of ``train.make_epoch`` with
``on_nan=None`` (no check), ``"stop"`` and ``"skip"``, side by side in one process.

Both guards check, once at the end of the epoch, that the params and optimizer state are finite
(one ``all(isfinite)`` reduction per leaf), after copying the epoch's start; only an epoch that
ends non-finite is replayed with every step checked. The epochs timed here are clean, so this
measures what the guard costs when nothing goes wrong. The network is the book's chapter-1
network (preset ch1-30: [784, 30, 10], mini-batch 10, 5,000 steps per epoch on 50,000 images),
with plain SGD (no floating-point optimizer state) and with Adam (two moments per parameter).
Every variant is compiled first; then the variants take turns, one epoch each, for ``--rounds``
rounds, so that the machine's load hits all alike. The ratio is each variant's median over the
unguarded median of the same optimizer.

    python benchmarks/guard_cpu.py [--rounds 8] [--optimizers sgd adam] [--train-size N]
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

VARIANTS = (None, "stop", "skip")


def _epoch_functions(optimizer_name: str, train_size: int | None):
    """The prepared ch1-30 data, and for every variant its compiled epoch and fresh state."""
    import jax

    from jaxnn import experiment, train

    config = experiment.TrainConfig.from_preset("ch1-30", optimizer=optimizer_name,
                                                eta=3.0 if optimizer_name == "sgd" else 1e-3,
                                                train_size=train_size)
    prepared = experiment.prepare(config)
    n = len(prepared.train)
    grad_fn = experiment.autodiff_grad_fn(prepared.network, config.cost)
    optimizer = experiment.make_optimizer(config, n)
    params = prepared.network.init(jax.random.key(0))
    out = {}
    for on_nan in VARIANTS:
        epoch = train.make_epoch(grad_fn, optimizer, mini_batch_size=config.mini_batch_size,
                                 n_train=n, on_nan=on_nan)
        out[on_nan] = (epoch, own_state(params, optimizer))
    return prepared.train, out


def measure(optimizer_name: str, rounds: int, train_size: int | None) -> list[dict]:
    data, variants = _epoch_functions(optimizer_name, train_size)
    compile_s, wall, cpu = interleaved_epochs(variants, data, rounds)
    base = statistics.median(wall[None])
    return [{
        "optimizer": optimizer_name,
        "on_nan": "none" if v is None else v,
        "wall_median_s": statistics.median(wall[v]),
        "wall_min_s": min(wall[v]),
        "cpu_median_s": statistics.median(cpu[v]),
        "first_call_s": compile_s[v],
        "ratio_to_none": statistics.median(wall[v]) / base,
        "wall_s": wall[v],
    } for v in VARIANTS]


def main(argv=None) -> dict:
    parser = script_parser(__doc__)
    parser.add_argument("--rounds", type=positive_int, default=8,
                        help="epochs timed per variant (default 8)")
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "adam"],
                        choices=("sgd", "adam"))
    parser.add_argument("--train-size", type=positive_int, default=None,
                        help="first N training images (default all 50,000)")
    parser.add_argument("--json", type=Path, default=RESULTS / "guard_cpu.json")
    args = parser.parse_args(argv)
    results = [row for name in args.optimizers
               for row in measure(name, args.rounds, args.train_size)]
    payload = {"environment": environment(),
               "settings": {"rounds": args.rounds, "train_size": args.train_size or 50_000,
                            "preset": "ch1-30"},
               "results": results}
    print(markdown_table(
        ["optimizer", "on_nan", "wall median s/epoch", "wall min", "CPU median",
         "ratio to no guard"],
        [[r["optimizer"], r["on_nan"], f"{r['wall_median_s']:.3f}", f"{r['wall_min_s']:.3f}",
          f"{r['cpu_median_s']:.3f}", f"{r['ratio_to_none']:.2f}"] for r in results]))
    print(f"wrote {write_json(args.json, payload)}")
    return payload


if __name__ == "__main__":
    main()
