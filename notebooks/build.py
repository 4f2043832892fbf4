"""Build the course notebooks from their percent-format sources, check them, or run them.

Each notebook's source is ``notebooks/src/NN_topic.py``: cells separated by ``# %%`` lines
(code) and ``# %% [markdown]`` lines (prose, each line a ``# `` comment). The build prepends two
cells to every notebook: an "Open in Colab" badge with the title, and a set-up cell that installs
jaxnn from ``REPO_URL`` when ``import jaxnn`` fails and reads quick mode (``JAXNN_QUICK=1``).

    python notebooks/build.py                 # write notebooks/NN_topic.ipynb (no outputs)
    python notebooks/build.py --check         # exit 1 when a committed .ipynb is stale
    python notebooks/build.py --execute DIR   # run every notebook, outputs saved under DIR
    python notebooks/build.py --execute DIR --quick --only 03   # quick mode, one notebook

Only the standard library and nbformat are needed to build; nbclient and ipykernel to execute.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_URL = "https://github.com/jaxnn/jaxnn"
"""The project's repository: the Colab badges and the install cell point here (and only here)."""

BRANCH = "main"
HERE = Path(__file__).resolve().parent
SRC = HERE / "src"

SETUP = '''\
# Set-up: install jaxnn when it is missing (on Colab), and read quick mode.
import os
import subprocess
import sys
from importlib import metadata


def accelerator_jax():
    """The jax extra matching the runtime's accelerator plugin (None on a CPU runtime):
    upgrading jax alone would leave an older plugin behind, and jax would fall back to the CPU."""
    for extra, plugin in (("cuda13", "jax-cuda13-plugin"), ("cuda12", "jax-cuda12-plugin"),
                          ("tpu", "libtpu")):
        try:
            metadata.version(plugin)
            return f"jax[{{extra}}]"
        except metadata.PackageNotFoundError:
            pass
    return None


try:
    import jaxnn
except ImportError:
    extra = accelerator_jax()
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "git+{repo}.git", *([extra] if extra else [])])
    import jaxnn

# JAXNN_QUICK=1 scales epochs and data down (the test suite runs every notebook this way).
QUICK = os.environ.get("JAXNN_QUICK") == "1"


def scaled(full, quick):
    """``full`` normally, ``quick`` in quick mode."""
    return quick if QUICK else full


import matplotlib.pyplot as plt

%matplotlib inline
plt.rcParams.update({{"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3}})
print("jaxnn", jaxnn.__version__, "| quick mode" if QUICK else "| full mode")'''


def parse(text: str) -> list[tuple[str, str]]:
    """Percent-format source to ``[(cell_type, source), ...]``."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            cells.append((kind, []))
            continue
        if not cells:
            if line.strip() and not line.startswith("#"):
                raise ValueError(f"code before the first '# %%' marker: {line!r}")
            continue
        kind, lines = cells[-1]
        if kind == "markdown":
            if line.strip() and not line.startswith("#"):
                raise ValueError(f"markdown line without '# ': {line!r}")
            line = line[2:] if line.startswith("# ") else line.lstrip("#")
        lines.append(line)
    out = []
    for kind, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines:
            out.append((kind, "\n".join(lines)))
    return out


def colab_url(name: str) -> str:
    path = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/notebooks/{name}"


def notebook(src: Path):
    """The nbformat notebook built from ``src``."""
    import nbformat

    cells = parse(src.read_text())
    if not cells or cells[0][0] != "markdown" or not cells[0][1].startswith("# "):
        raise ValueError(f"{src.name}: the first cell must be markdown starting with '# Title'")
    name = src.with_suffix(".ipynb").name
    badge = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
             f"({colab_url(name)})")
    v4 = nbformat.v4
    nb = v4.new_notebook()
    title, rest = cells[0][1], cells[1:]
    nb.cells = [v4.new_markdown_cell(badge + "\n\n" + title),
                v4.new_code_cell(SETUP.format(repo=REPO_URL))]
    for kind, source in rest:
        nb.cells.append(v4.new_markdown_cell(source) if kind == "markdown"
                        else v4.new_code_cell(source))
    for i, cell in enumerate(nb.cells):  # stable ids, so rebuilding changes nothing
        cell["id"] = f"{src.stem[:2]}-{i:03d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "accelerator": "GPU" if "accelerator" in src.stem else "None",
    }
    return nb


def sources() -> list[Path]:
    return sorted(SRC.glob("[0-9][0-9]_*.py"))


def render(src: Path) -> str:
    import nbformat

    return nbformat.writes(notebook(src)) + "\n"


def build(check: bool = False) -> int:
    stale = []
    for src in sources():
        target = HERE / src.with_suffix(".ipynb").name
        text = render(src)
        if check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.name)
        elif not target.exists() or target.read_text() != text:
            target.write_text(text)
            print("wrote", target.relative_to(HERE.parent))
    if stale:
        print("stale notebooks (run `python notebooks/build.py`):", ", ".join(stale))
        return 1
    return 0


def execute(path: Path, *, workdir: Path, quick: bool, timeout: int = 3600):
    """Run the notebook at ``path`` top to bottom in ``workdir``; returns the executed notebook.
    Raises ``nbclient.exceptions.CellExecutionError`` when a cell fails."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("JAXNN_QUICK")
    os.environ["JAXNN_QUICK"] = "1" if quick else "0"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        if old is None:
            os.environ.pop("JAXNN_QUICK", None)
        else:
            os.environ["JAXNN_QUICK"] = old
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    parser.add_argument("--check", action="store_true", help="fail when a notebook is stale")
    parser.add_argument("--execute", metavar="DIR", help="run the notebooks, save them in DIR")
    parser.add_argument("--quick", action="store_true", help="with --execute: JAXNN_QUICK=1")
    parser.add_argument("--only", nargs="*", default=None, help="notebook number prefixes")
    args = parser.parse_args(argv)
    if args.execute is None:
        if args.quick or args.only is not None:
            parser.error("--quick and --only choose what --execute runs; give --execute DIR")
        return build(check=args.check)
    chosen = [src for src in sources()
              if not args.only or any(src.name.startswith(p) for p in args.only)]
    if not chosen:
        parser.error(f"--only: expected notebook number prefixes such as 04; got "
                     f"{' '.join(args.only)} (notebooks: "
                     f"{', '.join(src.name[:2] for src in sources())})")
    import nbformat

    out = Path(args.execute).resolve()
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for src in chosen:
        path = HERE / src.with_suffix(".ipynb").name
        start = time.perf_counter()
        try:
            nb = execute(path, workdir=out, quick=args.quick)
        except Exception as e:  # report every failing notebook, then fail
            failed.append(path.name)
            print(f"FAILED {path.name}: {str(e)[-2000:]}", file=sys.stderr)
            continue
        nbformat.write(nb, out / path.name)
        print(f"ran {path.name} in {time.perf_counter() - start:.1f} s -> {out / path.name}")
    if failed:
        print("failed:", ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
