"""What a Trainer saves: several seeds of one configuration trained by ``experiment.run``,
which prepares the data and compiles the programs again for every seed, against one
``experiment.Trainer``, which does both once for all of them.

Each round trains the seeds both ways (each round starting with the next way, so that the
machine's load hits both alike), after one round of each that is not counted (the data set's
first load and the caches every run shares). The table gives the median wall seconds for all
the seeds, the seconds their epochs took by the runs' own clocks (a run's first epoch includes
compiling its step: the rest of the wall time is preparing the data, building the programs
and evaluating), and the speed-up of the Trainer. Both ways must train the same networks:
the script checks that the final parameters are equal, bit for bit.

Networks: ``ch6-conv1`` (a CNN; on the CPU one jitted step per mini-batch) and ``ch1-30`` (an
MLP; one compiled epoch), each for one epoch on ``--train-size`` training images and
``--eval-size`` validation and test images: short runs, where compiling is most of a run.

    python benchmarks/seeds.py [--seeds 3] [--rounds 3] [--train-size 2000] [--json PATH]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    environment,
    interleaved_rounds,
    markdown_table,
    positive_int,
    script_parser,
    timed_results,
    write_json,
)

VARIANTS = ("experiment.run per seed", "one Trainer")
NETWORKS = ("ch6-conv1", "ch1-30")


def _train(config, seeds: int, variant: str):
    """Seconds to train ``seeds`` seeds of ``config`` the ``variant`` way, and the results."""
    import jax

    from jaxnn import experiment

    start = time.perf_counter()
    if variant == VARIANTS[0]:
        results = [experiment.run(dataclasses.replace(config, seed=s), progress=False)
                   for s in range(seeds)]
    else:
        trainer = experiment.Trainer(config)
        results = [trainer.run(seed=s, progress=False) for s in range(seeds)]
    jax.block_until_ready([r.state.params for r in results])
    return time.perf_counter() - start, results


def _same_networks(a, b) -> bool:
    import jax
    import numpy as np

    return all(np.array_equal(x, y) for ra, rb in zip(a, b)
               for x, y in zip(jax.tree.leaves(ra.state.params),
                               jax.tree.leaves(rb.state.params)))


def _time_network(config, seeds: int, rounds: int) -> dict:
    results = {}

    def time_one(variant):
        seconds, results[variant] = _train(config, seeds, variant)
        return seconds, sum(rec["seconds"] for res in results[variant] for rec in res.history)

    # the first round, not counted: the data's first load, and caches every run shares
    wall, trained = interleaved_rounds(VARIANTS, rounds, time_one)
    if not _same_networks(*results.values()):
        raise AssertionError(f"{config.preset}: the two ways trained different networks")
    return {"wall": wall, "trained": trained}


def main(argv=None) -> dict:
    parser = script_parser(__doc__)
    parser.add_argument("--seeds", type=positive_int, default=3)
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--train-size", type=positive_int, default=2000)
    parser.add_argument("--eval-size", type=positive_int, default=1000)
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--json", default=str(RESULTS / "seeds.json"))
    args = parser.parse_args(argv)

    from jaxnn import experiment

    rows, results = [], []
    for name in args.networks:
        config = experiment.TrainConfig.from_preset(name, epochs=1, train_size=args.train_size,
                                                    eval_size=args.eval_size)
        timed = _time_network(config, args.seeds, args.rounds)
        for r in timed_results(name, timed["wall"], timed["trained"], VARIANTS[0]):
            results.append(r)
            rows.append([name, r["variant"], f"{r['wall_median_s']:.2f}",
                         f"{r['trained_median_s']:.2f}", f"{r['speedup']:.2f}"])
    env = environment()
    print(f"{args.seeds} seeds of one epoch on {args.train_size:,} images, median of "
          f"{args.rounds} rounds ({env['device']}, jax {env['jax']})")
    print(markdown_table(["network", "how", f"s for {args.seeds} seeds",
                          "of which in epochs (a run's first compiles)", "speed-up"], rows))
    payload = {"environment": env,
               "settings": {"seeds": args.seeds, "rounds": args.rounds,
                            "train_size": args.train_size, "eval_size": args.eval_size,
                            "networks": args.networks},
               "results": results}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
