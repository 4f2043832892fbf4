"""Every ``>>>`` example in the docstrings of jaxnn and manual_grad runs and prints what it says
(examples marked ``# doctest: +SKIP`` need a cluster, several devices or a long run)."""

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_examples() -> list[str]:
    names = []
    for package in ("jaxnn", "manual_grad"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text():
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_docstring_examples_are_found():
    for name in ("jaxnn.config", "jaxnn.experiment", "jaxnn.mlp", "jaxnn.costs",
                 "manual_grad.backprop"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, capsys):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, capsys.readouterr().out
