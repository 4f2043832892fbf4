# %% [markdown]
# # 8. Weight initialization
#
# Chapter 1 drew every weight and bias from $N(0, 1)$. Consider a hidden neuron with
# $n_{in} = 1000$ inputs, half of them 1 and half 0. Its weighted input $z = \sum_j w_j x_j + b$ is
# a sum of 501 independent $N(0,1)$ terms, so $z \sim N(0, 501)$: its standard deviation is $\sqrt{501} \approx 22.4$,
# $\sigma(z)$ is pinned at 0 or 1, $\sigma'(z) \approx 0$, and the neuron learns very slowly.
# Scaling the weights down fixes it:
#
# | scheme | weights | biases | in `jaxnn.init` |
# |---|---|---|---|
# | chapter 1 | $N(0, 1)$ | $N(0, 1)$ | `large` |
# | chapter 3 | $N(0, 1/n_{in})$ | $N(0, 1)$ | `default` |
# | Xavier (Glorot & Bengio) | $N(0, 2/(n_{in} + n_{out}))$ | 0 | `xavier` |
# | He et al. (for ReLU) | $N(0, 2/n_{in})$ | 0 | `he` |

# %%
import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import activations, data, experiment, init, mlp

SCHEMES = ("large", "default", "xavier", "he")

# %% [markdown]
# ## The distribution of $z$
#
# First the book's thought experiment, then the real thing: the first hidden layer of a
# [784, 30, 10] network fed MNIST images (whose pixels are mostly 0).

# %%
n_in, n_out = 1000, 30
x = jnp.concatenate([jnp.ones(500), jnp.zeros(500)])
mnist = data.load("mnist")
images = jnp.asarray(data.to_inputs(mnist.train.images[:scaled(1000, 200)]))

fig, axes = plt.subplots(1, 2, figsize=(13, 4))
bins = np.linspace(-40, 40, 161)
for name in SCHEMES:
    ws, bs = jax.vmap(lambda k: init.get(name)(k, n_out, n_in))(
        jax.random.split(jax.random.key(0), 200))
    z = (ws @ x + bs).ravel()
    axes[0].hist(np.asarray(z), bins=bins, histtype="step", lw=1.5, density=True,
                 label=f"{name}: std {float(z.std()):.2f}")
    w, b = init.get(name)(jax.random.key(1), 30, 784)
    z_img = (images @ w.T + b).ravel()
    axes[1].hist(np.asarray(z_img), bins=bins, histtype="step", lw=1.5, density=True,
                 label=f"{name}: std {float(z_img.std()):.2f}")
axes[0].set(title="$z$ of a neuron with 1000 inputs, 500 of them on", xlabel="$z$",
            ylabel="density", yscale="log", ylim=(1e-4, 2))
axes[1].set(title="$z$ of the first hidden layer on MNIST images", xlabel="$z$",
            ylabel="density", yscale="log", ylim=(1e-4, 2))
for ax in axes:
    ax.legend(fontsize=9)
fig.tight_layout()

# %% [markdown]
# ## Saturation
#
# A sigmoid neuron with $|z| > 4$ has $\sigma'(z) < 0.018$: it barely learns. The fraction of
# saturated first-layer (neuron, image) pairs on MNIST under each scheme:

# %%
print(f"{'scheme':8s} {'|z| > 4':>8s} {'mean sigma_prime(z)':>20s}")
sigma_prime = jax.vmap(jax.grad(activations.sigmoid))
for name in SCHEMES:
    w, b = init.get(name)(jax.random.key(1), 30, 784)
    z = (images @ w.T + b).ravel()
    print(f"{name:8s} {100 * float(jnp.mean(jnp.abs(z) > 4)):7.1f}% "
          f"{float(jnp.mean(sigma_prime(z))):20.4f}")

# %% [markdown]
# ## Signals through a deep network
#
# The same scaling argument applies layer after layer. With $\mathrm{Var}(w) = c / n_{in}$ and
# zero-mean inputs, $\mathrm{Var}(z^{l}) \approx c \cdot \mathrm{Var}(a^{l-1})$. For tanh
# (slope 1 near 0) Xavier's $c \approx 1$ would keep the signal steady if tanh were linear; it
# compresses, so with Xavier the spread still shrinks from layer to layer, only slowly (in the
# plot below, from about 0.63 to 0.24 over nine layers). ReLU zeroes half of its inputs, so He
# doubles $c$ to 2 and the spread stays flat. Here a 10-layer network of width 256 is fed Gaussian inputs; we plot the
# standard deviation of each layer's activations.

# %%
depth, width = 10, 256
x_deep = jax.random.normal(jax.random.key(2), (scaled(1000, 256), width))
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for ax, act in zip(axes, ("tanh", "relu")):
    for name in SCHEMES:
        params = mlp.init(jax.random.key(3), (width,) * (depth + 1), scheme=name)
        _, acts = mlp.forward(params, x_deep, activation=act, output_activation="identity")
        stds = [float(a.std()) for a in acts[1:-1]]
        ax.semilogy(range(1, depth), stds, "o-", label=name)
    ax.set(title=f"{act} network, width {width}: activation spread by layer",
           xlabel="hidden layer", ylabel="std of $a^l$ (log scale)")
    ax.legend()
fig.tight_layout()

# %% [markdown]
# With `large` every tanh unit saturates at $\pm 1$ (the spread sits at 1) and ReLU activations
# grow by about $\sqrt{n/2} \approx 11$ per layer. Xavier's variance $2/(n_{in} + n_{out}) = 1/n$
# here loses half of a ReLU signal's variance at each layer (ReLU zeroes half the inputs), so its
# spread shrinks steadily; He's $2/n$ keeps it constant, as designed. `default` stays level too,
# but only because its $N(0, 1)$ biases add fresh variance at every layer.
#
# ## Speed of learning
#
# The book's comparison: [784, 30, 10] with sigmoid, cross-entropy, $\eta = 0.1$,
# $\lambda = 5.0$, trained from `large` and `default` initializations (book, after epoch 1:
# 86.43% vs 92.70% validation accuracy; both near 96.5% after its 30 epochs). We add Xavier
# and He, and train 15 epochs: half the book's, so `large` is still about a point behind at the
# end here. Quick mode: `large` and `default` only, 1,000 images, 2 epochs.

# %%
histories = {}
for name in scaled(SCHEMES, ("large", "default")):
    cfg = experiment.TrainConfig.from_preset(
        "ch3-init-30-default", init=name, epochs=scaled(15, 2), train_size=scaled(None, 1000))
    histories[name] = experiment.run(cfg, progress=False).history

fig, ax = plt.subplots(figsize=(8, 4.5))
for name, h in histories.items():
    ax.plot([r["epoch"] + 1 for r in h], [100 * r["validation_accuracy"] for r in h], "o-",
            label=name)
ax.set(title="[784, 30, 10], cross-entropy, $\\eta = 0.1$, $\\lambda = 5$: initialization",
       xlabel="epoch", ylabel="validation accuracy (%)")
ax.legend()
plt.show()
print(f"{'scheme':8s} {'epoch 1':>8s} {'best':>8s}")
for name, h in histories.items():
    print(f"{name:8s} {100 * h[0]['validation_accuracy']:7.2f}% "
          f"{100 * max(r['validation_accuracy'] for r in h):7.2f}%")
