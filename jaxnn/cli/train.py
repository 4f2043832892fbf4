"""``jaxnn train``: train one of the book's networks and write a run directory."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from pathlib import Path

from jaxnn.cli import EXIT_BROKEN_PIPE, runtime
from jaxnn.cli.rundir import (
    Reliability,
    long_on_a_cpu,
    refuse_a_run_in,
    remove_run_files,
    resumed_config,
    what_is_left,
)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 784,30,10; got {text!r}"
        ) from None


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """The flags that set :class:`jaxnn.experiment.TrainConfig` fields (None = the preset's)."""
    from jaxnn import activations, presets

    p.add_argument("--preset", default=None,
                   help=f"a row of the book's tables (default {presets.DEFAULT}); "
                        "'jaxnn presets' lists them with their settings: "
                        + ", ".join(presets.PRESETS))
    p.add_argument("--sizes", type=_sizes, help="layer sizes, e.g. 784,30,10 (MLPs)")
    p.add_argument("--activation", help="hidden-layer activation: "
                   + ", ".join((*activations.HIDDEN, "maxout")))
    p.add_argument("--output", dest="output_activation",
                   help="output activation: sigmoid, softmax or identity")
    p.add_argument("--cost", help="quadratic, cross_entropy or log_likelihood")
    p.add_argument("--init", help="weight init (MLPs): large = N(0, 1), chapter 1's and the "
                   "ch1/ch3 presets'; default = N(0, 1/n_in), chapter 3's improved one "
                   "(the name is the book's); xavier; he")
    p.add_argument("--eta", type=float, help="learning rate")
    p.add_argument("--epochs", type=int, help="epochs to train")
    p.add_argument("--mini-batch-size", type=int, help="1 is online learning; n is full batch")
    p.add_argument("--l2", type=float, help="the book's lambda (its meaning: --l2-convention)")
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw")
    p.add_argument("--seed", type=int, help="random seed for the weights and the shuffling "
                   "(0 to 2**32 - 1)")
    p.add_argument("--dataset", help="mnist (embedded; any case: MNIST is mnist) or a prepared "
                   "tensorflow-datasets name (case-sensitive, as tfds's)")
    p.add_argument("--data-dir", help="tensorflow-datasets data directory")
    p.add_argument("--train-size", type=int, help="use only the first N training images")
    add_technique_flags(p)


def add_technique_flags(p: argparse.ArgumentParser) -> None:
    """Flags for the course's training techniques (issue 4); None = the preset's setting."""
    from jaxnn import architectures, optim

    p.add_argument("--model", help="mlp (default) or a convolutional network: "
                   + ", ".join(architectures.ARCHITECTURES))
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
    p.add_argument("--ensemble", type=int,
                   help="train N networks and take their majority vote (a tie goes to the "
                        "smallest label, so an odd N is the fairer vote: with 2, every "
                        "disagreement is a tie)")
    p.add_argument("--loop", choices=("auto", "scan", "host"), default=None,
                   help="scan: one compiled call per epoch; host: one per mini-batch (auto: host "
                        "for networks with convolutions on the CPU, where it is several times "
                        "faster; scan otherwise)")
    p.add_argument("--monitor-training", action=argparse.BooleanOptionalAction, default=None,
                   help="evaluate the training set's cost and accuracy after every epoch "
                        "(default: yes, but for the chapter-6 presets, which report validation "
                        "and test accuracy only)")


CONFIG_FLAGS = ("sizes", "activation", "output_activation", "cost", "init", "eta", "epochs",
                "mini_batch_size", "l2", "optimizer", "seed", "dataset", "data_dir", "train_size",
                "model", "schedule", "l1", "l2_convention", "dropout", "patience", "clip_norm",
                "batch_norm", "expanded", "maxout_pieces", "eval_size", "ensemble", "loop",
                "monitor_training")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (default: the book's chapter-1 network)",
                       description=__doc__ + " A setting left out takes the preset's value "
                       "('jaxnn presets' shows them; the default, ch1-30, is [784,30,10] "
                       "sigmoid neurons, quadratic cost, eta 3.0, mini-batches of 10, 30 "
                       "epochs, N(0, 1) weights).")
    add_config_flags(p)
    p.add_argument("--grads", choices=("auto", "manual"), default=None,
                   help="gradients from jax.grad (auto) or by hand (manual: "
                        "manual_grad.backprop, or manual_grad.cnn_backprop for a CNN)")
    p.add_argument("--out", help="run directory (default runs/<time>-<preset>/); "
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
                        "into RUN_DIR/checkpoints/ (and after the last epoch, or the one "
                        "early stopping stopped at); an ensemble's members each into "
                        "RUN_DIR/member<i>/, so that --resume keeps those that finished")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue RUN_DIR from its last complete checkpoint, with its "
                        "config.json (only --epochs may be raised, and not under a "
                        "learning-rate schedule) and its --checkpoint-every and --on-nan, "
                        "which those flags, given again, replace; an ensemble keeps its finished "
                        "members and its --epochs")
    p.add_argument("--on-nan", choices=("stop", "skip"), default=None,
                   help="NaN or inf in training: stop with a message (default) or skip the "
                        "updates whose gradient or new parameters, optimizer or model state "
                        "are not finite")


def run(args) -> int:
    with contextlib.ExitStack() as held:  # the run directory, held until the command ends
        return _run(args, held)


def _run(args, held: contextlib.ExitStack) -> int:
    from jaxnn import experiment, parallel, report
    from jaxnn.train import Diverged

    # With several processes (--distributed) all of them train; only the primary writes the
    # run directory and prints (parallel.is_primary() is True for a single process).
    primary = parallel.is_primary()
    holding: set[Path] = set()

    def hold(flag: str, directory: Path | None) -> None:
        """Refuse to go on if another jaxnn command writes into ``directory`` (the primary's
        lock, runtime.exclusive), else keep others out of it until this command ends."""
        if primary and directory is not None and directory.is_dir() and directory not in holding:
            held.enter_context(runtime.exclusive(flag, directory))
            holding.add(directory)
    say = print if primary else _silent

    # The book's line goes through tqdm.write so that it does not break the progress bar.
    tqdm = None if args.no_progress else report.optional_import("tqdm.auto",
                                                                "no progress bar is shown")
    write_line = tqdm.tqdm.write if tqdm is not None else print
    say_line = write_line if primary else _silent

    overrides = {k: getattr(args, k) for k in CONFIG_FLAGS}
    # '' would be the current directory (Path('') is '.'): refuse it, naming the flag
    args.out = runtime.given_path("out", getattr(args, "out", None), "a directory name")
    args.resume = runtime.given_path("resume", getattr(args, "resume", None), "a run directory")
    if getattr(args, "overwrite", False) and getattr(args, "resume", None) is not None:
        raise ValueError(f"overwrite: expected a new run (--out); got --resume {args.resume}, "
                         "which continues the run there")
    if getattr(args, "resume", None) is not None:
        hold("resume", args.resume)  # before its config is read
        parallel.check_shared_directory(args.resume, "--resume")
        config, out = resumed_config(args, overrides)
        parallel.barrier("jaxnn train: config.json read")  # before the primary rewrites it
    else:
        config = experiment.TrainConfig.from_preset(args.preset, grads=args.grads, **overrides)
        out = None
    if getattr(args, "checkpoint_every", None) is not None:  # before the run directory is made
        from jaxnn import _checks

        _checks.positive("checkpoint_every", args.checkpoint_every, integer=True)
    checkpointed = [flag for flag in ("checkpoint_every", "resume")
                    if getattr(args, flag, None) is not None]
    if config.ensemble > 1 and parallel.process_count() > 1 and checkpointed:
        raise ValueError(f"{checkpointed[0]}: an ensemble's members are checkpointed by a "
                         f"single process; got {parallel.process_count()} (train them alone, "
                         "each with --seed S --checkpoint-every N, or on one host)")
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
    made_dir = made_parent = False  # a directory of our own (runs/<time>-<preset>/, runs/)
    if out is None:
        if args.out:
            out = runtime.check_output_dir("out", args.out)
            hold("out", out)  # before a run there is refused or (--overwrite) removed
            refuse_a_run_in(out, overwrite=getattr(args, "overwrite", False), primary=primary)
        elif primary:  # the others take its name below (their clocks may differ by a second)
            made_parent = not Path("runs").exists()  # removed too if a failure empties it
            out = report.new_run_dir("runs", config.preset or "custom")
        if primary:
            made_dir = not args.out or not out.exists()  # new_run_dir makes its directory
            out.mkdir(parents=True, exist_ok=True)
            hold("out", out)
    # Process 0's directory, in every process (the identity for a single process).
    primary_out = parallel.broadcast_text(str(out) if out is not None else "")
    out = out if out is not None else Path(primary_out)
    if primary and getattr(args, "resume", None) is None:  # a resumed run's: once restored
        report.write_json(out / "config.json", config.to_json())
    elif not primary:
        print(f"jaxnn train: process {parallel.process_index()} of {parallel.process_count()} "
              f"trains; process 0 writes the run directory {primary_out} and prints the results")
    say(f"jaxnn train: {describe(config)}{_run_options(args, devices)} -> {out}")
    unsaved = getattr(args, "checkpoint_every", None) is None and args.resume is None
    if unsaved and (how_long := long_on_a_cpu(config)):  # an hour on a CPU, say: warn first
        say(f"jaxnn train: note: this run trains {how_long}; with --checkpoint-every N, "
            f"jaxnn train --resume {out} could go on after an interruption")

    def book_line(record, state):
        if "test_correct" in record:
            member = f" (member {record['member']}, seed {record['seed']})" if (
                "member" in record) else ""
            say_line(f"Epoch {record['epoch']}: {record['test_correct']} / "
                     f"{record['test_size']}{member}")

    writers = [report.MetricsWriter(out / "metrics.jsonl")] if primary else []
    guard, remove_dir, interrupted, closed = None, False, False, False

    def nothing_to_keep() -> bool:
        """A new run that wrote no epoch's metrics: a failure leaves nothing of it behind."""
        return primary and getattr(args, "resume", None) is None and not (
            out / "metrics.jsonl").exists()

    try:
        guard = Reliability(args, out, config, primary=primary)
        progress = not args.no_progress and primary
        members = guard.member_runs(progress=progress, log=say_line)
        if members is not None:  # a checkpointed ensemble: a directory for each member
            from jaxnn import ensemble

            result = ensemble.run(config, callbacks=[*writers, book_line], progress=progress,
                                  devices=devices, on_nan=guard.on_nan, member_run=members)
        else:
            result = experiment.run(
                config, progress=progress,  # --grads: in the config
                callbacks=[*writers, *guard.callbacks, book_line],
                resume=guard.resume, on_nan=guard.on_nan, devices=devices,
            )
    except Diverged as e:
        if getattr(args, "debug", False):
            raise
        last_good = guard.last_good() if guard is not None else ""  # in every process
        # Diverged in the first epoch: no epoch's metrics, no checkpoint, so nothing worth
        # keeping; a run with epochs in metrics.jsonl stays (docs/reliability.md).
        remove_dir = nothing_to_keep()
        left = f"; removed {out}" if remove_dir and made_dir else ""
        say(f"jaxnn train: error: {e}{last_good}{left}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:  # Ctrl-C: say what is left and how to go on (below)
        interrupted, remove_dir = True, nothing_to_keep()
    except BrokenPipeError:  # standard output closed (`| head`): the same, on stderr
        interrupted, closed, remove_dir = True, True, nothing_to_keep()
    except Exception:
        # A setting only the data can refute (say, 9 output neurons for 10 classes) fails
        # before the first epoch: leave no run directory, or no files of ours, behind (a
        # divergence in the first epoch too, above).
        remove_dir = nothing_to_keep()
        raise
    finally:
        if guard is not None:
            guard.close()
        if remove_dir and made_dir:
            shutil.rmtree(out, ignore_errors=True)
            if made_parent:
                try:
                    out.parent.rmdir()  # runs/, made for this run, if nothing else is there
                except OSError:
                    pass
        elif remove_dir:
            remove_run_files(out)
    if interrupted:
        if primary:
            left = what_is_left(out, remove_dir, made_dir, config.ensemble,
                                guard.every if guard is not None else None)
            why = "standard output was closed" if closed else "interrupted"
            print(f"jaxnn train: {why}; {left}", file=sys.stderr)
        return EXIT_BROKEN_PIPE if closed else 130
    skipped = result.summary.get("skipped_steps", 0)  # all members' for an ensemble
    if not primary:
        return 0
    if guard.on_nan == "skip":
        print(f"skipped {skipped} updates whose gradients or parameters were NaN or inf")
    if devices != 1:
        result.summary["devices"] = devices
    report.write_json(out / "summary.json", result.summary)
    title = f"jaxnn {config.preset or 'custom'}"
    s = result.summary
    if config.ensemble > 1:  # every member's epochs, as metrics.jsonl holds them
        records = report.read_metrics(out / "metrics.jsonl")
        votes = {split: s[f"ensemble_{split}_accuracy"] for split in ("test", "validation")
                 if f"ensemble_{split}_accuracy" in s}
        report.plot_ensemble(records, out / "curves.png", votes=votes,
                             title=f"{title}: an ensemble of {config.ensemble}")
    else:
        report.plot_history(result.history, out / "curves.png", title=title)
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
    # the median epoch after the first, which compiles; a run of one epoch has only that one
    compiled = " (one epoch: compilation included)" if s["epochs"] == 1 else ""
    print(f"peak test accuracy {100 * s['peak_test_accuracy']:.2f}%, final "
          f"{100 * s['final_test_accuracy']:.2f}%, {s['seconds_per_epoch']:.2f} s/epoch"
          f"{compiled}; wrote {out}")
    return 0


# Settings the start line always shows (or that only say where the data comes from).
_SHOWN = ("preset", "sizes", "model", "activation", "output_activation", "cost", "eta",
          "mini_batch_size", "epochs", "data_dir")


def describe(config) -> str:
    """The start line's account of a run: the network, cost, eta, mini-batch and epochs, then
    every other setting that is not the chapter-1 default (chapter 1's plain SGD, seed 0, ...),
    so that two runs of one preset with different flags are told apart."""
    import dataclasses

    from jaxnn import experiment

    arch = ",".join(map(str, config.sizes)) if config.model == "mlp" else config.model
    base = experiment.TrainConfig()
    others = [f"{f.name} {_shown(getattr(config, f.name))}" for f in dataclasses.fields(config)
              if f.name not in _SHOWN and getattr(config, f.name) != getattr(base, f.name)]
    epochs = f"{config.epochs} epoch" + ("" if config.epochs == 1 else "s")
    return (f"{config.preset or 'custom'} [{arch}] {config.activation}/"
            f"{config.output_activation}, "
            f"{config.cost} cost, eta {config.eta}, mini-batch {config.mini_batch_size}, "
            f"{epochs}" + "".join(f", {item}" for item in others))


def _run_options(args, devices) -> str:
    """The start line's run options that are not settings of the network: the devices of a
    data-parallel run, and --on-nan and --checkpoint-every when given."""
    items = [] if devices == 1 else [f"devices {devices}"]
    if getattr(args, "on_nan", None) is not None:
        items.append(f"on-nan {args.on_nan}")
    if getattr(args, "checkpoint_every", None) is not None:
        items.append(f"checkpoint every {args.checkpoint_every}")
    return "".join(f", {item}" for item in items)


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _silent(*args, **kwargs) -> None:
    """``print`` for the processes other than the primary: they train without a word."""
