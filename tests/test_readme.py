"""The README's Python example runs as written."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_python_example_runs_and_its_gradients_agree(tmp_path):
    (block,) = python_blocks()
    script = tmp_path / "example.py"
    script.write_text(block)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=400)
    assert out.returncode == 0, out.stderr
    accuracy = re.search(r"peak test accuracy (\d+\.\d+)%", out.stdout)
    assert accuracy and 50 < float(accuracy.group(1)) <= 100, out.stdout
    errors = [float(e) for e in re.findall(r"jax.grad\| = (\S+)", out.stdout)]
    assert len(errors) == 2 and all(e < 1e-5 for e in errors), out.stdout


def test_every_module_of_the_tour_is_an_attribute_of_jaxnn():
    """``import jaxnn`` then ``jaxnn.cnn`` etc. works for every module the README's tour names
    and every public module in the package (they load lazily), in a fresh interpreter."""
    package = README.parent / "jaxnn"
    toured = set(re.findall(r"`jaxnn\.(\w+)`", README.read_text().split("## A tour")[1]
                            .split("\n## ")[0]))
    modules = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")} | {
        p.parent.name for p in package.glob("*/__init__.py") if p.parent.name != "cli"}
    assert toured <= modules, toured - modules
    code = ("import jaxnn, sys; names = sys.argv[1:]; "
            "assert sorted(jaxnn.__all__) == names, (jaxnn.__all__, names); "
            "[getattr(jaxnn, n) for n in names]; print('ok')")
    out = subprocess.run([sys.executable, "-c", code, *sorted(modules)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
