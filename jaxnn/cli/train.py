"""``jaxnn train``: train one of the book's networks and write a run directory."""

from __future__ import annotations

import argparse
from pathlib import Path


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
    add_technique_flags(p)


def add_technique_flags(p: argparse.ArgumentParser) -> None:
    """Flags for the course's training techniques (issue 4); None = the preset's setting."""
    from jaxnn import cnn, optim

    p.add_argument("--model", help="mlp (default) or a convolutional network: "
                   + ", ".join(cnn.ARCHITECTURES))
    p.add_argument("--schedule", help="learning-rate schedule: " + ", ".join(optim.SCHEDULES))
    p.add_argument("--l1", type=float, help="L1 strength: cost + (l1 / n) sum |w|")
    p.add_argument("--l2-convention", choices=("chapter3", "chapter6"), default=None,
                   help="chapter3: (lambda / 2n) sum w^2; chapter6: 0.5 lambda sum w^2 / "
                        "(mini-batches per epoch)")
    p.add_argument("--dropout", type=float, help="dropout rate in [0, 1) (CNN models)")
    p.add_argument("--patience", type=int,
                   help="early stopping: stop after N epochs without a better validation accuracy")
    p.add_argument("--clip-norm", type=float, help="clip the gradient to this global norm")
    p.add_argument("--batch-norm", action="store_true", default=None,
                   help="batch normalization after every conv and hidden dense layer (CNN models)")
    p.add_argument("--expanded", action="store_true", default=None,
                   help="the book's expanded training set (5x: shifted by one pixel)")
    p.add_argument("--maxout-pieces", type=int, help="units per maxout group (--activation maxout)")
    p.add_argument("--eval-size", type=int, help="evaluate on the first N validation/test images")
    p.add_argument("--ensemble", type=int, help="train N networks and take their majority vote")


CONFIG_FLAGS = ("sizes", "activation", "output_activation", "cost", "init", "eta", "epochs",
                "mini_batch_size", "l2", "optimizer", "seed", "dataset", "data_dir", "train_size",
                "model", "schedule", "l1", "l2_convention", "dropout", "patience", "clip_norm",
                "batch_norm", "expanded", "maxout_pieces", "eval_size", "ensemble")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (default: the book's chapter-1 network)",
                       description=__doc__)
    add_config_flags(p)
    p.add_argument("--grads", choices=("auto", "manual"), default=None,
                   help="gradients from jax.grad (auto) or manual_grad.backprop (manual)")
    p.add_argument("--out", type=Path, help="run directory (default runs/<time>-<preset>/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
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
    out = Path(args.out) if args.out else report.new_run_dir("runs", config.preset or "custom")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)
    report.write_json(out / "config.json", config.to_json())
    arch = list(config.sizes) if config.model == "mlp" else config.model
    print(f"jaxnn train: {config.preset} {arch} {config.activation}/"
          f"{config.output_activation}, {config.cost} cost, eta {config.eta}, "
          f"mini-batch {config.mini_batch_size}, {config.epochs} epochs -> {out}")

    def book_line(record, state):
        if "test_correct" in record:
            tqdm.write(f"Epoch {record['epoch']}: {record['test_correct']} / {record['test_size']}")

    grad_fn = manual_grad_fn(config) if config.grads == "manual" else None
    result = experiment.run(
        config, grad_fn=grad_fn, progress=not args.no_progress,
        callbacks=[report.MetricsWriter(out / "metrics.jsonl"), book_line],
    )
    report.write_json(out / "summary.json", result.summary)
    report.plot_history(result.history, out / "curves.png", title=f"jaxnn {config.preset}")
    s = result.summary
    if "ensemble_test_accuracy" in s:
        print(f"ensemble of {s['ensemble']}: majority-vote test accuracy "
              f"{100 * s['ensemble_test_accuracy']:.2f}%; wrote {out}")
        return 0
    if "test_at_best_validation" in s:
        print(f"best validation accuracy {100 * s['best_validation_accuracy']:.2f}% at epoch "
              f"{s['best_validation_epoch']}, test accuracy there "
              f"{100 * s['test_at_best_validation']:.2f}%")
    print(f"peak test accuracy {100 * s['peak_test_accuracy']:.2f}%, final "
          f"{100 * s['final_test_accuracy']:.2f}%, {s['seconds_per_epoch']:.2f} s/epoch; "
          f"wrote {out}")
    return 0
