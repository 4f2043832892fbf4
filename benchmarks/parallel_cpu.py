"""Epoch time of the data-parallel path on forced host (CPU) devices.

    python benchmarks/parallel_cpu.py --devices 8 [--train-size 50000] [--repeats 3]

Runs the chapter-1 network (784-30-10, m=16 unless --mini-batch-size) for ``--repeats`` epochs
each way, in interleaved rounds, and prints min and median seconds per epoch (compilation
excluded), and the collectives in each compiled epoch:

- ``plain``: today's single-device ``train.make_epoch`` (no mesh);
- ``mesh-1``: ``parallel.make_epoch`` on a 1-device mesh (the overhead of the constraints);
- ``mesh-D replicated``: D devices, training data replicated, mini-batches split;
- ``mesh-D split``: D devices, training data split along the example axis.

Forced host devices (``--xla_force_host_platform_device_count``) share the machine's cores, so
on CPU this measures overhead, not speed-up.
"""

import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    RESULTS,
    environment,
    markdown_table,
    positive_int,
    script_parser,
    write_json,
)

if __name__ == "__main__":
    _p = script_parser(__doc__)
    _p.add_argument("--devices", type=positive_int, default=8,
                    help="forced CPU devices (default 8)")
    _p.add_argument("--train-size", type=positive_int, default=50_000)
    _p.add_argument("--mini-batch-size", type=positive_int, default=16)
    _p.add_argument("--repeats", type=positive_int, default=3)
    _p.add_argument("--json", default=str(RESULTS / "parallel_cpu.json"))
    ARGS = _p.parse_args()
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " "
                               f"--xla_force_host_platform_device_count={ARGS.devices}")

import jax  # noqa: E402

from jaxnn import data, experiment, mlp, optim, parallel, train  # noqa: E402


def timed_epoch(epoch_fn, carry, key, dataset):
    start = time.perf_counter()
    params, opt_state = epoch_fn(*carry, key, dataset)
    jax.block_until_ready(params)
    return (params, opt_state), time.perf_counter() - start


def main(args) -> None:
    ds = data.load("mnist")
    split = ds.train.take(args.train_size)
    n, m = len(split.labels), args.mini_batch_size
    network = mlp.make((784, 30, 10), scheme="large")
    grad_fn = experiment.autodiff_grad_fn(network, "quadratic")
    optimizer = optim.make("sgd", 3.0)
    host = train.DeviceData.put(data.to_inputs(split.images), split.labels)

    def fresh_state():
        params = network.init(jax.random.key(0))
        return train.TrainState(params, optimizer.init(params), jax.random.key(1))

    s = fresh_state()
    variants = {"plain": (train.make_epoch(grad_fn, optimizer, mini_batch_size=m, n_train=n),
                          host, (s.params, s.opt_state))}
    for d, how in ((1, "replicated"), (args.devices, "replicated"), (args.devices, "split")):
        mesh = parallel.make_mesh(d)
        dataset = parallel.shard_data(host, mesh) if how == "split" else parallel.replicate(
            host, mesh)
        epoch = parallel.make_epoch(grad_fn, optimizer, mesh=mesh, mini_batch_size=m, n_train=n)
        s = parallel.replicate_state(fresh_state(), mesh)
        variants[f"mesh-{d} {how}"] = (epoch, dataset, (s.params, s.opt_state))
    collectives = {}
    for name, (epoch, dataset, carry) in variants.items():
        hlo = epoch.lower(*carry, jax.random.key(0), dataset).compile().as_text()
        collectives[name] = {op: len(re.findall(rf"\b{op}\(", hlo))
                             for op in ("all-reduce", "all-gather", "all-to-all",
                                        "collective-permute")}
    carries, times = {}, {name: [] for name in variants}
    for name, (epoch, dataset, carry) in variants.items():  # compile
        carries[name], _ = timed_epoch(epoch, carry, jax.random.key(0), dataset)
    # Interleaved rounds, so a busy machine slows every variant alike; min and median.
    for key in jax.random.split(jax.random.key(1), args.repeats):
        for name, (epoch, dataset, _) in variants.items():
            carries[name], t = timed_epoch(epoch, carries[name], key, dataset)
            times[name].append(t)
    rows = {name: {"min": round(min(t), 4), "median": round(statistics.median(t), 4),
                   "collectives_in_hlo": collectives[name]}
            for name, t in times.items()}
    load = os.getloadavg()[0]
    print(f"Chapter-1 epoch, n = {n}, m = {m}, {args.repeats} interleaved rounds "
          f"({jax.default_backend()}, {os.cpu_count()} cores, load average {load:.1f}, "
          f"jax {jax.__version__})")
    print(markdown_table(
        ["variant", "s/epoch min", "median", "collectives in the compiled epoch"],
        [[name, f"{r['min']:.3f}", f"{r['median']:.3f}",
          ", ".join(f"{c} {op}" for op, c in r["collectives_in_hlo"].items() if c) or "none"]
         for name, r in rows.items()]))
    path = write_json(args.json, {"environment": environment(), "n": n, "m": m,
                                  "cpus": os.cpu_count(), "load_average": load,
                                  "seconds_per_epoch": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main(ARGS)
    sys.exit(0)
