# %% [markdown]
# # 5. Cost functions and softmax
#
# A neuron learns through $\partial C / \partial w$ and $\partial C / \partial b$. With the
# quadratic cost $C = \frac{(y - a)^2}{2}$ and $a = \sigma(z)$, $z = wx + b$,
#
# $$\frac{\partial C}{\partial w} = (a - y)\,\sigma'(z)\,x, \qquad \frac{\partial C}{\partial b} = (a - y)\,\sigma'(z).$$
#
# When the neuron is badly wrong and saturated, $\sigma'(z)$ is tiny and it learns slowly,
# exactly when it should learn fastest. The cross-entropy cost
#
# $$C = -\left[y \ln a + (1 - y)\ln(1 - a)\right]$$
#
# cancels the $\sigma'(z)$: $\partial C/\partial w = (a - y)\,x$ and $\partial C/\partial b = a - y$,
# so the error alone sets the speed.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import activations, costs, data, experiment

# %% [markdown]
# ## The learning slowdown, on the book's single neuron
#
# One input $x = 1$ with desired output $y = 0$, learning rate $\eta = 0.15$, 300 epochs of
# plain gradient descent. We start at $w = 0.6, b = 0.9$ (output 0.82, not saturated) and at
# $w = 2, b = 2$ (output 0.98, saturated). `costs.quadratic` and `costs.cross_entropy` are the
# library's batch-averaged costs; `jax.grad` differentiates them. The book runs its quadratic
# neuron at $\eta = 0.15$ and its cross-entropy neuron at $\eta = 0.005$, noting that the rate is
# not the point, the shape of the curve is; here both use 0.15, so cross-entropy's curves fall
# faster than the book's.

# %%
x, y, eta, n_epochs = jnp.array([[1.0]]), jnp.array([[0.0]]), 0.15, 300


def train_neuron(cost_fn, w, b):
    def loss(p):
        return cost_fn(activations.sigmoid(x * p[0] + p[1]), y)

    def step(p, _):
        c, g = jax.value_and_grad(loss)(p)
        return p - eta * g, (c, activations.sigmoid(p[0] + p[1]))

    p, (cost_curve, outputs) = jax.lax.scan(step, jnp.array([w, b]), None, length=n_epochs)
    # outputs[k] is the output after k epochs (k = 0 the start), so one more after the last
    return cost_curve, jnp.append(outputs, activations.sigmoid(p[0] + p[1]))


starts = [(0.6, 0.9), (2.0, 2.0)]
curves = {(name, s): train_neuron(costs.get(name), *s)
          for name in ("quadratic", "cross_entropy") for s in starts}

fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
for col, s in enumerate(starts):
    for name, color in [("quadratic", "tab:red"), ("cross_entropy", "tab:blue")]:
        cost_curve, outputs = curves[(name, s)]
        axes[0, col].plot(cost_curve, color=color, label=name.replace("_", "-"))
        axes[1, col].plot(outputs, color=color, label=name.replace("_", "-"))
    a0 = float(activations.sigmoid(s[0] + s[1]))
    axes[0, col].set(title=f"start $w = {s[0]}$, $b = {s[1]}$ (output {a0:.2f})",
                     ylabel="cost")
    axes[1, col].set(xlabel="epoch", ylabel="output $a$ (target 0)")
    axes[0, col].legend()
    axes[1, col].legend()
fig.suptitle(r"One sigmoid neuron learning $1 \to 0$, $\eta = 0.15$")
fig.tight_layout()

for (name, s), (_, outputs) in curves.items():
    print(f"{name:14s} from w, b = {s}: output after 50 epochs {float(outputs[50]):.3f}, "
          f"after {n_epochs} {float(outputs[n_epochs]):.3f}")

# %% [markdown]
# From $w = b = 2$ the quadratic cost barely moves for the first hundred epochs: $z = 4$ sits on
# the flat tail of the sigmoid, where $\sigma'(z) \approx 0.018$. Cross-entropy starts fast from
# both points. The plot of $\sigma'$ shows why.

# %%
zs = jnp.linspace(-6, 6, 301)
sigma_prime = jax.vmap(jax.grad(activations.sigmoid))
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(zs, sigma_prime(zs), label=r"$\sigma'(z)$")
for s, marker in zip(starts, ["o", "s"]):
    z0 = s[0] + s[1]
    ax.plot(z0, sigma_prime(jnp.array([z0]))[0], marker, ms=9,
            label=f"start $z = {z0:.1f}$: $\\sigma' = {float(sigma_prime(jnp.array([z0]))[0]):.3f}$")
ax.set(title="The quadratic cost's gradient carries a factor $\\sigma'(z)$",
       xlabel="$z$", ylabel=r"$\sigma'(z)$")
ax.legend()
plt.show()

# %% [markdown]
# ## Softmax
#
# A softmax output layer turns the weighted inputs $z^L_j$ into a probability distribution,
#
# $$a^L_j = \frac{e^{z^L_j}}{\sum_k e^{z^L_k}}, \qquad \sum_j a^L_j = 1 .$$
#
# Raising one $z_j$ raises $a_j$ and lowers every other output. Below, four of five weighted
# inputs are fixed and $z_3$ sweeps.

# %%
base = jnp.array([1.0, 0.5, -0.5, 0.0, 2.0])
sweep = jnp.linspace(-4, 6, 200)
zz = jnp.tile(base, (len(sweep), 1)).at[:, 3].set(sweep)
a = activations.softmax(zz)
fig, ax = plt.subplots(figsize=(7, 4))
ax.stackplot(sweep, a.T, labels=[f"$a_{j}$" for j in range(5)], alpha=0.8)
ax.set(title="Softmax outputs as $z_3$ varies, $z = (1, 0.5, -0.5, z_3, 2)$",
       xlabel="$z_3$", ylabel="output (stacked, sums to 1)", xlim=(-4, 6), ylim=(0, 1))
ax.legend(loc="upper left")
print("softmax(z) for z =", base.tolist(), "->",
      [round(float(v), 3) for v in activations.softmax(base)])

# %% [markdown]
# ## Log-likelihood
#
# Paired with softmax, the log-likelihood cost $C = -\ln a^L_y$ (the log of the probability of
# the correct class) has the same clean gradient as cross-entropy with sigmoids:
#
# $$\frac{\partial C}{\partial z^L_j} = a^L_j - y_j .$$
#
# We check this against `jax.grad` of the library's stable form, which works from the logits with
# `log_softmax` so that it never computes $\ln 0$. (Where the right class's output nears 1,
# $a - y$ is a difference of nearly equal numbers and loses its digits in float32: the library
# takes $1 - a$ there as the sum of the other outputs. `costs.softmax_residual` is that form of
# $a - y$; on these moderate logits both forms agree to float32 rounding.)

# %%
z = jax.random.normal(jax.random.key(0), (4, 10)) * 3
y = jax.nn.one_hot(jnp.array([3, 1, 4, 1]), 10)
ll = costs.from_logits("log_likelihood", "softmax")
auto = jax.grad(ll)(z, y) * len(z)  # the library's cost is averaged over the batch
by_hand = activations.softmax(z) - y
print(f"max |jax.grad - (a - y)| = {float(jnp.max(jnp.abs(auto - by_hand))):.2e}")
print(f"cost from logits {float(ll(z, y)):.5f} = textbook form "
      f"{float(costs.log_likelihood(activations.softmax(z), y)):.5f}")

# %% [markdown]
# ### When the network is confidently right
#
# Take $z = (d, 0, \dots, 0)$ with the right class first. Then $a_0 = 1/(1 + 9e^{-d})$, the
# exact gradient at the right class is $a_0 - 1 = -9e^{-d}/(1 + 9e^{-d})$, and the cost is
# $\ln(1 + 9e^{-d})$. The textbook $a - y$ and `jax.nn.log_softmax` both go through the sum
# $1 + e^{-d} + \dots + e^{-d}$, and in float32 that sum keeps only the digits of $9e^{-d}$ that
# fit beside the 1: about three at $d = 10$, one at $d = 15$, and none once each $e^{-d}$ is
# below half the spacing of float32 numbers near 1 ($6 \times 10^{-8}$, from $d \approx 17$),
# where gradient and cost come out as exactly 0. The library's derivative rules never form
# $1 - a_0$ from that sum: they take it as the sum of the other outputs, and keep float32's
# precision at every margin.

# %%
y0 = jnp.eye(10)[:1]


def textbook(z, y):
    return -jnp.sum(y * jax.nn.log_softmax(z))


print(f"{'d':>3s} {'exact dC/dz_0':>14s} {'jax.nn.log_softmax':>19s} {'jaxnn':>13s}")
for d in (5, 10, 15, 17, 20, 30):
    zd = jnp.zeros((1, 10)).at[0, 0].set(d)
    exact = -9 * np.exp(-d) / (1 + 9 * np.exp(-d))  # float64, from e^-d: nothing cancels
    print(f"{d:3d} {exact:14.6e} {float(jax.grad(textbook)(zd, y0)[0, 0]):19.6e} "
          f"{float(jax.grad(ll)(zd, y0)[0, 0]):13.6e}")

# %% [markdown]
# ## On MNIST
#
# The same [784, 30, 10] network (initialized with $N(0, 1)$ like chapter 1) trained three ways:
# sigmoid outputs with the quadratic cost ($\eta = 3$, the chapter-1 setting), sigmoid outputs
# with cross-entropy ($\eta = 0.5$, the book's chapter-3 setting) and softmax with
# log-likelihood ($\eta = 0.5$). Quick mode uses 1,000 images and 2 epochs.

# %%
variants = {
    "quadratic + sigmoid": dict(cost="quadratic", output_activation="sigmoid", eta=3.0),
    "cross-entropy + sigmoid": dict(cost="cross_entropy", output_activation="sigmoid", eta=0.5),
    "log-likelihood + softmax": dict(cost="log_likelihood", output_activation="softmax", eta=0.5),
}
histories = {}
for name, settings in variants.items():
    cfg = experiment.TrainConfig.from_preset(
        "ch1-30", epochs=scaled(10, 2), train_size=scaled(None, 1000), **settings)
    histories[name] = experiment.run(cfg, progress=False).history

fig, ax = plt.subplots(figsize=(7, 4))
for name, h in histories.items():
    ax.plot([r["epoch"] + 1 for r in h], [100 * r["validation_accuracy"] for r in h], "o-",
            label=name)
ax.set(title="[784, 30, 10] on MNIST: output layer and cost", xlabel="epoch",
       ylabel="validation accuracy (%)")
ax.legend()
print(f"{'cost + output':26s} {'epoch 1':>8s} {'best':>8s}")
for name, h in histories.items():
    best = max(r["validation_accuracy"] for r in h)
    print(f"{name:26s} {100 * h[0]['validation_accuracy']:7.2f}% {100 * best:7.2f}%")
