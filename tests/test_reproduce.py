"""``jaxnn reproduce``: rows, tables, chapter 5's gradient norms, and the --quick CLI."""

import json

import numpy as np
import pytest

from jaxnn import reproduce
from jaxnn.cli import main
from jaxnn.cli.reproduce import select


def test_select_names_and_prefixes():
    assert select(["ch1-30"]) == ["ch1-30"]
    assert select(["ch5"]) == ["ch5-2hidden", "ch5-3hidden", "ch5-4hidden"]
    assert "ch6-conv1" in select(["ch6"])
    with pytest.raises(ValueError, match="preset"):
        select(["ch9"])


def test_markdown_row_reports_best_mean_and_difference():
    row = reproduce.Row("ch1-30", "peak_test_accuracy", 95.42, [95.0, 95.2, 94.8], 12.0, 30)
    md = reproduce.markdown([row])
    assert "| ch1-30 | peak_test_accuracy | 95.42 | 95.20 | 95.00 +- 0.16 | 3 | -0.22 |" in md
    assert row.to_json()["best"] == 95.2


def test_gradient_norms_fall_towards_the_input():
    norms = reproduce.gradient_norms((784, 30, 30, 30, 10), seeds=(0, 1), images=200)
    assert norms.shape == (2, 3)
    mean = norms.mean(0)
    assert mean[0] < mean[1] < mean[2]
    assert np.all(norms > 0)


def test_quick_cli_runs_one_mlp_and_one_ch6_row(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "ch1-30", "ch6-conv1", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "QUICK" in printed and "quick" in printed.lower()
    table = json.loads((out / "reproduce.json").read_text())
    rows = {r["preset"]: r for r in table["rows"]}
    assert set(rows) == {"ch1-30", "ch6-conv1"}
    for r in rows.values():
        assert r["quick"] and len(r["values"]) == 1 and 0 < r["best"] <= 100
        assert r["epochs"] == 2
    assert rows["ch1-30"]["book"] == 95.42 and rows["ch6-conv1"]["book"] == 98.78
    assert "(quick)" in (out / "reproduce.md").read_text()
    assert (out / "curves.png").stat().st_size > 0
