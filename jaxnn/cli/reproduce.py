"""``jaxnn reproduce``: run rows of the book's result tables and print ours beside the book's."""

from __future__ import annotations

import argparse

DEFAULT_ROWS = ("ch1", "ch3", "ch5")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="reproduce the book's result tables (chapters 1, 3, 5 and 6)",
        description=__doc__ + " PRESET may be a preset name or a prefix such as ch3 "
        "(default: every ch1, ch3 and ch5 row).")
    p.add_argument("presets", nargs="*", metavar="PRESET", help="rows to run (names or prefixes)")
    p.add_argument("--runs", type=int, default=None, help="runs per row (seeds 0..N-1); best "
                   "is reported beside the mean +- std (default 3, as the book; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="tiny data and at most 2 epochs, for CI: not comparable with the book")
    p.add_argument("--epochs", type=int, help="override every row's epochs (marked in the table)")
    p.add_argument("--no-gradient-norms", action="store_true",
                   help="skip chapter 5's ||delta^l|| table")
    p.add_argument("--out", help="output directory (default runs/<time>-reproduce/); "
                   "each run writes OUT/PRESET/seedN/, and rerunning with the same --out keeps "
                   "the runs that finished there with the same settings")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="save each run's state every N epochs into "
                   "OUT/PRESET/seedN/checkpoints/, so that the same command, run again after an "
                   "interruption, goes on from the newest checkpoint (at the interval the run "
                   "started with) instead of the run's first epoch; an ensemble's members "
                   "each have theirs, in OUT/PRESET/seedN/memberI/")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="a progress bar (epochs) for the run in progress (default: shown)")
    p.set_defaults(func=run)


def select(names) -> list[str]:
    """Preset names from names or prefixes (every default row when none is given); ValueError
    for no match (:func:`jaxnn.presets.match`)."""
    from jaxnn import presets

    return presets.match(list(names) or list(DEFAULT_ROWS))


def run(args) -> int:
    from jaxnn import _checks, report

    names = select(args.presets)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    _checks.positive("runs", runs, integer=True)  # before the output directory is made
    if args.epochs is not None:
        _checks.positive("epochs", args.epochs, integer=True)
    if args.checkpoint_every is not None:
        _checks.positive("checkpoint_every", args.checkpoint_every, integer=True)
    from jaxnn.cli import runtime

    given = runtime.given_path("out", args.out, "a directory name")  # '' is not '.'
    out = runtime.check_output_dir("out", given) if given is not None else \
        report.new_run_dir("runs", "reproduce")
    out.mkdir(parents=True, exist_ok=True)
    with runtime.exclusive("out", out):  # no other command may write its runs there meanwhile
        return _run_rows(args, names, runs, out)


def _run_rows(args, names: list[str], runs: int, out) -> int:
    from jaxnn import reproduce

    overrides = {"epochs": args.epochs} if args.epochs is not None else None
    mode = _mode(args.quick, overrides, reproduce.QUICK)
    print(f"jaxnn reproduce: {len(names)} rows x {runs} runs, {mode} -> {out}", flush=True)
    for name, how_long in _long_rows_on_a_cpu(names, args, overrides or {}):
        print(f"jaxnn reproduce: note: {name} trains {how_long} a run; --checkpoint-every N "
              "saves each run's epochs, so that the same command, run again, goes on after an "
              "interruption", flush=True)
    rows = []
    try:
        for name in names:
            row = reproduce.run_row(name, runs=runs, quick=args.quick, overrides=overrides,
                                    progress=args.progress, log=lambda s: print(s, flush=True),
                                    out=out, checkpoint_every=args.checkpoint_every)
            rows.append(row)
            reproduce.write(rows, out)  # keep what is done if a later row is interrupted
    except KeyboardInterrupt:  # Ctrl-C: say what is kept and how to go on
        import sys

        where = ("from its newest checkpoint, if it has one" if args.checkpoint_every else
                 "from its first epoch (--checkpoint-every N saves its epochs as it goes)")
        print(f"jaxnn reproduce: interrupted; {out} keeps every run that finished (and every "
              f"ensemble member), and the same command with --out {out} trains the rest, the "
              f"run in progress {where}", file=sys.stderr)
        return 130
    extra_md, extra_json = "", {}
    if not args.no_gradient_norms and any(n.startswith("ch5") for n in names):
        seeds = (0, 1) if args.quick else (0, 1, 2, 3, 4)
        images = 100 if args.quick else 1000
        md, js = reproduce.gradient_norm_table(seeds=seeds, images=images)
        extra_md = "Chapter 5: ||delta^l|| at initialisation\n\n" + md
        extra_json = {"gradient_norms": js}
    paths = reproduce.write(rows, out, extra_markdown=extra_md, extra_json=extra_json)
    print()
    print(paths["markdown"].read_text())
    if args.quick:
        print(f"NOTE: {mode}: --quick shrank data and epochs; the figures above are a smoke "
              "test only.")
    elif overrides:
        print(f"NOTE: {mode}.")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _long_rows_on_a_cpu(names: list[str], args, overrides: dict) -> list[tuple[str, str]]:
    """``(row, how long a run takes)`` for the rows that train on the expanded data for a
    quarter of an hour or more on a CPU, when they are to run without checkpoints."""
    if args.quick or args.checkpoint_every is not None:
        return []
    from jaxnn import experiment
    from jaxnn.cli.rundir import long_on_a_cpu

    found = [(name, long_on_a_cpu(experiment.TrainConfig.from_preset(name, **overrides)))
             for name in names]
    return [(name, how_long) for name, how_long in found if how_long]


def _mode(quick: bool, overrides: dict | None, quick_settings: dict) -> str:
    """What the header and footer say about the settings actually used: --quick's (with the
    overrides applied), the book's with the overrides, or the book's ("full settings")."""
    overrides = overrides or {}
    if quick:
        used = {**quick_settings, **overrides}
        if "epochs" not in overrides:  # a preset with fewer epochs keeps its own
            used["epochs"] = f"at most {quick_settings['epochs']}"
        return (f"QUICK mode {used}, no expanded data, ensembles of 3 members (not "
                f"comparable with the book)")
    if overrides:
        changed = ", ".join(f"{k} {v}" for k, v in overrides.items())
        return f"the book's settings except {changed} (not comparable with the book)"
    return "full settings"
