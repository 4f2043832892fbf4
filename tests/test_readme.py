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
                         cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    accuracy = re.search(r"peak test accuracy (\d+\.\d+)%", out.stdout)
    assert accuracy and 50 < float(accuracy.group(1)) <= 100, out.stdout
    errors = [float(e) for e in re.findall(r"jax.grad\| = (\S+)", out.stdout)]
    assert len(errors) == 2 and all(e < 1e-5 for e in errors), out.stdout
