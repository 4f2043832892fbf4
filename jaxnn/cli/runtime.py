"""Process-wide JAX set-up for the command line: multi-host start and the persistent
compilation cache. Not a subcommand: a subcommand opts in with ``runtime.add_flags(p)``, and
:func:`jaxnn.cli.main` calls :func:`configure` before the subcommand runs.

Compilation cache: compiled programs are written to a directory and read back by later runs
with the same program, JAX version and device, so a second ``jaxnn train`` skips XLA
compilation. The directory is, first match wins: ``--no-cache`` (off), ``--cache-dir DIR``
(``""`` is off), the environment variable ``JAXNN_CACHE_DIR`` (``""`` is off),
``$XDG_CACHE_HOME/jaxnn/jax-cache`` (default ``~/.cache/jaxnn/jax-cache``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from pathlib import Path

CACHE_ENV = "JAXNN_CACHE_DIR"


def add_flags(p: argparse.ArgumentParser, *, distributed: bool = True) -> None:
    """``--cache-dir``, ``--no-cache`` and (unless ``distributed=False``) ``--distributed``."""
    p.add_argument("--cache-dir", default=None,
                   help=f"JAX persistent compilation cache directory (default ${CACHE_ENV}, else "
                        "$XDG_CACHE_HOME/jaxnn/jax-cache, else ~/.cache/jaxnn/jax-cache; '' "
                        "disables)")
    p.add_argument("--no-cache", action="store_true",
                   help="do not read or write the persistent compilation cache")
    if not distributed:
        return
    p.add_argument("--distributed", action="store_true",
                   help="multi-host: call jax.distributed.initialize() first (cluster "
                        "auto-detection, or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
                        "JAX_PROCESS_ID)")


def given_path(flag: str, value: str | None, expected: str) -> Path | None:
    """A path flag's value as a Path (None when not given); ValueError naming ``flag`` for
    ``''``, which ``Path`` would silently turn into the current directory."""
    if value is None:
        return None
    if not str(value).strip():
        raise ValueError(f"{flag}: expected {expected}; got {str(value)!r}")
    return Path(value)


def check_output_dir(flag: str, path: Path) -> Path:
    """``path`` can be (or become) a directory: ValueError naming ``flag`` before any work
    when it, or a parent of it, is a file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                what = "is" if p == path else f"is inside {p}, which is"
                raise ValueError(f"{flag}: expected a directory; {path} {what} a file")
            _check_writable(flag, p)
            break
    return path


@contextlib.contextmanager
def exclusive(flag: str, directory: Path):
    """Hold ``directory`` while the block runs: another jaxnn command given the same directory
    meanwhile is refused at once, with ValueError naming ``flag``, where it would otherwise
    write its epochs and checkpoints among this one's (or, with --overwrite, delete them).
    The hold is the operating system's lock (flock) on the directory, which ends with the
    process however it ends, so a killed run leaves no stale lock behind. Where there is no
    such lock (Windows, a file system without flock), or ``directory`` does not exist, the
    block runs unguarded."""
    fd = _lock(flag, Path(directory))
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # which releases the lock


def _lock(flag: str, directory: Path) -> int | None:
    """An open descriptor of ``directory`` holding its exclusive lock, or None (unguarded)."""
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    try:
        fd = os.open(directory, os.O_RDONLY)  # not inherited by child processes
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ValueError(f"{flag}: {directory} is in use by another jaxnn command, which is "
                         "writing its run there; wait for it to end, or give another "
                         "directory") from None
    except OSError:  # a file system that does not lock
        os.close(fd)
        return None
    return fd


def _check_writable(flag: str, directory: Path) -> None:
    """ValueError naming ``flag`` unless a file can be made in ``directory``: tried, since
    ``os.access`` answers yes to root (Colab's user) even where the kernel refuses (/proc,
    /sys, a read-only mount)."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:  # /proc answers "No such file or directory": not worth repeating
        why = "" if e.errno == errno.ENOENT else f" ({e.strerror or type(e).__name__})"
        raise ValueError(f"{flag}: expected a directory we may write; {directory} is not "
                         f"writable{why}") from None


def check_output_file(flag: str, path: Path) -> Path:
    """``path`` can be written as a file: ValueError naming ``flag`` before any work when it
    is a directory or its directory cannot be made or written."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag}: expected a file name; {path} is a directory")
    check_output_dir(flag, path.parent)
    return path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxnn" / "jax-cache"


def cache_dir(flag: str | None = None, *, disabled: bool = False) -> Path | None:
    """The cache directory the flags and environment ask for, or None when it is off."""
    if disabled:
        return None
    value = flag if flag is not None else os.environ.get(CACHE_ENV)
    if value is None:
        return default_cache_dir()
    return Path(value).expanduser() if value.strip() else None


def enable_compilation_cache(path: Path | None, *, explicit: bool = False) -> Path | None:
    """Point JAX's persistent compilation cache at ``path`` (None: leave it off). A directory
    that cannot be made turns the cache off with a warning, or with ``explicit`` (``--cache-dir``
    given) raises ValueError before any work. Every
    compiled program is cached (minimum compile time 0 s, and no minimum entry size: -1 also
    stops JAX from raising the minimum for the cache's file system), so the one-call epoch is
    too."""
    if path is None:
        return None
    import jax

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a read-only home must not stop training ...
        if explicit:  # ... but a directory asked for by name is a mistake to report
            raise ValueError(f"cache_dir: expected a directory we can create; cannot create "
                             f"{path} ({e.strerror or e})") from None
        print(f"jaxnn: compilation cache off, cannot create {path}: {e}", file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path


def configure(args: argparse.Namespace) -> None:
    """Run before the subcommand: ``jax.distributed.initialize`` when ``--distributed`` (it
    must come before anything touches a device), then the compilation cache (on by default,
    also for subcommands without the flags)."""
    if getattr(args, "distributed", False):
        from jaxnn import parallel

        parallel.initialize_distributed()
    flag = getattr(args, "cache_dir", None)
    enable_compilation_cache(cache_dir(flag, disabled=getattr(args, "no_cache", False)),
                             explicit=flag is not None)
