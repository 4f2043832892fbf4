"""Smoke tests of the benchmark scripts: they run on tiny settings and write sensible JSON.

No timing is asserted (the machines are shared); only that every implementation trains,
reports a positive throughput, and that the implementations compared train the same network.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cnn_throughput_runs_and_writes_a_row_per_implementation(tmp_path):
    ct = _load("cnn_throughput")
    out = tmp_path / "cnn.json"
    payload = ct.main(["--models", "flax-mnist", "--images", "64", "--batch-size", "16",
                       "--repeats", "1", "--pause", "0.2", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == json.loads(json.dumps(payload["results"]))
    assert saved["settings"]["images"] == 64 and saved["settings"]["batch_size"] == 16
    for key in ("jax", "flax", "optax", "device"):
        assert saved["environment"][key]
    assert {r["model"] for r in saved["results"]} == {"flax-mnist"}
    for model in ("flax-mnist",):
        rows = {r["implementation"]: r for r in saved["results"] if r["model"] == model}
        assert set(rows) == {"jaxnn, scan loop", "jaxnn, host loop", "nnx.jit step loop",
                             "pytorch"}
        timed = [r for r in rows.values() if r["images_per_s"] is not None]
        for r in timed:
            assert r["images_per_s"] > 0 and r["first_epoch_s"] > 0 and r["batch"] == 16
            assert r["images"] == 64 and len(r["epoch_s"]) == 1
        assert len({r["param_count"] for r in timed}) == 1  # same network everywhere
        assert rows["jaxnn, host loop"]["jaxnn_ratio"] == 1.0  # the CPU default for CNNs
        if rows["pytorch"]["images_per_s"] is None:
            assert rows["pytorch"]["note"] in ("torch not installed", "--no-torch")
        else:
            assert rows["pytorch"]["logits_mismatch"] <= ct.LOGITS_TOLERANCE


@pytest.mark.parametrize("loop", ["scan", "host"])
def test_nnx_jit_loop_trains_exactly_like_the_jaxnn_epoch(loop):
    """Same init, same permutation, same optax optimizer (ch6-relu: SGD + chapter-6 L2 decay):
    the Python loop of nnx.jit steps and jaxnn's epoch (either loop) reach the same weights."""
    ct = _load("cnn_throughput")
    s = ct.Setup("ch6-relu", None, 40)
    fused, looped = ct.JaxnnEpoch(s, loop), ct.NnxJitLoop(s)
    start = looped.params()
    for _ in range(2):
        fused.epoch()
        looped.epoch()
    a, b = fused.params()["layers"], looped.params()["layers"]
    assert a.keys() == b.keys()
    for i in a:
        for name in ("kernel", "bias"):
            moved = np.max(np.abs(np.asarray(a[i][name]) - np.asarray(start["layers"][i][name])))
            assert moved > 1e-4, f"layer {i} {name} did not train"
            np.testing.assert_allclose(a[i][name], b[i][name], rtol=1e-4, atol=1e-6,
                                       err_msg=f"layer {i} {name}")


def test_pytorch_model_computes_the_jaxnn_logits():
    """The PyTorch network built from a CNNSpec, loaded with jaxnn's weights (HWIO -> OIHW,
    NHWC -> NCHW flatten order), gives the same logits: it is the same architecture."""
    torch = pytest.importorskip("torch")  # optional: the benchmark's PyTorch row only
    import jax

    from jaxnn import cnn, layers

    ct = _load("cnn_throughput")
    x = np.asarray(jax.random.uniform(jax.random.key(1), (3, 28, 28, 1)), np.float32)
    for name in ("conv2", "flax-mnist"):
        spec = cnn.architecture(name, input_shape=(28, 28, 1))
        pure = cnn.pure_params(cnn.make(spec, jax.random.key(0)))
        model = ct.torch_model(spec)
        ct.copy_into_torch(spec, pure, model)
        assert sum(p.numel() for p in model.parameters()) == sum(
            np.size(v) for v in jax.tree_util.tree_leaves(pure))
        with torch.no_grad():
            got = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
        np.testing.assert_allclose(got, layers.forward(spec, pure, x), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


def test_gpu_script_names_its_stages_and_refuses_an_unknown_one(tmp_path):
    import os
    import subprocess
    import sys

    script = BENCHMARKS / "gpu.sh"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                           timeout=120)
    assert usage.returncode == 2
    for stage in ("check", "speedrun", "throughput", "dropout", "ch6", "ensemble"):
        assert f"#   {stage} " in usage.stdout
    wrong = subprocess.run(["bash", str(script), "speed"], capture_output=True, text=True,
                           env=env, timeout=120)
    assert wrong.returncode == 2 and "unknown stage: speed" in wrong.stderr
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_eval_chunk_benchmark_times_every_chunk_and_marks_the_one_picked(tmp_path):
    bench = _load("eval_chunk_cpu")
    out = tmp_path / "chunks.json"
    payload = bench.main(["--images", "120", "--rounds", "1", "--networks", "mlp 784-30-10",
                          "ch6 conv2 relu", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == json.loads(json.dumps(payload["results"]))
    for network in ("mlp 784-30-10", "ch6 conv2 relu"):
        rows = [r for r in saved["results"] if r["network"] == network]
        assert [r["chunk"] for r in rows] == list(bench.NETWORKS[network][1])
        assert sum(r["picked"] for r in rows) == 1
        assert all(r["images_per_s"] > 0 and len(r["seconds"]) == 1 for r in rows)


def test_monitor_benchmark_times_both_variants_on_the_same_training(tmp_path):
    bench = _load("monitor_cpu")
    out = tmp_path / "monitor.json"
    payload = bench.main(["--rounds", "1", "--ch6-images", "40", "--networks", "ch6-2fc",
                          "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == json.loads(json.dumps(payload["results"]))
    rows = saved["results"]
    assert [r["variant"] for r in rows] == ["monitored", "not monitored"]
    # expanded 5x; validation and test a 25th of the training images, as in the book's runs
    assert all(r["images"] == [200, 8, 8] and len(r["wall_s"]) == 1 for r in rows)
    assert all(0 < r["trained_median_s"] <= r["wall_median_s"] for r in rows)
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == rows[0]["wall_median_s"] / rows[1]["wall_median_s"]


def test_guard_benchmark_times_every_variant_and_writes_json(tmp_path):
    guard = _load("guard_cpu")
    out = tmp_path / "guard.json"
    payload = guard.main(["--rounds", "1", "--optimizers", "sgd", "--train-size", "200",
                          "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["settings"] == {"rounds": 1, "train_size": 200, "preset": "ch1-30"}
    rows = saved["results"]
    assert [r["on_nan"] for r in rows] == ["none", "stop", "skip"]
    assert all(r["wall_median_s"] > 0 and len(r["wall_s"]) == 1 for r in rows)
    assert rows[0]["ratio_to_none"] == 1.0 and payload["results"][1]["optimizer"] == "sgd"


def test_softmax_rule_benchmark_times_both_costs_and_shows_what_the_rule_buys(tmp_path):
    bench = _load("softmax_rule")
    out = tmp_path / "softmax.json"
    payload = bench.main(["--rounds", "1", "--mini-batch-sizes", "10", "--train-size", "100",
                          "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == json.loads(json.dumps(payload["results"]))
    rows = saved["results"]
    assert [r["cost"] for r in rows] == ["jax.nn.log_softmax", "jaxnn"]
    assert all(r["wall_median_s"] > 0 and len(r["wall_s"]) == 1 for r in rows)
    assert rows[0]["ratio_to_old"] == 1.0
    errors = {r["margin"]: r for r in saved["accuracy"]}
    # jaxnn's gradient keeps float32's digits at every margin; the old one has none left at 17
    assert max(r["jaxnn"] for r in saved["accuracy"]) < 1e-5
    assert errors[17]["jax.nn.log_softmax"] == 1.0 and errors[5]["jax.nn.log_softmax"] < 1e-5


def test_manual_vs_autodiff_times_the_same_gradient_twice(tmp_path, capsys):
    """The batch-norm row differentiates a network with batch norm both ways, and the two
    gradients agree; --only selects rows by name and refuses a name that matches none."""
    import jax

    from manual_grad.check import relative_error

    bench = _load("manual_vs_autodiff")
    manual, autodiff, params = bench.gradient_functions("ch6 cnn conv2 relu, batch norm", 16)
    # (conv, BN, pool) twice, flatten, dense, BN, dense
    assert sorted(params["layers"]) == [0, 1, 3, 4, 7, 8, 9]
    assert sorted(params["layers"][1]) == ["bias", "scale"]
    hand, auto = manual(params), autodiff(params)
    for h, a in zip(jax.tree_util.tree_leaves(hand), jax.tree_util.tree_leaves(auto)):
        assert relative_error(h, a) <= 1e-3
    out = tmp_path / "m.json"
    assert bench.main(["--repeats", "1", "--inner", "1", "--only", "mlp", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert [(r["network"], r["batch"]) for r in saved["results"]] == [
        ("ch1 mlp 784-30-10", 10), ("ch1 mlp 784-30-10", 1000)]
    assert all(r["median_s"]["manual"] > 0 and r["ratio"] > 0 for r in saved["results"])
    with pytest.raises(SystemExit) as info:
        bench.main(["--only", "resnet", "--out", str(out)])
    assert info.value.code == 2 and "--only: no network's name contains 'resnet'" in \
        capsys.readouterr().err


def test_scripts_take_no_flag_from_its_first_letters(tmp_path, capsys):
    """Every benchmark and script builds its parser without argparse's prefix matching, as the
    ``jaxnn`` command line does: ``--round 1`` is refused, not read as ``--rounds 1``."""
    import ast

    guard = _load("guard_cpu")
    with pytest.raises(SystemExit) as exit_:
        guard.main(["--round", "1", "--json", str(tmp_path / "g.json")])
    assert exit_.value.code == 2 and "unrecognized arguments: --round 1" in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()

    root = BENCHMARKS.parent
    scripts = [*BENCHMARKS.glob("*.py"), *(root / "scripts").glob("*.py"),
               root / "notebooks" / "build.py"]
    parsers = []
    for path in scripts:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "ArgumentParser"):
                keywords = {k.arg: k.value for k in node.keywords}
                parsers.append(path.name)
                assert "allow_abbrev" in keywords, path
                assert ast.literal_eval(keywords["allow_abbrev"]) is False, path
    assert sorted(parsers) == ["build.py", "ch1_seed_spread.py", "common.py",
                               "make_mnist_npz.py"]  # the benchmarks all use common's


def test_seeds_benchmark_times_both_ways_on_the_same_networks(tmp_path):
    bench = _load("seeds")
    out = tmp_path / "seeds.json"
    payload = bench.main(["--seeds", "2", "--rounds", "1", "--train-size", "100",
                          "--eval-size", "50", "--networks", "ch1-30", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["results"] == json.loads(json.dumps(payload["results"]))
    rows = saved["results"]
    assert [r["variant"] for r in rows] == ["experiment.run per seed", "one Trainer"]
    assert all(0 < r["trained_median_s"] <= r["wall_median_s"] and len(r["wall_s"]) == 1
               for r in rows)
    assert rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == rows[0]["wall_median_s"] / rows[1]["wall_median_s"]
