"""Multi-device checks for tests/test_parallel.py, run in a subprocess.

The pytest process has already initialized JAX with one CPU device, so the sharded checks run
here, with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` set before JAX starts. Prints
one JSON object; test_parallel.py asserts on it.

    python tests/parallel_check.py [devices] [--float32]
"""

import json
import os
import sys

DEVICES = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 8
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + f" --xla_force_host_platform_device_count={DEVICES}")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxnn import data as datasets  # noqa: E402
from jaxnn import experiment, mlp, optim, parallel, train  # noqa: E402


def max_rel_diff(a, b) -> float:
    """Largest over leaves of max|a - b| / max|b| (the leaf's scale; 0 for equal trees)."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))
                     / max(float(np.max(np.abs(np.asarray(y)))), 1e-30))
               for x, y in pairs)


def compare(ds, mesh, *, n: int, m: int, dtype) -> dict:
    """Two epochs on the first ``n`` images, once on one device and once sharded over
    ``mesh``, from the same parameters and keys; the largest relative differences."""
    split = ds.train.take(n)
    x, labels = datasets.to_inputs(split.images, dtype=dtype), split.labels
    network = mlp.make((784, 30, 10), activation="sigmoid", output_activation="softmax",
                       scheme="default", dtype=dtype)
    grad_fn = experiment.autodiff_grad_fn(network, "log_likelihood")
    optimizer = optim.make("momentum", 0.5, l2=5.0, n_train=n)
    host_params = jax.tree.map(np.asarray, network.init(jax.random.PRNGKey(0)))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)

    # One device: today's path. (The epochs donate their inputs, hence fresh copies.)
    single = train.DeviceData.put(x, labels)
    epoch = train.make_epoch(grad_fn, optimizer, mini_batch_size=m, n_train=n)
    p1 = jax.tree.map(jax.numpy.asarray, host_params)
    s1 = optimizer.init(p1)
    for k in keys:
        p1, s1 = epoch(p1, s1, k, single)

    # The mesh: the same epoch function with its mini-batches split over the devices.
    sharded = parallel.shard_data(single, mesh)
    state = parallel.replicate_state(
        train.TrainState(host_params, optimizer.init(host_params), keys[0]), mesh)
    pepoch = parallel.make_epoch(grad_fn, optimizer, mesh=mesh, mini_batch_size=m, n_train=n)
    pd, sd = state.params, state.opt_state
    for k in keys:
        pd, sd = pepoch(pd, sd, k, sharded)

    hlo = pepoch.lower(pd, sd, keys[0], sharded).compile().as_text()
    return {
        "dtype": np.dtype(dtype).name,
        "n": n,
        "m": m,
        "param_max_rel_diff": max_rel_diff(pd, p1),
        "opt_state_max_rel_diff": max_rel_diff(sd, s1),
        "params_replicated": all(
            leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == size(mesh)
            for leaf in jax.tree.leaves(pd)),
        "data_sharded": not sharded.x.sharding.is_fully_replicated,
        # The compiled epoch splits the mini-batch: a cross-device reduction of the gradient.
        "all_reduce_in_hlo": "all-reduce" in hlo,
    }


def size(mesh) -> int:
    return parallel.size(mesh)


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    ds = datasets.load("mnist")
    mesh = parallel.make_mesh("all")
    out: dict = {"device_count": jax.device_count(), "cases": [
        # n divides by 8: the data is split across devices; last mini-batch 1000 mod 16 = 8.
        compare(ds, mesh, n=1000, m=16, dtype=np.float64),
        # n = 1003 does not divide by 8: data replicated, last mini-batch of 11 unsplit.
        compare(ds, mesh, n=1003, m=16, dtype=np.float64),
    ]}
    if "--float32" in sys.argv:  # not asserted: float32 drifts ~1e-4 over two epochs
        out["cases"].append(compare(ds, mesh, n=1000, m=16, dtype=np.float32))
    # A mini-batch size that does not divide by the device count is refused, naming both.
    grad_fn = experiment.autodiff_grad_fn(mlp.make((784, 10)), "quadratic")
    try:
        parallel.make_epoch(grad_fn, optim.make("sgd", 1.0), mesh=mesh, mini_batch_size=10,
                            n_train=100)
        out["indivisible_error"] = None
    except ValueError as e:
        out["indivisible_error"] = str(e)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
