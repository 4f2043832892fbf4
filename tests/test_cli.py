import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxnn.cli import main


def test_train_writes_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--epochs", "2", "--train-size", "3000", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Epoch 0: " in printed and "/ 10000" in printed
    config = json.loads((out / "config.json").read_text())
    assert config["sizes"] == [784, 30, 10] and config["eta"] == 3.0
    assert config["preset"] == "ch1-30"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert {"train_cost", "validation_accuracy", "test_accuracy", "seconds"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    for key in ("peak_test_accuracy", "final_test_accuracy", "best_validation_accuracy",
                "test_at_best_validation", "seconds_per_epoch"):
        assert key in summary
    assert (out / "curves.png").stat().st_size > 10_000


def test_train_runs_without_tqdm_and_matplotlib(tmp_path, capsys, monkeypatch):
    """A machine set up with ``pip install --no-deps`` may lack them: the run still completes."""
    from jaxnn import report

    for name in ("tqdm", "tqdm.auto", "matplotlib", "matplotlib.pyplot"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import raise ImportError
    monkeypatch.setattr(report, "_missing_said", set())
    out = tmp_path / "run"
    code = main(["train", "--epochs", "1", "--train-size", "1000", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    assert "Epoch 0: " in captured.out
    assert "tqdm is not installed, so no progress bar is shown" in captured.err
    assert "matplotlib is not installed, so curves.png is not drawn" in captured.err
    assert (out / "summary.json").exists() and not (out / "curves.png").exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--activation", "sigmod"], "activation: expected one of"),
        (["train", "--cost", "hinge"], "cost: expected one of"),
        (["train", "--optimizer", "sgdd"], "optimizer: expected one of"),
        (["train", "--eta", "0"], "eta: expected a positive number"),
        (["train", "--mini-batch-size", "0"], "--mini-batch-size: expected a positive integer"),
        (["train", "--sizes", "784,30,9"], "sizes: the last layer"),
        (["train", "--preset", "nope"], "preset: expected one of"),
        (["train", "--checkpoint-every", "0"], "--checkpoint-every: expected a positive integer"),
    ],
)
def test_user_errors_are_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ goes here, never into the repository
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err and "Traceback" not in err
    assert not list(tmp_path.glob("runs/*")), "a failed run left its run directory behind"


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--epochs", "1", "--out", "afile"], "out: expected a directory; afile is a file"),
    (["train", "--epochs", "1", "--out", "afile/run"],
     "out: expected a directory; afile/run is inside afile, which is a file"),
    (["reproduce", "ch1-30", "--quick", "--out", "afile"], "out: expected a directory"),
    (["speedrun", "--quick", "--json", "afile/r.json"], "json: expected a directory"),
    (["speedrun", "--quick", "--json", "."], "json: expected a file name; . is a directory"),
])
def test_output_paths_are_checked_before_any_work(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a directory")
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert fragment in err and "\n" not in err and "Traceback" not in err
    assert "Epoch" not in captured.out and "seed 0" not in captured.out  # nothing trained
    assert not list(tmp_path.glob("runs/*"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("argv, flag", [
    (["train", "--epochs", "1", "--out", "/proc/jaxnn-test-run"], "--out"),
    (["reproduce", "ch1-30", "--quick", "--out", "/proc/jaxnn-test-run"], "--out"),
    (["speedrun", "--quick", "--json", "/proc/jaxnn-test-run/r.json"], "--json"),
])
def test_an_unwritable_output_is_refused_before_any_work_even_for_root(argv, flag, capsys):
    """/proc refuses new files to every user, root too, for whom os.access says yes (Colab
    runs as root): the check makes a file to find out."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().endswith(
        f"{flag}: expected a directory we may write; /proc is not writable"), captured.err
    assert "Epoch" not in captured.out and "seed 0" not in captured.out  # nothing trained


def test_console_script_exit_code_and_debug():
    cmd = [sys.executable, "-m", "jaxnn", "train", "--eta", "-1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "eta" in out.stderr
    out = subprocess.run([sys.executable, "-m", "jaxnn", "--debug", "train", "--eta", "-1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "Traceback" in out.stderr


@pytest.mark.parametrize("command", ["train", "reproduce", "compare", "speedrun"])
@pytest.mark.parametrize("before", [True, False], ids=["jaxnn --debug CMD", "jaxnn CMD --debug"])
def test_debug_raises_the_error_wherever_it_is_given(command, before, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    bad = {"train": ["--eta", "-1"], "reproduce": ["ch9"], "compare": ["--sizes", "784,x,10"],
           "speedrun": ["--epochs", "0"]}[command]
    argv = ["--debug", command, *bad] if before else [command, *bad, "--debug"]
    with pytest.raises(ValueError):
        main(argv)
    assert main([command, *bad]) == 2  # without --debug: the one-line error


TINY = ["--train-size", "200", "--eval-size", "200", "--epochs", "1", "--no-progress"]


def _one_line_error(capsys, fragment):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert fragment in err, err
    assert "\n" not in err and "Traceback" not in err
    assert "Epoch" not in captured.out  # nothing trained
    return err


@pytest.mark.parametrize("argv, fragment", [
    # an explicit --init means nothing to a CNN (it has its own initialisation)
    (["train", "--preset", "ch6-conv1", "--init", "he"], "init: expected only with model 'mlp'"),
    (["train", "--model", "conv1", "--cost", "log_likelihood", "--output", "softmax",
      "--init", "xavier"], "init: expected only with model 'mlp'"),
    # '' is not the current directory
    (["train", "--out", ""], "out: expected a directory name; got ''"),
    (["train", "--resume", ""], "resume: expected a run directory; got ''"),
    # there are 10,000 validation and 10,000 test images
    (["train", "--eval-size", "20000"],
     "--eval-size: expected at most the 10000 validation and 10000 test examples of mnist; "
     "got 20000"),
])
def test_more_user_errors_are_one_line(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*TINY, *argv] if argv[0] != "train" else ["train", *TINY, *argv[1:]]) == 2
    _one_line_error(capsys, fragment)
    assert not list(tmp_path.glob("runs/*")), "a failed run left its run directory behind"
    assert not list(tmp_path.glob("*.json")), "a failed run wrote into the current directory"


@pytest.mark.parametrize("argv, fragment", [
    (["reproduce", "ch1-30", "--quick", "--out", ""], "out: expected a directory name; got ''"),
    (["speedrun", "--quick", "--json", ""], "json: expected a file name; got ''"),
])
def test_empty_output_paths_are_refused(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    _one_line_error(capsys, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cnn_presets_keep_their_default_init(tmp_path, capsys):
    """A CNN preset carries the dataclass's init; only an explicit --init is refused."""
    from jaxnn.config import TrainConfig

    assert TrainConfig.from_preset("ch6-conv1").model != "mlp"
    assert TrainConfig.from_preset("ch6-conv1", init=None).init == TrainConfig().init


def test_dataset_names_are_case_insensitive_for_the_embedded_mnist(tmp_path, capsys):
    from jaxnn import data
    from jaxnn.config import TrainConfig

    assert TrainConfig.from_preset(None, dataset="MNIST").dataset == "mnist"
    assert data.load("Mnist", validation_size=None).name == "mnist"
    out = tmp_path / "run"
    assert main(["train", *TINY, "--dataset", "MNIST", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["dataset"] == "mnist"


def test_an_explicit_cache_dir_that_cannot_be_made_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a directory")
    assert main(["train", *TINY, "--cache-dir", "afile"]) == 2
    _one_line_error(capsys, "--cache-dir: expected a directory we can create; cannot create afile")
    assert not (tmp_path / "runs").exists()


def test_a_cache_dir_from_the_environment_only_warns(tmp_path, capsys, monkeypatch):
    from jaxnn.cli import runtime

    (tmp_path / "afile").write_text("not a directory")
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "afile"))
    assert runtime.enable_compilation_cache(runtime.cache_dir(None)) is None
    assert "compilation cache off, cannot create" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["train", "--output", "sigmod"],
     "jaxnn train: error: --output: expected one of sigmoid, softmax, identity; got 'sigmod'"),
    (["train", "--train-size", "0"],
     "jaxnn train: error: --train-size: expected a positive integer; got 0"),
    (["train", "--train-size", "70000", "--epochs", "1"],
     "jaxnn train: error: --train-size: expected at most the 50000 training examples of mnist; "
     "got 70000"),
    (["train", "--mini-batch-size", "0"],
     "jaxnn train: error: --mini-batch-size: expected a positive integer; got 0"),
    (["speedrun", "--batch-size", "70000", "--no-cache"],
     "jaxnn speedrun: error: --batch-size: expected at most"),
])
def test_errors_name_the_flag_that_was_typed(argv, expected, capsys, tmp_path, monkeypatch):
    """A setting's error names the flag (--train-size), not the config field (train_size)."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(expected) and "\n" not in err, err


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--epochs", "x"], "jaxnn train: error: argument --epochs: invalid int value: 'x'"),
    (["train", "--no-such-flag"], "jaxnn train: error: unrecognized arguments: --no-such-flag"),
    (["speedrun", "--dtype", "float8"], "jaxnn speedrun: error: argument --dtype: invalid choice"),
    ([], "jaxnn: error: the following arguments are required: COMMAND"),
])
def test_argument_errors_are_one_line_with_a_pointer_to_help(argv, fragment, capsys):
    """argparse's errors: the one line and where the flags are listed, not the whole usage."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(fragment) and "\n" not in err, err
    assert err.endswith("--help' lists the commands)" if not argv else "--help' lists the flags)")


@pytest.mark.parametrize("argv, expected", [
    # argparse would take --batch for --batch-norm (the only flag it begins) and then reject 10
    (["train", "--batch", "10"], "jaxnn train: error: unrecognized arguments: --batch 10 "
                                 "(did you mean --batch-norm or --mini-batch-size?)"),
    (["train", "--epoch", "1"], "jaxnn train: error: unrecognized arguments: --epoch 1 "
                                "(did you mean --epochs?)"),
    (["compare", "--float", "--seed", "0"],
     "jaxnn compare: error: unrecognized arguments: --float (did you mean --float64?)"),
    (["--deb", "presets"], "jaxnn presets: error: unrecognized arguments: --deb "
                           "(did you mean --debug?)"),
    (["train", "--zzz"], "jaxnn train: error: unrecognized arguments: --zzz ('jaxnn train"),
])
def test_a_flag_is_never_taken_from_its_first_letters(argv, expected, capsys, tmp_path,
                                                     monkeypatch):
    """A shortened flag is an error that names the flags it may have meant, never quietly
    another flag: `--batch` is not `--batch-norm`, which batch-normalizes the network."""
    monkeypatch.chdir(tmp_path)  # were a shortened flag taken, its run would land here
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(expected) and "\n" not in err, err


@pytest.mark.parametrize("argv, hint", [
    (["trian"], "(did you mean 'train'?)"),
    (["speedrun", "--dtype", "float33"], "(did you mean 'float32'?)"),
    (["speedrun", "--dtype", "BFloat16"], "(did you mean 'bfloat16'?)"),
])
def test_a_misspelt_command_or_choice_gets_a_suggestion(argv, hint, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "invalid choice" in err and hint in err and "\n" not in err, err


def test_the_start_line_names_every_setting_that_is_not_chapter_1s(tmp_path, capsys):
    """Two runs of one preset with different flags are told apart by their first line."""
    assert main(["train", "--preset", "ch3-l2-30", "--train-size", "200", "--eval-size", "100",
                 "--epochs", "1", "--optimizer", "adam", "--eta", "0.001", "--no-progress",
                 "--out", str(tmp_path / "r")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == ("jaxnn train: ch3-l2-30 [784,30,10] sigmoid/sigmoid, cross_entropy cost, "
                     "eta 0.001, mini-batch 10, 1 epoch, l2 5.0, optimizer adam, train_size 200, "
                     f"eval_size 100 -> {tmp_path / 'r'}"), first


def test_presets_lists_each_rows_settings_and_the_books_figure(capsys):
    assert main(["presets", "ch3-l2", "ch6-dropout-fast"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ch")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| ch3-l2-30", "| ch3-l2-1k", "| ch3-l2-100", "| ch3-l2-100-60", "| ch6-dropout-fast"]
    assert rows[0] == ("| ch3-l2-30 | [784,30,10] sigmoid/sigmoid, cross_entropy cost, eta 0.5, "
                       "mini-batch 10, 30 epochs, l2 5.0 | 96.49 | peak_test_accuracy |")
    assert "optimizer adam, schedule one-cycle" in rows[-1] and "| 99.6 |" in rows[-1]
    assert main(["presets"]) == 0
    from jaxnn import presets

    lines = capsys.readouterr().out.splitlines()
    assert len([line for line in lines if line.startswith("| ")]) == len(presets.PRESETS) + 1


@pytest.mark.parametrize("argv, suggestion", [
    (["--activation", "sigmod"], "got 'sigmod' (did you mean 'sigmoid'?)"),
    (["--activation", "ReLU"], "got 'ReLU' (did you mean 'relu'?)"),
    (["--schedule", "one_cycle"], "got 'one_cycle' (did you mean 'one-cycle'?)"),
    (["--cost", "cross-entropy"], "got 'cross-entropy' (did you mean 'cross_entropy'?)"),
    (["--preset", "CH1-30"], "got 'CH1-30' (did you mean 'ch1-30'?)"),
])
def test_a_misspelt_name_gets_a_suggestion(argv, suggestion, capsys, tmp_path):
    assert main(["train", *argv, "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(suggestion) and err.count("\n") == 0, err
    assert not (tmp_path / "r").exists()


def test_help_shows_plain_text_and_version_is_known(capsys):
    import jaxnn

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = capsys.readouterr().out
    assert "jaxnn compare: manual_grad" in out and "``" not in out and ":func:" not in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"jaxnn {jaxnn.__version__}"


def test_ctrl_c_while_the_command_line_starts_is_one_line(capsys, monkeypatch):
    from jaxnn import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["train"]) == 130
    assert capsys.readouterr().err.strip() == "jaxnn: interrupted"


@pytest.mark.parametrize("command", [["presets"], ["train", "--epochs", "2", "--train-size",
                                                   "200", "--eval-size", "200"]])
def test_a_closed_stdout_pipe_ends_the_command_quietly(command, tmp_path):
    """`jaxnn presets | head -3`: exit 141 (128 + SIGPIPE), no BrokenPipeError traceback. A run
    whose output is closed mid-run keeps what it wrote, as after Ctrl-C."""
    out = tmp_path / "run"
    argv = [*command, "--out", str(out)] if command[0] == "train" else command
    err = tmp_path / "stderr"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "JAX_PLATFORMS": "cpu"}
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "jaxnn", *argv], stdout=subprocess.PIPE,
                                stderr=stderr, env=env, cwd=tmp_path)
        if command[0] == "train":
            assert proc.stdout.readline().startswith(b"jaxnn train: ")  # the start line
        proc.stdout.close()  # presets: before it prints anything
        try:
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    text = err.read_text()
    assert code == 141 and "Traceback" not in text and "BrokenPipe" not in text, (code, text)
    if command[0] == "train":  # at least the first epoch was trained before the pipe was seen
        assert (out / "config.json").is_file() and (out / "metrics.jsonl").read_text()
        # and stderr says what is left, as after Ctrl-C
        assert text.strip().splitlines()[-1].startswith(
            f"jaxnn train: standard output was closed; {out / 'metrics.jsonl'} holds "), text


@pytest.mark.parametrize("argv", [["train", *TINY], ["reproduce", "ch1-30", "--runs", "1"]])
def test_a_file_named_runs_is_named_as_the_cause(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("not a directory\n")
    assert main(argv) == 2
    err = _one_line_error(capsys, "runs is a file, not a directory")
    assert "--out DIR" in err and "Errno" not in err, err
    assert (tmp_path / "runs").read_text() == "not a directory\n"


def test_divergence_under_a_huge_l2_names_it_too(capsys, recwarn, tmp_path):
    """The weight decay eta * l2 / n blows up as well as eta can: the hint names both; a value
    beyond float32's range is refused before training (no 'overflow encountered in cast')."""
    assert main(["train", "--l2", "1e30", *TINY, "--out", str(tmp_path / "r")]) == 3
    err = capsys.readouterr().err.strip()
    assert ("training diverged" in err and "or the regularization (l2=1e+30) is likely too "
            "large: try a smaller --eta or --l2" in err and "\n" not in err), err
    assert main(["train", "--l2", "1e300", *TINY, "--out", str(tmp_path / "s")]) == 2
    _one_line_error(capsys, "--l2: expected at most float32's largest number")
    cast = [w for w in recwarn if "overflow encountered in cast" in str(w.message)]
    assert not cast, [str(w.message) for w in cast]


@pytest.mark.parametrize("name, suggestion", [("CH3", "ch3"), ("CH1-30", "ch1-30"),
                                              ("Ch3-L2", "ch3-l2"), ("ch3-l2-3", "ch3-l2-30")])
def test_presets_suggests_a_name_or_prefix_in_another_case(name, suggestion, capsys):
    """Preset names are exact (as the README has them); a prefix in capitals gets a suggestion
    like a misspelt name does."""
    assert main(["presets", name]) == 2
    err = capsys.readouterr().err.strip()
    assert f"got {name!r}" in err and err.endswith(f"(did you mean {suggestion!r}?)"), err
    assert "\n" not in err
    assert main(["presets", "ch3-l2"]) == 0
    assert "| ch3-l2-30 |" in capsys.readouterr().out


def test_the_start_line_names_the_run_options(tmp_path, capsys):
    """README: the start line names every setting that differs from chapter 1's, the run's
    options too (a data-parallel run is told it is one)."""
    from jaxnn.cli.train import _run_options

    assert main(["train", "--epochs", "1", "--train-size", "100", "--eval-size", "100",
                 "--on-nan", "skip", "--checkpoint-every", "1", "--no-progress",
                 "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "s/epoch (one epoch: compilation included); wrote" in out  # no later epoch to time
    start = out.splitlines()[0]
    assert start.endswith(f"train_size 100, eval_size 100, on-nan skip, checkpoint every 1 -> "
                          f"{tmp_path / 'run'}"), start
    assert _run_options(argparse.Namespace(on_nan=None, checkpoint_every=None), 4) == \
        ", devices 4"


def test_the_command_line_and_a_cnn_config_do_not_import_flax():
    """`jaxnn --help`, an MLP run and the check of a CNN's name need no Flax: a flax that
    fails to import with the installed jax (0.12.8 with jax 0.11.2) stops only CNN runs."""
    code = ("import sys; from jaxnn.cli import build_parser; build_parser(); "
            "from jaxnn import experiment; "
            "experiment.TrainConfig.from_preset('ch6-conv1').validated(); "
            "print('flax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.stdout.strip() == "False", out.stderr


class _Captured(Exception):
    """Raised by the stand-in for experiment.run: the command line got as far as training."""


# Every flag that sets a TrainConfig field, with a value that is not the preset's (ch1-30, or the
# one given), and the fields the flags set.
FLAG_FIELDS = [
    (["--sizes", "784,20,10"], {"sizes": (784, 20, 10)}),
    (["--activation", "tanh"], {"activation": "tanh"}),
    (["--output", "softmax"], {"output_activation": "softmax"}),
    (["--cost", "cross_entropy"], {"cost": "cross_entropy"}),
    (["--init", "xavier"], {"init": "xavier"}),
    (["--eta", "0.25"], {"eta": 0.25}),
    (["--epochs", "7"], {"epochs": 7}),
    (["--mini-batch-size", "20"], {"mini_batch_size": 20}),
    (["--l2", "0.5"], {"l2": 0.5}),
    (["--optimizer", "adam"], {"optimizer": "adam"}),
    (["--seed", "11"], {"seed": 11}),
    (["--dataset", "kmnist"], {"dataset": "kmnist"}),
    (["--dataset", "fashion_mnist", "--data-dir", "some/dir"],
     {"dataset": "fashion_mnist", "data_dir": "some/dir"}),
    (["--train-size", "1234"], {"train_size": 1234}),
    (["--preset", "ch6-conv1", "--model", "conv2"], {"model": "conv2"}),
    (["--schedule", "cosine"], {"schedule": "cosine"}),
    (["--l1", "0.75"], {"l1": 0.75}),
    (["--l2-convention", "chapter6"], {"l2_convention": "chapter6"}),
    (["--preset", "ch6-conv1", "--dropout", "0.3"], {"dropout": 0.3}),
    (["--patience", "4"], {"patience": 4}),
    (["--clip-norm", "2.5"], {"clip_norm": 2.5}),
    (["--preset", "ch6-conv1", "--batch-norm"], {"batch_norm": True}),
    (["--expanded"], {"expanded": True}),
    (["--activation", "maxout", "--maxout-pieces", "3"],
     {"activation": "maxout", "maxout_pieces": 3}),
    (["--eval-size", "500"], {"eval_size": 500}),
    (["--ensemble", "3"], {"ensemble": 3}),
    (["--loop", "host"], {"loop": "host"}),
    (["--no-monitor-training"], {"monitor_training": False}),
    (["--preset", "ch6-conv1", "--monitor-training"], {"monitor_training": True}),
    (["--grads", "manual"], {"grads": "manual"}),
    (["--preset", "ch6-conv1", "--grads", "manual"], {"grads": "manual"}),  # a CNN's, by hand
]


def test_flag_fields_cover_every_config_flag():
    from jaxnn.cli import train as cli_train

    covered = {field for _, fields in FLAG_FIELDS for field in fields}
    assert covered == set(cli_train.CONFIG_FLAGS) | {"grads"}


@pytest.mark.parametrize("flags, fields", FLAG_FIELDS, ids=[" ".join(f) for f, _ in FLAG_FIELDS])
def test_every_config_flag_reaches_the_trained_config(flags, fields, tmp_path, capsys,
                                                      monkeypatch):
    """`jaxnn train FLAG VALUE` trains the preset's TrainConfig with that field set, and no
    other changed: the config handed to experiment.run, and the one in config.json."""
    from jaxnn import experiment

    out, seen = tmp_path / "run", {}

    def run(config, **kwargs):  # config.json is written by now (a failed start removes it)
        seen["config"], seen["saved"] = config, json.loads((out / "config.json").read_text())
        raise _Captured

    monkeypatch.setattr(experiment, "run", run)
    with pytest.raises(_Captured):
        main(["train", *flags, "--out", str(out), "--no-progress", "--debug"])
    preset = flags[flags.index("--preset") + 1] if "--preset" in flags else "ch1-30"
    expected = experiment.TrainConfig.from_preset(preset, **fields)
    assert expected != experiment.TrainConfig.from_preset(preset)  # the flags change something
    assert seen["config"] == expected
    assert experiment.TrainConfig.from_json(seen["saved"]) == expected


def test_devices_reach_experiment_run(tmp_path, capsys, monkeypatch):
    """--devices N is handed to experiment.run (summary.json's device count alone would not
    show a run that trained on one)."""
    from jaxnn import experiment, parallel

    seen = {}

    def run(config, **kwargs):
        seen.update(kwargs)
        raise _Captured

    monkeypatch.setattr(parallel, "device_count", lambda n: 2)  # this process has one
    monkeypatch.setattr(experiment, "run", run)
    with pytest.raises(_Captured):
        main(["train", "--no-progress", "--devices", "2", "--out", str(tmp_path / "r"),
              "--debug"])
    assert seen["devices"] == 2


def test_the_closing_lines_report_the_summarys_figures(monkeypatch, tmp_path, capsys):
    """The last lines a user reads name the summary's best validation epoch and its test
    figure, then peak and final test accuracy, each the right one."""
    import types

    from jaxnn import experiment

    summary = {"epochs": 3, "peak_test_accuracy": 0.93, "final_test_accuracy": 0.91,
               "best_validation_accuracy": 0.94, "best_validation_epoch": 1,
               "test_at_best_validation": 0.92, "seconds_per_epoch": 0.5}
    history = [{"epoch": e, "train_cost": 1.0 / (e + 1), "test_accuracy": 0.9}
               for e in range(3)]
    monkeypatch.setattr(experiment, "run", lambda config, **kw: types.SimpleNamespace(
        summary=dict(summary), history=history))
    assert main(["train", "--no-progress", "--epochs", "3", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "best validation accuracy 94.00% at epoch 1, test accuracy there 92.00%" in out
    assert "peak test accuracy 93.00%, final 91.00%, 0.50 s/epoch; wrote" in out


def test_metrics_jsonl_holds_every_field(tmp_path, capsys):
    from jaxnn import report

    out = tmp_path / "r"
    assert main(["train", "--train-size", "200", "--eval-size", "100", "--epochs", "1",
                 "--no-progress", "--out", str(out)]) == 0
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert set(row) == set(report.MetricsWriter.FIELDS) - {"member", "seed"}
    assert set(report.MetricsWriter.FIELDS) >= {"epoch", "train_cost", "train_accuracy",
                                                 "validation_accuracy", "test_accuracy",
                                                 "seconds"}


def test_a_new_run_dir_is_named_after_its_preset(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--preset", "ch3-ce-30", "--train-size", "200", "--eval-size", "100",
                 "--epochs", "1", "--no-progress"]) == 0
    [run] = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-ch3-ce-30") and run.name[:8].isdigit(), run.name


def test_the_cache_keeps_every_program(tmp_path):
    """The persistent cache stores every compiled program, however fast its compilation or
    small its entry (the speed run's programs compile in well under a second on a GPU)."""
    import jax

    from jaxnn.cli import runtime

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    before = {n: getattr(jax.config, n) for n in names}
    try:
        assert runtime.enable_compilation_cache(tmp_path / "c") == tmp_path / "c"
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "c")
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
        assert jax.config.jax_persistent_cache_min_entry_size_bytes == -1
    finally:
        for n, v in before.items():
            jax.config.update(n, v)


def test_no_cache_wins_over_cache_dir(tmp_path):
    import jax

    from jaxnn.cli import runtime

    before = jax.config.jax_compilation_cache_dir
    try:
        runtime.configure(argparse.Namespace(no_cache=True, cache_dir=str(tmp_path / "c")))
        assert not (tmp_path / "c").exists()
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
