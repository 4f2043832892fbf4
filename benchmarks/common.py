"""Helpers shared by the benchmark scripts: versions, device, JSON output."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
"""Where the scripts write their JSON by default, wherever they are run from."""


def script_parser(doc: str) -> argparse.ArgumentParser:
    """A script's argument parser, described by its docstring's first paragraph, that takes no
    flag from its first letters (argparse would read ``--round 3`` as ``--rounds 3``, and
    ``--batch`` as whichever one flag it begins): the ``jaxnn`` command line's rule too."""
    return argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()),
                                   allow_abbrev=False)


def positive_int(text: str) -> int:
    """An argparse ``type``: a positive integer, else a one-line usage error."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def rotated(items: list, r: int) -> list:
    """``items`` starting at index ``r`` (mod its length): round ``r`` of interleaved timing
    starts with the next variant, since a fixed order gives each variant a place in the round,
    and a measured position effect of about 4% (guard_cpu.py)."""
    k = r % len(items)
    return items[k:] + items[:k]


def own_state(params, optimizer) -> list:
    """``[params, opt_state]`` for one variant of :func:`interleaved_epochs`: a copy of
    ``params`` and a fresh optimizer state (an epoch donates its state, so variants that
    shared one would find it deleted)."""
    import jax

    copy = jax.tree.map(lambda a: a.copy(), params)
    return [copy, optimizer.init(copy)]


def interleaved_epochs(variants: dict, data, rounds: int) -> tuple[dict, dict, dict]:
    """Time ``epoch(params, opt_state, key, data)`` for every ``name: (epoch, state)`` of
    ``variants`` (``state`` a list ``[params, opt_state]``, updated in place: an epoch donates
    its state, so each variant needs its own): once each first (compilation and one epoch),
    then ``rounds`` rounds, every variant once a round with the round's key, each round
    starting with the next variant (:func:`rotated`), so that the machine's load hits all alike.
    Returns ``(first, wall, cpu)``: the first call's seconds, and the rounds' wall and CPU
    seconds, per variant."""
    import jax

    def run(epoch, state, key):
        result = jax.block_until_ready(epoch(state[0], state[1], key, data))
        state[0], state[1] = result[0], result[1]

    key = jax.random.key(1)
    first, wall, cpu = {}, {name: [] for name in variants}, {name: [] for name in variants}
    for name, (epoch, state) in variants.items():
        start = time.perf_counter()
        run(epoch, state, key)
        first[name] = time.perf_counter() - start
    for r in range(rounds):
        epoch_key = jax.random.fold_in(key, r + 1)
        for name, (epoch, state) in rotated(list(variants.items()), r):
            w0, c0 = time.perf_counter(), time.process_time()
            run(epoch, state, epoch_key)
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    return first, wall, cpu


def interleaved_rounds(variants, rounds: int, time_one) -> tuple[dict, dict]:
    """``time_one(variant) -> (wall s, training s)`` once for every variant (not counted:
    compilation, first loads), then ``rounds`` rounds of every variant, each round starting
    with the next (:func:`rotated`). Returns the counted ``(wall, trained)`` seconds, lists
    by variant."""
    wall, trained = {v: [] for v in variants}, {v: [] for v in variants}
    for variant in variants:
        time_one(variant)
    for r in range(rounds):
        for variant in rotated(list(variants), r):
            w, t = time_one(variant)
            wall[variant].append(w)
            trained[variant].append(t)
    return wall, trained


def timed_results(network: str, wall: dict, trained: dict, baseline: str, **extra) -> list[dict]:
    """One JSON result per variant of ``wall`` and ``trained`` (each a list of seconds by
    variant: a whole round's, and its training's alone): the seconds, their medians, and the
    speed-up of the median wall time over ``baseline``'s; ``extra`` goes after the variant."""
    medians = {v: statistics.median(seconds) for v, seconds in wall.items()}
    return [{"network": network, "variant": v, **extra, "wall_s": wall[v],
             "trained_s": trained[v], "wall_median_s": medians[v],
             "trained_median_s": statistics.median(trained[v]),
             "speedup": medians[baseline] / medians[v]} for v in wall]


def environment() -> dict:
    import jax
    import numpy as np

    return {
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
        "cpu": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
