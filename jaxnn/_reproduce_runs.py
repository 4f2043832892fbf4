"""One run of a reproduced row, in its directory ``OUT/PRESET/seedN/``: kept when it finished
with the same configuration (:func:`finished_run`), trained otherwise (:func:`train_run`),
writing ``config.json``, ``metrics.jsonl`` epoch by epoch and ``summary.json`` at the end, and
with checkpoints taken up again where an interrupted run left off. :mod:`jaxnn.reproduce` runs
a row's seeds through these."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path


def _config_json(config) -> dict:
    """``config`` as it reads back from ``config.json`` (tuples become lists)."""
    return json.loads(json.dumps(config.to_json()))


def finished_run(run_dir: Path | None, config) -> tuple[dict, list[dict]] | None:
    """``(summary, history)`` of a run that ``run_dir`` holds to the end for exactly
    ``config``, or ``None`` (no directory, another configuration, or the run did not finish).
    A single run's figures are summarized again from its history, so a kept run is reported
    by today's :func:`jaxnn.metrics.summarize` (e.g. its rule for tied validation epochs)."""
    if (run_dir is None or not (run_dir / "summary.json").is_file()
            or not _holds_config(run_dir, config)):
        return None
    from jaxnn import report

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        history = report.read_metrics(run_dir / "metrics.jsonl")
    except (OSError, ValueError):
        return None
    if len(history) != summary.get("epochs") or "run_seconds" not in summary:
        return None  # e.g. a `jaxnn train` run directory
    if config.ensemble == 1:  # an ensemble's history is its last member's: keep its summary
        from jaxnn import metrics

        summary = {**summary, **metrics.summarize(history)}
    return summary, history


# settings that change what is reported of a run, not what it trains
_REPORTING_ONLY = ("monitor_training",)


def _holds_config(run_dir: Path, config) -> bool:
    """Whether ``run_dir/config.json`` holds ``config`` (as jaxnn reads it today), up to the
    settings that do not change the training (e.g. a run trained before the chapter-6 presets
    stopped evaluating the training set is kept, and resumed)."""
    try:
        saved = _config_json(type(config).from_json(json.loads((run_dir / "config.json")
                                                                .read_text())))
        wanted = _config_json(config)
        for key in _REPORTING_ONLY:
            saved.pop(key, None)
            wanted.pop(key, None)
        return saved == wanted
    except (OSError, ValueError, TypeError, AttributeError):
        return False


class _RunClock:
    """A run's wall seconds over every command that trained it: those before this one (as the
    checkpoint it resumed from recorded them) plus this one's. As a callback ahead of the
    checkpoint ``saver``, it gives each checkpoint the seconds so far. Its :meth:`resume` is
    the saver's, which also rewrites ``metrics.jsonl`` to the epochs restored (an interrupted
    run may have written epochs after its newest checkpoint, which are trained again)."""

    def __init__(self, saver=None, metrics=None, every: int | None = None):
        self.saver, self.metrics, self.every = saver, metrics, every
        self.before, self.start, self.resumed_after = 0.0, time.perf_counter(), None

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.start

    def __call__(self, record, state=None) -> None:
        if self.saver is not None:
            self.saver.extra["run_seconds"] = self.seconds()

    def resume(self, template):
        state, history = self.saver.resume(template)
        extra = self.saver.restored.extra
        self.before = float(extra.get("run_seconds", 0.0))
        self.resumed_after = self.saver.restored.epoch
        if self.every is None:  # the run's own interval, as `jaxnn train --resume` keeps it
            self.saver.every = int(extra.get("checkpoint_every", self.saver.every))
        self.saver.extra["checkpoint_every"] = self.saver.every
        self.metrics.path.unlink(missing_ok=True)
        for record in history:
            self.metrics(record)
        return state, history


def train_run(config, run_dir: Path | None, progress: bool, train_seed,
              checkpoint_every: int | None = None, log: Callable[[str], None] | None = None,
              label: str = "") -> tuple[dict, list[dict]]:
    """Train ``config`` with ``train_seed`` (:func:`jaxnn.experiment._seeds_trainer`), writing
    ``run_dir`` as it goes, if given: ``(summary, history)``. A run of one network that
    ``run_dir`` holds checkpoints of, for this ``config``, goes on from the newest; with
    ``checkpoint_every`` a new one saves them. An ensemble's members each get a run directory
    of their own, ``run_dir/member<i>/``, so that an interrupted ensemble keeps the members
    that finished and takes up the one it stopped in (:class:`_MemberRuns`). ``log`` gets a
    line as the run starts (or goes on), and without a progress bar one an epoch, each
    beginning with ``label``."""
    summary, result = _train(config, run_dir, progress, train_seed, checkpoint_every, log, label)
    return summary, result.history


def _train(config, run_dir, progress, train_seed, checkpoint_every, log, label,
           epoch_lines: bool = True):
    """:func:`train_run`, returning ``(summary, result)``: the result holds the final state.
    Without ``epoch_lines``, ``log`` gets no line an epoch (its caller prints its own)."""
    from jaxnn import checkpoint, report

    callbacks, clock, resume = [], _RunClock(), None
    resumable = False
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "summary.json").unlink(missing_ok=True)
        resumable = (config.ensemble == 1 and _holds_config(run_dir, config)
                     and bool(checkpoint.saved_steps(run_dir)))
        if not resumable:  # a fresh start: nothing of another run or setting may stay
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
            shutil.rmtree(run_dir / checkpoint.CHECKPOINT_DIR, ignore_errors=True)
            report.write_json(run_dir / "config.json", config.to_json())
        if config.ensemble == 1:  # an ensemble's members would interleave their epochs
            metrics = report.MetricsWriter(run_dir / "metrics.jsonl")
            if resumable or checkpoint_every is not None:
                saver = checkpoint.SaveEvery(checkpoint.Checkpointer(run_dir),
                                             checkpoint_every or 1)
                clock = _RunClock(saver, metrics, checkpoint_every)
                callbacks.append(clock)  # ahead of the saver: each checkpoint's seconds
                callbacks.append(saver)
                resume = clock.resume if resumable else None
            callbacks.append(metrics)
    if log:
        if resumable:
            after = checkpoint.saved_steps(run_dir)[-1]
            log(f"  {label}: resuming {run_dir} after epoch {after} (its newest checkpoint)")
        else:
            where = f" -> {run_dir}" if run_dir is not None else ""
            networks = f"{config.ensemble} networks of " if config.ensemble > 1 else ""
            log(f"  {label}: training {networks}{report.n_epochs(config.epochs)}{where}")
    members = None
    if config.ensemble > 1 and run_dir is not None:  # the members log their own epochs
        members = _MemberRuns(run_dir, progress, checkpoint_every, log, label, epoch_lines)
    elif log and epoch_lines and not progress:  # the progress bar's place: a line an epoch
        callbacks.append(lambda record, state=None: log(f"  {label}: {_epoch_line(record)}"))
    try:
        if members is not None:
            from jaxnn import ensemble

            result = ensemble.run(config, progress=progress, member_run=members)
        else:
            result = train_seed(config, progress=progress, callbacks=callbacks, resume=resume)
    finally:
        if clock.saver is not None:
            clock.saver.checkpointer.close()
    summary = {**result.summary, "run_seconds": clock.seconds()}
    if members is not None:  # every sitting's time, member by member (the vote's is not counted)
        summary["run_seconds"] = sum(m["run_seconds"] for m in result.summary["members"])
    if clock.resumed_after is not None:
        summary["resumed_after_epoch"] = clock.resumed_after
    if run_dir is not None:
        if config.ensemble > 1:  # the last member's epochs, those the summary's epochs count
            writer = report.MetricsWriter(run_dir / "metrics.jsonl")
            for record in result.history:
                writer(record)
        report.write_json(run_dir / "summary.json", summary)
    return summary, result


class _MemberRuns:
    """:func:`jaxnn.ensemble.run`'s ``member_run`` for an ensemble reproduced in ``run_dir``:
    member i is a run of one network in ``run_dir/member<i>/`` (config.json, metrics.jsonl,
    checkpoints, summary.json), kept when it finished there with the same configuration (its
    final state restored from its last checkpoint, for the vote), taken up from its newest
    checkpoint when it did not, and trained otherwise, checkpointed every ``checkpoint_every``
    epochs (None: a resumed member at its own interval, a new one at its last epoch only,
    which keeping it needs). ``log`` and ``label``: as :func:`train_run`'s (``epoch_lines``:
    whether ``log`` gets a line an epoch without a progress bar).

    ``replay(i, seed, history)``, if given, gets the epochs a member did not train in this
    command: all of a kept member's, and those a resumed member's checkpoint restored, before
    it trains on (``jaxnn train --resume`` rewrites the ensemble's metrics.jsonl with them)."""

    def __init__(self, run_dir: Path, progress: bool, checkpoint_every, log, label: str,
                 epoch_lines: bool = True, replay=None):
        self.run_dir, self.progress, self.every = run_dir, progress, checkpoint_every
        self.log, self.label, self.epoch_lines, self.replay = log, label, epoch_lines, replay

    def __call__(self, i: int, config, train_member, initial_state):
        from jaxnn import checkpoint, experiment

        member_dir, label = self.run_dir / f"member{i}", f"{self.label} member {i}"
        kept = finished_run(member_dir, config)
        state = None if kept is None else _final_state(member_dir, initial_state(config.seed),
                                                       len(kept[1]))
        if state is not None:
            if self.log:
                self.log(f"  {label}: kept from {member_dir}")
            if self.replay is not None:
                self.replay(i, config.seed, kept[1])
            return experiment.Result(config, state, kept[1], kept[0])
        every = self.every
        if every is None and not (_holds_config(member_dir, config)
                                  and checkpoint.saved_steps(member_dir)):
            every = config.epochs  # a new member: one checkpoint, at its end (resumed: its own)
        train = train_member
        if self.replay is not None:
            def train(cfg, *, resume=None, **kwargs):
                return train_member(cfg, resume=_replaying(resume, self.replay, i, cfg.seed),
                                    **kwargs)
        summary, result = _train(config, member_dir, self.progress, train, every, self.log,
                                 label, self.epoch_lines)
        return experiment.Result(config, result.state, result.history, summary)


def _replaying(resume, replay, i: int, seed: int):
    """``resume`` (or None), handing the epochs it restores to ``replay(i, seed, history)``."""
    if resume is None:
        return None

    def restore(template):
        state, history = resume(template)
        replay(i, seed, history)
        return state, history

    return restore


def _final_state(run_dir: Path, template, epochs: int):
    """The state of ``run_dir``'s checkpoint after its run's last epoch (``epochs`` trained),
    or None: no such checkpoint, or it cannot be read (restoring falls back to an older one,
    which is not the final state)."""
    from jaxnn import checkpoint

    steps = checkpoint.saved_steps(run_dir)
    if not steps or steps[-1] != epochs:
        return None
    try:
        restored = checkpoint.restore_latest(run_dir, template)
    except Exception:  # no readable checkpoint: the member is trained again
        return None
    return restored.state if restored.epoch == epochs else None


def _epoch_line(record: dict) -> str:
    """``epoch 12: test 9952 / 10000, validation 99.50% (50.2 s)`` (an ensemble's member first)."""
    member = f"member {record['member']}, " if "member" in record else ""
    parts = []
    if "test_correct" in record:
        parts = [f"test {record['test_correct']} / {record['test_size']}"]
    elif "train_cost" in record:
        parts = [f"train cost {record['train_cost']:.4g}"]
    if "validation_accuracy" in record:
        parts.append(f"validation {100 * record['validation_accuracy']:.2f}%")
    return f"{member}epoch {record['epoch']}: {', '.join(parts)} ({record['seconds']:.1f} s)"
