"""Training throughput (images/s) of two CNNs, three ways, in one run.

Models (presets of :mod:`jaxnn.presets`):

- ``ch6-relu``: chapter 6's network (architecture ``conv2``: 20 5x5 VALID conv + 2x2 max-pool,
  40 5x5 conv + max-pool, fc 100, 10 logits; ReLU; softmax log-likelihood; SGD eta = 0.03 with
  the chapter-6 L2 decay lambda = 0.1; mini-batch 10);
- ``flax-mnist``: Flax's MNIST example (SAME 3x3 conv 32 + 2x2 average pool, conv 64 + average
  pool, dense 256, dense 10; SGD eta = 0.1, momentum 0.9; batch 128).

Implementations, all on the same MNIST training images (the first ``--images`` of the book's
50,000), resident on the device before any clock starts, all from the same initial weights:

1. ``jaxnn``: what ``jaxnn train --preset NAME`` runs: ``experiment.prepare`` and the CNN path of
   ``experiment.run`` (``train.make_epoch(..., stateful=True, on_nan="stop")`` over
   ``cnn.make_grad_fn``), with both epoch loops: ``scan`` (one compiled call per epoch,
   ``lax.scan`` over mini-batches) and ``host`` (one jitted call per mini-batch). The first row
   is the loop ``jaxnn train`` picks on this backend (scan on a GPU, host for CNNs on the CPU),
   and the ratios are relative to it.
2. ``nnx.jit``: the same ``jaxnn.cnn.CNN`` module and optax optimizer stepped batch by batch
   from Python with an ``@nnx.jit`` train step and ``nnx.Optimizer``, as Flax's MNIST tutorial
   does. The mini-batch is gathered on the device inside the step, by a shuffled index (the
   same permutation as jaxnn's), so the comparison is loop overhead and compilation style,
   not data transfer.
3. ``pytorch`` (when ``import torch`` works): the same layers built from the same
   :class:`jaxnn.layers.CNNSpec` as an ``nn.Sequential`` (NCHW), ``torch.optim.SGD`` with the
   same eta, momentum and weight decay (weights only), cross-entropy loss, a batch-by-batch
   loop; CUDA when available. ``--torch-compile`` wraps the model in ``torch.compile``.

One repetition trains one epoch over ``--images`` images. Each implementation first runs one
warm-up epoch (compilation included; reported as "first epoch"), then the implementations take
turns (A B C A B C ...) for ``--repeats`` repetitions, and each figure is the median, because
the machines are shared and noisy. On the CPU every epoch follows ``--pause`` idle seconds
(untimed), so that one library's spinning worker threads do not slow the next one down (on a
GPU the pause is 0: an idle GPU lowers its clocks). On CUDA, PyTorch is allowed TF32, as JAX's
default float32 precision is there. The ratio is jaxnn's images/s over that implementation's.
Parameter counts are compared (they must be equal) and the PyTorch network is checked to give
jaxnn's logits from the same weights.

    python benchmarks/cnn_throughput.py [--models ch6-relu flax-mnist] [--batch-size 128]
        [--images N] [--repeats R] [--pause S] [--no-torch] [--torch-threads T]
        [--torch-compile] [--json PATH]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, markdown_table, script_parser, write_json  # noqa: E402

MODELS = ("ch6-relu", "flax-mnist")
GPU_IMAGES = 50_000
CPU_IMAGES = 1_280  # 128 mini-batches of 10, 10 of 128: about 3 minutes on 2 cores
GPU_REPEATS = 5
CPU_REPEATS = 3
LOGITS_TOLERANCE = 1e-2  # max |z_torch - z_jaxnn| / max(1, max |z|); float32, TF32 on GPUs


def _count(tree) -> int:
    import jax

    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(tree)))


class Setup:
    """One model at one batch size: the config, the data on the device and the initial key."""

    def __init__(self, preset: str, batch: int | None, images: int):
        import jax

        from jaxnn import costs, experiment

        overrides = {"train_size": images, "eval_size": 1}
        if batch is not None:
            overrides["mini_batch_size"] = batch
        self.config = experiment.TrainConfig.from_preset(preset, **overrides)
        self.prepared = experiment.prepare(self.config)
        self.spec = self.prepared.network
        self.n = len(self.prepared.train)
        self.m = self.config.mini_batch_size
        self.optimizer = experiment.make_optimizer(self.config, self.n)
        self.cost_fn = costs.from_logits(self.config.cost, self.config.output_activation)
        # as experiment.run: one seed -> (init key, training key)
        self.init_key, self.train_key = jax.random.split(jax.random.key(self.config.seed))
        jax.block_until_ready(self.prepared.train)


class JaxnnEpoch:
    """jaxnn's epoch, exactly as ``jaxnn train --loop LOOP`` builds it (divergence guard on):
    ``scan``, one compiled call per epoch, or ``host``, one jitted call per mini-batch."""

    def __init__(self, s: Setup, loop: str):
        import dataclasses

        import jax

        from jaxnn import experiment

        self.name = f"jaxnn, {loop} loop"
        c = dataclasses.replace(s.config, loop=loop)
        training = experiment.Trainer(c, prepared=s.prepared)
        self.state, self.epoch_fn = training.initial_state(c.seed), training.epoch_fn
        self.data = s.prepared.train
        self.param_count = _count(self.state.params)
        self.key = jax.random.key(1)
        self.done = 0

    def epoch(self) -> float:
        import jax

        st = self.state
        key = jax.random.fold_in(self.key, self.done)
        start = time.perf_counter()
        params, opt_state, model_state, health = self.epoch_fn(
            st.params, st.opt_state, key, self.data, st.model_state)
        jax.block_until_ready(params)
        bad = int(health.first_bad_step)  # what train.fit reads after every epoch
        seconds = time.perf_counter() - start
        if bad >= 0:
            raise RuntimeError(f"jaxnn: training diverged at step {bad}")
        self.state = st._replace(params=params, opt_state=opt_state, model_state=model_state)
        self.done += 1
        return seconds

    def params(self):
        from jaxnn import cnn

        return cnn.pure_params(self.state.params)


class NnxJitLoop:
    """The same module and optimizer, one ``nnx.jit`` call per mini-batch from Python."""

    name = "nnx.jit step loop"

    def __init__(self, s: Setup):
        import jax
        from flax import nnx

        from jaxnn import cnn

        if s.config.l1:
            raise ValueError("nnx.jit loop: presets with an L1 penalty are not supported")
        self.model = cnn.make(s.spec, s.init_key)  # same init as jaxnn's
        self.optimizer = nnx.Optimizer(self.model, s.optimizer, wrt=nnx.Param)
        self.x, self.labels = s.prepared.train.x, s.prepared.train.labels
        self.n, self.m = s.n, s.m
        self.param_count = _count(nnx.state(self.model, nnx.Param))
        self.key = jax.random.key(1)
        self.done = 0
        cost_fn, num_classes = s.cost_fn, s.prepared.num_classes

        @nnx.jit
        def train_step(model, optimizer, x_all, labels_all, idx):
            x = x_all[idx]
            y = jax.nn.one_hot(labels_all[idx], num_classes, dtype=x.dtype)

            def loss_fn(model):
                return cost_fn(model(x, train=True), y)

            grads = nnx.grad(loss_fn)(model)
            optimizer.update(model, grads)

        self.train_step = train_step

    def epoch(self) -> float:
        import jax
        from flax import nnx

        key = jax.random.fold_in(self.key, self.done)
        full, rest = divmod(self.n, self.m)
        start = time.perf_counter()
        # make_epoch's shuffle for a stateful model: split off the step keys, permute with the rest
        perm = jax.random.permutation(jax.random.split(key)[0], self.n)
        for idx in perm[: full * self.m].reshape(full, self.m):
            self.train_step(self.model, self.optimizer, self.x, self.labels, idx)
        if rest:
            self.train_step(self.model, self.optimizer, self.x, self.labels, perm[full * self.m:])
        jax.block_until_ready(nnx.state(self.model, nnx.Param))
        seconds = time.perf_counter() - start
        self.done += 1
        return seconds

    def params(self):
        from jaxnn import cnn

        return cnn.pure_params(self.model)


def torch_model(spec):
    """An ``nn.Sequential`` with the layers of ``spec`` (NCHW): Conv2d -> sigma -> pool blocks,
    Flatten, Linear -> sigma ..., a last Linear giving the logits."""
    from torch import nn

    from jaxnn import layers

    sigma = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}.get(spec.activation)
    if sigma is None:
        raise ValueError(f"pytorch: activation {spec.activation!r} is not mapped")
    shape, mods, last = tuple(spec.input_shape), [], len(spec.layers) - 1
    for i, (layer, out_shape) in enumerate(zip(spec.layers, layers.shapes(spec))):
        if isinstance(layer, layers.Conv):
            if layer.padding == "SAME" and (layer.stride != (1, 1) or
                                            any(k % 2 == 0 for k in layer.kernel)):
                raise ValueError("pytorch: SAME padding only for odd kernels and stride 1")
            pad = (0, 0) if layer.padding == "VALID" else tuple(k // 2 for k in layer.kernel)
            mods.append(nn.Conv2d(shape[-1], layer.features, layer.kernel, layer.stride, pad))
        elif isinstance(layer, layers.Pool):
            pool = nn.MaxPool2d if layer.kind == "max" else nn.AvgPool2d
            mods.append(pool(layer.window, layer.stride))
        elif isinstance(layer, layers.Flatten):
            mods.append(nn.Flatten())
        elif isinstance(layer, layers.Dense):
            mods.append(nn.Linear(shape[0], layer.features))
        else:
            raise ValueError(f"pytorch: layer {layer!r} is not mapped")
        if isinstance(layer, layers.Conv | layers.Dense) and i != last:
            mods.append(sigma())
        shape = out_shape
    return nn.Sequential(*mods)


def copy_into_torch(spec, pure, model) -> None:
    """Load jaxnn's pure params (HWIO kernels, (in, out) dense kernels, NHWC flatten order)
    into ``torch_model(spec)`` (OIHW, (out, in), NCHW flatten order)."""
    import torch

    from jaxnn import layers

    shapes = layers.shapes(spec)
    linear = iter(m for m in model if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    prev, flat_from = tuple(spec.input_shape), None
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, layers.Flatten):
            flat_from = prev  # (H, W, C) of the image that Flatten turns into a row
        elif isinstance(layer, layers.Conv | layers.Dense):
            k = np.asarray(pure["layers"][i]["kernel"])
            b = np.asarray(pure["layers"][i]["bias"])
            if isinstance(layer, layers.Conv):
                w = k.transpose(3, 2, 0, 1)
            elif flat_from is not None:  # first dense after Flatten: NHWC rows -> NCHW rows
                h, wd, ch = flat_from
                w = k.reshape(h, wd, ch, -1).transpose(3, 2, 0, 1).reshape(k.shape[1], -1)
            else:
                w = k.T
            flat_from = None
            mod = next(linear)
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                mod.bias.copy_(torch.from_numpy(np.array(b)))
        prev = shapes[i]


class TorchLoop:
    """The same network in PyTorch, stepped batch by batch; data as tensors on the device."""

    def __init__(self, s: Setup, *, compile_model: bool = False):
        import torch

        from jaxnn import cnn, optim

        c = s.config
        self.name = "pytorch" + (" (torch.compile)" if compile_model else "")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(c.seed)
        model = torch_model(s.spec)
        pure = cnn.pure_params(cnn.make(s.spec, s.init_key))  # jaxnn's initial weights
        copy_into_torch(s.spec, pure, model)
        self.model = model.to(self.device)
        self.param_count = int(sum(p.numel() for p in self.model.parameters()))
        x = np.asarray(s.prepared.train.x).transpose(0, 3, 1, 2)  # NHWC -> NCHW
        self.x = torch.from_numpy(np.array(x, order="C")).to(self.device)  # a writable copy
        self.labels = torch.from_numpy(np.array(s.prepared.train.labels)).long().to(
            self.device)
        self.logits_mismatch = self._check_logits(s, pure)
        if c.optimizer not in ("sgd", "momentum") or c.schedule != "constant" or c.l1:
            raise ValueError(f"pytorch: preset {c.preset!r} is not plain SGD/momentum")
        from jaxnn import experiment

        decay = c.l2 / experiment.l2_denominator(c, s.n) if c.l2 else 0.0
        weights = [p for p in self.model.parameters() if p.dim() > 1]
        biases = [p for p in self.model.parameters() if p.dim() <= 1]
        momentum = optim.MOMENTUM if c.optimizer == "momentum" else 0.0
        self.opt = torch.optim.SGD([{"params": weights, "weight_decay": decay},
                                    {"params": biases, "weight_decay": 0.0}],
                                   lr=c.eta, momentum=momentum)
        self.forward = torch.compile(self.model) if compile_model else self.model
        self.n, self.m = s.n, s.m
        self.generator = torch.Generator(device=self.device).manual_seed(1)

    def _check_logits(self, s, pure) -> float:
        """max |z_torch - z_jaxnn| / max(1, max |z_jaxnn|) on 16 training images."""
        import torch

        from jaxnn import layers

        x = s.prepared.train.x[:16]
        want = np.asarray(layers.forward(s.spec, pure, x))
        with torch.no_grad():
            got = self.model(self.x[:16]).cpu().numpy()
        mismatch = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
        if not mismatch <= LOGITS_TOLERANCE:
            raise RuntimeError(f"pytorch model is not the jaxnn network: logits differ by "
                               f"{mismatch:.3g} (relative) with the same weights")
        return mismatch

    def _sync(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def epoch(self) -> float:
        import torch
        import torch.nn.functional as F

        self._sync()
        start = time.perf_counter()
        perm = torch.randperm(self.n, device=self.device, generator=self.generator)
        for k in range(0, self.n, self.m):
            idx = perm[k:k + self.m]
            self.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.forward(self.x[idx]), self.labels[idx])
            loss.backward()
            self.opt.step()
        self._sync()
        return time.perf_counter() - start


def torch_available() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch not installed"
    return True, torch.__version__


def bench_model(preset, batch, images, repeats, *, use_torch, torch_compile, pause=1.0,
                log=print):
    """Rows for one model: warm-up epoch each, then interleaved repetitions; medians.
    ``pause`` seconds of idleness (untimed) before every epoch let the previous
    implementation's worker threads go to sleep (XLA's and PyTorch's pools spin for a while
    after work, and on a small CPU a spinning pool slows the next implementation several-fold)."""

    def run(impl):
        time.sleep(pause)
        return impl.epoch()

    from jaxnn import experiment, train

    s = Setup(preset, batch, images)
    default = experiment.epoch_loop(s.config)  # what jaxnn train uses on this backend
    impls = [JaxnnEpoch(s, default), *(JaxnnEpoch(s, loop) for loop in train.LOOPS
                                        if loop != default), NnxJitLoop(s)]
    skipped = None
    if use_torch:
        impls.append(TorchLoop(s, compile_model=torch_compile))
    else:
        skipped = "torch not installed" if torch_available()[0] is False else "--no-torch"
    counts = {impl.name: impl.param_count for impl in impls}
    log(f"{preset}: batch {s.m}, {s.n} images; parameter counts {counts}")
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"{preset}: parameter counts differ between implementations: {counts}")
    first = {impl.name: run(impl) for impl in impls}
    times = {impl.name: [] for impl in impls}
    for r in range(repeats):
        for impl in impls:
            times[impl.name].append(run(impl))
        log(f"  repetition {r + 1}/{repeats}: "
            + ", ".join(f"{k} {s.n / v[-1]:,.0f} img/s" for k, v in times.items()))
    rate = {k: s.n / statistics.median(v) for k, v in times.items()}
    jax_rate = rate[impls[0].name]
    rows = []
    for impl in impls:
        row = {"model": preset, "batch": s.m, "images": s.n, "implementation": impl.name,
               "images_per_s": rate[impl.name], "jaxnn_ratio": jax_rate / rate[impl.name],
               "first_epoch_s": first[impl.name], "epoch_s": times[impl.name],
               "param_count": impl.param_count}
        if isinstance(impl, TorchLoop):
            row["torch_device"] = str(impl.device)
            row["logits_mismatch"] = impl.logits_mismatch
        rows.append(row)
    if skipped is not None:
        rows.append({"model": preset, "batch": s.m, "images": s.n, "implementation": "pytorch",
                     "images_per_s": None, "jaxnn_ratio": None, "first_epoch_s": None,
                     "note": skipped})
    return rows


def parse_args(argv=None):
    parser = script_parser(__doc__)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=None,
                        help="mini-batch size for every model (default: each preset's own)")
    parser.add_argument("--images", type=int, default=None,
                        help=f"training images per repetition (default {GPU_IMAGES:,} on a GPU, "
                             f"{CPU_IMAGES:,} on CPU)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed repetitions (default {GPU_REPEATS} on a GPU, "
                             f"{CPU_REPEATS} on CPU)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for the CPU (default: PyTorch's own)")
    parser.add_argument("--torch-compile", action="store_true",
                        help="wrap the PyTorch model in torch.compile")
    parser.add_argument("--pause", type=float, default=None,
                        help="idle seconds before every epoch (untimed; default 1 on the CPU, "
                             "0 on a GPU, whose clocks drop while it idles)")
    parser.add_argument("--json", default=str(RESULTS / "cnn_throughput.json"))
    args = parser.parse_args(argv)
    if args.pause is None:
        import jax

        args.pause = 1.0 if jax.default_backend() == "cpu" else 0.0
    if args.pause < 0:
        parser.error(f"--pause: expected seconds >= 0; got {args.pause}")
    for name in ("batch_size", "images", "repeats", "torch_threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer; got {value}")
    return args


def main(argv=None) -> dict:
    import jax

    args = parse_args(argv)
    on_gpu = jax.default_backend() != "cpu"
    images = args.images or (GPU_IMAGES if on_gpu else CPU_IMAGES)
    repeats = args.repeats or (GPU_REPEATS if on_gpu else CPU_REPEATS)
    have_torch, torch_version = torch_available()
    use_torch = have_torch and not args.no_torch
    env = environment()
    import flax
    import optax

    env.update(flax=flax.__version__, optax=optax.__version__)
    if have_torch:
        import torch

        if args.torch_threads is not None:
            torch.set_num_threads(args.torch_threads)
        if torch.cuda.is_available():
            # JAX's default float32 matmuls and convolutions use TF32 on recent GPUs; PyTorch's
            # matmuls do not unless asked. Same arithmetic on both sides, recorded below.
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        env.update(torch=torch_version, torch_threads=torch.get_num_threads(),
                   torch_cuda=torch.cuda.is_available(),
                   torch_matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
                   torch_cudnn_tf32=torch.backends.cudnn.allow_tf32)
    env.update(jax_default_matmul_precision=jax.config.jax_default_matmul_precision)
    results = []
    payload = {"environment": env,
               "settings": {"images": images, "repeats": repeats, "models": args.models,
                            "batch_size": args.batch_size, "torch": use_torch,
                            "torch_compile": args.torch_compile, "pause_s": args.pause,
                            "argv": sys.argv[1:] if argv is None else list(argv)},
               "results": results}
    for preset in args.models:
        results += bench_model(preset, args.batch_size, images, repeats, use_torch=use_torch,
                               torch_compile=args.torch_compile, pause=args.pause)
        write_json(args.json, payload)  # after every model: a run cut short keeps what it has
    table = [[r["model"], r["batch"], r["implementation"],
              "-" if r["images_per_s"] is None else f"{r['images_per_s']:,.0f}",
              "-" if r["jaxnn_ratio"] is None else f"{r['jaxnn_ratio']:.2f}x",
              "-" if r["first_epoch_s"] is None else f"{r['first_epoch_s']:.2f}",
              r.get("param_count", r.get("note", "-"))] for r in results]
    print()
    print(f"CNN training throughput, {images:,} MNIST images per epoch, median of {repeats} "
          f"({env['device']}, jax {env['jax']}, flax {env['flax']}, optax {env['optax']}, "
          + (f"torch {torch_version})" if have_torch else "torch not installed)"))
    print(markdown_table(["model", "batch", "implementation", "images/s", "jaxnn / this",
                          "first epoch incl. compile (s)", "parameters"], table))
    return payload


if __name__ == "__main__":
    main()
