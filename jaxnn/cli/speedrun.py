"""``jaxnn speedrun``: MNIST to >= 99% test accuracy as fast as possible (see jaxnn.speedrun)."""

from __future__ import annotations

import dataclasses
import json

from jaxnn.cli import runtime

TARGET_ACCURACY = 0.99  # mean test accuracy over the seeds
TARGET_TRAIN_SECONDS = 0.5  # on one GPU
TARGET_TOTAL_SECONDS = 5.0  # on one GPU, compilation included
QUICK = {"train_size": 5000, "test_size": 1000, "epochs": 1}


def _widths(text) -> tuple[int, ...]:
    """"32,64" -> (32, 64); a ValueError naming the flag otherwise (parsed in run(), not by
    argparse, so the error is the command's usual one line)."""
    if isinstance(text, tuple):
        return text
    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"widths: expected two integers such as 32,64; got {text!r}") from None


def add_parser(sub) -> None:
    from jaxnn.speedrun import AUTO, DTYPES, LOOPS, SpeedrunConfig

    d = SpeedrunConfig()
    p = sub.add_parser(
        "speedrun", help="MNIST to >= 99%% test accuracy as fast as possible",
        description=__doc__ + " Trains one small CNN per seed on the 60,000 training images "
        "and reports test accuracy, training seconds (compiled, data on the device) and total "
        "seconds from the start to the first accuracy (data, compilation, training).")
    p.add_argument("--seeds", type=int, help="number of runs, seeds 0..N-1 (default 5; 1 with "
                   "--quick)")
    p.add_argument("--epochs", type=int, help=f"epochs (default {d.epochs}; 1 with --quick)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"mini-batch size (default {d.batch_size}); each epoch uses n // size "
                        "full batches of a fresh shuffle (one compiled shape), so a divisor of n "
                        "uses every image")
    p.add_argument("--eta", type=float, default=d.eta,
                   help=f"peak learning rate of the one-cycle schedule (default {d.eta:g})")
    p.add_argument("--optimizer", default=d.optimizer,
                   help=f"a jaxnn.optim name (default {d.optimizer})")
    p.add_argument("--widths", default=d.widths, metavar="C1,C2",
                   help="channels of the two convolutions (default "
                        f"{','.join(map(str, d.widths))})")
    p.add_argument("--hidden", type=int, default=d.hidden,
                   help=f"units of a hidden dense layer before the output (default {d.hidden}; "
                        "0: none)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help=f"L2 weight decay on the weights, jaxnn.optim.make's l2 (default "
                        f"{d.weight_decay:g})")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing,
                   help=f"weight moved from the true class to all classes (default "
                        f"{d.label_smoothing:g})")
    p.add_argument("--shift", type=int, default=d.shift,
                   help=f"augmentation: random translation by up to this many pixels (default "
                        f"{d.shift}; 0: off)")
    p.add_argument("--dtype", choices=(AUTO, *DTYPES), default=AUTO,
                   help="compute dtype (auto: bfloat16 on an accelerator, float32 on the CPU)")
    p.add_argument("--loop", choices=(AUTO, *LOOPS), default=AUTO,
                   help="scan: the whole run in one compiled call; host: one call per step "
                        "(auto: scan on an accelerator, host on the CPU)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['train_size']} training and {QUICK['test_size']} test images, "
                        "1 epoch, 1 seed (unless --epochs, --seeds say otherwise): a smoke test, "
                        "not a speed run")
    p.add_argument("--json", help="also write the results to this JSON file")
    runtime.add_flags(p, distributed=False)  # a one-device benchmark: no multi-host run
    p.set_defaults(func=run)


def run(args) -> int:
    import jax

    from jaxnn import speedrun

    args.json = runtime.given_path("json", args.json, "a file name")  # '' is not '.'
    if args.json:  # before the run, not after it
        runtime.check_output_file("json", args.json)
    default_epochs = QUICK["epochs"] if args.quick else speedrun.SpeedrunConfig().epochs
    config = speedrun.SpeedrunConfig(
        widths=_widths(args.widths), hidden=args.hidden,
        epochs=args.epochs if args.epochs is not None else default_epochs,
        batch_size=args.batch_size, eta=args.eta,
        optimizer=args.optimizer, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing, shift=args.shift, dtype=args.dtype,
        loop=args.loop)
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 5)
    if args.quick:
        config = dataclasses.replace(config, train_size=QUICK["train_size"],
                                     test_size=QUICK["test_size"])
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds: expected a positive number of runs; got {seeds!r}")
    config = speedrun.resolve(config)
    device = jax.devices()[0]
    print(f"jaxnn speedrun: {seeds} seed(s) on {device.platform} ({device.device_kind}), "
          f"{config.epochs} epochs, batch {config.batch_size}, {config.dtype}, "
          f"loop {config.loop}" + (" [QUICK: smoke test only]" if args.quick else ""),
          flush=True)

    def log(r):
        print(f"seed {r.seed}: test accuracy {100 * r.test_accuracy:.2f}%, "
              f"training {r.train_seconds:.3f} s", flush=True)

    result = speedrun.run(config, seeds=range(seeds), on_run=log)
    s = result.summary()
    print(f"mean test accuracy {100 * s['mean_test_accuracy']:.2f}% "
          f"(std {100 * s['std_test_accuracy']:.2f}) over {seeds} seed(s); "
          f"median training {s['median_train_seconds']:.3f} s; "
          f"compilation {s['compile_seconds']:.2f} s; "
          f"total to the first accuracy {s['total_seconds']:.2f} s")
    checks = [("mean accuracy >= 99.0%", s["mean_test_accuracy"] >= TARGET_ACCURACY)]
    if device.platform == "gpu":
        checks += [(f"training < {TARGET_TRAIN_SECONDS} s",
                    s["median_train_seconds"] < TARGET_TRAIN_SECONDS),
                   (f"total < {TARGET_TOTAL_SECONDS} s",
                    s["total_seconds"] < TARGET_TOTAL_SECONDS)]
    else:
        print(f"(the time targets are for one GPU; this ran on the {device.platform.upper()})")
    if not args.quick:
        print("targets: " + "; ".join(f"{name}: {'met' if ok else 'MISSED'}"
                                      for name, ok in checks))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {**s, "quick": bool(args.quick), "jax": jax.__version__}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
