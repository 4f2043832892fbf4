# %% [markdown]
# # 13. Accelerators
#
# The same jaxnn code runs on a CPU, a GPU or a TPU: `jax.jit` compiles it with XLA for whichever
# device holds the data. This notebook times one training run on every device it finds and shows
# *why* writing the network in matrix form is what makes accelerators pay off.
#
# On Colab, pick **Runtime → Change runtime type → GPU** (or TPU) before running it; on a machine
# without one, only the CPU rows appear.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib import ticker

from jaxnn import costs, data, experiment, mlp

devices = {}
for platform in ("cpu", "gpu", "tpu"):
    try:
        devices[platform] = jax.devices(platform)[0]
    except RuntimeError:
        pass
print("default backend:", jax.default_backend())
for platform, dev in devices.items():
    print(f"{platform}: {dev.device_kind}")


def timed(fn, *args, repeat=5):
    """Median wall time of ``fn(*args)`` after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))

# %% [markdown]
# ## Why the matrix form is fast
#
# The book's first `network.py` backpropagates one example at a time and averages the gradients
# of a mini-batch in a Python loop. Stacking the $m$ examples of a mini-batch as the rows of a
# matrix $X$ turns $m$ matrix-vector products into one matrix-matrix product,
#
# $$Z^1 = X (w^1)^T + b^1 \quad (m \times n_1),$$
#
# and the same holds for every layer and for the backward pass. One big product keeps every
# arithmetic unit busy and reads each weight once per mini-batch instead of once per example.
# We time the gradient of a [784, 100, 10] network on $m = 100$ examples three ways: a Python
# loop of per-example compiled calls, one compiled call on the whole matrix, and one compiled call
# that scans over ten such mini-batches (what `jaxnn.train` does for a whole epoch).

# %%
mnist = data.load("mnist")
m = 100
x = jnp.asarray(data.to_inputs(mnist.train.images[: 10 * m]))
y = jax.nn.one_hot(jnp.asarray(mnist.train.labels[: 10 * m]), 10)
net = mlp.make((784, 100, 10), output_activation="softmax", scheme="xavier")
params = net.init(jax.random.key(0))
cost = costs.from_logits("log_likelihood", "softmax")
grad = jax.jit(jax.grad(lambda p, xb, yb: cost(net.logits(p, xb), yb)))


def per_example(p, xb, yb):
    grads = [grad(p, xb[i : i + 1], yb[i : i + 1]) for i in range(len(xb))]
    return jax.tree.map(lambda *g: sum(g) / len(g), *grads)


@jax.jit
def scanned(p, xs, ys):
    def body(total, batch):
        return jax.tree.map(jnp.add, total, grad(p, *batch)), None

    zero = jax.tree.map(jnp.zeros_like, p)
    return jax.lax.scan(body, zero, (xs.reshape(10, m, -1), ys.reshape(10, m, -1)))[0]


t_loop = timed(per_example, params, x[:m], y[:m], repeat=3)
t_matrix = timed(grad, params, x[:m], y[:m])
t_scan = timed(scanned, params, x, y) / 10
rows = [("loop over examples", t_loop), ("one matrix per mini-batch", t_matrix),
        ("10 mini-batches in one scan", t_scan)]
print(f"gradient of a mini-batch of {m} on {jax.default_backend()}:")
for name, t in rows:
    print(f"  {name:28s} {1e3 * t:8.3f} ms per mini-batch   ({t_loop / t:6.1f}x the loop)")

fig, ax = plt.subplots(figsize=(8, 3.5))
ax.barh([r[0] for r in rows][::-1], [1e3 * r[1] for r in rows][::-1], color=["C2", "C1", "C0"])
ax.set(title=f"Gradient of one mini-batch of {m} ({jax.default_backend()})",
       xlabel="milliseconds (log scale)", xscale="log")
plt.show()

# %% [markdown]
# ## Matrix products on each device
#
# Throughput of a square matrix product $n \times n$ by $n \times n$ ($2n^3$ floating-point
# operations) as $n$ grows. Small products cannot fill a GPU; large ones run at a large fraction of
# its peak, far above a CPU's.

# %%
sizes = scaled((128, 256, 512, 1024, 2048, 4096), (128, 256, 512))
throughput = {}
for platform, dev in devices.items():
    with jax.default_device(dev):
        matmul = jax.jit(lambda a, b: a @ b)
        throughput[platform] = []
        for n in sizes:
            if platform == "cpu" and n > 2048:
                break
            a = jax.random.normal(jax.random.key(0), (n, n))
            t = timed(matmul, a, a)
            throughput[platform].append((n, 2 * n**3 / t / 1e9))

for platform, pts in throughput.items():
    print(f"{devices[platform].device_kind}: " +
          ", ".join(f"n={n} {gflops:,.0f} GFLOP/s" for n, gflops in pts))

fig, ax = plt.subplots(figsize=(7, 4))
for platform, pts in throughput.items():
    ax.loglog([p[0] for p in pts], [p[1] for p in pts], "o-", label=devices[platform].device_kind)
ax.set(title="float32 matrix product throughput", xlabel="matrix size $n$",
       ylabel="GFLOP/s (log scale)")
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.xaxis.set_minor_locator(ticker.NullLocator())
# ticks at 1, 2 and 5 times each power of ten, so that a range of less than a decade (the CPU
# alone) still has labelled ticks
ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
ax.yaxis.set_minor_locator(ticker.NullLocator())
ax.legend()
plt.show()

# %% [markdown]
# ## The same training on every device
#
# One configuration, trained once per device with `jax.default_device`: the data set is put on
# that device and every epoch is one compiled call there. The first epoch includes compilation.
# A tiny network like the book's [784, 30, 10] with mini-batches of 10 leaves a GPU mostly idle
# (each step is a few small matrix products), so we also train a wider network with larger
# mini-batches, where the GPU's advantage shows.

# %%
configs = {
    "[784, 30, 10], m = 10": experiment.TrainConfig.from_preset(
        "ch1-30", epochs=scaled(3, 2), train_size=scaled(None, 2000)),
    "[784, 1000, 1000, 10], m = 100": experiment.TrainConfig.from_preset(
        "ch1-30", sizes=(784, 1000, 1000, 10), cost="log_likelihood",
        output_activation="softmax", init="xavier", activation="relu", eta=0.1,
        mini_batch_size=100, epochs=scaled(3, 2), train_size=scaled(None, 2000)),
}
timings = []
for label, cfg in configs.items():
    for platform, dev in devices.items():
        with jax.default_device(dev):
            res = experiment.run(cfg, progress=False)
        s = res.summary
        timings.append((label, platform, s["first_epoch_seconds"], s["seconds_per_epoch"],
                        s["final_test_accuracy"]))

print(f"{'network':32s} {'device':6s} {'1st epoch':>10s} {'later epochs':>13s} {'test acc':>9s}")
for label, platform, first, per, acc in timings:
    print(f"{label:32s} {platform:6s} {first:9.2f}s {per:12.3f}s {100 * acc:8.2f}%")

fig, ax = plt.subplots(figsize=(8, 3.5))
labels = [f"{t[0]}\n{t[1]}" for t in timings]
ax.barh(labels[::-1], [t[3] for t in timings][::-1],
        color=[f"C{list(devices).index(t[1])}" for t in timings][::-1])
ax.set(title="Seconds per training epoch (after compilation)", xlabel="seconds (log scale)",
       xscale="log")
plt.show()

# %% [markdown]
# Rules of thumb that follow: keep the data on the device, make each compiled call do a lot of work
# (a whole epoch in `lax.scan`, not one mini-batch per Python step), and give the accelerator
# matrices large enough to fill it. One exception, measured on the CPU: XLA's CPU backend runs a
# convolution's gradient several times slower inside a compiled loop than on its own, so
# `jaxnn train` steps convolutional networks from Python there (`--loop auto`; see
# `jaxnn.train.LOOPS`).

# %% [markdown]
# ## Several devices: data parallelism
#
# With $d$ devices (`jax.device_count()`: a TPU v2-8 runtime has 8; a machine may have several
# GPUs) each mini-batch of $m$ examples is split into $d$ slices of $m/d$, and every device
# keeps a full copy of the parameters. Because the cost is an average over the mini-batch, so
# is its gradient:
#
# $$\nabla C = \frac{1}{m}\sum_x \nabla C_x
#   = \frac{1}{d}\sum_{k=1}^{d} \Big[\frac{d}{m}\sum_{x \in \text{slice } k} \nabla C_x\Big],$$
#
# the mean of the $d$ slice gradients. Each device computes one bracket; an all-reduce averages
# them, and every copy of the parameters takes the same step. We check the identity on one
# device first: the gradient of 16 examples against the mean of the gradients of four slices of 4.

# %%
xb, yb = x[:16], y[:16]
whole = grad(params, xb, yb)
slices = [grad(params, xb[k * 4 : (k + 1) * 4], yb[k * 4 : (k + 1) * 4]) for k in range(4)]
mean_of_slices = jax.tree.map(lambda *g: sum(g) / 4, *slices)
gap = max(float(jnp.max(jnp.abs(a - b)))
          for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(mean_of_slices)))
print(f"max |grad(16 examples) - mean of 4 slice gradients| = {gap:.1e} (float32 rounding)")

# %% [markdown]
# `jaxnn.parallel` does this without rewriting the training step: it makes a mesh of the devices
# with one axis, `"batch"`, replicates the parameters, and marks each gathered mini-batch as split
# along that axis; XLA partitions the compiled epoch and inserts the all-reduce. On the command
# line it is `jaxnn train --devices all` (the mini-batch size must divide by the device count).
# The cell below trains the same network on one device and on all of them; on a runtime with a
# single device both rows use that device, and the two runs agree to float32 rounding either way.

# %%
from jaxnn import parallel  # noqa: E402

d = jax.device_count()
mesh = parallel.make_mesh("all")
print(f"{d} device(s); mesh axes {mesh.axis_names}, shape {dict(mesh.shape)}")
# At least two epochs: s/epoch is the median of the epochs after the first (which compiles).
cfg = experiment.TrainConfig.from_preset(
    "ch1-30", mini_batch_size=8 * d, epochs=scaled(3, 2),
    train_size=scaled(None, 4000))
for label, n_dev in (("1 device", 1), (f"all {d} device(s)", "all")):
    res = experiment.run(cfg, progress=False, devices=n_dev)
    s = res.summary
    print(f"{label:18s} test accuracy {100 * s['final_test_accuracy']:.2f}%, "
          f"{s['seconds_per_epoch']:.3f} s/epoch (first epoch with compilation "
          f"{s['first_epoch_seconds']:.2f} s)")
