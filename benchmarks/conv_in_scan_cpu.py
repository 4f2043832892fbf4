"""Why the compiled CNN epoch is slow on CPU: backward convolutions inside ``lax.scan``.

One 5x5 VALID convolution of chapter 6's second layer (10 images 12x12x20 -> 8x8x40, NHWC,
HWIO) and its two backward convolutions, each timed three ways with ``jax.jit``:

- ``single``: the function alone, one compiled call (what an ``nnx.jit`` step loop runs);
- ``in scan``: 50 iterations of a ``lax.scan`` whose input x changes every iteration;
- ``carried kernel``: 50 iterations with the kernel in the scan carry, changed every
  iteration (as in training, where both x and the kernel change every step).

Then the whole ch6-relu training step (batch 10: ``jax.grad`` of the cost through
``jaxnn.cnn``, the preset's optax update), as one jitted call and per iteration of a scan over
50 mini-batches with params and optimizer state in the carry (what ``train.make_epoch`` does).

On XLA:CPU some of these run tens of times slower inside the loop than alone; in a training
step both backward convolutions are of the slow kind (see jax-ml/jax#12868, "Convolution is
significantly slower inside a loop body (CPU)").

    python benchmarks/conv_in_scan_cpu.py [--json PATH]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, markdown_table, script_parser, write_json  # noqa: E402

STEPS = 50


def _training_step_ms(ms):
    """(one jitted step, per step of a scanned loop) in ms for the ch6-relu preset, batch 10."""
    import jax
    import jax.numpy as jnp

    from jaxnn import cnn, costs, experiment, train

    config = experiment.TrainConfig.from_preset("ch6-relu", train_size=10 * STEPS, eval_size=1)
    prepared = experiment.prepare(config)
    graphdef, params, rest = cnn.split(cnn.make(prepared.network, jax.random.key(0)))
    stateful = cnn.make_grad_fn(graphdef, costs.from_logits(config.cost,
                                                            config.output_activation))

    def grad_fn(p, x, y):
        return stateful(p, rest, x, y, None)[0]

    optimizer = experiment.make_optimizer(config, len(prepared.train))
    step = train.make_step(grad_fn, optimizer, prepared.num_classes)
    opt_state = optimizer.init(params)
    x, labels = prepared.train.x, prepared.train.labels

    def scanned(params, opt_state):
        def body(carry, idx):
            return step(*carry, x[idx], labels[idx]), None

        batches = jnp.arange(10 * STEPS).reshape(STEPS, 10)
        return jax.lax.scan(body, (params, opt_state), batches)[0]

    single = ms(jax.jit(step), params, opt_state, x[:10], labels[:10], n=20)
    return single, ms(jax.jit(scanned), params, opt_state, n=3) / STEPS


def main(argv=None) -> dict:
    import jax
    import jax.numpy as jnp

    parser = script_parser(__doc__)
    parser.add_argument("--json", default=str(RESULTS / "conv_in_scan_cpu.json"))
    args = parser.parse_args(argv)

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    x = jax.random.normal(jax.random.key(0), (10, 12, 12, 20))
    k = jax.random.normal(jax.random.key(1), (5, 5, 20, 40))
    cases = {
        "forward conv": lambda x, k: conv(x, k).sum(),
        "grad wrt kernel": lambda x, k: jax.grad(lambda k: conv(x, k).sum())(k).sum(),
        "grad wrt input": lambda x, k: jax.grad(lambda x: conv(x, k).sum())(x).sum(),
    }

    def ms(f, *a, n):
        jax.block_until_ready(f(*a))
        start = time.perf_counter()
        for _ in range(n):
            jax.block_until_ready(f(*a))
        return (time.perf_counter() - start) / n * 1e3

    rows, results = [], []
    for name, f in cases.items():
        def in_scan(x, k, f=f):
            return jax.lax.scan(lambda c, i: (c + f(x + i, k), None), 0.0,
                                jnp.arange(STEPS, dtype=x.dtype))[0]

        def carried(x, k, f=f):
            def body(c, i):
                s, k = c
                return (s + f(x, k), k * 0.999), None

            return jax.lax.scan(body, (0.0, k), jnp.arange(STEPS))[0][0]

        single = ms(jax.jit(f), x, k, n=20)
        scan = ms(jax.jit(in_scan), x, k, n=3) / STEPS
        carry = ms(jax.jit(carried), x, k, n=3) / STEPS
        results.append({"case": name, "single_ms": single, "in_scan_ms": scan,
                        "carried_kernel_ms": carry})
        rows.append([name, f"{single:.3f}", f"{scan:.3f}", f"{carry:.3f}"])
    single, scan = _training_step_ms(ms)
    results.append({"case": "ch6-relu training step", "single_ms": single, "in_scan_ms": scan})
    rows.append(["ch6-relu training step (batch 10)", f"{single:.3f}", f"{scan:.3f}", "-"])
    env = environment()
    print(f"One conv layer (10x12x12x20 -> 8x8x40) and the ch6-relu step, ms per call "
          f"({env['device']}, jax {env['jax']})")
    print(markdown_table(["case", "single jit call", f"in scan (per iteration of {STEPS})",
                          "kernel carried in scan"], rows))
    payload = {"environment": env, "results": results}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
