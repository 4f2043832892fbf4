"""``jaxnn compare``: manual_grad's hand-derived gradients against jax.grad on real MNIST images.

For an MLP (the chapter-1 network by default) or a chapter-6 CNN (``--model``), prints one row
per parameter: shape, max |manual - autodiff|, the max relative error
(:func:`manual_grad.check.relative_error`) and the worst relative disagreement of both with
five-point central differences on ``--fd-samples`` sampled coordinates. Exit status 1 when a
relative error exceeds ``--tol`` (default 1e-10 in float64, 1e-3 in float32) or a finite
difference exceeds ``--fd-tol`` -- the latter only for smooth networks: with a kinked activation
(relu ...) or max pooling a difference step can cross a kink (MNIST's blank background makes
z = b exactly, 0 at initialisation), so the column is then shown for information only. With
``--fd-samples 0`` no finite differences are computed: the column shows "-" and only manual vs
jax.grad is checked.
``--speed-of-learning`` prints chapter 5's ||delta^l|| per hidden layer instead.

With ``--batch-norm`` in float32, use the default 10 images or more: over 2 or 3 images a
feature's variance can be tiny against its values, and normalising by it is then so
ill-conditioned that jax.grad and the hand gradient, both in float32, differ from the float64
gradient (and from each other) by more than the tolerance; ``--float64`` agrees to 1e-10.

Which options apply where (any other is refused, exit status 2):
  MLP check:           --sizes (784,...,10) --activation --output --cost --l2 and the common ones
  CNN check (--model): --activation --batch-norm and the common ones
  common to both:      --batch --seed --float64 --tol --fd-tol --fd-samples
  --speed-of-learning: --seeds --images (chapter 5's sigmoid networks are fixed, float32)
"""

from __future__ import annotations

import numpy as np

TOL = {"float64": 1e-10, "float32": 1e-3}
FD_TOL = {"float64": 1e-6, "float32": 1e-2}
FD_STEP = {"float64": 1e-3, "float32": 1e-2}
SMOOTH = ("sigmoid", "tanh", "swish", "softplus", "gelu", "identity")


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("compare", help="hand-derived gradients (manual_grad) vs jax.grad",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.field_flags = {"output_activation": "--output"}  # errors from jaxnn.mlp name the setting
    p.add_argument("--model", help="a CNN from jaxnn.cnn.ARCHITECTURES (conv1, conv2, ...); "
                   "default: a fully connected network of --sizes")
    p.add_argument("--batch-norm", action="store_true", default=None,
                   help="CNN: batch normalization after every convolution and hidden dense "
                        "layer (training mode: the batch's statistics)")
    p.add_argument("--sizes", help="MLP layer sizes (default 784,30,10)")
    p.add_argument("--activation", help="hidden activation (default sigmoid; relu for --model)")
    p.add_argument("--output", help="MLP output activation (default sigmoid)")
    p.add_argument("--cost", help="MLP cost (default quadratic)")
    p.add_argument("--l2", type=float,
                   help="MLP: the coefficient c of the L2 term (c/2) sum w^2, not divided by n "
                        "(the book's lambda/n; default 0)")
    # The gradient-check and --speed-of-learning options default to None here so that _refuse_unused
    # can tell an option given (even at its default value) from one left out; CHECK_DEFAULTS and
    # SPEED_DEFAULTS hold the documented defaults.
    p.add_argument("--batch", type=int, help="MNIST training images (default 10)")
    p.add_argument("--seed", type=int, help="parameter initialisation seed, >= 0 (default 0)")
    p.add_argument("--float64", action="store_true", default=None,
                   help="compute in float64 (x64 mode)")
    p.add_argument("--tol", type=float, help="max relative error, manual vs jax.grad "
                   "(default 1e-10 float64, 1e-3 float32)")
    p.add_argument("--fd-tol", type=float, help="max relative error against finite differences "
                   "(default 1e-6 float64, 1e-2 float32)")
    p.add_argument("--fd-samples", type=int,
                   help="coordinates per parameter checked by finite differences (default 3); "
                   "0 skips that check: the fd column shows '-' and only manual vs jax.grad "
                   "decides the exit status")
    p.add_argument("--speed-of-learning", action="store_true",
                   help="chapter 5: average ||delta^l|| per hidden layer at initialisation")
    p.add_argument("--seeds", type=int, help="seeds for --speed-of-learning (default 5)")
    p.add_argument("--images", type=int,
                   help="training images for --speed-of-learning (default 1000)")
    p.set_defaults(func=run)


def run(args) -> int:
    import jax

    _refuse_unused(args)
    _check_values(args)
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    # A gradient check compares in full precision: GPUs (A100, H100) otherwise run float32
    # matmuls and convolutions in TF32 (10-bit mantissa), which alone fails the tolerances.
    with jax.default_matmul_precision("highest"):
        if args.speed_of_learning:
            return speed_of_learning(args)
        return compare(args)


MLP_DEFAULTS = {"sizes": "784,30,10", "output": "sigmoid", "cost": "quadratic", "l2": 0.0}
"""The MLP-only options and their defaults (a CNN's output is softmax with log-likelihood)."""

CNN_DEFAULTS = {"batch_norm": False}
"""The CNN-only options (--model) and their defaults."""

CHECK_DEFAULTS = {"batch": 10, "seed": 0, "float64": False, "tol": None, "fd_tol": None,
                  "fd_samples": 3}
"""The gradient-check options (MLP and CNN) and their defaults (None: set by the dtype)."""

SPEED_DEFAULTS = {"seeds": 5, "images": 1000}
"""The --speed-of-learning options and their defaults."""


def _flag(key: str) -> str:
    return key.replace("_", "-")


def _refuse_unused(args) -> None:
    """ValueError for an option the chosen comparison would ignore; then fill the defaults.

    An option counts as given when its value is not None (the parser's default), so
    ``--seeds 5`` without ``--speed-of-learning`` is refused although 5 is the default."""
    if args.speed_of_learning:  # chapter 5's fixed networks
        unused = [k for k in ("model", *MLP_DEFAULTS, *CNN_DEFAULTS, "activation",
                              *CHECK_DEFAULTS) if getattr(args, k) is not None]
        what = "no --{} with --speed-of-learning " + (
            "(a gradient-check option; --speed-of-learning takes only --seeds and --images)"
            if unused and unused[0] in CHECK_DEFAULTS
            else "(chapter 5's sigmoid networks are fixed)")
    else:
        unused = [k for k in SPEED_DEFAULTS if getattr(args, k) is not None]
        what = "--{} only with --speed-of-learning"
        if not unused and args.model:
            unused = [k for k in MLP_DEFAULTS if getattr(args, k) is not None]
            what = f"no --{{}} with --model {args.model} (softmax output, log-likelihood cost)"
        if not unused and not args.model:
            unused = [k for k in CNN_DEFAULTS if getattr(args, k) is not None]
            what = "--{} only with --model (a CNN)"
        if not unused and args.fd_samples == 0 and args.fd_tol is not None:
            unused = ["fd_tol"]
            what = "no --{} with --fd-samples 0 (no finite differences are computed)"
    if unused:
        k = unused[0]
        value = getattr(args, k)
        got = f"--{_flag(k)}" if value is True else repr(value)
        raise ValueError(f"{_flag(k)}: expected {what.format(_flag(k))}; got {got}")
    for defaults in (MLP_DEFAULTS, CNN_DEFAULTS, CHECK_DEFAULTS, SPEED_DEFAULTS):
        for k, default in defaults.items():
            if getattr(args, k) is None:
                setattr(args, k, default)


def _check_values(args) -> None:
    """The options' values, checked before anything is loaded or computed."""
    from jaxnn import _checks

    if args.speed_of_learning:
        _checks.positive("seeds", args.seeds, integer=True)
        _checks.positive("images", args.images, integer=True)
        return
    _checks.positive("batch", args.batch, integer=True)
    if args.seed < 0:
        raise ValueError(f"seed: expected an integer >= 0; got {args.seed}")
    if args.fd_samples < 0:
        raise ValueError("fd-samples: expected an integer >= 0 (0 skips the finite-difference "
                         f"check); got {args.fd_samples}")
    if args.tol is not None:  # 0 asks for equality
        _checks.non_negative("tol", args.tol)
    if args.fd_tol is not None:  # a finite difference is never exact
        _checks.positive("fd-tol", args.fd_tol)
    if not args.model:
        mnist_sizes(args.sizes)


def mnist_sizes(text: str) -> list[int]:
    """``--sizes`` ("784,30,10") as a list: 784 inputs (28 x 28 pixels) and 10 outputs (classes)."""
    try:
        sizes = [int(s) for s in str(text).split(",")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"sizes: expected at least two comma-separated positive integers; got "
                         f"{text!r}")
    if sizes[0] != 784:
        raise ValueError("sizes: expected the first layer to have 784 units, one per MNIST "
                         f"pixel; got {sizes[0]}")
    if sizes[-1] != 10:
        raise ValueError("sizes: expected the last layer to have 10 units, one per MNIST class; "
                         f"got {sizes[-1]}")
    return sizes


def _mnist(count, *, flatten, dtype, flag="batch"):
    from jaxnn import data

    ds = data.load("mnist")
    if count > len(ds.train.labels):
        raise ValueError(f"{flag}: expected at most {len(ds.train.labels)} images; got {count}")
    x = data.to_inputs(ds.train.images[:count], flatten=flatten, dtype=dtype)
    return x, data.one_hot(ds.train.labels[:count], dtype=dtype)


def _spec(args):
    from jaxnn import cnn

    return cnn.architecture(args.model, input_shape=(28, 28, 1),
                            activation=args.activation or "relu", batch_norm=args.batch_norm)


def problem(args):
    """``(cost_fn, manual_fn, params)``: C(params) and params -> manual grads, jit-compiled."""
    import jax
    import jax.numpy as jnp

    import manual_grad
    from jaxnn import costs, mlp
    from jaxnn import layers as jl

    dtype = jnp.float64 if args.float64 else jnp.float32
    key = jax.random.key(args.seed)
    if args.model:
        activation = args.activation or "relu"
        spec = _spec(args)
        x, y = (jnp.asarray(a) for a in _mnist(args.batch, flatten=False, dtype=dtype))
        params = jl.init(spec, key, dtype=dtype)
        ll = costs.from_logits("log_likelihood", "softmax")

        def cost_fn(p):
            return ll(jl.forward(spec, p, x), y)

        def manual(p):
            return manual_grad.cnn_backprop(spec, p, x, y)[0]
    else:
        activation = args.activation or "sigmoid"
        sizes = mnist_sizes(args.sizes)
        net = mlp.make(sizes, activation=activation, output_activation=args.output, dtype=dtype)
        x, y = (jnp.asarray(a) for a in _mnist(args.batch, flatten=True, dtype=dtype))
        params = net.init(key)
        c = costs.from_logits(args.cost, args.output)
        kw = {"activation": activation, "output_activation": args.output, "cost": args.cost,
              "l2": args.l2}
        manual_grad.backprop(params, x, y, **kw)  # validates the options eagerly

        def cost_fn(p):
            return c(mlp.logits(p, x, activation=activation), y) + costs.l2_penalty(
                p, scale=args.l2)

        def manual(p):
            return manual_grad.backprop(p, x, y, **kw)[0]
    return jax.jit(cost_fn), jax.jit(manual), params


def compare(args) -> int:
    import jax
    import jax.numpy as jnp

    from manual_grad.check import central_difference, relative_error, sample_coordinates

    cost_fn, manual, params = problem(args)
    hand, auto = manual(params), jax.jit(jax.grad(cost_fn))(params)
    name = "float64" if args.float64 else "float32"
    tol = TOL[name] if args.tol is None else args.tol
    fd_tol = FD_TOL[name] if args.fd_tol is None else args.fd_tol
    smooth = (args.activation or ("relu" if args.model else "sigmoid")) in SMOOTH and not (
        args.model and any(getattr(layer, "kind", None) == "max" for layer in _spec(args).layers))
    h, eps = FD_STEP[name], float(jnp.finfo(jnp.float64 if args.float64 else jnp.float32).eps)
    c0 = float(cost_fn(params))
    rng = np.random.default_rng(args.seed)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    hand_leaves, auto_leaves = jax.tree_util.tree_leaves(hand), jax.tree_util.tree_leaves(auto)
    checked_fd = args.fd_samples > 0
    fd_note = (f"finite differences {fd_tol:g}" if checked_fd
               else "finite differences not checked (--fd-samples 0)")
    model = f"{args.model}{' with batch norm' if args.batch_norm else ''}" if args.model else (
        f"mlp {args.sizes}")
    print(f"{model}, {args.batch} MNIST images, {name}, "
          f"C = {c0:.6g}; tolerances: relative {tol:g}, {fd_note}")
    print("| parameter | shape | max abs diff | max rel err | fd rel err | ok |")
    print("|---|---|---|---|---|---|")
    failed = False
    for k, ((path, leaf), g_hand, g_auto) in enumerate(zip(leaves, hand_leaves, auto_leaves)):
        diff = float(np.max(np.abs(np.asarray(g_hand, np.float64) - np.asarray(g_auto))))
        rel = relative_error(g_hand, g_auto)
        fd_worst = 0.0
        for index in sample_coordinates(np.shape(leaf), args.fd_samples, rng):

            def f(moved, k=k, dtype=leaf.dtype):
                flat = list(jax.tree_util.tree_leaves(params))
                flat[k] = jnp.asarray(moved, dtype)
                return cost_fn(jax.tree_util.tree_unflatten(treedef, flat))

            fd = central_difference(f, leaf, index, h=h)
            resolution = 1.5 * eps * abs(c0) / h  # rounding of C divided by the step
            for g in (g_hand, g_auto):
                gi = float(np.asarray(g)[index])
                fd_worst = max(fd_worst, abs(fd - gi) / max(abs(gi), abs(fd), resolution / fd_tol,
                                                            1e-300))
        ok = rel <= tol and (fd_worst <= fd_tol or not smooth or not checked_fd)
        failed |= not ok
        fd_text = f"{fd_worst:.2e}" if checked_fd else "-"
        print(f"| {jax.tree_util.keystr(path)} | {tuple(np.shape(leaf))} | {diff:.2e} | "
              f"{rel:.2e} | {fd_text} | {'yes' if ok else 'NO'} |")
    if not checked_fd:
        print("(--fd-samples 0: no finite differences computed; ok = manual vs jax.grad only)")
    elif not smooth:
        print("(kinked network: finite differences shown for information, not checked)")
    print("FAILED: a gradient exceeds its tolerance" if failed else "all gradients agree")
    return 1 if failed else 0


def speed_of_learning(args) -> int:
    """Chapter 5's table: ||delta^l|| per hidden layer, manual_grad beside jax.grad
    (:func:`jaxnn.reproduce.gradient_norms`) and the book's values."""
    import jax
    import jax.numpy as jnp

    import manual_grad
    from jaxnn import mlp, reproduce

    seeds = list(range(args.seeds))
    x, y = (jnp.asarray(a) for a in _mnist(args.images, flatten=True, dtype=np.float32,
                                           flag="images"))
    print(f"||delta^l|| = ||dC/db^l|| at initialisation (default init, sigmoid, cross-entropy), "
          f"first {args.images} training images, mean over seeds {seeds}")
    print("| hidden layers | layer | book | manual_grad | jax.grad |")
    print("|---|---|---|---|---|")
    for depth, book in reproduce.BOOK_GRADIENT_NORMS.items():
        sizes = (784, *([30] * depth), 10)
        net = mlp.make(sizes)

        @jax.jit
        def norms(p):
            _, info = manual_grad.backprop(p, x, y, activation="sigmoid",
                                           output_activation="sigmoid", cost="cross_entropy")
            return jnp.stack(manual_grad.speed_of_learning(info))

        hand = np.asarray([norms(net.init(jax.random.key(s))) for s in seeds])
        auto = reproduce.gradient_norms(sizes, seeds=seeds, images=args.images)
        for layer, b in enumerate(book):
            print(f"| {depth} | {layer + 1} | {b:.3f} | {hand[:, layer].mean():.4f} | "
                  f"{auto[:, layer].mean():.4f} |")
    return 0
