# %% [markdown]
# # 6. Activation functions
#
# The sigmoid is only one choice of $\sigma$ in $a = \sigma(z)$. Backpropagation multiplies by
# $\sigma'(z)$ at every layer (BP2: $\delta^l = ((w^{l+1})^T \delta^{l+1}) \odot \sigma'(z^l)$),
# so the shape of $\sigma'$ decides how well gradients flow. This notebook plots every activation
# in `jaxnn.activations` with its derivative, looks at saturation and at "dying" ReLUs, and trains
# the same network with each.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import activations, data, experiment, mlp

# %% [markdown]
# ## Every activation and its derivative
#
# Derivatives come from `jax.grad` applied elementwise (`jax.vmap`). PReLU is drawn with its
# initial slope $\alpha = 0.25$ (it is learned during training).

# %%
names = [n for n in activations.HIDDEN]
z = jnp.linspace(-4, 4, 801)
fig, axes = plt.subplots(3, 5, figsize=(16, 9), sharex=True)
for ax, name in zip(axes.ravel(), names):
    f = activations.get(name)
    d = jax.vmap(jax.grad(lambda t, f=f: f(t)))(z)
    ax.plot(z, f(z), lw=2, label=r"$\sigma(z)$")
    ax.plot(z, d, "--", lw=2, label=r"$\sigma'(z)$")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(title=name, ylim=(-1.5, 3))
for ax in axes[-1]:
    ax.set_xlabel("$z$")
for ax in axes[:, 0]:
    ax.set_ylabel("value")
for ax in axes.ravel()[len(names):]:
    ax.axis("off")
axes[0, 0].legend(loc="upper left")
fig.suptitle("Activation functions (solid) and their derivatives (dashed)")
fig.tight_layout()

# %% [markdown]
# ## Saturation
#
# An activation saturates where its derivative vanishes. Sigmoid's derivative is at most $1/4$
# and decays like $e^{-|z|}$; tanh's is at most 1 and decays twice as fast; ReLU's is exactly 1
# for every $z > 0$ and 0 below. The table lists $\sigma'(z)$ at a few points.

# %%
points = jnp.array([-6.0, -2.0, 0.5, 2.0, 6.0])
print(f"{'activation':13s}" + "".join(f"{'z = ' + str(float(p)):>11s}" for p in points))
for name in names:
    f = activations.get(name)
    d = jax.vmap(jax.grad(lambda t, f=f: f(t)))(points)
    print(f"{name:13s}" + "".join(f"{float(v):11.4f}" for v in d))

# %% [markdown]
# Saturation compounds with depth: in a chain of $L$ sigmoid layers the gradient picks up a
# factor $\sigma'(z) \le 1/4$ per layer. Below, a deep stack of random layers (weights
# $N(0, 1/n_{in})$) is given MNIST images, and we measure the norm of
# $\partial C / \partial b^l$ per layer.

# %%
mnist = data.load("mnist")
x = jnp.asarray(data.to_inputs(mnist.train.images[:scaled(1000, 200)]))
y = jax.nn.one_hot(jnp.asarray(mnist.train.labels[:len(x)]), 10)
depth_sizes = (784, *([30] * 6), 10)


def bias_grad_norms(name, scheme="default"):
    params = mlp.init(jax.random.key(0), depth_sizes, activation=name, scheme=scheme)
    cost = lambda p: jnp.mean(jnp.sum(  # noqa: E731
        (mlp.apply(p, x, activation=name) - y) ** 2, axis=1)) / 2
    g = jax.grad(cost)(params)
    return [float(jnp.linalg.norm(layer["b"])) for layer in g[:-1]]


fig, ax = plt.subplots(figsize=(7, 4))
for name in ("sigmoid", "tanh", "relu"):
    ax.semilogy(range(1, len(depth_sizes) - 1), bias_grad_norms(name), "o-", label=name)
ax.set(title="Gradient norm per hidden layer at initialization (6 hidden layers)",
       xlabel="hidden layer $l$", ylabel=r"$\|\partial C / \partial b^l\|$ (log scale)")
ax.legend()
plt.show()

# %% [markdown]
# ## Dying ReLU
#
# A ReLU unit whose weighted input is negative for every training example outputs 0 everywhere,
# has zero gradient everywhere, and never recovers: it is dead. A large learning rate can knock
# units into that state. We train the same [784, 100, 10] ReLU network with a moderate and a
# large learning rate ($\eta = 0.1$ and $1$) and count hidden units that are zero on every one
# of 1,000 images (200 in quick mode); leaky ReLU keeps a slope of 0.01 below zero, so its units can always come
# back. (Quick mode: ReLU only.)

# %%
def dead_fraction(cfg, params):
    z1 = x @ params[0]["w"].T + params[0]["b"]
    return float(jnp.mean(jnp.all(z1 <= 0, axis=0)))


rows = []
for act in scaled(("relu", "leaky_relu"), ("relu",)):
    for eta in (0.1, 1.0):
        cfg = experiment.TrainConfig.from_preset(
            "ch1-30", sizes=(784, 100, 10), activation=act, init="he", eta=eta,
            cost="log_likelihood", output_activation="softmax",
            epochs=scaled(3, 1), train_size=scaled(10_000, 1000))
        res = experiment.run(cfg, progress=False)
        init_params = experiment.initial_params(cfg)  # where the run started
        finite = all(bool(jnp.all(jnp.isfinite(leaf)))
                     for leaf in jax.tree.leaves(res.state.params))
        rows.append((act, eta, dead_fraction(cfg, init_params),
                     dead_fraction(cfg, res.state.params), res.history[-1]["test_accuracy"],
                     finite))
print(f"{'activation':11s} {'eta':>5s} {'dead at init':>13s} {'dead after':>11s} {'test acc':>9s}")
for act, eta, d0, d1, acc, finite in rows:
    note = "" if finite else "  (diverged: parameters not finite)"
    print(f"{act:11s} {eta:5.1f} {100 * d0:12.1f}% {100 * d1:10.1f}% {100 * acc:8.2f}%{note}")

# %% [markdown]
# With $\eta = 1$ most ReLU units die and the test accuracy falls far below that at
# $\eta = 0.1$, though not to chance; leaky ReLU has many units that are negative on every image
# too, yet it keeps learning, because their gradient is 0.01, not 0.
#
# ## The same network with each activation
#
# Now one architecture, [784, 100, 10] with a softmax output and the log-likelihood cost, Xavier
# initialization, plain SGD with $\eta = 0.1$ and mini-batches of 10, trained with each hidden
# activation. `step` is left out: its derivative is zero everywhere, so nothing learns.
# Quick mode trains two of them on 1,000 images for 2 epochs. In full mode this sweep is most of
# the notebook's run time: 436 s for the whole notebook on a 2-core CPU (docs/notebooks.md).

# %%
compared = [n for n in names if n != "step"] + ["maxout"]
compared = scaled(compared, ["sigmoid", "relu"])
results = {}
for name in compared:
    cfg = experiment.TrainConfig.from_preset(
        "ch1-30", sizes=(784, 100, 10), activation=name, init="xavier", eta=0.1,
        cost="log_likelihood", output_activation="softmax",
        epochs=scaled(5, 2), train_size=scaled(None, 1000))
    start = time.perf_counter()
    res = experiment.run(cfg, progress=False)
    results[name] = (res.history, time.perf_counter() - start)

# %%
print(f"{'activation':13s} {'epoch 1':>8s} {'best val':>9s} {'test at best':>13s} {'time':>7s}")
for name, (h, secs) in sorted(results.items(), key=lambda kv: -max(
        r["validation_accuracy"] for r in kv[1][0])):
    best = max(reversed(h), key=lambda r: r["validation_accuracy"])  # the last of ties
    print(f"{name:13s} {100 * h[0]['validation_accuracy']:7.2f}% "
          f"{100 * best['validation_accuracy']:8.2f}% {100 * best['test_accuracy']:12.2f}% "
          f"{secs:6.1f}s")

fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
cmap = plt.get_cmap("tab20")
for i, (name, (h, _)) in enumerate(results.items()):
    ep = [r["epoch"] + 1 for r in h]
    axes[0].plot(ep, [100 * r["validation_accuracy"] for r in h], "o-", ms=3, color=cmap(i),
                 label=name)
    axes[1].semilogy(ep, [r["train_cost"] for r in h], "o-", ms=3, color=cmap(i), label=name)
axes[0].set(title="Validation accuracy, [784, 100, 10], SGD $\\eta = 0.1$", xlabel="epoch",
            ylabel="accuracy (%)")
axes[1].set(title="Training cost (log-likelihood)", xlabel="epoch", ylabel="cost (log scale)")
axes[1].legend(ncol=2, fontsize=8, title="activation (colours as on the left)")
for ax in axes:
    ax.xaxis.get_major_locator().set_params(integer=True)
fig.tight_layout()

# %% [markdown]
# `identity` is a linear model in disguise (notebook 1): it caps out near a linear classifier's
# accuracy. The sigmoid and hard sigmoid, whose derivatives never exceed $1/4$, learn clearly
# slowest at this learning rate: about three points behind after the first epoch. Every other
# non-linear choice ends within about half a point of the rest (tanh, which saturates on both
# sides, keeps up with ReLU here); with one run each, their order is partly the seed's noise.
