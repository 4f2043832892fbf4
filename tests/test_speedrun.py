"""jaxnn.speedrun and ``jaxnn speedrun`` on small data (the timing targets are GPU figures and
are measured by the benchmark, not here)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnn import data, speedrun
from jaxnn.cli import main

TINY = speedrun.SpeedrunConfig(widths=(4, 8), epochs=2, batch_size=100, eta=0.1,
                               train_size=1000, test_size=500, dtype="float32")


def test_resolve_picks_dtype_and_loop_for_the_backend():
    cpu = speedrun.resolve(speedrun.SpeedrunConfig(), "cpu")
    gpu = speedrun.resolve(speedrun.SpeedrunConfig(), "gpu")
    assert (cpu.dtype, cpu.loop) == ("float32", "host")
    assert (gpu.dtype, gpu.loop) == ("bfloat16", "scan")
    mine = speedrun.resolve(speedrun.SpeedrunConfig(dtype="bfloat16", loop="scan"), "cpu")
    assert (mine.dtype, mine.loop) == ("bfloat16", "scan")


@pytest.mark.parametrize("shift", [1, 2])
def test_random_shift_translates_each_image_without_wrapping(shift):
    x = jax.random.uniform(jax.random.key(0), (16, 6, 5, 1)) + 1.0  # no pixel is background
    out = np.asarray(speedrun.random_shift(jax.random.key(1), x, shift))
    background = -speedrun.MNIST_MEAN / speedrun.MNIST_STD
    padded = np.pad(np.asarray(x), ((0, 0), (shift, shift), (shift, shift), (0, 0)),
                    constant_values=background)
    seen = set()
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(2 * shift + 1) for dx in range(2 * shift + 1)
                   if np.array_equal(out[i], padded[i, dy:dy + 6, dx:dx + 5])]
        assert len(matches) == 1, i  # exactly one translation, background shifted in
        seen.add(matches[0])
    assert len(seen) > 1  # images get different shifts
    assert out.shape == x.shape
    np.testing.assert_array_equal(speedrun.random_shift(jax.random.key(1), x, 0), x)


def test_inputs_normalize_pixels_and_the_shift_background_is_a_zero_pixel():
    """_inputs maps a uint8 pixel p to (p / 255 - MNIST_MEAN) / MNIST_STD in NHWC, and the
    background random_shift pads with is exactly what a zero pixel becomes."""
    images = jnp.asarray(np.array([[[0, 255], [51, 128]]], np.uint8))  # (1, 2, 2)
    x = np.asarray(speedrun._inputs(images, jnp.float32))
    assert x.shape == (1, 2, 2, 1) and x.dtype == np.float32
    mean, std = speedrun.MNIST_MEAN, speedrun.MNIST_STD
    expected = (np.array([[0, 255], [51, 128]]) / 255.0 - mean) / std
    np.testing.assert_allclose(x[0, ..., 0], expected, rtol=1e-6)
    np.testing.assert_allclose(x[0, 0, 0, 0], -mean / std, rtol=1e-6)
    np.testing.assert_allclose(x[0, 0, 1, 0], (1 - mean) / std, rtol=1e-6)
    blank = speedrun._inputs(jnp.zeros((1, 3, 3), jnp.uint8), jnp.float32)
    shifted = np.asarray(speedrun.random_shift(jax.random.key(0), blank, 1))
    np.testing.assert_allclose(shifted, np.asarray(blank), rtol=1e-6)  # shifted-in == zero pixel


@pytest.mark.parametrize("shift", [1, 2])
def test_random_shift_draws_every_offset_in_the_square(shift):
    """Each offset (dy, dx) in [-shift, shift]^2 occurs and no other: a single bright pixel at
    the centre of each image is found moved by exactly one of the (2 shift + 1)^2 offsets, and
    over 400 images every one of them is seen (the upper end included)."""
    n, size = 400, 2 * shift + 3
    x = jnp.zeros((n, size, size, 1)).at[:, size // 2, size // 2, 0].set(1.0)
    out = np.asarray(speedrun.random_shift(jax.random.key(3), x, shift))
    bright = np.argwhere(out[..., 0] == 1.0)  # rows (image, y, x)
    assert len(bright) == n and np.array_equal(bright[:, 0], np.arange(n))  # one per image
    offsets = {(int(y) - size // 2, int(x_) - size // 2) for _, y, x_ in bright}
    square = {(dy, dx) for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)}
    assert offsets == square


def _tiny_data():
    ds = data.load_mnist()
    return ds.train.take(1000), ds.test.take(500)


def test_the_initial_draw_keeps_its_bits_under_jit_once():
    """speedrun draws its weights with train.jit_once (on the CPU, LLVM optimization level 1,
    which compiles about 3x faster); seeds 0-4 must start from the bits a default jax.jit drew,
    the starting points of the recorded results."""
    from jaxnn import layers, train

    spec = speedrun.network(speedrun.SpeedrunConfig(), 10)
    fast = train.jit_once(lambda key: layers.init(spec, key))
    default = jax.jit(lambda key: layers.init(spec, key))
    for seed in range(5):
        init_key = jax.random.split(jax.random.key(seed))[0]
        for a, b in zip(jax.tree.leaves(fast(init_key)), jax.tree.leaves(default(init_key))):
            assert a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b)), seed


def test_scan_and_host_loops_train_the_same_network():
    train_split, _ = _tiny_data()
    images = jnp.asarray(train_split.images)
    labels = jnp.asarray(train_split.labels, jnp.int32)
    images, labels = images[:300], labels[:300]  # 2 epochs of 3 steps: scan is slow on CPU
    params = jax.jit(lambda k: speedrun.layers.init(speedrun.network(TINY), k))(
        jax.random.key(0))
    key = jax.random.key(1)
    out = {loop: speedrun.make_train(dataclasses.replace(TINY, loop=loop), len(images))(
        params, key, images, labels) for loop in ("scan", "host")}
    for a, b in zip(jax.tree_util.tree_leaves(out["scan"]), jax.tree_util.tree_leaves(out["host"])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in
             zip(jax.tree_util.tree_leaves(out["host"]), jax.tree_util.tree_leaves(params))]
    assert min(moved) > 0  # every leaf was trained


def test_run_learns_and_reports_timings(monkeypatch):
    seen, loaded = [], []
    real_load = data.load
    monkeypatch.setattr(data, "load", lambda name, **kw: loaded.append((name, kw))
                        or real_load(name, **kw))
    result = speedrun.run(dataclasses.replace(TINY, epochs=3, eta=0.05, optimizer="adam"),
                          seeds=(0, 1), dataset="mnist", on_run=seen.append)
    assert loaded == [("mnist", {"validation_size": None})]  # a name: all 60,000 images
    assert seen == result.runs  # on_run gets each seed's RunResult as it finishes
    s = result.summary()
    assert s["seeds"] == [0, 1] and len(s["test_accuracy"]) == 2
    assert s["mean_test_accuracy"] > 0.6  # 1,000 images, 3 epochs: far above chance (0.1)
    assert all(t > 0 for t in s["train_seconds"])
    assert s["total_seconds"] >= s["compile_seconds"] > 0
    assert s["config"]["loop"] == speedrun.resolve(TINY).loop  # host on the CPU, scan on a GPU
    assert s["config"]["dtype"] == "float32"


def test_bfloat16_compute_keeps_float32_parameters():
    config = dataclasses.replace(TINY, dtype="bfloat16", epochs=1)  # one step: CPU bf16 is slow
    params = speedrun.layers.init(speedrun.network(config), jax.random.key(0))
    ds = data.load_mnist()
    images = jnp.asarray(ds.train.images[:100])
    out = speedrun.make_train(config, 100)(params, jax.random.key(0), images,
                                           jnp.asarray(ds.train.labels[:100], jnp.int32))
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(out)} == {jnp.dtype("float32")}
    assert all(bool(jnp.any(a != b)) for a, b in zip(jax.tree_util.tree_leaves(out),
                                                     jax.tree_util.tree_leaves(params)))
    labels = jnp.asarray(ds.train.labels[:100])
    correct = speedrun.make_accuracy(config)(out, images, labels)
    # the count from the forward pass itself: bf16 kernels and inputs, float32 biases
    x = ((images.astype(jnp.float32)[..., None] / 255.0 - speedrun.MNIST_MEAN)
         / speedrun.MNIST_STD).astype(jnp.bfloat16)
    compute = {"layers": {i: {"kernel": p["kernel"].astype(jnp.bfloat16), "bias": p["bias"]}
                          for i, p in out["layers"].items()}}
    z = jax.jit(speedrun.layers.forward, static_argnums=0)(speedrun.network(config), compute, x)
    assert int(correct) == int(np.sum(np.argmax(np.asarray(z, np.float32), axis=-1)
                                      == np.asarray(labels)))


def test_bfloat16_compute_sums_bias_gradients_in_float32():
    """In the bf16 run the convolutions and matrix products are bf16, and no sum is: the bias
    gradients (the only sums over the batch in the network) are float32 (layers.add_bias)."""
    config = dataclasses.replace(TINY, dtype="bfloat16", loop="scan", epochs=1)
    params = speedrun.layers.init(speedrun.network(config), jax.random.key(0))
    images = jnp.zeros((100, 28, 28), jnp.uint8)
    jaxpr = str(jax.make_jaxpr(speedrun.make_train(config, 100))(
        params, jax.random.key(0), images, jnp.zeros((100,), jnp.int32)))
    lines = jaxpr.splitlines()

    def out_types(primitive, scalars=True):
        """The dtypes of ``primitive``'s outputs, e.g. "bf16" for "ab:bf16[100,8] = ..."."""
        outs = [line.split(" = ")[0].split(":")[-1] for line in lines
                if f" = {primitive}[" in line]
        return [o.split("[")[0] for o in outs if scalars or not o.endswith("[]")]

    assert out_types("conv_general_dilated") and set(out_types("conv_general_dilated")) == {
        "bf16"}  # forward convolutions and their gradients
    # the network's matrix products (the optimizer's scalar products of float32 params aside)
    assert out_types("dot_general", scalars=False) and set(
        out_types("dot_general", scalars=False)) == {"bf16"}
    assert out_types("reduce_sum") and "bf16" not in out_types("reduce_sum")


@pytest.mark.parametrize("changes, fragment", [
    ({"widths": (4,)}, "widths: expected two"),
    ({"batch_size": 0}, "batch_size"),
    ({"dtype": "float16"}, "dtype: expected one of"),
    ({"shift": 5}, "shift: expected an int pixel shift"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"optimizer": "adamm"}, "optimizer: expected one of"),
])
def test_bad_settings_fail_early(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        speedrun.resolve(dataclasses.replace(TINY, **changes))


@pytest.mark.parametrize("kwargs, error, fragment", [
    (dict(on_run=False), TypeError, "on_run: expected a callable"),
    (dict(on_run="log"), TypeError, "on_run: expected a callable"),
    (dict(dataset=3), TypeError, "dataset: expected a jaxnn.data.DataSet or a data-set name"),
    (dict(dataset=""), ValueError, "dataset: expected a data-set name"),
    (dict(dataset=data.DataSet("small", data.Split(np.zeros((4, 8, 8), np.uint8),
                                                   np.zeros(4, np.int32)),
                               data.Split(np.zeros((2, 8, 8), np.uint8),
                                          np.zeros(2, np.int32)))),
     ValueError, r"dataset: expected 28x28 grayscale images.*got images of shape \(8, 8\)"),
    # float pixels in [0, 1] would be cast to 0s and 1s and train on blank images
    (dict(dataset=data.DataSet("floats", data.Split(np.zeros((4, 28, 28), np.float32),
                                                    np.zeros(4, np.int32)),
                               data.Split(np.zeros((2, 28, 28), np.uint8),
                                          np.zeros(2, np.int32)))),
     TypeError, r"dataset: expected uint8 pixels \(0-255\) such as MNIST's; got float32 in "
     "its train split"),
])
def test_run_refuses_bad_arguments_before_any_work(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        speedrun.run(TINY, seeds=(0,), **kwargs)


class _Recorded:
    """A make_train / make_accuracy program that appends the (images, labels) it is compiled
    for and each call's to ``seen``, as host arrays (run lowers and compiles it, then calls)."""

    def __init__(self, fn, seen):
        self.fn, self.seen = fn, seen

    def _record(self, args):
        self.seen.append(tuple(np.asarray(a) for a in args[-2:]))

    def lower(self, *args):
        self._record(args)
        return _Recorded(self.fn.lower(*args), self.seen)

    def compile(self):
        return _Recorded(self.fn.compile(), self.seen)

    def __call__(self, *args):
        self._record(args)
        return self.fn(*args)


def test_run_takes_a_dataset_and_its_train_size(monkeypatch):
    """A DataSet is used as given (its train and test splits), cut to train_size/test_size
    (a name is loaded through jaxnn.data: test_run_learns_and_reports_timings)."""
    ds = data.load_mnist()
    # neither split is the start of an MNIST split (a run on load_mnist() would see those)
    train = data.Split(ds.train.images[1000:1200], ds.train.labels[1000:1200])
    # one image ten times, labelled 0-9: whatever the network, exactly 1 of 10 is right
    test = data.Split(np.repeat(ds.test.images[7:8], 10, axis=0), np.arange(10, dtype=np.int32))
    small = data.DataSet("mine", train, test)
    config = dataclasses.replace(TINY, epochs=1, train_size=100, test_size=None, loop="host")
    sizes, trained, scored = [], [], []
    real_train, real_accuracy = speedrun.make_train, speedrun.make_accuracy
    monkeypatch.setattr(speedrun, "make_train", lambda c, n, *a: sizes.append(n) or _Recorded(
        real_train(c, n, *a), trained))
    monkeypatch.setattr(speedrun, "make_accuracy",
                        lambda c, *a: _Recorded(real_accuracy(c, *a), scored))
    result = speedrun.run(config, seeds=(0,), dataset=small)
    assert sizes == [100]
    assert len(trained) == 2 and len(scored) == 2  # compiled for, then called on, each
    for images, labels in trained:  # the first train_size images of the given train split
        np.testing.assert_array_equal(images, train.images[:100])
        np.testing.assert_array_equal(labels, train.labels[:100])
    for images, labels in scored:  # the whole given test split (test_size None)
        np.testing.assert_array_equal(images, test.images)
        np.testing.assert_array_equal(labels, test.labels)
    assert result.runs[0].test_accuracy == 0.1


def test_batch_larger_than_the_data_fails_early():
    with pytest.raises(ValueError, match="batch_size: expected at most the 50"):
        speedrun.make_train(TINY, 50)


def test_cli_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "speedrun.json"
    assert main(["speedrun", "--quick", "--widths", "4,8", "--json", str(path),
                 "--no-cache"]) == 0
    printed = capsys.readouterr().out
    assert "QUICK" in printed and "seed 0: test accuracy" in printed
    payload = json.loads(path.read_text())
    assert payload["quick"] is True and payload["seeds"] == [0]
    assert 0.0 <= payload["mean_test_accuracy"] <= 1.0
    assert payload["config"]["train_size"] == 5000


def test_cli_quick_keeps_an_explicit_seeds_and_epochs(tmp_path):
    path = tmp_path / "speedrun.json"
    assert main(["speedrun", "--quick", "--seeds", "2", "--epochs", "2", "--widths", "2,2",
                 "--hidden", "0", "--json", str(path), "--no-cache"]) == 0
    payload = json.loads(path.read_text())
    assert payload["seeds"] == [0, 1] and payload["config"]["epochs"] == 2
    assert payload["config"]["train_size"] == 5000  # the rest of --quick still applies


@pytest.mark.parametrize("argv, fragment", [
    (["speedrun", "--widths", "a,b"], "--widths: expected two integers"),
    (["speedrun", "--seeds", "0"], "--seeds: expected a positive number"),
    (["speedrun", "--hidden", "-1"], "--hidden: expected an integer >= 0"),
    (["speedrun", "--batch-size", "70000"], "--batch-size: expected at most"),
])
def test_cli_errors_are_one_line(argv, fragment, capsys):
    assert main([*argv, "--no-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_the_command_runs_five_seeds_unless_quick(monkeypatch, capsys):
    """`jaxnn speedrun` is the issue's mean over 5 seeds; --quick is one seed on 5,000 training
    and 1,000 test images."""
    seen = {}

    class Result:
        def summary(self):
            return {k: 0.0 for k in ("mean_test_accuracy", "std_test_accuracy",
                                     "median_train_seconds", "compile_seconds", "total_seconds")}

    def run(config, seeds, on_run):
        seen.update(seeds=list(seeds), config=config)
        return Result()

    monkeypatch.setattr(speedrun, "run", run)
    assert main(["speedrun", "--no-cache"]) == 0
    assert seen["seeds"] == [0, 1, 2, 3, 4]
    assert main(["speedrun", "--quick", "--no-cache"]) == 0
    assert seen["seeds"] == [0] and seen["config"].train_size == 5000
    assert seen["config"].test_size == 1000
