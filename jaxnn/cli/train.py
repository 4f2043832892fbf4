"""``jaxnn train``: train one of the book's networks and write a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from jaxnn.cli import runtime


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 784,30,10; got {text!r}"
        ) from None


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags that set :class:`jaxnn.experiment.TrainConfig` fields (None = the preset's)."""
    from jaxnn import presets

    p.add_argument("--preset", default=None,
                   help=f"a row of the book's tables (default {presets.DEFAULT}): "
                        + ", ".join(presets.PRESETS))
    p.add_argument("--sizes", type=_sizes, help="layer sizes, e.g. 784,30,10")
    p.add_argument("--activation", help="hidden-layer activation (sigmoid, relu, tanh, ...)")
    p.add_argument("--output", dest="output_activation",
                   help="output activation: sigmoid, softmax or identity")
    p.add_argument("--cost", help="quadratic, cross_entropy or log_likelihood")
    p.add_argument("--init", help="weight init: large, default, xavier or he")
    p.add_argument("--eta", type=float, help="learning rate")
    p.add_argument("--epochs", type=int)
    p.add_argument("--mini-batch-size", type=int, help="1 is online learning; n is full batch")
    p.add_argument("--l2", type=float, help="the book's lambda (chapter-3 convention)")
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw")
    p.add_argument("--seed", type=int)
    p.add_argument("--dataset", help="mnist (embedded) or a prepared tensorflow-datasets name")
    p.add_argument("--data-dir", help="tensorflow-datasets data directory")
    p.add_argument("--train-size", type=int, help="use only the first N training images")


CONFIG_FLAGS = ("sizes", "activation", "output_activation", "cost", "init", "eta", "epochs",
                "mini_batch_size", "l2", "optimizer", "seed", "dataset", "data_dir", "train_size")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (default: the book's chapter-1 network)",
                       description=__doc__)
    add_config_flags(p)
    p.add_argument("--grads", choices=("auto", "manual"), default=None,
                   help="gradients from jax.grad (auto) or manual_grad.backprop (manual)")
    p.add_argument("--out", type=Path, help="run directory (default runs/<time>-<preset>/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--devices", default="1",
                   help="data-parallel over N devices, or 'all' (default 1: one device); "
                        "the mini-batch size must divide by N")
    runtime.add_flags(p)
    p.set_defaults(func=run)


def manual_grad_fn(config):
    """``manual_grad.backprop`` bound to the config's network (imported only when asked for)."""
    import manual_grad

    def grad_fn(params, x, y):
        grads, _ = manual_grad.backprop(params, x, y, activation=config.activation,
                                        output_activation=config.output_activation,
                                        cost=config.cost)
        return grads

    return grad_fn


def run(args) -> int:
    from tqdm.auto import tqdm

    from jaxnn import experiment, report

    overrides = {k: getattr(args, k) for k in CONFIG_FLAGS}
    config = experiment.TrainConfig.from_preset(args.preset, grads=args.grads, **overrides)
    devices = getattr(args, "devices", "1")
    devices = 1 if devices in ("1", 1) else devices
    if devices != 1:  # check before the run directory is made
        from jaxnn import parallel

        devices = parallel.device_count(devices)
        parallel.check_divisible("mini_batch_size", config.mini_batch_size, devices)
    out = Path(args.out) if args.out else report.new_run_dir("runs", config.preset or "custom")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)
    report.write_json(out / "config.json", config.to_json())
    print(f"jaxnn train: {config.preset} {list(config.sizes)} {config.activation}/"
          f"{config.output_activation}, {config.cost} cost, eta {config.eta}, "
          f"mini-batch {config.mini_batch_size}, {config.epochs} epochs -> {out}")

    def book_line(record, state):
        if "test_correct" in record:
            tqdm.write(f"Epoch {record['epoch']}: {record['test_correct']} / {record['test_size']}")

    grad_fn = manual_grad_fn(config) if config.grads == "manual" else None
    result = experiment.run(
        config, grad_fn=grad_fn, progress=not args.no_progress, devices=devices,
        callbacks=[report.MetricsWriter(out / "metrics.jsonl"), book_line],
    )
    if devices != 1:
        result.summary["devices"] = devices
    report.write_json(out / "summary.json", result.summary)
    report.plot_history(result.history, out / "curves.png", title=f"jaxnn {config.preset}")
    s = result.summary
    print(f"peak test accuracy {100 * s['peak_test_accuracy']:.2f}%, final "
          f"{100 * s['final_test_accuracy']:.2f}%, {s['seconds_per_epoch']:.2f} s/epoch; "
          f"wrote {out}")
    return 0
