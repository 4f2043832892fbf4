"""``jaxnn presets``: the book's experiments that ``jaxnn train --preset`` and ``jaxnn
reproduce`` run, with their settings and the figure the book reports for each."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("presets", help="list the presets: each row's settings and the book's "
                       "figure", description=__doc__)
    p.add_argument("names", nargs="*", metavar="PRESET",
                   help="presets to show (names or prefixes such as ch3; default: all)")
    p.set_defaults(func=run)


def table(names) -> str:
    """A Markdown table of presets ``names``: what each trains and the book's figure."""
    from jaxnn import config as config_module
    from jaxnn import presets
    from jaxnn.cli.train import describe

    lines = ["| preset | network and settings (others: chapter 1's) | book | metric |",
             "|---|---|---|---|"]
    for name in names:
        config = config_module.TrainConfig.from_preset(name)
        setting = describe(config).split(" ", 1)[1]  # without the preset's own name
        book = presets.book(name)
        value = "" if book["value"] is None else f"{book['value']:g}"
        note = f" ({book['note']})" if book.get("note") else ""
        lines.append(f"| {name} | {setting} | {value} | {book['metric']}{note} |")
    return "\n".join(lines)


def run(args) -> int:
    from jaxnn import presets

    names = presets.match(args.names) if args.names else list(presets.PRESETS)
    print(table(names))
    print(f"\nTrain one: jaxnn train --preset NAME (default {presets.DEFAULT}); any flag "
          "overrides its setting. Reproduce rows: jaxnn reproduce NAME_OR_PREFIX ...")
    return 0
