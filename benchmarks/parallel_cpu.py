"""Epoch time of the data-parallel path on forced host (CPU) devices.

    python benchmarks/parallel_cpu.py --devices 8 [--train-size 50000] [--repeats 3]

Runs the chapter-1 network (784-30-10, m=16 unless --mini-batch-size) for ``--repeats`` epochs
each way and prints the median seconds per epoch (compilation excluded):

- ``plain``: today's single-device ``train.make_epoch`` (no mesh);
- ``mesh-1``: ``parallel.make_epoch`` on a 1-device mesh (the overhead of the constraints);
- ``mesh-D replicated``: D devices, training data replicated, mini-batches split;
- ``mesh-D split``: D devices, training data split along the example axis.

Forced host devices (``--xla_force_host_platform_device_count``) share the machine's cores, so
on CPU this measures overhead, not speed-up.
"""

import argparse
import json
import os
import statistics
import sys
import time

if __name__ == "__main__":
    _p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _p.add_argument("--devices", type=int, default=8)
    _p.add_argument("--train-size", type=int, default=50_000)
    _p.add_argument("--mini-batch-size", type=int, default=16)
    _p.add_argument("--repeats", type=int, default=3)
    ARGS = _p.parse_args()
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " "
                               f"--xla_force_host_platform_device_count={ARGS.devices}")

import jax  # noqa: E402

from jaxnn import data, experiment, mlp, optim, parallel, train  # noqa: E402


def time_epochs(epoch_fn, state, dataset, repeats):
    params, opt_state = epoch_fn(state.params, state.opt_state, state.key, dataset)  # compile
    jax.block_until_ready(params)
    times = []
    for k in jax.random.split(state.key, repeats):
        start = time.perf_counter()
        params, opt_state = epoch_fn(params, opt_state, k, dataset)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(args) -> None:
    ds = data.load("mnist")
    split = ds.train.take(args.train_size)
    n, m = len(split.labels), args.mini_batch_size
    network = mlp.make((784, 30, 10), scheme="large")
    grad_fn = experiment.autodiff_grad_fn(network, "quadratic")
    optimizer = optim.make("sgd", 3.0)
    host = train.DeviceData.put(data.to_inputs(split.images), split.labels)

    def fresh_state():
        params = network.init(jax.random.PRNGKey(0))
        return train.TrainState(params, optimizer.init(params), jax.random.PRNGKey(1))

    rows = {}
    plain = train.make_epoch(grad_fn, optimizer, mini_batch_size=m, n_train=n)
    rows["plain"] = time_epochs(plain, fresh_state(), host, args.repeats)
    for d, how in ((1, "replicated"), (args.devices, "replicated"), (args.devices, "split")):
        mesh = parallel.make_mesh(d)
        dataset = parallel.shard_data(host, mesh) if how == "split" else parallel.replicate(
            host, mesh)
        epoch = parallel.make_epoch(grad_fn, optimizer, mesh=mesh, mini_batch_size=m, n_train=n)
        state = parallel.replicate_state(fresh_state(), mesh)
        rows[f"mesh-{d} {how}"] = time_epochs(epoch, state, dataset, args.repeats)
    print(json.dumps({"n": n, "m": m, "cpus": os.cpu_count(), "backend": jax.default_backend(),
                      "seconds_per_epoch": rows}, indent=1))


if __name__ == "__main__":
    main(ARGS)
    sys.exit(0)
