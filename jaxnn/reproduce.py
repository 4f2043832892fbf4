"""Reproducing the book's result tables: run preset rows, compare with the book, write tables.

A row runs its preset ``runs`` times (seeds 0, 1, ...; an ensemble of k networks takes seeds
r k .. r k + k - 1 in run r, so no two runs share a network), takes the figure the book quotes
(``presets.book(name)["metric"]``, e.g. peak test accuracy or test accuracy at the best
validation epoch) from each run's summary, and reports the best of the runs (the book reports the
best of three) beside the mean +- standard deviation (population std, ddof = 0).

"Best" follows the book: a figure measured on the test set at the best validation epoch
(chapter 6) is taken from the run whose validation accuracy is best (:data:`CHOSEN_BY`; the last
of tied runs), "the test accuracy which corresponded to the best validation accuracy from any of
the three runs"; an ensemble's vote likewise from the run whose vote on the validation set is
best. Other figures (chapter 1's peak test accuracy, chapter 3's validation accuracies) are
their own best.

With an output directory, each run keeps its own ``OUT/PRESET/seedN/``: a finished run is kept
by the next command, an interrupted one resumed from its checkpoints (:mod:`jaxnn._reproduce_runs`).

``quick=True`` shrinks each row so CI can run it (:data:`QUICK`): few training and evaluation
images and at most two epochs. Quick figures are *not* comparable with the book; every table
says so.

Chapter 5's speed-of-learning table, :func:`gradient_norms`, is ||delta^l|| = ||dC/db^l|| for
each hidden layer l of a freshly initialised network, the gradient averaged over the first 1,000
training images, then averaged over seeds.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxnn import _checks, presets
from jaxnn._reproduce_runs import finished_run, train_run
from jaxnn.report import n_epochs

QUICK = {"train_size": 1000, "eval_size": 1000, "epochs": 2}
"""What ``--quick`` changes in every row (epochs is an upper bound)."""

class Chooser(NamedTuple):
    """How a row whose figure is measured on the test set picks the run it reports as best."""

    by: str
    """The summary's validation figure that picks the run."""
    said: str
    """What the table's footnote calls the reported figure."""


CHOSEN_BY = {
    "test_at_best_validation": Chooser(
        "best_validation_accuracy",
        "the test accuracy of the run whose validation accuracy peaked highest"),
    "ensemble_test_accuracy": Chooser(
        "ensemble_validation_accuracy",
        "the test vote of the run whose vote on the validation set was best"),
}
"""For a figure measured on the test set (a metric), the :class:`Chooser` that picks the run a
row reports as its best."""


@dataclasses.dataclass
class Row:
    """One preset's reproduction: the book's figure and ours over ``runs`` seeds (percent)."""

    preset: str
    metric: str
    book: float | None
    values: list[float]
    seconds: float
    epochs: int
    quick: bool = False
    note: str = ""
    histories: list = dataclasses.field(default_factory=list, repr=False)
    chosen_by: list[float] | None = None
    """Each run's validation figure (percent) that picks the best run (:data:`CHOSEN_BY`);
    None: the best is the largest of ``values``."""

    @property
    def best_run(self) -> int:
        """The index of the run reported as the best (of tied runs the last)."""
        key = self.values if self.chosen_by is None else self.chosen_by
        return len(key) - 1 - int(np.argmax(key[::-1]))

    @property
    def best(self) -> float:
        return self.values[self.best_run]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values))

    @property
    def difference(self) -> float | None:
        """best - book, in percentage points."""
        return None if self.book is None else self.best - self.book

    def to_json(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if k != "histories"}
        out.update(best=self.best, best_run=self.best_run, mean=self.mean, std=self.std,
                   difference=self.difference)
        return out


def quick_overrides(name: str) -> dict:
    """The settings ``--quick`` applies to preset ``name``."""
    preset = presets.get(name)
    out = dict(QUICK)
    out["epochs"] = min(preset.get("epochs", 30), QUICK["epochs"])
    if preset.get("train_size"):
        out["train_size"] = min(preset["train_size"], QUICK["train_size"])
    out["expanded"] = False  # quick rows never build the 250k-image set
    if preset.get("ensemble", 1) > 1:
        out["ensemble"] = 3  # the fewest with a majority: 2 split every disagreement
    return out


def run_row(
    name: str,
    *,
    runs: int = 3,
    quick: bool = False,
    overrides: dict | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    out: Path | None = None,
    checkpoint_every: int | None = None,
) -> Row:
    """Run preset ``name`` ``runs`` times with seeds 0 .. runs - 1 (plus ``overrides``); an
    ensemble of k networks runs with seeds 0, k, 2k, ... (its members take the seeds between).

    With ``out``, each run writes ``out/<name>/seed<N>/`` (``config.json``, ``metrics.jsonl``
    epoch by epoch, and ``summary.json`` when it ends), and a run whose directory already holds
    a summary for the same configuration is kept instead of trained again: an interrupted
    reproduction, rerun with the same ``out``, picks up where it stopped.

    ``checkpoint_every`` N (needs ``out``) also saves each run's state every N epochs into its
    ``checkpoints/`` (:class:`jaxnn.checkpoint.SaveEvery`), so that the rerun takes up an
    unfinished run from its newest checkpoint instead of from its first epoch, at that run's
    interval (given or not); it ends as it would have uninterrupted. With ``out``, an
    ensemble's members are runs of their own in ``out/<name>/seed<N>/member<i>/``: the rerun
    keeps the members that finished, and with ``checkpoint_every`` takes up the unfinished one
    from its newest checkpoint."""
    from jaxnn import experiment

    runs = _checks.positive("runs", runs, integer=True)
    if checkpoint_every is not None:
        _checks.positive("checkpoint_every", checkpoint_every, integer=True)
        if out is None:
            raise ValueError("checkpoint_every: needs out, the directory the runs write")
    book = presets.book(name)
    settings = {**(quick_overrides(name) if quick else {}), **(overrides or {})}
    values, chosen_by, histories, seconds, epochs = [], [], [], 0.0, 0
    train_seed = experiment._seeds_trainer()  # the seeds share data and compiled programs
    stride = experiment.TrainConfig.from_preset(name, **settings).ensemble
    for run in range(runs):
        seed = run * stride
        config = experiment.TrainConfig.from_preset(name, seed=seed, **settings)
        run_dir = None if out is None else Path(out) / name / f"seed{seed}"
        kept = finished_run(run_dir, config)
        if kept is None:
            summary, history = train_run(config, run_dir, progress, train_seed,
                                         checkpoint_every, log=log, label=f"{name} seed {seed}")
        else:
            summary, history = kept
        seconds += summary["run_seconds"]
        value = 100.0 * summary[book["metric"]]
        values.append(value)
        chooser = CHOSEN_BY.get(book["metric"])
        picked_by = None if chooser is None else summary.get(chooser.by)
        chosen_by.append(None if picked_by is None else 100.0 * picked_by)
        histories.append(history)
        epochs = max(epochs, summary["epochs"])
        if log:
            how = f"{summary['run_seconds']:.0f} s"
            if kept is not None:
                how += f", kept from {run_dir}"
            elif "resumed_after_epoch" in summary:
                how += f", resumed after epoch {summary['resumed_after_epoch']}"
            log(f"  {name} seed {seed}: {book['metric']} {value:.2f}% "
                f"({n_epochs(summary['epochs'])}, {how})")
    note = book.get("note", "")
    if overrides:
        note = "; ".join(filter(None, [note, "changed: " + ", ".join(
            f"{k}={v}" for k, v in overrides.items())]))
    return Row(name, book["metric"], book["value"], values, seconds, epochs, quick, note,
               histories, None if None in chosen_by else chosen_by)


def _fmt(v, fmt="{:.2f}"):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def markdown(rows: Sequence[Row]) -> str:
    """The reproduction table as Markdown (accuracies in percent)."""
    lines = ["| preset | metric | book | ours (best) | ours (mean +- std) | runs | "
             "best - book | epochs | time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r.preset}{' (quick)' if r.quick else ''} | {r.metric} | {_fmt(r.book)} | "
            f"{_fmt(r.best)} | {r.mean:.2f} +- {r.std:.2f} | {len(r.values)} | "
            f"{_fmt(r.difference, '{:+.2f}')} | {r.epochs} | {r.seconds:.0f} |")
    if any(r.quick for r in rows):
        lines.append("")
        lines.append(f"Quick mode: train_size {QUICK['train_size']} and eval_size "
                     f"{QUICK['eval_size']} unless overridden, epochs as in the table's epochs "
                     f"column; these figures are not comparable with the book's.")
    chosen = sorted({r.metric for r in rows if r.chosen_by is not None})
    if chosen:
        lines.append("")
        lines.append("ours (best): " + "; ".join(CHOSEN_BY[m].said for m in chosen) +
                     " (chapter 6's rule for picking a run), not the largest of the runs.")
    notes = [f"- {r.preset}, the book: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def gradient_norms(sizes, *, seeds: Sequence[int] = (0, 1, 2, 3, 4), images: int = 1000,
                   cost: str = "cross_entropy", init: str = "default") -> np.ndarray:
    """Chapter 5: ||delta^l|| = ||dC/db^l|| per hidden layer (first hidden layer first) at
    initialisation, C the cost averaged over the first ``images`` training images (sigmoid
    hidden and output layers); rows are seeds."""
    import jax
    import jax.numpy as jnp

    from jaxnn import costs, data, mlp

    ds = data.load("mnist")
    x = jnp.asarray(data.to_inputs(ds.train.images[:images]))
    y = jnp.asarray(data.one_hot(ds.train.labels[:images]))
    network = mlp.make(sizes, activation="sigmoid", output_activation="sigmoid", scheme=init)
    cost_fn = costs.from_logits(cost, "sigmoid")
    grad = jax.jit(jax.grad(lambda p: cost_fn(network.logits(p, x), y)))
    out = []
    for seed in seeds:
        g = grad(network.init(jax.random.key(seed)))
        out.append([float(jnp.linalg.norm(layer["b"])) for layer in g[:-1]])
    return np.asarray(out)


BOOK_GRADIENT_NORMS = {
    2: (0.066, 0.309),
    3: (0.012, 0.060, 0.283),
    4: (0.003, 0.017, 0.070, 0.285),
}


def gradient_norm_table(seeds: Sequence[int] = (0, 1, 2, 3, 4), images: int = 1000) -> tuple[
        str, dict]:
    """Markdown and JSON for chapter 5's ||delta^l|| table (mean +- std over ``seeds``)."""
    lines = ["| hidden layers | layer | book | ours (mean +- std over seeds) |",
             "|---|---|---|---|"]
    out = {}
    for depth, book in BOOK_GRADIENT_NORMS.items():
        norms = gradient_norms((784, *([30] * depth), 10), seeds=seeds, images=images)
        out[depth] = {"book": list(book), "mean": norms.mean(0).tolist(),
                      "std": norms.std(0).tolist(), "per_seed": norms.tolist()}
        for layer, b in enumerate(book):
            lines.append(f"| {depth} | {layer + 1} | {b:.3f} | {norms[:, layer].mean():.3f} "
                         f"+- {norms[:, layer].std():.3f} |")
    lines += ["", f"Seeds {list(seeds)}, first {images} training images, default init, "
              "cross-entropy cost."]
    return "\n".join(lines) + "\n", out


def plot_rows(rows: Sequence[Row], path: Path) -> Path | None:
    """Validation and test accuracy per epoch of every run, one panel per preset.

    Returns the path written, or ``None`` when matplotlib is not installed.
    """
    from jaxnn import report

    plt = report.pyplot(f"{Path(path).name} is not drawn")
    if plt is None:
        return None

    n = len(rows)
    cols = min(3, n)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.5 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        # an ensemble run's history is its last member's (the vote has no epochs)
        members = presets.get(row.preset).get("ensemble", 1) > 1
        for run, history in enumerate(row.histories):
            epochs = [r["epoch"] for r in history]
            for key, style in (("validation_accuracy", "-"), ("test_accuracy", "--")):
                if key in history[0]:
                    ax.plot(epochs, [100 * r[key] for r in history], style,
                            label=f"{key.split('_')[0]} run {run}")
        if row.book is not None:
            ax.axhline(row.book, color="k", lw=0.8, ls=":", label="book")
        title = row.preset + (" (quick)" if row.quick else "")
        ax.set(title=title + ("\ncurves: each run's last member; book: the vote" if members
                              else ""), xlabel="epoch", ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write(rows: Sequence[Row], out: Path, *, extra_markdown: str = "",
          extra_json: dict | None = None) -> dict[str, Path]:
    """``out/reproduce.md``, ``out/reproduce.json`` and ``out/curves.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "reproduce.md", "json": out / "reproduce.json"}
    paths["markdown"].write_text(markdown(rows) + ("\n" + extra_markdown if extra_markdown else ""))
    payload = {"rows": [r.to_json() for r in rows], **(extra_json or {})}
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n")
    if rows and (curves := plot_rows(rows, out / "curves.png")) is not None:
        paths["curves"] = curves
    return paths
