"""The course notebooks: built from their sources, committed without outputs, and every one runs
top to bottom in quick mode (JAXNN_QUICK=1) without a failing cell."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _build_module():
    spec = importlib.util.spec_from_file_location("notebooks_build", NOTEBOOKS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()


def test_every_source_has_a_committed_notebook():
    assert [p.stem for p in PATHS] == [s.stem for s in build.sources()]
    assert len(PATHS) >= 10


def test_notebooks_are_up_to_date_with_their_sources():
    assert build.build(check=True) == 0, "run `python notebooks/build.py` and commit the result"


@pytest.mark.parametrize("argv, fragment", [
    (["--execute", "unused", "--only", "99"], "--only: expected notebook number prefixes"),
    (["--quick"], "give --execute DIR"),
    (["--only", "04"], "give --execute DIR"),
])
def test_build_refuses_options_that_would_run_nothing(argv, fragment, capsys, tmp_path):
    argv = [str(tmp_path / a) if a == "unused" else a for a in argv]
    with pytest.raises(SystemExit) as info:
        build.main(argv)
    assert info.value.code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text())
    text = path.read_text()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: committed with outputs"
            assert cell["execution_count"] is None
    assert build.colab_url(path.name) in "".join(nb["cells"][0]["source"])
    setup = "".join(nb["cells"][1]["source"])
    assert build.REPO_URL in setup and "except ImportError" in setup
    assert 'os.environ.get("JAXNN_QUICK") == "1"' in setup
    # no local paths: nothing absolute under a home, a work tree or a temporary folder
    assert not re.search(r"(/home/|/work/|/tmp/|/Users/|[A-Z]:\\\\)", text), path.name


@pytest.mark.parametrize("installed, expected", [
    ({"jax-cuda12-plugin"}, "jax[cuda12]"),
    ({"jax-cuda13-plugin", "jax-cuda12-plugin"}, "jax[cuda13]"),
    ({"libtpu"}, "jax[tpu]"),
    (set(), None),
])
def test_setup_cell_installs_jax_for_the_runtimes_accelerator(installed, expected):
    """On Colab the set-up cell upgrades jax together with the runtime's accelerator plugin."""
    import types

    code = build.SETUP.format(repo=build.REPO_URL).split("\ntry:\n    import jaxnn")[0]
    namespace = {}
    exec(code, namespace)

    def version(name):
        if name in installed:
            return "1.0"
        raise namespace["metadata"].PackageNotFoundError(name)

    namespace["metadata"] = types.SimpleNamespace(
        version=version, PackageNotFoundError=namespace["metadata"].PackageNotFoundError)
    assert namespace["accelerator_jax"]() == expected


def test_parse_rejects_code_without_a_marker():
    with pytest.raises(ValueError, match="before the first"):
        build.parse("x = 1\n# %%\ny = 2\n")
    assert build.parse("# %% [markdown]\n# # Title\n\n# %%\nx = 1\n") == [
        ("markdown", "# Title"), ("code", "x = 1")]


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    """Every cell runs, in a temporary working directory, with this interpreter's kernel. The
    kernels share their worker's compilation cache (conftest.py) and cache every program: the
    notebooks compile many of the same small ones (random draws, MNIST scaling, the same
    networks)."""
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugger warning
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    nb = build.execute(path, workdir=tmp_path, quick=True, timeout=300)
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.execution_count for c in ran), f"{path.name}: a cell did not run"
    errors = [o for c in ran for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    assert list(tmp_path.iterdir()) == [], f"{path.name} wrote files: {list(tmp_path.iterdir())}"
