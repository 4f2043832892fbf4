"""The run directory of ``jaxnn train``: refusing to mix two runs in one directory, resuming
from a checkpoint, and the checkpoint callback and NaN policy of a run, an ensemble's members
each in a directory of its own (see docs/reliability.md)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from jaxnn.report import n_epochs as _epochs

# What a run writes into its directory: a directory holding any of these holds a run.
RUN_FILES = ("config.json", "options.json", "metrics.jsonl", "summary.json", "curves.png",
             "checkpoints")


# Seconds an epoch on the whole expanded training set took on the 2-core CPU, evaluation
# included: 45 (ch6-2fc) to 80 (ch6-2fc1000), from the runs the README reports.
_EXPANDED_EPOCH_SECONDS = (45, 80)


def long_on_a_cpu(config) -> str | None:
    """How long ``config`` takes on a CPU, when it trains on the whole expanded training set
    for a quarter of an hour or more ("40 epochs on the 250,000 images of the expanded set:
    about 30 to 53 minutes on a 2-core CPU ..."), else None: the commands say so before such
    a run starts, and how to make it resumable."""
    if not config.expanded or config.train_size is not None:
        return None
    import jax

    if jax.default_backend() != "cpu":
        return None
    lo, hi = (config.ensemble * config.epochs * s for s in _EXPANDED_EPOCH_SECONDS)
    if hi < 15 * 60:
        return None
    hours = hi >= 2 * 3600
    low, high = (f"{t / 3600:.1f}" if hours else f"{round(t / 60)}" for t in (lo, hi))
    networks = f"{config.ensemble} networks of " if config.ensemble > 1 else ""
    return (f"{networks}{_epochs(config.epochs)} on the 250,000 images of the expanded set: "
            f"about {low} to {high} {'hours' if hours else 'minutes'} on a 2-core CPU "
            f"({'-'.join(map(str, _EXPANDED_EPOCH_SECONDS))} s an epoch, README)")


def member_dirs(out: Path) -> list[Path]:
    """The run directories ``out/member<i>/`` of a checkpointed ensemble's members, in order."""
    found = [p for p in out.glob("member*") if p.is_dir() and p.name[6:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[6:]))


def checkpointed_members(out: Path) -> list[Path]:
    """The members of the ensemble in ``out`` that hold a checkpoint (to resume or keep)."""
    from jaxnn.checkpoint import saved_steps

    return [d for d in member_dirs(out) if saved_steps(d)]


def refuse_a_run_in(out: Path, *, overwrite: bool, primary: bool) -> None:
    """A new run into ``--out`` must not mix with a run already there (its checkpoints would
    outlive the new config, and --resume would continue the old run): refuse, or with
    ``overwrite`` remove the old run's files. All processes take the primary's decision."""
    from jaxnn import parallel

    found = ([name for name in RUN_FILES if (out / name).exists()]
             + [d.name for d in member_dirs(out)]) if primary else []
    if not any(parallel.all_processes(bool(found))):
        return
    if not overwrite:
        shown = ", ".join(found) if found else "a run"
        from jaxnn.checkpoint import saved_steps

        # Offer --resume only where it can work: a run without a checkpoint cannot go on.
        steps = saved_steps(out)
        stop = stopped_early(out)
        if not steps and checkpointed_members(out):  # an ensemble's members hold them
            how = ("its ensemble finished; pass --overwrite to replace it"
                   if (out / "summary.json").is_file() else
                   f"continue it with --resume {out}, or pass --overwrite to replace it")
        elif steps and stop is not None:  # it goes on no more
            how = (f"it stopped early after epoch {stop} (--patience); pass --overwrite to "
                   "replace it")
        elif finished(out, steps) and _saved_schedule(out) != "constant":
            how = (f"it finished its {_epochs(steps[-1])} and its learning-rate schedule; pass "
                   "--overwrite to replace it")
        elif finished(out, steps):  # only more epochs go on
            how = (f"it finished its {_epochs(steps[-1])}; train it on with --resume {out} "
                   f"--epochs N (N > {steps[-1]}), or pass --overwrite to replace it")
        elif steps:
            how = f"continue it with --resume {out}, or pass --overwrite to replace it"
        else:
            how = ("it has no checkpoint to continue from, so pass --overwrite to replace it "
                   "(with --checkpoint-every N a run can be resumed after an interruption)")
        raise ValueError(f"out: expected a new or empty run directory; {out} holds a run "
                         f"({shown}): {how}")
    if primary:
        remove_run_files(out)
    parallel.barrier("jaxnn train: old run removed")


def finished(out: Path, steps: list[int]) -> bool:
    """Whether the run in ``out`` ended (its summary is written) with a checkpoint after its
    last epoch, ``steps[-1]``: it goes on only with more --epochs."""
    return bool(steps) and (out / "summary.json").is_file()


def _saved(out: Path, name: str, key: str, default=None):
    """``key`` of the JSON object in ``out/name``, or ``default`` if it cannot be read."""
    import json

    try:
        return json.loads((out / name).read_text()).get(key, default)
    except (OSError, ValueError, AttributeError):
        return default


def stopped_early(out: Path) -> int | None:
    """The epoch after which the run in ``out`` stopped early, as its summary.json records
    (``--patience``); None if it did not, or has no readable summary."""
    stop = _saved(out, "summary.json", "early_stopped_after_epoch")
    return stop if isinstance(stop, int) else None


def _saved_schedule(out: Path) -> str:
    """The learning-rate schedule in ``out/config.json`` ("constant" if it cannot be read)."""
    return str(_saved(out, "config.json", "schedule", "constant"))


def remove_run_files(out: Path) -> None:
    """Remove what a run wrote into ``out`` (RUN_FILES, and an ensemble's member
    directories), and nothing else there."""
    for member in member_dirs(out):
        shutil.rmtree(member, ignore_errors=True)
    for name in RUN_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def resumed_config(args, overrides):
    """The configuration saved in RUN_DIR/config.json; only ``--epochs`` may change it."""
    import dataclasses
    import json

    from jaxnn import checkpoint, experiment

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
    try:  # a stored value is not a flag the user typed: say where it comes from
        config = config.validated()
    except (ValueError, TypeError) as e:
        raise ValueError(f"--resume: {path} holds a setting that is not valid ({e})") from None
    if config.ensemble > 1:
        return _resumed_ensemble(args, config, out), out
    steps = checkpoint.saved_steps(out)
    if not steps:  # checked before anything in the directory is rewritten
        raise ValueError(f"--resume: {out} has no checkpoint to continue from (a run writes "
                         "them with --checkpoint-every N)")
    stop = stopped_early(out)
    if stop is not None:
        raise ValueError(f"--resume: {out} stopped early after epoch {stop}: no better "
                         f"validation accuracy in {_epochs(config.patience)} (--patience), so "
                         "it trains no further")
    done = finished(out, steps)
    if done and config.schedule != "constant":
        raise ValueError(f"--resume: {out} has finished its {_epochs(steps[-1])}, and its "
                         f"{config.schedule} learning-rate schedule with them, so it trains "
                         "no further")
    if args.epochs is not None:
        if args.epochs < steps[-1] or (done and args.epochs == steps[-1]):
            least = f"more than the {steps[-1]}" if done else f"at least the {steps[-1]}"
            newest = out / checkpoint.CHECKPOINT_DIR / str(steps[-1])
            raise ValueError(f"--epochs: expected {least} epochs that {newest} holds (a "
                             f"resumed run trains on to --epochs); got {args.epochs}")
        if args.epochs != config.epochs and config.schedule != "constant":
            raise ValueError(f"--epochs: the run's {config.schedule} learning-rate schedule "
                             f"spans its {config.epochs} epochs, and its optimizer state is "
                             "part of the way along it; a resumed run keeps them (expected "
                             f"{config.epochs}; got {args.epochs})")
        config = dataclasses.replace(config, epochs=args.epochs)
    if done and steps[-1] >= config.epochs:
        raise ValueError(f"--resume: {out} has finished its {_epochs(steps[-1])}; pass "
                         f"--epochs N with N > {steps[-1]} to train on")
    return config.validated(), out


def what_is_left(out: Path, removed: bool, made_dir: bool, ensemble: int = 1,
                 every: int | None = None) -> str:
    """After Ctrl-C: what the run directory holds and how to go on from it (``every``: the
    run's checkpoint interval, if it has one)."""
    from jaxnn.checkpoint import saved_steps

    if removed:
        return (f"no epoch had finished; removed {out}" if made_dir else
                f"no epoch had finished; removed this run's files from {out}")
    steps = saved_steps(out)
    if steps:
        return (f"{out} holds a checkpoint after {_epochs(steps[-1])}: continue with "
                f"jaxnn train --resume {out}")
    metrics = out / "metrics.jsonl"
    done = len(metrics.read_text().splitlines()) if metrics.is_file() else 0
    members = checkpointed_members(out) if ensemble > 1 else []
    if members:
        newest = members[-1]
        return (f"{out} holds the checkpoints of {len(members)} of its {ensemble} members "
                f"({newest.name}'s newest after {_epochs(saved_steps(newest)[-1])}): continue "
                f"with jaxnn train --resume {out}")
    what = (f"{done} epochs of the ensemble's members" if ensemble > 1  # one after another
            else _epochs(done))
    if every is not None:  # stopped before the first checkpoint
        return (f"{metrics} holds {what}, but no checkpoint had been written yet (one every "
                f"{_epochs(every)}); --overwrite replaces it")
    why = ("--checkpoint-every N checkpoints each member" if ensemble > 1
           else "--checkpoint-every N makes a run resumable")
    return (f"{metrics} holds {what}, but there is no checkpoint to continue from ({why}); "
            "--overwrite replaces it")


def _resumed_ensemble(args, config, out: Path):
    """The configuration of the ensemble in ``out`` that ``--resume`` takes up: its members'
    checkpoints are in ``out/member<i>/``; a finished ensemble, or one without them, is
    refused, and so is another --epochs (a finished member is kept as it trained)."""
    k = config.ensemble
    if (out / "summary.json").is_file():
        raise ValueError(f"--resume: {out} has finished its ensemble of {k} networks, so it "
                         "trains no further (--overwrite replaces it)")
    if not checkpointed_members(out):
        raise ValueError(f"--resume: {out} holds an ensemble of {k} networks with no "
                         "checkpoint to continue from (its members write them, each into "
                         f"{out / 'member<i>'}, with --checkpoint-every N)")
    if args.epochs is not None and args.epochs != config.epochs:
        raise ValueError(f"--epochs: an ensemble's members train {_epochs(config.epochs)} "
                         "each, and those that finished are kept as they are; a resumed "
                         f"ensemble keeps them (expected {config.epochs}; got {args.epochs})")
    return config


class Reliability:
    """The checkpoint callback, the resume hook and the NaN policy of one ``jaxnn train``."""

    def __init__(self, args, out: Path, config, *, primary: bool = True):
        import json

        from jaxnn import parallel

        self.args, self.out, self.config, self.primary = args, out, config, primary
        self.on_nan = getattr(args, "on_nan", None)
        self.every = getattr(args, "checkpoint_every", None)
        resuming = getattr(args, "resume", None) is not None
        if self.every is not None:
            from jaxnn import _checks

            _checks.positive("checkpoint_every", self.every, integer=True)
        options = out / "options.json"  # the run's own settings, reused by --resume
        if resuming and options.is_file():
            try:
                saved = json.loads(options.read_text())
                what = "not a JSON object"
            except (json.JSONDecodeError, UnicodeDecodeError):
                saved, what = None, "not valid JSON"
            if not isinstance(saved, dict):
                raise ValueError(f"--resume: {options} is {what} (a jaxnn run's options); fix "
                                 "or delete it (then --on-nan and --checkpoint-every take "
                                 "their defaults)") from None
            self.on_nan = self.on_nan or saved.get("on_nan")
            self.every = self.every or saved.get("checkpoint_every")
        if resuming:
            parallel.barrier("jaxnn train: options.json read")  # before the primary rewrites it
        elif primary:  # a resumed run rewrites it (and config.json) once its state is restored
            self._write_settings(config_too=False)
        self.checkpointer = self.saver = None
        # an ensemble's members are checkpointed each in a directory of its own (member_runs)
        self.ensemble = config.ensemble > 1
        self.resuming = resuming
        if (self.every is not None or resuming) and not self.ensemble:
            from jaxnn import checkpoint

            if not resuming:  # (a resumed directory was checked before its config was read)
                parallel.check_shared_directory(out, "--out")
            self.checkpointer = checkpoint.Checkpointer(out)
            self.saver = checkpoint.SaveEvery(self.checkpointer, self.every or 1)
        self.resume = self._resume if resuming and not self.ensemble else None
        if self.saver is not None:
            self.saver.extra["on_nan"] = self.on_nan or "stop"
        self.on_nan = self.on_nan or "stop"

    def _write_settings(self, *, config_too: bool) -> None:
        """options.json, and config.json with ``config_too`` (a resumed run's --epochs)."""
        from jaxnn import report

        report.write_json(self.out / "options.json", {"on_nan": self.on_nan or "stop",
                                                      "checkpoint_every": self.every})
        if config_too:
            report.write_json(self.out / "config.json", self.config.to_json())

    def member_runs(self, *, progress: bool, log):
        """:func:`jaxnn.ensemble.run`'s ``member_run`` for an ensemble that is checkpointed
        (``--checkpoint-every``) or resumed, or None: member i trains in ``OUT/member<i>/``
        (config, metrics, checkpoints, summary), and a resumed ensemble keeps the members that
        finished there and takes up the one it stopped in. The ensemble's metrics.jsonl,
        rewritten on resuming, gets the epochs they do not train again from ``replay``."""
        from jaxnn import report
        from jaxnn._reproduce_runs import _MemberRuns

        if not self.ensemble or (self.every is None and not self.resuming):
            return None
        replay = None
        if self.resuming:
            self._write_settings(config_too=False)  # a --checkpoint-every or --on-nan given
            metrics = report.MetricsWriter(self.out / "metrics.jsonl")
            metrics.path.unlink(missing_ok=True)

            def replay(i, seed, history):
                for record in history:
                    metrics({"member": i, "seed": seed, **record})

        return _MemberRuns(self.out, progress, self.every, log, "ensemble", epoch_lines=False,
                           replay=replay)

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
        # only now: a resume that fails leaves the directory as it was
        self._write_settings(config_too=True)
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
