"""What evaluating the training set after every epoch costs: an epoch's wall time with and
without ``monitor_training``.

After each epoch a run evaluates its validation and test sets, and, when it monitors its
training set (``TrainConfig.monitor_training``, network2.py's ``monitor_training_*`` flags),
the whole training set too: 250,000 images a chapter-6 epoch on the expanded data, against
10,000 each for validation and test. The chapter-6 presets no longer monitor it, as
network3.py does not. For each network, the programs are built once (as ``jaxnn train`` builds
them); then the two variants take turns, one ``fit`` epoch each (training and evaluation, as a
run spends them), for ``--rounds`` rounds, each round starting with the next variant. The
table gives the median wall seconds of an epoch and of its training alone, and the epoch's
speed-up without monitoring.

Networks: ``ch6-2fc`` (the expanded-data rows' network, on ``--ch6-images`` images before
expansion, five times as many after, and validation and test cut to keep the book's
25 : 1 : 1 proportion of training, validation and test images) and ``ch1-30`` (all 50,000
images and 10,000 each for validation and test).

    python benchmarks/monitor_cpu.py [--rounds 3] [--ch6-images 4000] [--json PATH]
"""

from __future__ import annotations

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

VARIANTS = {"monitored": True, "not monitored": False}


def _config(name: str, ch6_images: int):
    from jaxnn import experiment

    if name == "ch6-2fc":  # 5x the images once expanded; validation and test 1/25 of that
        return experiment.TrainConfig.from_preset(name, train_size=ch6_images,
                                                  eval_size=max(1, ch6_images // 5))
    return experiment.TrainConfig.from_preset(name)


def _time_network(config, rounds: int) -> dict:
    """Median wall and training seconds of one fit epoch per variant, interleaved."""
    from jaxnn import experiment, train

    training = experiment.Trainer(config)
    prepared = training.prepared
    states = {name: training.initial_state(config.seed) for name in VARIANTS}
    records = {}

    def epoch(name):
        state = states[name]
        start = time.perf_counter()
        state, history = train.fit(
            state, epoch_fn=training.epoch_fn, evaluate=training.evaluate, train=prepared.train,
            validation=prepared.validation, test=prepared.test, epochs=state.epoch + 1,
            penalty=training.penalty_value, progress=False, monitor_training=VARIANTS[name])
        states[name] = state
        records[name] = history[-1]
        return time.perf_counter() - start, history[-1]["seconds"]

    wall, trained = interleaved_rounds(VARIANTS, rounds, epoch)  # the first compiles
    # both variants train the same network: their last epochs score the same
    if records["monitored"]["test_correct"] != records["not monitored"]["test_correct"]:
        raise AssertionError(f"{config.preset}: the variants trained different networks: "
                             f"{records}")
    return {"wall": wall, "trained": trained,
            "sizes": [len(prepared.train), len(prepared.validation), len(prepared.test)]}


def main(argv=None) -> dict:
    parser = script_parser(__doc__)
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--ch6-images", type=positive_int, default=4000)
    parser.add_argument("--networks", nargs="+", choices=["ch6-2fc", "ch1-30"],
                        default=["ch6-2fc", "ch1-30"])
    parser.add_argument("--json", default=str(RESULTS / "monitor_cpu.json"))
    args = parser.parse_args(argv)

    rows, results = [], []
    for name in args.networks:
        timed = _time_network(_config(name, args.ch6_images), args.rounds)
        for r in timed_results(name, timed["wall"], timed["trained"], "monitored",
                               images=timed["sizes"]):
            results.append(r)
            rows.append([name, " / ".join(f"{n:,}" for n in r["images"]), r["variant"],
                         f"{r['wall_median_s']:.2f}", f"{r['trained_median_s']:.2f}",
                         f"{r['speedup']:.2f}"])
    env = environment()
    print(f"One epoch, training and evaluation, median of {args.rounds} rounds "
          f"({env['device']}, jax {env['jax']})")
    print(markdown_table(["network", "images (train / validation / test)", "training set",
                          "epoch s", "of which training s", "speed-up"], rows))
    payload = {"environment": env,
               "settings": {"rounds": args.rounds, "ch6_images": args.ch6_images,
                            "networks": args.networks},
               "results": results}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
