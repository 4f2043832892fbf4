"""``jaxnn train``: train one of the book's networks and write a run directory."""

from __future__ import annotations

import argparse
import shutil
import sys
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
    p.add_argument("--maxout-pieces", type=int,
                   help="units per maxout group (only with --activation maxout; default 2)")
    p.add_argument("--eval-size", type=int, help="evaluate on the first N validation/test images")
    p.add_argument("--ensemble", type=int, help="train N networks and take their majority vote")
    p.add_argument("--loop", choices=("auto", "scan", "host"), default=None,
                   help="scan: one compiled call per epoch; host: one per mini-batch (auto: host "
                        "for networks with convolutions on the CPU, where it is several times "
                        "faster; scan otherwise)")


CONFIG_FLAGS = ("sizes", "activation", "output_activation", "cost", "init", "eta", "epochs",
                "mini_batch_size", "l2", "optimizer", "seed", "dataset", "data_dir", "train_size",
                "model", "schedule", "l1", "l2_convention", "dropout", "patience", "clip_norm",
                "batch_norm", "expanded", "maxout_pieces", "eval_size", "ensemble", "loop")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (default: the book's chapter-1 network)",
                       description=__doc__)
    add_config_flags(p)
    p.add_argument("--grads", choices=("auto", "manual"), default=None,
                   help="gradients from jax.grad (auto) or manual_grad.backprop (manual)")
    p.add_argument("--out", type=Path, help="run directory (default runs/<time>-<preset>/); "
                   "a directory that holds a run is refused unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out (its config, metrics, summary, plot and "
                        "checkpoints) instead of refusing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_reliability_flags(p)
    p.add_argument("--devices", default="1",
                   help="data-parallel over N devices, or 'all' (default 1: one device); "
                        "the mini-batch size must divide by N")
    runtime.add_flags(p)
    p.set_defaults(func=run)


def add_reliability_flags(p: argparse.ArgumentParser) -> None:
    """Checkpoints, resuming and the divergence guard (see jaxnn.checkpoint)."""
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="save params, optimizer state, RNG key and history every N epochs "
                        "into RUN_DIR/checkpoints/ (and after the last epoch)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="continue RUN_DIR from its last complete checkpoint, with its "
                        "config.json (only --epochs may be raised)")
    p.add_argument("--on-nan", choices=("stop", "skip"), default=None,
                   help="NaN or inf in training: stop with a message (default) or skip the "
                        "updates whose gradients or new parameters are not finite")


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
    from jaxnn import experiment, parallel, report
    from jaxnn.train import Diverged

    # With several processes (--distributed) all of them train; only the primary writes the
    # run directory and prints (parallel.is_primary() is True for a single process).
    primary = parallel.is_primary()
    say = print if primary else _silent

    # The book's line goes through tqdm.write so that it does not break the progress bar.
    tqdm = None if args.no_progress else report.optional_import("tqdm.auto",
                                                                "no progress bar is shown")
    write_line = tqdm.tqdm.write if tqdm is not None else print
    say_line = write_line if primary else _silent

    overrides = {k: getattr(args, k) for k in CONFIG_FLAGS}
    if getattr(args, "overwrite", False) and getattr(args, "resume", None) is not None:
        raise ValueError(f"overwrite: expected a new run (--out); got --resume {args.resume}, "
                         "which continues the run there")
    if getattr(args, "resume", None) is not None:
        parallel.check_shared_directory(args.resume, "--resume")
        config, out = _resumed_config(args, overrides)
        parallel.barrier("jaxnn train: config.json read")  # before the primary rewrites it
    else:
        config = experiment.TrainConfig.from_preset(args.preset, grads=args.grads, **overrides)
        out = None
    if getattr(args, "checkpoint_every", None) is not None:  # before the run directory is made
        from jaxnn import _checks

        _checks.positive("checkpoint_every", args.checkpoint_every, integer=True)
        if config.ensemble > 1:
            raise ValueError(f"checkpoint_every: expected one network; --ensemble "
                             f"{config.ensemble} trains its members one after another into one "
                             f"run directory, where their checkpoints would overwrite each "
                             f"other (train members alone: --seed S --checkpoint-every N)")
    devices = getattr(args, "devices", "1")
    devices = 1 if devices in ("1", 1) else devices
    if devices != 1:  # check before the run directory is made
        devices = parallel.device_count(devices)
        parallel.check_divisible("mini_batch_size", config.mini_batch_size, devices)
        total = parallel.device_count("all")
        if parallel.process_count() > 1 and devices != total:
            # the first N devices may all be process 0's, leaving the others nothing to feed
            raise ValueError(f"devices: with {parallel.process_count()} processes, expected "
                             f"'all' (the {total} devices of every process) or 1 (each process "
                             f"alone on one device); got {devices}")
    made_dir = False  # a directory of our own (runs/<time>-<preset>/ or a new --out)
    if out is None:
        if args.out:
            out = Path(args.out)
            _refuse_a_run_in(out, overwrite=getattr(args, "overwrite", False), primary=primary)
        elif primary:  # the others take its name below (their clocks may differ by a second)
            out = report.new_run_dir("runs", config.preset or "custom")
        if primary:
            made_dir = not args.out or not out.exists()  # new_run_dir makes its directory
            out.mkdir(parents=True, exist_ok=True)
    # Process 0's directory, in every process (the identity for a single process).
    primary_out = parallel.broadcast_text(str(out) if out is not None else "")
    out = out if out is not None else Path(primary_out)
    if primary:
        report.write_json(out / "config.json", config.to_json())
    else:
        print(f"jaxnn train: process {parallel.process_index()} of {parallel.process_count()} "
              f"trains; process 0 writes the run directory {primary_out} and prints the results")
    arch = list(config.sizes) if config.model == "mlp" else config.model
    say(f"jaxnn train: {config.preset} {arch} {config.activation}/"
        f"{config.output_activation}, {config.cost} cost, eta {config.eta}, "
        f"mini-batch {config.mini_batch_size}, {config.epochs} epochs -> {out}")

    def book_line(record, state):
        if "test_correct" in record:
            member = f" (member {record['member']}, seed {record['seed']})" if (
                "member" in record) else ""
            say_line(f"Epoch {record['epoch']}: {record['test_correct']} / "
                     f"{record['test_size']}{member}")

    grad_fn = manual_grad_fn(config) if config.grads == "manual" else None
    writers = [report.MetricsWriter(out / "metrics.jsonl")] if primary else []
    guard, remove_dir = None, False
    try:
        guard = _Reliability(args, out, config, primary=primary)
        result = experiment.run(
            config, grad_fn=grad_fn, progress=not args.no_progress and primary,
            callbacks=[*writers, *guard.callbacks, book_line],
            resume=guard.resume, on_nan=guard.on_nan, devices=devices,
        )
    except Diverged as e:
        if getattr(args, "debug", False):
            raise
        last_good = guard.last_good()  # in every process, like every checkpointer call
        say(f"jaxnn train: error: {e}{last_good}", file=sys.stderr)
        return 3
    except Exception:
        # A setting only the data can refute (say, 9 output neurons for 10 classes) fails
        # before the first epoch: leave no run directory, or no files of ours, behind.
        remove_dir = primary and getattr(args, "resume", None) is None and not (
            out / "metrics.jsonl").exists()
        raise
    finally:
        if guard is not None:
            guard.close()
        if remove_dir and made_dir:
            shutil.rmtree(out, ignore_errors=True)
        elif remove_dir:
            _remove_run_files(out)
    skipped = sum(r.get("skipped_steps", 0) for r in result.history)
    if not primary:
        return 0
    if guard.on_nan == "skip":
        print(f"skipped {skipped} updates whose gradients or parameters were NaN or inf")
    if devices != 1:
        result.summary["devices"] = devices
    report.write_json(out / "summary.json", result.summary)
    report.plot_history(result.history, out / "curves.png", title=f"jaxnn {config.preset}")
    s = result.summary
    if "ensemble_test_accuracy" in s:
        print(f"ensemble of {s['ensemble']}: majority-vote test accuracy "
              f"{100 * s['ensemble_test_accuracy']:.2f}%; wrote {out}")
        return 0
    if "early_stopped_after_epoch" in s:
        print(f"early stopping: no better validation accuracy in {config.patience} epochs; "
              f"stopped after epoch {s['early_stopped_after_epoch']}")
    if "test_at_best_validation" in s:
        print(f"best validation accuracy {100 * s['best_validation_accuracy']:.2f}% at epoch "
              f"{s['best_validation_epoch']}, test accuracy there "
              f"{100 * s['test_at_best_validation']:.2f}%")
    print(f"peak test accuracy {100 * s['peak_test_accuracy']:.2f}%, final "
          f"{100 * s['final_test_accuracy']:.2f}%, {s['seconds_per_epoch']:.2f} s/epoch; "
          f"wrote {out}")
    return 0


# What a run writes into its directory: a directory holding any of these holds a run.
RUN_FILES = ("config.json", "options.json", "metrics.jsonl", "summary.json", "curves.png",
             "checkpoints")


def _refuse_a_run_in(out: Path, *, overwrite: bool, primary: bool) -> None:
    """A new run into ``--out`` must not mix with a run already there (its checkpoints would
    outlive the new config, and --resume would continue the old run): refuse, or with
    ``overwrite`` remove the old run's files. All processes take the primary's decision."""
    from jaxnn import parallel

    found = [name for name in RUN_FILES if (out / name).exists()] if primary else []
    if not any(parallel.all_processes(bool(found))):
        return
    if not overwrite:
        shown = ", ".join(found) if found else "a run"
        raise ValueError(f"out: expected a new or empty run directory; {out} holds a run "
                         f"({shown}): continue it with --resume {out}, or pass --overwrite "
                         "to replace it")
    if primary:
        _remove_run_files(out)
    parallel.barrier("jaxnn train: old run removed")


def _remove_run_files(out: Path) -> None:
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _epochs(n: int) -> str:
    """'1 epoch', '4 epochs': checkpoints count finished epochs; printed lines number them
    from 0, as the book does, so the state after 4 epochs follows the line 'Epoch 3'."""
    return f"{n} epoch" + ("" if n == 1 else "s")


def _silent(*args, **kwargs) -> None:
    """``print`` for the processes other than the primary: they train without a word."""


def _resumed_config(args, overrides):
    """The configuration saved in RUN_DIR/config.json; only ``--epochs`` may change it."""
    import dataclasses
    import json

    from jaxnn import experiment

    out = Path(args.resume)
    path = out / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume: expected a run directory with config.json; "
                                f"{path} does not exist")
    given = [f"--{k.replace('_', '-')}" for k, v in overrides.items()
             if v is not None and k != "epochs"]
    given += [f"--{k}" for k in ("preset", "grads", "out") if getattr(args, k) is not None]
    if given:
        raise ValueError(f"--resume: takes the configuration from {path}; expected no "
                         f"configuration flags except --epochs; got {' '.join(given)}")
    try:
        config = experiment.TrainConfig.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, AttributeError) as e:
        raise ValueError(f"--resume: {path} is not a jaxnn configuration ({e})") from None
    if config.ensemble > 1:
        raise ValueError(f"--resume: {out} holds an ensemble of {config.ensemble} networks; "
                         f"expected a run of one (ensembles are not checkpointed)")
    if args.epochs is not None:
        from jaxnn.checkpoint import CHECKPOINT_DIR

        folder = out / CHECKPOINT_DIR  # orbax names a committed step by its number
        steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] \
            if folder.is_dir() else []
        if steps and args.epochs < max(steps):
            raise ValueError(f"--epochs: expected at least the {max(steps)} epochs that "
                             f"{folder / str(max(steps))} holds (a resumed run trains on to "
                             f"--epochs); got {args.epochs}")
        config = dataclasses.replace(config, epochs=args.epochs)
    return config.validated(), out


class _Reliability:
    """The checkpoint callback, the resume hook and the NaN policy of one ``jaxnn train``."""

    def __init__(self, args, out: Path, config, *, primary: bool = True):
        import json

        from jaxnn import parallel, report

        self.args, self.out, self.config, self.primary = args, out, config, primary
        self.on_nan = getattr(args, "on_nan", None)
        self.every = getattr(args, "checkpoint_every", None)
        resuming = getattr(args, "resume", None) is not None
        if self.every is not None:
            from jaxnn import _checks

            _checks.positive("checkpoint_every", self.every, integer=True)
        options = out / "options.json"  # the run's own settings, reused by --resume
        if resuming and options.is_file():
            saved = json.loads(options.read_text())
            self.on_nan = self.on_nan or saved.get("on_nan")
            self.every = self.every or saved.get("checkpoint_every")
        if resuming:
            parallel.barrier("jaxnn train: options.json read")  # before the primary rewrites it
        if primary:
            report.write_json(options, {"on_nan": self.on_nan or "stop",
                                        "checkpoint_every": self.every})
        self.checkpointer = self.saver = None
        if self.every is not None or resuming:
            from jaxnn import checkpoint

            if not resuming:  # (a resumed directory was checked before its config was read)
                parallel.check_shared_directory(out, "--out")
            self.checkpointer = checkpoint.Checkpointer(out)
            self.saver = checkpoint.SaveEvery(self.checkpointer, self.every or 1,
                                              last_epoch=config.epochs)
        self.resume = self._resume if resuming else None
        if self.saver is not None:
            self.saver.extra["on_nan"] = self.on_nan or "stop"
        self.on_nan = self.on_nan or "stop"

    @property
    def callbacks(self):
        return [self.saver] if self.saver is not None else []

    def _resume(self, fresh_state):
        from jaxnn import parallel, report

        restored = self.checkpointer.restore(fresh_state, warn=False)
        step = str(restored.epoch)  # every process must continue from the same step
        primary_step = parallel.broadcast_text(step)
        if not all(parallel.all_processes(primary_step == step)):
            raise ValueError(f"--resume: the processes restored different checkpoints of "
                             f"{self.checkpointer.directory} (process 0: after "
                             f"{_epochs(int(primary_step))}); is every step on the shared "
                             "file system complete?")
        self.saver.history = list(restored.history)
        if not self.primary:  # every process restores the same state; one writes and prints
            return restored.state, restored.history
        for problem in restored.problems:
            print(f"jaxnn train: warning: {problem}", file=sys.stderr)
        metrics = self.out / "metrics.jsonl"  # one line per epoch: rewrite from the checkpoint
        metrics.unlink(missing_ok=True)
        writer = report.MetricsWriter(metrics)
        for record in restored.history:
            writer(record)
        print(f"resuming {self.out} after {_epochs(restored.epoch)} (the next is epoch "
              f"{restored.epoch}; checkpoint {self.checkpointer.directory / str(restored.epoch)})")
        return restored.state, restored.history

    def last_good(self) -> str:
        if self.checkpointer is None:
            return ""
        steps = self.checkpointer.steps()
        if not steps:
            return "; no checkpoint was written yet"
        return (f"; the last good checkpoint is after {_epochs(steps[-1])}: "
                f"{self.checkpointer.directory / str(steps[-1])}")

    def close(self):
        if self.checkpointer is not None:
            self.checkpointer.close()
