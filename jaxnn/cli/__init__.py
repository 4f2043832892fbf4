"""The ``jaxnn`` command line: ``jaxnn train``, and the other subcommands listed below.

Each subcommand lives in its own module with ``add_parser(subparsers)`` (which sets
``func``) so the entry point stays small. User errors (ValueError, TypeError, ImportError
and the OSErrors of a bad path: :data:`USER_ERRORS`) become a one-line message and exit
code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order ``jaxnn --help`` lists them.
SUBCOMMANDS = ("train", "reproduce", "compare", "speedrun")

# The OSErrors a user's path causes (a file where a directory should be, no permission).
USER_ERRORS = (ValueError, TypeError, ImportError, FileNotFoundError, FileExistsError,
               NotADirectoryError, IsADirectoryError, PermissionError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxnn",
        description="Train the networks of Nielsen's Neural Networks and Deep Learning in JAX.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"jaxnn.cli.{name}").add_parser(sub)
    for subparser in sub.choices.values():  # `jaxnn train --debug` as well as `jaxnn --debug train`
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                               help="show full tracebacks on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from jaxnn.cli import runtime

        runtime.configure(args)  # multi-host start and the persistent compilation cache
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("jaxnn: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"jaxnn {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
