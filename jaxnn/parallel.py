"""Data-parallel training over a 1-D device mesh, with the same step and epoch as one device.

Data parallelism splits each mini-batch of m examples into d equal slices, one per device; every
device holds a full copy of the parameters and optimizer state. Because the gradient is the
mini-batch average,

    nabla C = (1/m) sum_x nabla C_x = (1/d) sum_k [ (d/m) sum_{x in slice k} nabla C_x ],

the sharded step computes the same update as the single-device step (the all-reduce that sums
the slices is inserted by the compiler; only the order of the floating-point additions changes).

Nothing here rewrites the step. :func:`make_epoch` calls :func:`jaxnn.train.make_epoch` with a
``batch_sharding``, which constrains each gathered full mini-batch to be split over the mesh
axis ``"batch"`` (the short last one is computed whole on every device); jit's sharding
propagation does the rest:

>>> mesh = parallel.make_mesh("all")                        # doctest: +SKIP
>>> train_data = parallel.replicate(train_data, mesh)       # doctest: +SKIP
>>> state = parallel.replicate_state(state, mesh)           # doctest: +SKIP
>>> epoch_fn = parallel.make_epoch(grad_fn, opt, mesh=mesh, mini_batch_size=16,  # doctest: +SKIP
...                               n_train=n)

Where the training set lives is a trade: replicated (:func:`replicate`, what ``jaxnn train``
does) every device gathers its own slice of each shuffled mini-batch locally; split
(:func:`shard_data`, 1/d of the memory per device) the gather of a randomly permuted
mini-batch needs an all-reduce of the whole mini-batch every step. Both give the same result.

The mini-batch size must divide by the number of devices (a ValueError says so otherwise). A
final short mini-batch (n mod m examples) that does not divide is computed replicated: still
correct, only not split.

Multi-host: call :func:`initialize_distributed` (``jaxnn train --distributed``) in every process
before anything touches a device; the mesh then spans ``jax.devices()`` of all processes.
Every process computes the same replicated results; :func:`is_primary` (process 0) writes the
files and prints, :func:`broadcast_text` shares a value only it may choose (a run directory's
name), :func:`barrier` and :func:`check_shared_directory` keep the processes' file accesses in
order (see the end of this module).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxnn import _checks, train

AXIS = "batch"


def device_count(devices: int | str | None = "all") -> int:
    """The number of devices ``devices`` asks for: ``"all"`` or None is ``jax.device_count()``
    (every device of every process); an integer must lie in 1..jax.device_count()."""
    available = jax.device_count()
    if devices is None or devices == "all":
        return available
    if isinstance(devices, str):
        try:
            devices = int(devices)
        except ValueError:
            raise ValueError(
                f"devices: expected a positive integer or 'all'; got {devices!r}") from None
    _checks.positive("devices", devices, integer=True)
    if devices > available:
        raise ValueError(
            f"devices: expected at most the {available} available "
            f"{jax.default_backend()} device(s); got {devices}"
        )
    return int(devices)


def make_mesh(devices: int | str | None = "all") -> Mesh:
    """A 1-D mesh with axis ``"batch"`` over the first ``devices`` devices (see
    :func:`device_count`). The axis is ``AxisType.Auto``: shardings are constraints that jit's
    propagation completes, so the unchanged training code runs on it."""
    d = device_count(devices)
    return jax.make_mesh((d,), (AXIS,), axis_types=(AxisType.Auto,),
                         devices=jax.devices()[:d])


def size(mesh: Mesh) -> int:
    """Number of devices in ``mesh``."""
    return int(mesh.devices.size)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (example) axis split over ``"batch"``, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def check_divisible(arg: str, value: int, mesh: Mesh | int) -> int:
    """``value`` if it divides by the device count (of ``mesh``, or an int); else a
    ValueError naming ``arg``."""
    d = mesh if isinstance(mesh, int) else size(mesh)
    if value % d:
        raise ValueError(
            f"{arg}: expected a multiple of the {d} devices, so every device gets an equal "
            f"slice of each mini-batch; got {value} (try {max(d, value - value % d)}, or "
            f"{_largest_divisor(value, d)} devices)"
        )
    return value


def _largest_divisor(value: int, limit: int) -> int:
    return max(k for k in range(1, limit + 1) if value % k == 0)


def _put(value, sharding: NamedSharding) -> jax.Array:
    """``value`` laid out as ``sharding``. With several processes, every process holds the
    same full value and fills only the shards of its own devices."""
    if jax.process_count() == 1:
        return jax.device_put(value, sharding)
    if jax.dtypes.issubdtype(jnp.result_type(value), jax.dtypes.prng_key):
        # NumPy cannot hold a typed key: lay out its uint32 data, then wrap it again
        data = _put(jax.random.key_data(value), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(value))
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array leaf of ``tree`` copied to all devices of ``mesh``."""
    sharding = replicated(mesh)
    return jax.tree.map(lambda leaf: _put(leaf, sharding), tree)


def replicate_state(state: train.TrainState, mesh: Mesh) -> train.TrainState:
    """``params``, ``opt_state``, ``key`` and ``model_state`` (batch-norm statistics, if any)
    replicated; the epoch counter stays a Python int."""
    return state._replace(params=replicate(state.params, mesh),
                          opt_state=replicate(state.opt_state, mesh),
                          key=replicate(state.key, mesh),
                          model_state=replicate(state.model_state, mesh))


def shard_data(data: train.DeviceData | None, mesh: Mesh) -> train.DeviceData | None:
    """A split placed on ``mesh``: split along the example axis when its size divides by the
    device count, replicated otherwise (the per-step mini-batches are split either way; see
    :func:`make_epoch`). ``None`` passes through."""
    if data is None:
        return None
    sharding = batch_sharding(mesh) if len(data) % size(mesh) == 0 else replicated(mesh)
    return train.DeviceData(_put(data.x, sharding), _put(data.labels, sharding))


def place(prepared, mesh: Mesh):
    """An :class:`jaxnn.experiment.Prepared` with its splits on ``mesh``: the training set
    replicated (each device gathers its slice of every mini-batch locally, so the only
    per-step communication is the gradient all-reduce), validation and test split along the
    example axis (evaluation is then divided between the devices)."""
    return prepared._replace(train=replicate(prepared.train, mesh),
                             validation=shard_data(prepared.validation, mesh),
                             test=shard_data(prepared.test, mesh))


def make_epoch(grad_fn, optimizer, *, mesh: Mesh, mini_batch_size: int, n_train: int,
               num_classes: int = 10, on_nan: str | None = None, stateful: bool = False,
               loop: str = "scan"):
    """:func:`jaxnn.train.make_epoch` with every full mini-batch split over ``mesh``.

    Same signature and result as the single-device epoch (to float tolerance), for either
    ``loop`` and for stateful models (:mod:`jaxnn.cnn`: batch-norm statistics are averaged over
    the whole mini-batch, across devices; dropout masks do not depend on the split); call it
    with state from :func:`replicate_state` and data from :func:`shard_data`. ValueError when
    ``mini_batch_size`` does not divide by the device count.
    """
    _checks.positive("mini_batch_size", mini_batch_size, integer=True)
    check_divisible("mini_batch_size", mini_batch_size, mesh)
    return train.make_epoch(grad_fn, optimizer, mini_batch_size=mini_batch_size,
                            n_train=n_train, num_classes=num_classes, on_nan=on_nan,
                            batch_sharding=batch_sharding(mesh), stateful=stateful, loop=loop)


def _env_int(name: str) -> int:
    """The integer in environment variable ``name``; ValueError naming it otherwise."""
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: expected an integer; got {value!r}") from None


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """``jax.distributed.initialize`` for multi-host training; call it before any other JAX
    call. With no arguments JAX detects the cluster (SLURM, Open MPI, TPU pods, Kubernetes) or
    reads ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``."""
    env = os.environ
    coordinator_address = coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
    if num_processes is None and env.get("JAX_NUM_PROCESSES"):
        num_processes = _env_int("JAX_NUM_PROCESSES")
    if process_id is None and env.get("JAX_PROCESS_ID"):
        process_id = _env_int("JAX_PROCESS_ID")
    try:
        jax.distributed.initialize(coordinator_address=coordinator_address,
                                   num_processes=num_processes, process_id=process_id)
    except ValueError as e:  # JAX's own words, with what to set (docs/parallel.md)
        raise ValueError(
            f"distributed: {e} JAX found no cluster (SLURM, Open MPI, ...): set "
            "JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and JAX_PROCESS_ID in every "
            "process (docs/parallel.md)") from e


# --- Several processes: who writes, and agreeing on values -----------------------------------
#
# With ``--distributed`` every process runs the same program on the same data and computes the
# same (replicated) results. Files and printed lines are the job of one process, the primary
# (``jax.process_index() == 0``); values only one process may choose (a clock reading, a random
# name) are chosen there and broadcast. With one process all of these are no-ops, so the
# single-process path does not touch a device or wait for anyone.


def _distributed() -> bool:
    """True when ``jax.distributed.initialize`` ran in this process (several processes may
    then share the devices); checked without starting a backend."""
    is_initialized = getattr(jax.distributed, "is_initialized", None)
    if is_initialized is not None:
        return bool(is_initialized())
    return jax.process_count() > 1


def process_count() -> int:
    """Number of processes in the job: 1 unless :func:`initialize_distributed` ran."""
    return jax.process_count() if _distributed() else 1


def process_index() -> int:
    """This process's index in 0..process_count()-1 (0 without ``--distributed``)."""
    return jax.process_index() if _distributed() else 0


def is_primary() -> bool:
    """True in the one process that writes files and prints (process 0); always True for a
    single process."""
    return process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process has reached ``barrier(name)`` (no-op for a single process):
    put it between the other processes reading a file and the primary rewriting it."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def broadcast_text(text: str, *, max_bytes: int = 4096) -> str:
    """The primary's ``text`` in every process (other processes' ``text`` is ignored); the
    identity for a single process. ValueError if the UTF-8 text is longer than ``max_bytes``."""
    if process_count() == 1:
        return text
    from jax.experimental import multihost_utils

    data = text.encode() if is_primary() else b""
    if len(data) > max_bytes:
        raise ValueError(f"text: expected at most {max_bytes} UTF-8 bytes to broadcast; got "
                         f"{len(data)}")
    buffer = np.zeros(max_bytes + 4, np.uint8)
    buffer[:4] = np.frombuffer(np.uint32(len(data)).tobytes(), np.uint8)
    buffer[4:4 + len(data)] = np.frombuffer(data, np.uint8)
    buffer = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
    n = int(np.frombuffer(buffer[:4].tobytes(), np.uint32)[0])
    return buffer[4:4 + n].tobytes().decode()


def all_processes(flag: bool) -> list[bool]:
    """Every process's ``flag``, in process order (``[flag]`` for a single process): lets all
    processes take the same decision, so that none waits forever for one that gave up."""
    if process_count() == 1:
        return [bool(flag)]
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.int32(bool(flag)))
    return [bool(f) for f in np.asarray(flags).reshape(-1)]


def check_shared_directory(path, arg: str = "--out") -> None:
    """Check that every process sees the directory ``path`` the primary writes (a shared file
    system), as orbax checkpoints and ``--resume`` with several processes need: the primary
    writes a probe file with a random name, every process looks for it. All processes raise
    the same ValueError (naming ``arg``) when one does not see it. No-op for a single process.
    """
    if process_count() == 1:
        return
    import secrets
    from pathlib import Path

    name = broadcast_text(f".jaxnn-shared-{secrets.token_hex(8)}" if is_primary() else "")
    probe = Path(path) / name
    wrote = True
    if is_primary():
        try:
            probe.write_text(name)
        except OSError:
            wrote = False
    barrier(f"jaxnn: {name} written")
    try:
        seen = probe.read_text() == name
    except OSError:
        seen = False
    flags = all_processes(seen)  # a collective: every process has read the probe after it
    if is_primary():
        probe.unlink(missing_ok=True)
    if not wrote:
        raise ValueError(f"{arg}: process 0 cannot write into {path}: expected an existing "
                         "directory on a file system shared by all processes")
    if not all(flags):
        missing = [i for i, f in enumerate(flags) if not f]
        raise ValueError(
            f"{arg}: with {len(flags)} processes, checkpoints and --resume need {path} on a "
            f"file system shared by all processes; process(es) {missing} do not see the file "
            "process 0 wrote there"
        )
