"""The ``jaxnn`` command line: ``jaxnn train``, and the other subcommands listed below.

Each subcommand lives in its own module with ``add_parser(subparsers)`` (which sets
``func``) so the entry point stays small. User errors (ValueError, TypeError, ImportError
and the OSErrors of a bad path: :data:`USER_ERRORS`) become a one-line message and exit
code 2; ``--debug`` shows the traceback. A message that starts with a setting's name
(``train_size: ...``) names the flag that sets it instead (``--train-size: ...``), and
argparse's own errors are one line too, with a pointer to ``--help`` instead of the usage,
and a suggestion for a misspelt command, choice or flag (``jaxnn trian``: 'train').
A closed standard output (``jaxnn presets | head -3``) ends the command quietly, with exit
code 141 (128 + SIGPIPE, as a shell reports a command a closed pipe stopped) and no traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys

# Subcommand modules, in the order ``jaxnn --help`` lists them.
SUBCOMMANDS = ("train", "presets", "reproduce", "compare", "speedrun")

# The OSErrors a user's path causes (a file where a directory should be, no permission).
USER_ERRORS = (ValueError, TypeError, ImportError, FileNotFoundError, FileExistsError,
               NotADirectoryError, IsADirectoryError, PermissionError)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (and where to read the flags) instead of the usage,
    and no flag taken from its first letters: argparse would read ``--batch 10`` as
    ``--batch-norm`` (the one flag it begins) and a stray ``10``; here ``--batch`` is an
    unrecognized argument, reported with the flags it may have meant."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # the subcommands' parsers are Parsers too
        super().__init__(*args, **kwargs)

    def unrecognized(self, extra: list[str]):
        """Exit with ``unrecognized arguments: ...``, naming the flags the first unknown
        ``--flag`` in ``extra`` may have meant (:func:`close_flags`)."""
        typed = next((a.partition("=")[0] for a in extra if a.startswith("--")), None)
        close = close_flags(typed, self.long_flags()) if typed else []
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        self.error(f"unrecognized arguments: {' '.join(extra)}{hint}")

    def long_flags(self) -> list[str]:
        """Every ``--flag`` this parser knows."""
        return [o for action in self._actions for o in action.option_strings
                if o.startswith("--")]

    def error(self, message: str):
        what = "commands" if hasattr(self, "subcommands") else "flags"
        self.exit(2, f"{self.prog}: error: {message}{self._choice_hint(message)} "
                     f"('{self.prog} --help' lists the {what})\n")

    def _choice_hint(self, message: str) -> str:
        """`` (did you mean 'train'?)`` after argparse's ``argument X: invalid choice: 'trian'
        (choose from ...)``, the choice of argument X the value was most likely meant to be."""
        from jaxnn import _checks

        found = re.match(r"argument (\S+): invalid choice: '([^']*)'", message)
        if not found:
            return ""
        name, typed = found.groups()
        for action in self._actions:
            if action.choices and name in (*action.option_strings, action.metavar, action.dest):
                return _checks.did_you_mean(typed, list(action.choices))
        return ""

    field_flags: dict[str, str] = {}
    """Settings whose flag neither has their name nor stores into it (compare's --output sets
    the networks' ``output_activation``)."""

    def flag_for(self, field: str) -> str | None:
        """The option string that sets ``field`` (a dest such as ``train_size``, or a flag's
        name without its dashes, ``fd-samples``), or None where no flag does."""
        if field in self.field_flags:
            return self.field_flags[field]
        for action in self._actions:  # argparse has no public list of a parser's arguments
            if action.option_strings and (action.dest == field
                                          or f"--{field}" in action.option_strings):
                return max(action.option_strings, key=len)
        return None


def close_flags(typed: str, flags: list[str], most: int = 3) -> list[str]:
    """The flags ``typed`` may have meant, alphabetically: those it begins (``--epoch``:
    ``--epochs``), those with it as one of their words (``--batch``: ``--batch-norm``,
    ``--mini-batch-size``) and near misspellings (``--eopchs``: ``--epochs``)."""
    word = typed.lstrip("-")
    if not word:
        return []
    close = {f for f in flags if f[2:].startswith(word) or word in f[2:].split("-")}
    close.update(difflib.get_close_matches(typed, flags, n=most, cutoff=0.75))
    return sorted(close)[:most]


def in_flag_terms(message: str, parser: Parser) -> str:
    """``train_size: expected ...`` -> ``--train-size: expected ...`` where a flag sets it."""
    field, colon, rest = message.partition(":")
    named = colon and field.replace("-", "_").isidentifier()
    flag = parser.flag_for(field) if named else None
    return f"{flag}:{rest}" if flag else message


def plain(text: str | None) -> str | None:
    """A docstring as ``--help`` shows it: without reST's ``literal`` and :role:`name` marks."""
    if text is None:
        return None
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text).replace("``", "")


def _version() -> str:
    import jaxnn

    return jaxnn.__version__


def build_parser() -> Parser:
    parser = Parser(
        prog="jaxnn",
        description="Train the networks of Nielsen's Neural Networks and Deep Learning in JAX.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"jaxnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"jaxnn.cli.{name}").add_parser(sub)
    for subparser in sub.choices.values():  # `jaxnn train --debug` as well as `jaxnn --debug train`
        subparser.description = plain(subparser.description)
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                               help="show full tracebacks on errors")
    parser.subcommands = sub.choices
    return parser


EXIT_BROKEN_PIPE = 141
"""The exit code after standard output was closed under us: 128 + SIGPIPE (13)."""


def main(argv: list[str] | None = None) -> int:
    """``jaxnn ...``: the subcommand's exit code; 141 when standard output was closed early."""
    try:
        try:
            return _main(argv)
        finally:  # a closed pipe may show only when the buffered output is flushed: here, where
            sys.stdout.flush()  # it can still end quietly, not in Python's exit
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point standard output at the null device, so that the interpreter's flush at exit (of
    what is still buffered for the closed pipe) cannot fail again (the Python docs' "Note on
    SIGPIPE")."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's captured output)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()  # imports jax: seconds, in which a Ctrl-C may land
    except KeyboardInterrupt:
        print("jaxnn: interrupted", file=sys.stderr)
        return 130
    args, extra = parser.parse_known_args(argv)
    subparser = parser.subcommands[args.command]
    if extra:  # reported by the subcommand, whose flags they were meant to be
        subparser.unrecognized(extra)
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
        print(f"jaxnn {args.command}: error: {in_flag_terms(str(e), subparser)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
