"""The MNIST speed run: a small CNN to >= 99% test accuracy in as few seconds as possible.

Everything that makes it fast is a choice made here, not a trick in the library:

- the whole run (every epoch, every mini-batch) is **one compiled call**: ``lax.scan`` over
  epochs around ``lax.scan`` over mini-batches, so the host dispatches once and waits once;
- the training images (MNIST's 60,000 unless ``train_size`` says fewer) live on the device
  as uint8 (47 MB for all of them) and become floats a mini-batch at a time;
- **one compiled shape**: the batch size divides the training-set size (no remainder step),
  and evaluation is one call over the whole test set;
- a **large batch with a one-cycle schedule** (warm-up then cosine annealing, Adam): few,
  well-used steps (4 epochs of 120);
- **bfloat16 compute** (``dtype="bfloat16"``): parameters, optimizer state and the cost stay
  float32, the convolutions and matrix products run in bfloat16; biases are added in float32
  (:func:`jaxnn.layers.add_bias`), so their gradients are float32 sums;
- **augmentation on the device**: each image shifted by up to ``shift`` pixels in x and y,
  a fresh draw every step, so no augmented copies are stored;
- JAX's persistent compilation cache (``jaxnn speedrun`` turns it on, as every ``jaxnn``
  command does), so a second run skips XLA compilation.

The network is a :class:`jaxnn.layers.CNNSpec` trained through the pure
:func:`jaxnn.layers.forward`, so it is the same maths as the rest of the library:

    conv 5x5 (c1) -> ReLU -> max-pool 2 -> conv 3x3 (c2) -> ReLU -> max-pool 2
    [-> dense (hidden) -> ReLU] -> dense 10
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import _checks, costs, layers, optim
from jaxnn.train import LOOPS, auto_loop, jit_once

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
AUTO = "auto"  # dtype and loop: chosen for the backend by resolve()
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # pixel statistics of MNIST's training images (x/255)


@dataclasses.dataclass(frozen=True)
class SpeedrunConfig:
    """The speed run's settings; the defaults are the tuned recipe."""

    widths: tuple[int, int] = (32, 64)
    hidden: int = 128
    epochs: int = 4
    batch_size: int = 500
    eta: float = 0.01
    optimizer: str = "adam"
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    shift: int = 1
    dtype: str = "auto"
    train_size: int | None = None
    test_size: int | None = None
    loop: str = "auto"

    def validated(self) -> SpeedrunConfig:
        if len(self.widths) != 2:
            raise ValueError(f"widths: expected two conv widths (c1, c2); got {self.widths!r}")
        for w in self.widths:
            _checks.positive("widths", w, integer=True)
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 0:
            raise ValueError(f"hidden: expected an integer >= 0 (0: no hidden layer); got "
                             f"{self.hidden!r}")
        _checks.positive("epochs", self.epochs, integer=True)
        _checks.positive("batch_size", self.batch_size, integer=True)
        _checks.positive("eta", self.eta)
        _checks.choice("optimizer", self.optimizer, optim.OPTIMIZERS)
        _checks.non_negative("weight_decay", self.weight_decay)
        _checks.in_unit_interval("label_smoothing", self.label_smoothing)
        _checks.non_negative("shift", self.shift)
        if not isinstance(self.shift, int) or self.shift > 4:
            raise ValueError(f"shift: expected an int pixel shift in [0, 4]; got {self.shift!r}")
        _checks.choice("dtype", self.dtype, (AUTO, *DTYPES))
        _checks.choice("loop", self.loop, (AUTO, *LOOPS))
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                _checks.positive(name, getattr(self, name), integer=True)
        return self


def resolve(config: SpeedrunConfig, backend: str | None = None) -> SpeedrunConfig:
    """``config`` with "auto" replaced for ``backend`` (default: JAX's): on an accelerator
    bfloat16 and the single compiled call; on the CPU float32 (XLA's CPU backend has no fast
    bfloat16 convolutions) and one call per step (see :func:`_host_loop`)."""
    config = config.validated()
    platform = backend or jax.default_backend()
    return dataclasses.replace(
        config,
        dtype=("float32" if platform == "cpu" else "bfloat16") if config.dtype == AUTO
        else config.dtype,
        loop=auto_loop(platform, convolutional=True) if config.loop == AUTO else config.loop)


def network(config: SpeedrunConfig, num_classes: int = 10) -> layers.CNNSpec:
    """The speed run's CNN as a :class:`jaxnn.layers.CNNSpec` (28x28x1 input)."""
    c1, c2 = config.widths
    head = (layers.Dense(config.hidden),) if config.hidden else ()
    return layers.CNNSpec(
        (28, 28, 1),
        (layers.Conv(c1, 5), layers.Pool("max", 2), layers.Conv(c2, 3), layers.Pool("max", 2),
         layers.Flatten(), *head, layers.Dense(num_classes)),
        "relu",
    )


def _inputs(images_u8, dtype):
    """uint8 (N, 28, 28) -> normalized (N, 28, 28, 1) in ``dtype``: (x / 255 - mean) / std."""
    x = images_u8.astype(jnp.float32)[..., None] / 255.0
    return ((x - MNIST_MEAN) / MNIST_STD).astype(dtype)


def random_shift(key, x, shift: int):
    """Each image of the NHWC batch ``x`` translated by (dy, dx), drawn uniformly from
    [-shift, shift]^2 per image; pixels shifted in are the background (zero before
    normalization), nothing wraps around."""
    if shift == 0:
        return x
    n, h, w, _ = x.shape
    background = jnp.asarray(-MNIST_MEAN / MNIST_STD, x.dtype)
    padded = jnp.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)),
                     constant_values=background)
    offsets = jax.random.randint(key, (n, 2), 0, 2 * shift + 1)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, image.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


def _compute_params(params, dtype):
    """``params`` as the forward pass uses them: kernels in the compute ``dtype``, biases
    kept float32 (see :func:`jaxnn.layers.add_bias`)."""
    return {"layers": {i: {"kernel": p["kernel"].astype(dtype), "bias": p["bias"]}
                       for i, p in params["layers"].items()}}


def make_train(config: SpeedrunConfig, n_train: int, num_classes: int = 10):
    """``train(params, key, images_u8, labels) -> params``: the whole run as one jitted call.

    ``config.epochs`` epochs of ``n_train // batch_size`` steps; each epoch a fresh
    permutation (``jax.random.permutation``), each step a fresh augmentation key. The cost is
    the log-likelihood of the softmax output with label smoothing eps:
    C = -(1/m) sum_x sum_j y~_j log softmax(z)_j, y~ = (1 - eps) y + eps / classes.
    """
    config = resolve(config)
    spec = network(config, num_classes)
    m = config.batch_size
    if m > n_train:
        raise ValueError(f"batch_size: expected at most the {n_train} training images; got {m}")
    steps = n_train // m
    total = config.epochs * steps
    eta = optim.schedule("one-cycle", config.eta, total)
    tx = optim.make(config.optimizer, eta, l2=config.weight_decay)
    dtype = DTYPES[config.dtype]
    log_likelihood = costs.from_logits("log_likelihood", "softmax")
    eps = config.label_smoothing

    def cost(params, x, labels):
        z = layers.forward(spec, _compute_params(params, dtype), x).astype(jnp.float32)
        y = jax.nn.one_hot(labels, num_classes) * (1 - eps) + eps / num_classes
        return log_likelihood(z, y)

    grad = jax.grad(cost)

    def step(carry, batch, images_u8, labels):
        params, opt_state = carry
        idx, k = batch
        x = random_shift(k, _inputs(images_u8[idx], dtype), config.shift)
        updates, opt_state = tx.update(grad(params, x, labels[idx]), opt_state, params)
        return (jax.tree_util.tree_map(jnp.add, params, updates), opt_state), None

    def epoch_batches(k, n):
        """This epoch's (steps, m) index matrix and one augmentation key per step."""
        k_perm, k_steps = jax.random.split(k)
        perm = jax.random.permutation(k_perm, n)[: steps * m]
        return perm.reshape(steps, m), jax.random.split(k_steps, steps)

    if config.loop == "host":
        return _host_loop(tx, jax.jit(step), jax.jit(epoch_batches, static_argnames="n"),
                          config.epochs, steps)

    def train(params, key, images_u8, labels):
        def epoch(carry, k):
            batches = epoch_batches(k, images_u8.shape[0])
            return jax.lax.scan(lambda c, b: step(c, b, images_u8, labels), carry, batches)[0], None

        carry = (params, tx.init(params))
        (params, _), _ = jax.lax.scan(epoch, carry, jax.random.split(key, config.epochs))
        return params

    return jax.jit(train)


def _host_loop(tx, step, epoch_batches, epochs, steps):
    """The same run as :func:`make_train`'s single call, stepped from Python: one jitted call
    per mini-batch. Slower on an accelerator (a dispatch per step), but on XLA's CPU backend a
    convolution's gradient inside a compiled loop runs an order of magnitude slower than the
    same gradient called on its own, so CPU runs use this. It has the jitted function's
    ``lower(...).compile()`` so that :func:`run` compiles both kinds ahead of the clock."""

    class HostLoop:
        compiled = None

        def __call__(self, params, key, images_u8, labels):
            run_step, batches = self.compiled or (step, epoch_batches)
            carry = (params, tx.init(params))
            for k in jax.random.split(key, epochs):
                idx, keys = batches(k) if self.compiled else batches(k, n=images_u8.shape[0])
                for i in range(steps):
                    carry, _ = run_step(carry, (idx[i], keys[i]), images_u8, labels)
            return carry[0]

        def lower(self, params, key, images_u8, labels):
            batches = jax.jit(functools.partial(epoch_batches, n=images_u8.shape[0]))
            # the step's example arguments, one row of each: shapes only (calling the batches
            # here would compile them a second time)
            row = lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype)  # noqa: E731
            idx, keys = jax.eval_shape(batches, key)
            loop = HostLoop()
            loop.compiled = (step.lower((params, tx.init(params)), (row(idx), row(keys)),
                                        images_u8, labels),
                             batches.lower(key))
            return loop

        def compile(self):
            self.compiled = tuple(lowered.compile() for lowered in self.compiled)
            return self

    return HostLoop()


def make_accuracy(config: SpeedrunConfig, num_classes: int = 10):
    """``accuracy(params, images_u8, labels) -> number correct`` (jitted, one call)."""
    config = resolve(config)
    spec = network(config, num_classes)
    dtype = DTYPES[config.dtype]

    def correct(params, images_u8, labels):
        z = layers.forward(spec, _compute_params(params, dtype), _inputs(images_u8, dtype))
        return jnp.sum(jnp.argmax(z, axis=-1) == labels)

    return jax.jit(correct)


class RunResult(NamedTuple):
    seed: int
    test_accuracy: float
    train_seconds: float


class SpeedrunResult(NamedTuple):
    """``runs`` (one per seed) and the one-off costs of the first: ``data_seconds`` (uint8
    arrays to the device), ``compile_seconds`` (training and evaluation programs; near zero
    with a warm persistent cache) and ``total_seconds`` (from the start to the first seed's
    accuracy: data + compilation + training + evaluation)."""

    config: SpeedrunConfig
    runs: list[RunResult]
    data_seconds: float
    compile_seconds: float
    total_seconds: float
    device: str

    def summary(self) -> dict[str, Any]:
        acc = np.array([r.test_accuracy for r in self.runs])
        secs = np.array([r.train_seconds for r in self.runs])
        return {
            "seeds": [r.seed for r in self.runs],
            "test_accuracy": acc.tolist(),
            "mean_test_accuracy": float(acc.mean()),
            "std_test_accuracy": float(acc.std()),
            "train_seconds": secs.tolist(),
            "median_train_seconds": float(np.median(secs)),
            "data_seconds": self.data_seconds,
            "compile_seconds": self.compile_seconds,
            "total_seconds": self.total_seconds,
            "device": self.device,
            "config": dataclasses.asdict(self.config),
        }


def _images(split, which: str) -> np.ndarray:
    """``split``'s images as uint8 (N, 28, 28); a TypeError unless they are uint8 pixels and a
    ValueError unless they are 28x28 grayscale (the speed run's network and its MNIST
    normalization expect them)."""
    images = np.asarray(split.images)
    if images.dtype != np.uint8:  # float pixels in [0, 1] would become 0s and 1s
        raise TypeError(f"dataset: expected uint8 pixels (0-255) such as MNIST's; got "
                        f"{images.dtype} in its {which} split")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.shape[1:] != (28, 28):
        raise ValueError(f"dataset: expected 28x28 grayscale images (N, 28, 28) such as "
                         f"MNIST's; got images of shape {tuple(np.shape(split.images))[1:]} "
                         f"in its {which} split")
    return images


def run(config: SpeedrunConfig = SpeedrunConfig(), *, seeds=(0, 1, 2, 3, 4),
        dataset=None, on_run=None) -> SpeedrunResult:
    """Train one network per seed and count its test accuracy.

    ``dataset``: a :class:`jaxnn.data.DataSet`, used as given (its ``train`` split trains, its
    ``test`` split is counted), or a data-set name loaded with
    ``jaxnn.data.load(name, validation_size=None)`` (the original split: for ``"mnist"`` all
    60,000 training and 10,000 test images). ``None`` is the embedded MNIST. Its images must
    be 28x28 grayscale. ``config.train_size`` / ``config.test_size``, when set, keep at most
    the first that many images of each split (a smaller split is used whole).

    ``on_run``: ``None`` or a callable, called with each seed's :class:`RunResult` as soon as
    that seed is evaluated (``jaxnn speedrun`` prints a line from it).

    Timing: every phase ends with ``block_until_ready``; ``train_seconds`` is the compiled run
    alone (data already on the device, compilation done)."""
    config = resolve(config)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    if on_run is not None and not callable(on_run):
        raise TypeError(f"on_run: expected a callable taking each seed's RunResult, or None; "
                        f"got {on_run!r}")
    from jaxnn import data

    if dataset is not None and not isinstance(dataset, str | data.DataSet):
        raise TypeError(f"dataset: expected a jaxnn.data.DataSet or a data-set name such as "
                        f"'mnist'; got {type(dataset).__name__}")
    if isinstance(dataset, str):
        data.check_source(dataset)
    start = time.perf_counter()
    if dataset is None:
        dataset = data.load_mnist()
    elif isinstance(dataset, str):
        dataset = data.load(dataset, validation_size=None)
    train_split, test_split = dataset.train, dataset.test
    if config.train_size is not None:
        train_split = train_split.take(min(config.train_size, len(train_split)))
    if config.test_size is not None:
        test_split = test_split.take(min(config.test_size, len(test_split)))
    num_classes = dataset.num_classes
    images, labels = jax.device_put((_images(train_split, "train"),
                                     np.asarray(train_split.labels, np.int32)))
    test_images, test_labels = jax.device_put((_images(test_split, "test"),
                                               np.asarray(test_split.labels, np.int32)))
    jax.block_until_ready((images, labels, test_images, test_labels))
    data_seconds = time.perf_counter() - start

    spec = network(config, num_classes)
    init = jit_once(lambda key: layers.init(spec, key))
    t = time.perf_counter()
    params0 = init(jax.random.key(0))
    train_fn = make_train(config, len(train_split), num_classes).lower(
        params0, jax.random.key(0), images, labels).compile()
    accuracy_fn = make_accuracy(config, num_classes).lower(
        params0, test_images, test_labels).compile()
    compile_seconds = time.perf_counter() - t

    runs, total = [], None
    for seed in seeds:
        init_key, train_key = jax.random.split(jax.random.key(seed))
        params = jax.block_until_ready(init(init_key))
        t = time.perf_counter()
        params = jax.block_until_ready(train_fn(params, train_key, images, labels))
        train_seconds = time.perf_counter() - t
        correct = int(accuracy_fn(params, test_images, test_labels))
        if total is None:
            total = time.perf_counter() - start
        runs.append(RunResult(seed, correct / len(test_split), train_seconds))
        if on_run is not None:
            on_run(runs[-1])
    device = jax.devices()[0].device_kind
    return SpeedrunResult(config, runs, data_seconds, compile_seconds, total, device)
