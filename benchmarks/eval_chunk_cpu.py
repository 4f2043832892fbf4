"""Evaluation speed on the CPU against the chunk size: why ``metrics.eval_chunk`` picks small ones.

``jaxnn.metrics.make_evaluate`` runs a split ``chunk`` examples at a time (``lax.map``). After
every epoch a run evaluates its whole training set, validation and test sets (70,000 images;
270,000 with the expanded data of chapter 6), so this is part of every epoch's wall time.
For each network, every chunk size is compiled first; then they take turns, one evaluation of
``--images`` random images each, for ``--rounds`` rounds, each round starting with the next
chunk size. The table gives the median images per second and the ratio to the chunk size the
project used before ``eval_chunk`` (2,000 for CNNs, 10,000 for MLPs), and marks the one
``eval_chunk("cpu", ...)`` picks now.

    python benchmarks/eval_chunk_cpu.py [--images 20000] [--rounds 5] [--json PATH]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    environment,
    markdown_table,
    positive_int,
    rotated,
    script_parser,
    write_json,
)

CNN_CHUNKS = (2000, 500, 100, 50, 25, 10)
MLP_CHUNKS = (10_000, 2000, 500, 100)
NETWORKS = {  # name: (architecture or MLP sizes, chunk sizes, the chunk used before eval_chunk)
    "ch6 conv2 relu": ("conv2", CNN_CHUNKS, 2000),
    "ch6 conv2-dropout relu": ("conv2-dropout", CNN_CHUNKS, 2000),
    "flax-mnist": ("flax-mnist", CNN_CHUNKS, 2000),
    "mlp 784-30-10": ((784, 30, 10), MLP_CHUNKS, 10_000),
    "mlp 784-100-10": ((784, 100, 10), MLP_CHUNKS, 10_000),
}


def _network(which):
    """(logits_fn, params, cost_fn, convolutional) of an architecture (by name; relu) or an MLP
    (by its sizes; sigmoid, quadratic cost), freshly initialised."""
    import jax

    from jaxnn import architectures, cnn, costs, mlp

    if isinstance(which, str):
        spec = architectures.architecture(which, activation="relu", input_shape=(28, 28, 1))
        graphdef, params, rest = cnn.split(cnn.make(spec, jax.random.key(0)))
        return (cnn.make_logits_fn(graphdef), (params, rest),
                costs.from_logits("log_likelihood", "softmax"), True)
    return (lambda p, x: mlp.logits(p, x, activation="sigmoid"),
            mlp.init(jax.random.key(0), which), costs.from_logits("quadratic", "sigmoid"), False)


def main(argv=None) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxnn import metrics, train

    parser = script_parser(__doc__)
    parser.add_argument("--images", type=positive_int, default=20_000)
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--json", default=str(RESULTS / "eval_chunk_cpu.json"))
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    labels = jnp.asarray(rng.integers(0, 10, args.images), jnp.int32)
    rows, results = [], []
    for name in args.networks:
        which, chunks, before = NETWORKS[name]
        logits_fn, params, cost_fn, convolutional = _network(which)
        shape = (args.images, 28, 28, 1) if convolutional else (args.images, 784)
        data = train.DeviceData(jnp.asarray(rng.random(shape, np.float32)), labels)
        evaluate = {c: metrics.make_evaluate(logits_fn, cost_fn, chunk=c) for c in chunks}
        counts = {c: int(jax.block_until_ready(evaluate[c](params, data))[1]) for c in chunks}
        if len(set(counts.values())) != 1:  # every chunking counts the same answers
            raise AssertionError(f"{name}: the chunk sizes disagree: {counts}")
        seconds = {c: [] for c in chunks}
        for r in range(args.rounds):
            for c in rotated(list(chunks), r):
                start = time.perf_counter()
                jax.block_until_ready(evaluate[c](params, data))
                seconds[c].append(time.perf_counter() - start)
        picked = metrics.eval_chunk("cpu", convolutional=convolutional)
        base = statistics.median(seconds[before])
        for c in chunks:
            median = statistics.median(seconds[c])
            results.append({"network": name, "chunk": c, "seconds": seconds[c],
                            "images_per_s": args.images / median, "ratio": base / median,
                            "picked": c == picked})
            rows.append([name, f"{c}{' (picked)' if c == picked else ''}",
                         f"{args.images / median:,.0f}", f"{base / median:.2f}"])
    env = environment()
    print(f"Evaluation of {args.images:,} images, median of {args.rounds} rounds "
          f"({env['device']}, jax {env['jax']})")
    print(markdown_table(["network", "chunk", "images/s", "speed-up over the old chunk"], rows))
    payload = {"environment": env, "settings": {"images": args.images, "rounds": args.rounds},
               "results": results}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
