"""Run directories and plots: what a training run leaves behind.

A run directory holds ``config.json``, ``metrics.jsonl`` (one line per epoch), ``summary.json``
and ``curves.png`` (accuracy and training cost per epoch).
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_missing_said: set[str] = set()


def n_epochs(n: int) -> str:
    """'1 epoch', '4 epochs', for messages. Checkpoints count finished epochs; printed lines
    number them from 0, as the book does, so the state after 4 epochs follows 'Epoch 3'."""
    return f"{n} epoch" + ("" if n == 1 else "s")


def optional_import(name: str, skipped: str):
    """``importlib.import_module(name)``, or ``None`` and one line on stderr saying what is skipped.

    tqdm and matplotlib are dependencies of jaxnn, but a machine set up with
    ``pip install --no-deps`` (a shared GPU box, say) may lack them, and a missing progress bar
    or plot must not stop a training run. The line is printed once per module and process.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        top = name.split(".")[0]
        if top not in _missing_said:
            _missing_said.add(top)
            print(f"jaxnn: {top} is not installed, so {skipped} (pip install {top})",
                  file=sys.stderr)
        return None


def pyplot(skipped: str = "no plot is drawn"):
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or ``None`` without matplotlib."""
    matplotlib = optional_import("matplotlib", skipped)
    if matplotlib is None:
        return None
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def new_run_dir(base: str | Path = "runs", label: str = "run") -> Path:
    """``runs/<YYYYmmdd-HHMMSS>-<label>/``, created (with a suffix if the name is taken).

    A file named ``base`` (or a file on the way to it) is refused with a NotADirectoryError
    that names it, rather than the OS's "Not a directory" about the run directory inside it.
    """
    for p in (Path(base), *Path(base).parents):
        if p.exists():
            if not p.is_dir():
                where = "" if p == Path(base) else f" ({base} is inside it)"
                raise NotADirectoryError(
                    f"cannot make a run directory in {base}/: {p} is a file, not a directory"
                    f"{where}; move it, or name the output directory with --out DIR")
            break
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(base) / f"{stamp}-{label}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(base) / f"{stamp}-{label}-{suffix}"
    path.mkdir(parents=True)
    return path


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


class MetricsWriter:
    """A training callback that appends each epoch's record to ``metrics.jsonl`` as it ends
    (an ensemble member's records also name its ``member`` and ``seed``)."""

    FIELDS = ("member", "seed", "epoch", "train_cost", "train_accuracy", "validation_accuracy",
              "test_accuracy", "seconds")

    def __init__(self, path: Path):
        self.path = Path(path)

    def __call__(self, record: dict, state=None) -> None:
        row = {k: record[k] for k in self.FIELDS if k in record}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` (:class:`MetricsWriter`'s), one per line."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_history(history: Sequence[dict], path: Path, title: str = "") -> Path | None:
    """Accuracy (validation, test, train) and training cost per epoch, side by side; the
    epochs without a training cost (a run that does not monitor its training set, or was
    resumed without it) are left out of the training curves, and so is the cost panel when
    no epoch has one.

    Returns the path written, or ``None`` when matplotlib is not installed.
    """
    plt = pyplot(f"{Path(path).name} is not drawn")
    if plt is None:
        return None

    def curve(key):
        return [(r["epoch"], r[key]) for r in history if key in r]

    costs = curve("train_cost")
    # a one-point line draws nothing without a marker
    marker = "o" if len(history) == 1 or len(costs) == 1 else None
    fig, axes = plt.subplots(1, 2 if costs else 1, figsize=(11 if costs else 6, 4),
                             squeeze=False)
    acc_ax = axes[0, 0]
    for key, label in (("train_accuracy", "training"), ("validation_accuracy", "validation"),
                       ("test_accuracy", "test")):
        if points := curve(key):
            acc_ax.plot(*zip(*[(e, 100 * v) for e, v in points]), label=label, marker=marker)
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Classification accuracy")
    acc_ax.grid(alpha=0.3)
    acc_ax.legend()
    if costs:
        cost_ax = axes[0, 1]
        cost_ax.plot(*zip(*costs), color="tab:red", marker=marker)
        if all(c > 0 and math.isfinite(c) for _, c in costs):
            cost_ax.set_yscale("log")
        cost_ax.set(xlabel="epoch", ylabel="cost", title="Training cost")
        cost_ax.grid(alpha=0.3)
    return _save(plt, fig, axes, [r["epoch"] for r in history], path, title)


def plot_ensemble(records: Sequence[dict], path: Path, *, votes: dict | None = None,
                  title: str = "") -> Path | None:
    """An ensemble's members side by side: each member's test accuracy per epoch (and its
    validation accuracy, in a second panel, where there is one), from records that name their
    ``member`` (an ensemble's metrics.jsonl), with the majority vote of the final networks as a
    dashed line: ``votes`` maps "test" and "validation" to its accuracy.

    Returns the path written, or ``None`` when there is nothing to draw (no accuracy in the
    records) or matplotlib is not installed.
    """
    splits = [s for s in ("test", "validation") if any(f"{s}_accuracy" in r for r in records)]
    plt = pyplot(f"{Path(path).name} is not drawn") if splits else None
    if plt is None:
        return None
    votes = votes or {}
    fig, axes = plt.subplots(1, len(splits), figsize=(5.5 * len(splits), 4), squeeze=False)
    members = sorted({r["member"] for r in records})
    for ax, split in zip(axes.flat, splits):
        key = f"{split}_accuracy"
        for m in members:
            points = [(r["epoch"], 100 * r[key]) for r in records
                      if r["member"] == m and key in r]
            seed = next((r["seed"] for r in records if r["member"] == m and "seed" in r), None)
            ax.plot(*zip(*points), marker="o" if len(points) == 1 else None, lw=1.2,
                    label=f"member {m}" + ("" if seed is None else f" (seed {seed})"))
        if split in votes:
            ax.axhline(100 * votes[split], color="k", ls="--",
                       label=f"majority vote: {100 * votes[split]:.2f}%")
        ax.set(xlabel="epoch", ylabel="accuracy (%)", title=f"{split.capitalize()} accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(plt, fig, axes, sorted({r["epoch"] for r in records}), path, title)


def _save(plt, fig, axes, epochs: list[int], path: Path, title: str) -> Path:
    """Whole-number epoch ticks on every panel, the title, and the figure written to ``path``."""
    ticker = importlib.import_module("matplotlib.ticker")
    for ax in axes.flat:  # epochs are whole numbers: no ticks at 1.25, 1.5, ...
        ax.xaxis.set_major_locator(ticker.FixedLocator(epochs) if len(epochs) == 1
                                   else ticker.MaxNLocator(integer=True))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
