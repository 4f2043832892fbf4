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


def least_moved(a, b) -> float:
    """Smallest over leaves of max|a - b|: how far the least-changed leaf of ``b`` moved (0 if
    any leaf did not train at all)."""
    return min(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def compare(ds, mesh, *, n: int, m: int, dtype) -> dict:
    """Two epochs on the first ``n`` images, once on one device and once sharded over
    ``mesh``, from the same parameters and keys; the largest relative differences."""
    split = ds.train.take(n)
    x, labels = datasets.to_inputs(split.images, dtype=dtype), split.labels
    network = mlp.make((784, 30, 10), activation="sigmoid", output_activation="softmax",
                       scheme="default", dtype=dtype)
    grad_fn = experiment.autodiff_grad_fn(network, "log_likelihood")
    optimizer = optim.make("momentum", 0.5, l2=5.0, n_train=n)
    host_params = jax.tree.map(np.asarray, network.init(jax.random.key(0)))
    keys = jax.random.split(jax.random.key(1), 2)

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
        "params_moved_least": least_moved(pd, host_params),  # both trained, not only agreed
        "params_replicated": all(
            leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == size(mesh)
            for leaf in jax.tree.leaves(pd)),
        "data_sharded": not sharded.x.sharding.is_fully_replicated,
        # The compiled epoch splits the mini-batch: a cross-device reduction of the gradient.
        "all_reduce_in_hlo": "all-reduce" in hlo,
    }


def compare_cnn(ds, mesh, *, n: int, m: int, loop: str) -> dict:
    """As :func:`compare` for a stateful CNN (conv-pool, batch norm, dropout 0.5, Adam) in
    float64: two epochs with ``loop``, on one device and with the mini-batches split over
    ``mesh``. Batch-norm statistics span the whole mini-batch and the dropout masks must not
    depend on the split, so only the order of additions differs."""
    import jax.numpy as jnp
    from flax import nnx

    from jaxnn import cnn, costs
    from jaxnn.layers import BatchNorm, CNNSpec, Conv, Dense, Dropout, Flatten, Pool

    split = ds.train.take(n)
    x = datasets.to_inputs(split.images, flatten=False, dtype=np.float64)
    spec = CNNSpec((28, 28, 1), (Conv(4), BatchNorm(), Pool("max"), Flatten(), Dropout(0.5),
                                 Dense(10)), "relu")
    model = cnn.CNN(spec, rngs=nnx.Rngs(params=jax.random.key(0)), param_dtype=jnp.float64)
    graphdef, host_params, host_rest = jax.tree.map(np.asarray, cnn.split(model))
    grad_fn = cnn.make_grad_fn(graphdef, costs.from_logits("log_likelihood", "softmax"))
    optimizer = optim.make("adam", 1e-3)
    keys = jax.random.split(jax.random.key(1), 2)
    kwargs = dict(mini_batch_size=m, n_train=n, stateful=True, loop=loop)

    def run(epoch, params, rest, data):
        opt_state = optimizer.init(params)
        for k in keys:
            params, opt_state, rest = epoch(params, opt_state, k, data, rest)
        return params, opt_state, rest

    single = train.DeviceData.put(x, split.labels)
    fresh = jax.tree.map(jnp.asarray, (host_params, host_rest))
    p1, s1, r1 = run(train.make_epoch(grad_fn, optimizer, **kwargs), *fresh, single)
    state = parallel.replicate_state(
        train.TrainState(host_params, None, keys[0], model_state=host_rest), mesh)
    pepoch = parallel.make_epoch(grad_fn, optimizer, mesh=mesh, **kwargs)
    pd, sd, rd = run(pepoch, state.params, state.model_state, parallel.shard_data(single, mesh))
    return {
        "loop": loop,
        # only the host loop's epoch has it (train._host_epoch): the loop asked for is the loop
        # that ran (the scan loop gives the same numbers)
        "steps_per_epoch": getattr(pepoch, "steps_per_epoch", None),
        "spec": [type(layer).__name__ for layer in spec.layers],
        "dtype": str(jax.tree.leaves(pd)[0].dtype),
        "param_max_rel_diff": max_rel_diff(pd, p1),
        "opt_state_max_rel_diff": max_rel_diff(sd, s1),
        "batch_stats_max_rel_diff": max_rel_diff(rd, r1),
        "params_moved_least": least_moved(pd, host_params),
        "batch_stats_moved": max(float(np.max(np.abs(np.asarray(a) - b)))
                                 for a, b in zip(jax.tree.leaves(rd), jax.tree.leaves(host_rest),
                                                 strict=True)),
        "params_replicated": all(
            leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == size(mesh)
            for leaf in jax.tree.leaves(pd)),
    }


def compare_ensemble() -> dict:
    """An ensemble of 2 chapter-1 networks (float32), once on one device and once with every
    member data-parallel over all devices: the same votes and member histories."""
    config = experiment.TrainConfig.from_preset("ch1-30", ensemble=2, epochs=2, train_size=1000,
                                                mini_batch_size=16)
    one, many = (experiment.run(config, progress=False, devices=d) for d in (1, "all"))
    return {"ensemble_test_accuracy": [r.summary["ensemble_test_accuracy"] for r in (one, many)],
            "member_train_costs": [[m["final_train_cost"] for m in r.summary["members"]]
                                   for r in (one, many)]}


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
    out["cnn_cases"] = [compare_cnn(ds, mesh, n=96, m=16, loop=loop) for loop in train.LOOPS]
    jax.config.update("jax_enable_x64", False)  # the command line's float32
    out["ensemble"] = compare_ensemble()
    jax.config.update("jax_enable_x64", True)
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
