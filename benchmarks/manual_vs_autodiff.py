"""Time per gradient: manual_grad (BP1-BP4 by hand) against jax.grad, both jit-compiled.

Networks: the chapter-1 MLP (784-30-10, sigmoid, quadratic cost) and the chapter-6 CNN of the
ch6-relu preset (architecture conv2: two 5x5 VALID conv + 2x2 max-pool blocks, fc100, softmax
log-likelihood, relu), also with batch norm after every conv and hidden dense layer (training
mode), on real MNIST images. For each (network, batch) both gradient functions
are compiled first (compile time reported apart), then timed interleaved -- manual, autodiff,
manual, ... -- so a noisy machine slows both alike; each figure is the median of the repeats,
each repeat the mean of ``--inner`` calls dispatched back to back and waited for once
(``block_until_ready``), as a training loop runs them. The ratio is manual/autodiff.

    python benchmarks/manual_vs_autodiff.py [--repeats 15] [--inner 10] [--only TEXT] [--out PATH]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    environment,
    markdown_table,
    positive_int,
    script_parser,
    write_json,
)

CASES = (("ch1 mlp 784-30-10", 10), ("ch1 mlp 784-30-10", 1000),
         ("ch6 cnn conv2 relu", 10), ("ch6 cnn conv2 relu", 256),
         ("ch6 cnn conv2 relu, batch norm", 256))


def gradient_functions(network: str, batch: int):
    """``(manual, autodiff, params)``: two jitted params -> gradients functions on MNIST."""
    import jax
    import jax.numpy as jnp

    import manual_grad
    from jaxnn import cnn, costs, data, mlp
    from jaxnn import layers as jl

    ds = data.load("mnist")
    y = jnp.asarray(data.one_hot(ds.train.labels[:batch]))
    key = jax.random.key(0)
    if network.startswith("ch1"):
        x = jnp.asarray(data.to_inputs(ds.train.images[:batch]))
        params = mlp.make((784, 30, 10)).init(key)
        cost = costs.from_logits("quadratic", "sigmoid")

        def manual(p):
            return manual_grad.backprop(p, x, y)[0]

        def autodiff(p):
            return jax.grad(lambda p: cost(mlp.logits(p, x, activation="sigmoid"), y))(p)
    else:
        x = jnp.asarray(data.to_inputs(ds.train.images[:batch], flatten=False))
        spec = cnn.architecture("conv2", input_shape=(28, 28, 1), activation="relu",
                                batch_norm=network.endswith("batch norm"))
        params = jl.init(spec, key)
        cost = costs.from_logits("log_likelihood", "softmax")

        def manual(p):
            return manual_grad.cnn_backprop(spec, p, x, y)[0]

        def autodiff(p):
            return jax.grad(lambda p: cost(jl.forward(spec, p, x), y))(p)
    return jax.jit(manual), jax.jit(autodiff), params


def _call(fn, params):
    import jax

    return jax.block_until_ready(fn(params))


def measure(network, batch, *, repeats, inner):
    import jax

    manual, autodiff, params = gradient_functions(network, batch)
    compile_s = {}
    for name, fn in (("manual", manual), ("autodiff", autodiff)):
        t0 = time.perf_counter()
        _call(fn, params)
        compile_s[name] = time.perf_counter() - t0
    times = {"manual": [], "autodiff": []}
    for _ in range(repeats):
        for name, fn in (("manual", manual), ("autodiff", autodiff)):
            t0 = time.perf_counter()
            for _ in range(inner):  # dispatched back to back, waited for once (as training is)
                out = fn(params)
            jax.block_until_ready(out)
            times[name].append((time.perf_counter() - t0) / inner)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"network": network, "batch": batch, "median_s": med, "times_s": times,
            "compile_s": compile_s, "ratio": med["manual"] / med["autodiff"]}


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--repeats", type=positive_int, default=15,
                        help="timed rounds per variant; the median is reported (default 15)")
    parser.add_argument("--inner", type=positive_int, default=10,
                        help="gradient calls per timed round (default 10)")
    parser.add_argument("--only", default="",
                        help="only the networks whose name contains TEXT (e.g. 'batch norm')")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" /
                        "manual_vs_autodiff.json")
    args = parser.parse_args(argv)
    cases = [(n, b) for n, b in CASES if args.only in n]
    if not cases:
        parser.error(f"--only: no network's name contains {args.only!r}; the networks are "
                     + ", ".join(sorted({n for n, _ in CASES})))
    results = [measure(n, b, repeats=args.repeats, inner=args.inner) for n, b in cases]
    env = environment()
    rows = [[r["network"], r["batch"], f"{r['median_s']['manual'] * 1e3:.3f}",
             f"{r['median_s']['autodiff'] * 1e3:.3f}", f"{r['ratio']:.2f}"] for r in results]
    print(f"{env['platform']} ({env['device']}), jax {env['jax']}, median of {args.repeats} "
          f"repeats x {args.inner} calls")
    print(markdown_table(["network", "batch", "manual ms/grad", "jax.grad ms/grad",
                          "manual / jax.grad"], rows))
    path = write_json(args.out, {"environment": env, "repeats": args.repeats,
                                 "inner": args.inner, "results": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
