"""Seconds per epoch of the book's chapter-1 network: jaxnn beside the book's NumPy loop.

The NumPy baseline is the algorithm of the book's ``network.py``: for every mini-batch,
backpropagate each example on its own (column vectors, float64), sum the gradients, step.
jaxnn runs the same network, cost, init and update as one compiled epoch (``lax.scan`` over
mini-batches, float32). Both run in this one process, side by side, so the ratio is fair on a
noisy machine. Compilation is excluded from jaxnn's time (it is reported separately).

    python benchmarks/epoch_cpu.py [--batches 10 100] [--numpy-epochs 1] [--jaxnn-epochs 3]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    environment,
    markdown_table,
    positive_int,
    script_parser,
    write_json,
)

SIZES = (784, 30, 10)
ETA = 3.0


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class BookNetwork:
    """The book's per-example backprop loop, written out in NumPy (quadratic cost, sigmoid)."""

    def __init__(self, sizes, rng):
        self.weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = w @ activation + b
            zs.append(z)
            activation = _sigmoid(z)
            activations.append(activation)
        s = activations[-1]
        delta = (s - y) * s * (1 - s)  # BP1
        nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T  # BP3, BP4
        for l in range(2, len(self.weights) + 1):
            s = _sigmoid(zs[-l])
            delta = (self.weights[-l + 1].T @ delta) * s * (1 - s)  # BP2
            nabla_b[-l], nabla_w[-l] = delta, delta @ activations[-l - 1].T
        return nabla_b, nabla_w

    def update_mini_batch(self, xs, ys, eta):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in zip(xs, ys):
            db, dw = self.backprop(x, y)
            nabla_b = [a + d for a, d in zip(nabla_b, db)]
            nabla_w = [a + d for a, d in zip(nabla_w, dw)]
        self.weights = [w - (eta / len(xs)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(xs)) * nb for b, nb in zip(self.biases, nabla_b)]

    def epoch(self, x, y, m, rng):
        order = rng.permutation(len(x))
        for k in range(0, len(x), m):
            idx = order[k:k + m]
            self.update_mini_batch(x[idx], y[idx], ETA)


def time_numpy(x, y, m, epochs):
    rng = np.random.default_rng(0)
    net = BookNetwork(SIZES, rng)
    xs = x.reshape(len(x), -1, 1).astype(np.float64)
    ys = np.eye(10)[y].reshape(len(y), 10, 1)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        net.epoch(xs, ys, m, rng)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_jaxnn(x, labels, m, epochs):
    import jax

    from jaxnn import experiment, mlp, optim, train

    net = mlp.make(SIZES, scheme="large")
    params = net.init(jax.random.key(0))
    opt = optim.make("sgd", ETA)
    data = train.DeviceData.put(x, labels)
    epoch = train.make_epoch(experiment.autodiff_grad_fn(net, "quadratic"), opt,
                             mini_batch_size=m, n_train=len(x))
    opt_state = opt.init(params)
    key = jax.random.key(1)
    start = time.perf_counter()
    params, opt_state = jax.block_until_ready(epoch(params, opt_state, key, data))
    first = time.perf_counter() - start
    times = []
    for i in range(epochs):
        start = time.perf_counter()
        params, opt_state = jax.block_until_ready(
            epoch(params, opt_state, jax.random.fold_in(key, i), data))
        times.append(time.perf_counter() - start)
    return statistics.median(times), first


def main():
    parser = script_parser(__doc__)
    parser.add_argument("--batches", type=positive_int, nargs="+", default=[10, 100],
                        help="mini-batch sizes to time (default 10 100)")
    parser.add_argument("--numpy-epochs", type=positive_int, default=1,
                        help="epochs of the NumPy loop timed per batch size (default 1)")
    parser.add_argument("--jaxnn-epochs", type=positive_int, default=3,
                        help="compiled jaxnn epochs timed per batch size (default 3)")
    parser.add_argument("--json", default=str(RESULTS / "epoch_cpu.json"))
    args = parser.parse_args()

    from jaxnn import data

    ds = data.load_mnist("book")
    x = data.to_inputs(ds.train.images)
    labels = ds.train.labels
    rows, results = [], []
    for m in args.batches:
        t_jax, first = time_jaxnn(x, labels, m, args.jaxnn_epochs)
        t_np = time_numpy(x, labels, m, args.numpy_epochs)
        ratio = t_np / t_jax
        results.append({"mini_batch": m, "numpy_s": t_np, "jaxnn_s": t_jax,
                        "jaxnn_first_epoch_s": first, "speedup": ratio})
        rows.append([m, f"{t_np:.2f}", f"{t_jax:.3f}", f"{first:.2f}", f"{ratio:.1f}x"])
        print(f"mini-batch {m}: numpy {t_np:.2f} s, jaxnn {t_jax:.3f} s -> {ratio:.1f}x",
              flush=True)
    env = environment()
    print()
    print(f"Chapter-1 network [784,30,10], 50,000 images, one epoch ({env['device']}, "
          f"jax {env['jax']}, numpy {env['numpy']})")
    print(markdown_table(["mini-batch", "NumPy book loop (s)", "jaxnn (s)",
                          "jaxnn first epoch incl. compile (s)", "speed-up"], rows))
    write_json(args.json, {"environment": env, "results": results})


if __name__ == "__main__":
    main()
