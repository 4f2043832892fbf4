"""``jaxnn compare``: the table, the exit status on a violated tolerance, chapter 5's norms."""

import pytest

from jaxnn.cli import main


def test_compare_mlp_agrees_and_prints_a_row_per_parameter(capsys):
    assert main(["compare", "--batch", "3", "--sizes", "784,8,10"]) == 0
    out = capsys.readouterr().out
    for leaf in ("[0]['w']", "[0]['b']", "[1]['w']", "[1]['b']"):
        assert leaf in out
    assert "all gradients agree" in out and "| NO |" not in out


def test_compare_exits_1_when_a_tolerance_is_violated(capsys):
    assert main(["compare", "--batch", "3", "--sizes", "784,8,10", "--tol", "1e-30"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "| NO |" in out


def test_compare_float64_relu_softmax_l2(capsys):
    args = ["compare", "--batch", "2", "--sizes", "784,6,10", "--float64", "--activation",
            "relu", "--output", "softmax", "--cost", "log_likelihood", "--l2", "0.5"]
    try:
        assert main(args) == 0
    finally:
        import jax

        jax.config.update("jax_enable_x64", False)
    assert "float64" in capsys.readouterr().out


def test_compare_cnn(capsys):
    assert main(["compare", "--model", "conv1", "--batch", "2", "--fd-samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "['layers'][0]['kernel'] | (5, 5, 1, 20)" in out
    assert "for information" in out  # relu and max pooling: kinks


def test_speed_of_learning_manual_equals_autodiff(capsys):
    assert main(["compare", "--speed-of-learning", "--seeds", "1", "--images", "50"]) == 0
    rows = [r.split("|") for r in capsys.readouterr().out.splitlines() if r.startswith("| 4 |")]
    assert len(rows) == 4
    for row in rows:
        assert float(row[4]) == pytest.approx(float(row[5]), rel=1e-3)


@pytest.mark.parametrize("args, match", [(["--batch", "0"], "batch"),
                                         (["--model", "conv9"], "model"),
                                         (["--activation", "sigmod"], "activation"),
                                         # settings that would be ignored are refused
                                         (["--model", "conv1", "--sizes", "784,30,10"], "sizes"),
                                         (["--model", "conv1", "--output", "softmax"], "output"),
                                         (["--model", "conv1", "--cost", "quadratic"], "cost"),
                                         (["--model", "conv1", "--l2", "1"], "l2"),
                                         (["--speed-of-learning", "--model", "conv1"], "model"),
                                         (["--speed-of-learning", "--sizes", "784,5,10"],
                                          "sizes")])
def test_compare_rejects_bad_arguments(args, match, capsys):
    assert main(["compare", *args]) == 2
    assert match in capsys.readouterr().err
