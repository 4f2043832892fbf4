"""The compiled epoch behind :mod:`jaxnn.train` (which re-exports everything public here):
the state and data types, the training step, and an epoch of steps, scanned as one compiled
call or stepped from the host (:data:`LOOPS`). :func:`jaxnn.train.fit` runs the epochs."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import _checks
from jaxnn.guard import ON_NAN, UNLOCATED, EpochHealth, all_finite, checked_epoch

GradFn = Callable[[Any, jax.Array, jax.Array], Any]


class TrainState(NamedTuple):
    """Everything that changes during training: ``params``, ``opt_state``, the RNG ``key``,
    the number of finished ``epoch``s and, for stateful models (:mod:`jaxnn.cnn`), the
    ``model_state`` that is not trained by the optimizer (batch-norm statistics; None for MLPs)."""

    params: Any
    opt_state: Any
    key: jax.Array
    epoch: int = 0
    model_state: Any = None


class DeviceData(NamedTuple):
    """A split resident on the device: model inputs ``x`` and int32 ``labels``."""

    x: jax.Array
    labels: jax.Array

    @staticmethod
    def put(x, labels, *, arg: str = "data", num_classes: int | None = None) -> DeviceData:
        """Check the arrays once and copy host arrays to the default device: ``x`` floating
        point with a batch axis, ``labels`` 1-D integers (in [0, num_classes) when given), one
        per example, and no NaN or inf in ``x``. Arrays already on a device are checked there
        and kept, not copied through the host. Inputs beyond :data:`UNSCALED` in magnitude
        (raw 0-255 pixels, say) get a UserWarning."""
        x = x if isinstance(x, jax.Array) else np.asarray(x)
        labels = labels if isinstance(labels, jax.Array) else np.asarray(labels)
        if x.ndim < 2:
            raise ValueError(f"{arg}: expected inputs of shape (N, features...); got {x.shape}")
        if not jnp.issubdtype(x.dtype, jnp.floating):  # bfloat16 included
            raise TypeError(
                f"{arg}: expected floating-point inputs (see jaxnn.data.to_inputs); got {x.dtype}"
            )
        if labels.ndim != 1:
            hint = " (one-hot rows? pass labels.argmax(-1))" if labels.ndim == 2 else ""
            raise ValueError(f"{arg}: expected labels of shape (N,), class indices; got "
                             f"{labels.shape}{hint}")
        if len(x) != len(labels):
            raise ValueError(
                f"{arg}: expected one label per example; got {len(x)} and {len(labels)}"
            )
        if not len(x):
            raise ValueError(f"{arg}: expected at least one example; got none")
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"{arg}: expected integer labels; got {labels.dtype}")
        if labels.size and bool(labels.min() < 0 or (num_classes and labels.max() >= num_classes)):
            top = num_classes if num_classes else "num_classes"
            raise ValueError(
                f"{arg}: expected labels in [0, {top}); got range [{labels.min()}, {labels.max()}]"
            )
        _checks.finite_array(arg, x)
        _warn_if_unscaled(arg, x)
        return DeviceData(jnp.asarray(x), jnp.asarray(labels, jnp.int32))

    def __len__(self) -> int:
        """The number of examples. A DeviceData holding no arrays, such as the one JAX's tree
        utilities rebuild with placeholder leaves to explain a recompilation
        (``jax.explain_cache_misses``) or a mismatch of structures, has the tuple's length, 2:
        those utilities compare tuples by their ``len`` (asking for ``labels.shape`` there
        made them fail)."""
        shape = getattr(self.labels, "shape", None)
        return tuple.__len__(self) if shape is None else int(shape[0])


UNSCALED = 10.0
""":meth:`DeviceData.put` warns when an input's magnitude exceeds this: pixels scaled to
[0, 1] (or standardized) stay far below it, raw 0-255 values do not."""


def _warn_if_unscaled(arg: str, x) -> None:
    """A UserWarning when ``x`` holds values beyond :data:`UNSCALED`: raw 0-255 pixels saturate
    sigmoid neurons from the first step, a common slip that trains without an error."""
    xp = jnp if isinstance(x, jax.Array) else np
    top = float(xp.max(xp.abs(x)))
    if top > UNSCALED:
        warnings.warn(f"{arg}: inputs reach {top:g} in magnitude; pixels are usually scaled to "
                      f"[0, 1] first (jaxnn.data.to_inputs divides 0-255 images by 256, as the "
                      f"book does)", UserWarning, stacklevel=3)


def make_step(grad_fn: GradFn, optimizer: optax.GradientTransformation, num_classes: int):
    """``step(params, opt_state, x, labels) -> (params, opt_state)``: one optimizer update on
    the mini-batch-averaged gradient."""
    guarded = _make_guarded_step(grad_fn, optimizer, num_classes, None)

    def step(params, opt_state, x, labels):
        params, opt_state, _, _ = guarded(params, opt_state, None, x, labels, None)
        return params, opt_state

    return step


def _make_guarded_step(grad_fn, optimizer, num_classes, on_nan, stateful=False):
    """``step(params, opt_state, model_state, x, labels, key) -> (params, opt_state,
    model_state, ok)``; ``ok`` says the gradient, the new params, the new optimizer state and
    (stateful) the new model state are all finite (always True when ``on_nan`` is None:
    nothing is checked). With ``"skip"`` a step that is not ok returns the old params,
    optimizer state and model state. A ``stateful`` grad_fn is
    ``grad_fn(params, model_state, x, y, key) -> (grads, model_state)``; otherwise
    ``grad_fn(params, x, y) -> grads`` and model_state and key pass through untouched."""

    def step(params, opt_state, model_state, x, labels, key):
        y = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
        if stateful:
            grads, new_model_state = grad_fn(params, model_state, x, y, key)
        else:
            grads, new_model_state = grad_fn(params, x, y), model_state
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        if on_nan is None:
            return new_params, new_opt_state, new_model_state, jnp.array(True)
        # a finite gradient can still overflow the update (eta * grad) or Adam's moments
        # (grad ** 2), and batch-norm statistics can turn NaN: check everything the step makes
        ok = all_finite((grads, new_params, new_opt_state,
                          new_model_state if stateful else None))
        if on_nan == "skip":
            keep = functools.partial(jax.tree_util.tree_map, lambda n, o: jnp.where(ok, n, o))
            new_params, new_opt_state = keep(new_params, params), keep(new_opt_state, opt_state)
            if stateful:
                new_model_state = keep(new_model_state, model_state)
        return new_params, new_opt_state, new_model_state, ok

    return step


def make_epoch(
    grad_fn: GradFn,
    optimizer: optax.GradientTransformation,
    *,
    mini_batch_size: int,
    n_train: int,
    num_classes: int = 10,
    on_nan: str | None = None,
    batch_sharding: jax.sharding.Sharding | None = None,
    stateful: bool = False,
    loop: str = "scan",
):
    """``epoch(params, opt_state, key, data) -> (params, opt_state)``, jit-compiled.

    Shuffles with ``jax.random.permutation(key, n)`` and scans the step over the
    ``n // m`` full mini-batches (then one step on the remainder, if any).

    With ``on_nan`` ("stop" or "skip") the epoch also returns ``health``, an
    :class:`EpochHealth` that :func:`jaxnn.train.fit` turns into :class:`jaxnn.guard.Diverged`
    or a skipped count. Either costs one check of the state at the end of the epoch and a copy
    of its start; only an epoch that ends non-finite is replayed with every step checked
    (:mod:`jaxnn.guard`).
    ``batch_sharding`` (from :mod:`jaxnn.parallel`) splits every full mini-batch over devices.
    ``stateful=True`` is for models with state and randomness (:mod:`jaxnn.cnn`):
    ``grad_fn(params, model_state, x, y, key) -> (grads, model_state)`` gets a fresh key every
    step (for dropout), and the epoch is
    ``epoch(params, opt_state, key, data, model_state) -> (params, opt_state, model_state)``
    (then ``health`` when guarded).
    ``loop="host"`` runs the same steps as one jitted call per mini-batch (see :data:`LOOPS`).
    The jitted epoch donates ``params`` and ``opt_state`` (their buffers are reused for the
    result): do not use the arrays passed in after the call (pass copies to call it twice).
    The epoch's ``num_classes`` attribute is the argument: :func:`jaxnn.train.fit` checks the
    training labels against it (one-hot rows of labels outside it would be all zeros).
    """
    m = _checks.positive("mini_batch_size", mini_batch_size, integer=True)
    n = _checks.positive("n_train", n_train, integer=True)
    if m > n:
        raise ValueError(f"mini_batch_size: expected at most the {n} training examples; got {m}")
    if on_nan is not None:
        _checks.choice("on_nan", on_nan, ON_NAN)
    _checks.choice("loop", loop, LOOPS)
    if on_nan is not None:  # one check at the end; replay step by step only on a bad epoch
        epoch = checked_epoch(functools.partial(_epoch_program, grad_fn, optimizer, num_classes,
                                                m, n, batch_sharding, stateful, loop), on_nan)
    else:
        epoch = _epoch_program(grad_fn, optimizer, num_classes, m, n, batch_sharding, stateful,
                               loop, None)
    epoch.num_classes = num_classes  # fit checks the training labels against it
    return epoch


def _epoch_program(grad_fn, optimizer, num_classes, m, n, batch_sharding, stateful, loop, check):
    """The compiled epoch of :func:`make_epoch` (arguments checked there). ``check``: None
    (nothing), ``"end"`` (params, optimizer state and model state once, after the last step),
    ``"step"`` (after every step: the first bad one) or ``"skip"`` (after every step, undoing
    a bad one)."""
    step = _make_guarded_step(grad_fn, optimizer, num_classes,
                              {"step": "stop", "skip": "skip"}.get(check), stateful)
    full, rest = divmod(n, m)
    split = _constrain(batch_sharding)

    def batches(key):
        """The epoch's shuffled (full, m) index matrix, the remainder's indices and one step key
        per step (None for stateless models)."""
        if stateful:
            key, step_key = jax.random.split(key)
            keys = jax.random.split(step_key, full + 1)
        else:
            keys = None  # no randomness inside the step
        perm = jax.random.permutation(key, n)
        return perm[: full * m].reshape(full, m), perm[full * m :], keys

    def body(data, carry, xs, constrain=split):
        """One step on mini-batch ``idx`` (the ``i``-th of the epoch); ``constrain`` places it
        over the devices (the remainder is not split: its size need not divide)."""
        i, idx, k = xs
        params, opt_state, model_state, first_bad, skipped = carry
        params, opt_state, model_state, ok = step(
            params, opt_state, model_state, constrain(data.x[idx]), constrain(data.labels[idx]),
            k)
        if check in ("step", "skip"):
            first_bad = jnp.where((first_bad < 0) & ~ok, i, first_bad)
            skipped = skipped + (~ok).astype(jnp.int32)
        return (params, opt_state, model_state, first_bad, skipped), None

    def finish(carry):
        params, opt_state, model_state, first_bad, skipped = carry
        out = (params, opt_state, model_state) if stateful else (params, opt_state)
        if check is None:
            return out
        if check == "end":
            first_bad = jnp.where(all_finite(out), jnp.int32(-1), jnp.int32(UNLOCATED))
        elif check == "step":
            skipped = jnp.int32(0)  # found, not skipped
        else:
            first_bad = jnp.int32(-1)  # skipped steps left params finite: nothing diverged
        return (*out, EpochHealth(first_bad, skipped))

    def start(params, opt_state, model_state):
        return (params, opt_state, model_state, jnp.int32(-1), jnp.int32(0))

    if loop == "host":
        return _host_epoch(batches, body, start, finish, n, full, rest)

    def epoch(params, opt_state, key, data: DeviceData, model_state=None):
        _check_size(data, n)
        idx, tail, keys = batches(key)
        xs = (jnp.arange(full, dtype=jnp.int32), idx, None if keys is None else keys[:full])
        carry, _ = jax.lax.scan(functools.partial(body, data), start(params, opt_state,
                                                                     model_state), xs)
        if rest:
            carry, _ = body(data, carry, (full, tail, None if keys is None else keys[full]),
                            constrain=_constrain(None))
        return finish(carry)

    return jax.jit(epoch, donate_argnums=(0, 1))


LOOPS = ("scan", "host")
"""How :func:`make_epoch` steps through the mini-batches: ``scan``, the whole epoch as one
compiled call, or ``host``, one compiled call per mini-batch from Python. Scan is the fast
choice on accelerators and for fully connected networks; on XLA's CPU backend a convolution's
gradient inside a compiled loop runs several times slower than the same gradient called on its
own (measured: 6.7x for one ch6-relu epoch on 1,000 images), so networks with convolutions
use host on the CPU. A fully connected Flax model (``fc100``) keeps scan: stepped from the
host, its epoch alone was about 5x slower."""


def jit_once(fn):
    """``jax.jit(fn)`` for a program that runs once per model, such as drawing its initial
    weights. On XLA's CPU backend it is compiled at LLVM optimization level 1 instead of the
    default 2: the random draws (threefry hashes, and the erfinv of a normal or truncated
    normal) then compile about 3x faster (a ch6 CNN's weights: 1.1 s instead of 3.4 s as one
    program, or 4.3 s drawn eagerly), run in a few milliseconds either way, and gave the same
    bits as the eager draw for every CNN preset (tests/test_cnn.py). Other backends compile
    it with their defaults."""
    if jax.default_backend() != "cpu":
        return jax.jit(fn)
    return jax.jit(fn, compiler_options={"xla_backend_optimization_level": 1})


def auto_loop(platform: str, *, convolutional: bool) -> str:
    """The :data:`LOOPS` choice for a network on ``platform`` ("cpu", "gpu", "tpu"): ``host``
    for a convolutional network on the CPU, ``scan`` everywhere else."""
    return "host" if platform == "cpu" and convolutional else "scan"


def _host_epoch(batches, body, start, finish, n, full, rest):
    """The epoch of :func:`make_epoch` as a Python loop over one jitted step per mini-batch:
    the same updates in the same order (``loop="host"``).

    The epoch takes ``on_step(steps_done, carry)``, called after each full mini-batch's step is
    dispatched (the step may still be running: block on ``carry`` to wait for it), and has
    ``steps_per_epoch``: :func:`jaxnn.train.fit` moves its progress bar by steps with these."""
    batches = jax.jit(batches)
    finish = jax.jit(finish)  # the end-of-epoch finiteness check: one call, not one per leaf
    step = jax.jit(body, donate_argnums=(1,))

    def step_i(data, carry, i, idx, keys):
        """Step ``i``, its mini-batch and key sliced inside the compiled step (one call per
        step; slicing outside took three operations, one a host-to-device copy)."""
        row = functools.partial(jax.lax.dynamic_index_in_dim, index=i, keepdims=False)
        return body(data, carry, (i, row(idx), None if keys is None else row(keys)))

    step_i = jax.jit(step_i, donate_argnums=(1,))
    tail_step = jax.jit(functools.partial(body, constrain=_constrain(None)),
                        donate_argnums=(1,))

    def epoch(params, opt_state, key, data: DeviceData, model_state=None, *, on_step=None):
        _check_size(data, n)
        idx, tail, keys = batches(key)
        carry = start(params, opt_state, model_state)
        single = len(idx.sharding.device_set) == 1
        if not single:  # start's counters replicated like the step's: the step compiles once
            replicated = jax.sharding.NamedSharding(idx.sharding.mesh, jax.sharding.PartitionSpec())
            carry = (*carry[:3], *jax.device_put(carry[3:], replicated))
        for i in range(full):
            if single:
                carry, _ = step_i(data, carry, np.int32(i), idx, keys)
            else:  # over a mesh, slice outside the step: the slices an iteration over the
                # sharded matrix gave hung the step's all-reduce (2 CPU devices; test_parallel)
                carry, _ = step(data, carry, (jnp.int32(i), idx[i],
                                              None if keys is None else keys[i]))
            if on_step is not None:
                on_step(i + 1, carry)
        if rest:
            carry, _ = tail_step(data, carry, (jnp.int32(full), tail,
                                               None if keys is None else keys[full]))
        return finish(carry)

    epoch.steps_per_epoch = full + bool(rest)
    return epoch


def check_data(data, arg: str = "data") -> None:
    """TypeError unless ``data`` is a :class:`DeviceData` (what epochs and ``evaluate`` take)."""
    if not isinstance(data, DeviceData):
        raise TypeError(f"{arg}: expected a jaxnn.train.DeviceData, from "
                        f"DeviceData.put(x, labels); got {type(data).__name__}")


def _check_size(data: DeviceData, n: int) -> None:
    """The epoch's data must hold the ``n_train`` examples it was made for (a static shape, so
    this costs nothing under jit): jitted gathers clamp out-of-range indices instead of failing,
    so more data would train on its first n examples only, and less on copies of its last."""
    check_data(data)
    got = data.labels.shape[0]
    if data.x.shape[0] != got:  # DeviceData built directly: put() checks this
        raise ValueError(f"data: expected one label per example; got {data.x.shape[0]} and {got}")
    if got != n:
        raise ValueError(f"n_train: the epoch was made for {n} training examples; got data "
                         f"with {got} (make the epoch with n_train=len(data))")


def _constrain(sharding):
    """``x -> with_sharding_constraint(x, sharding)``, or the identity when ``sharding`` is None."""
    if sharding is None:
        return lambda x: x
    return lambda x: jax.lax.with_sharding_constraint(x, sharding)
