# %% [markdown]
# # 10. Vanishing and exploding gradients
#
# Chapter 5 asks why deep sigmoid networks are hard to train. By BP2 the error of layer $l$ is
#
# $$\delta^l = \sigma'(z^l) \odot (w^{l+1})^T \sigma'(z^{l+1}) \odot (w^{l+2})^T \cdots
#   \sigma'(z^{L}) \odot \nabla_a C ,$$
#
# a product with one factor $w^{j}\sigma'(z^{j})$ per layer. Since $\sigma'(z) \le 1/4$ and the
# default weights are $N(0, 1/n_{in})$, the factors are typically smaller than 1 and $\delta^l$
# shrinks geometrically towards the input: the *vanishing* gradient. Make the weights large
# enough and the product grows instead: the *exploding* gradient. The book measures the speed of
# learning of hidden layer $l$ by $\|\delta^l\| = \|\partial C/\partial b^l\|$ (BP3).

# %%
import jax
import jax.numpy as jnp
import numpy as np
import optax

import manual_grad
from jaxnn import costs, data, mlp, reproduce

mnist = data.load("mnist")
n_images = 1000
x = jnp.asarray(data.to_inputs(mnist.train.images[:n_images]))
y = jnp.asarray(data.one_hot(mnist.train.labels[:n_images]))
x_test = jnp.asarray(data.to_inputs(mnist.test.images[:scaled(10000, 2000)]))
labels_test = jnp.asarray(mnist.test.labels[:scaled(10000, 2000)])

# %% [markdown]
# ## $\|\delta^l\|$ at initialization
#
# The book's setting: sigmoid networks [784, 30, ..., 30, 10] with 2, 3 and 4 hidden layers,
# default initialization, cross-entropy cost, gradient over the first 1,000 training images.
# `jaxnn.reproduce.gradient_norms` computes it (with `jax.grad`) for several seeds.

# %%
seeds = tuple(range(scaled(5, 2)))
table = {}
print(f"seeds {list(seeds)}; ||delta^l|| per hidden layer, first layer first")
for depth, book in reproduce.BOOK_GRADIENT_NORMS.items():
    norms = reproduce.gradient_norms((784, *[30] * depth, 10), seeds=seeds, images=n_images)
    table[depth] = norms
    ours = ", ".join(f"{m:.3f} +- {s:.3f}" for m, s in zip(norms.mean(0), norms.std(0)))
    print(f"{depth} hidden: ours {ours}\n          book {', '.join(f'{b:.3f}' for b in book)}")

# %% [markdown]
# The same numbers by hand: `manual_grad.backprop` returns every $\delta^l$, and
# `manual_grad.speed_of_learning` takes the norm of their batch means (seed 0, 4 hidden layers).

# %%
net4 = mlp.make((784, 30, 30, 30, 30, 10), scheme="default")
p4 = net4.init(jax.random.key(0))
_, info = manual_grad.backprop(p4, x, y, cost="cross_entropy")
by_hand = [float(v) for v in manual_grad.speed_of_learning(info)]
print("manual_grad:", [f"{v:.4f}" for v in by_hand])
print("jax.grad:   ", [f"{v:.4f}" for v in table[4][0]])

fig, ax = plt.subplots(figsize=(7, 4))
for depth, norms in table.items():
    layers = np.arange(1, depth + 1)
    ax.errorbar(layers, norms.mean(0), yerr=norms.std(0), marker="o", capsize=3,
                label=f"{depth} hidden layers (ours)")
    ax.plot(layers, reproduce.BOOK_GRADIENT_NORMS[depth], "k", ls=":", marker="x", alpha=0.6)
ax.plot([], [], "k:", marker="x", label="book")
ax.set(yscale="log", xticks=[1, 2, 3, 4], xlabel="hidden layer l (1 = nearest the input)",
       ylabel="$\\|\\delta^l\\|$",
       title="Speed of learning at initialization (sigmoid, default init)")
ax.legend()
fig.tight_layout()

# %% [markdown]
# Each layer closer to the input learns about 4 to 6 times more slowly, as in the book: the
# factor $\sigma'(z) \le 1/4$ per layer dominates.
#
# ## During training
#
# The book trains the 4-hidden-layer network on the 1,000 images (mini-batches of 10,
# $\eta = 0.1$, cross-entropy) and follows $\|\delta^l\|$ per epoch. Plain SGD, written inline.

# %%
cost_ce = costs.from_logits("cross_entropy", "sigmoid")


def train_tracking(logits_fn, params, epochs, eta=0.1, m=10, seed=0, bias="b"):
    """SGD on the 1,000 images; after each epoch ||dC/d bias^l|| of every hidden layer (over all
    1,000) and the test accuracy. ``bias`` names the per-unit shift parameter of a layer."""
    def C(p, xb, yb):
        return cost_ce(logits_fn(p, xb), yb)

    grad = jax.grad(C)

    @jax.jit
    def epoch(p, key):
        order = jax.random.permutation(key, n_images).reshape(-1, m)

        def step(p, idx):
            g = grad(p, x[idx], y[idx])
            return jax.tree_util.tree_map(lambda a, b: a - eta * b, p, g), None

        p = jax.lax.scan(step, p, order)[0]
        norms = jnp.stack([jnp.linalg.norm(g[bias]) for g in grad(p, x, y)[:-1]])
        accuracy = jnp.mean(jnp.argmax(logits_fn(p, x_test), 1) == labels_test)
        return p, norms, accuracy

    norms, accs = [], []
    for key in jax.random.split(jax.random.key(seed), epochs):
        params, n, a = epoch(params, key)
        norms.append(n)
        accs.append(a)
    return params, np.asarray(norms), np.asarray(accs)


epochs = scaled(100, 6)
_, hist, accs = train_tracking(net4.logits, p4, epochs)
print(f"after {epochs} epochs on 1,000 images: test accuracy {100 * accs[-1]:.1f}%")
fig, ax = plt.subplots(figsize=(7, 4))
for l in range(hist.shape[1]):
    ax.plot(range(1, epochs + 1), hist[:, l], label=f"hidden layer {l + 1}")
ax.set(yscale="log", xlabel="epoch", ylabel="$\\|\\delta^l\\|$",
       title="Speed of learning during training, [784, 30, 30, 30, 30, 10]")
ax.legend()
fig.tight_layout()

# %% [markdown]
# At first the ordering persists: for tens of epochs the first hidden layer learns about two
# orders of magnitude more slowly than the last, and the network sits on a plateau. In our full
# run (100 epochs, one seed) it leaves the plateau after about 50 epochs, the norms grow and
# become comparable, and test accuracy reaches about 70%; the book's plot (500 epochs) keeps
# the layers apart for longer. Either way the early layers are the bottleneck of the start.
#
# ## Sigmoid vs ReLU
#
# ReLU has $\mathrm{ReLU}'(z) = 1$ for $z > 0$, so an active path multiplies $\delta$ only by
# weights. With He initialization, $N(0, 2/n_{in})$, the variance of the signal is preserved
# layer to layer and $\|\delta^l\|$ stays roughly level. So does tanh with Xavier
# initialization: $\tanh'(0) = 1$, four times $\sigma'(0)$. Here 8 hidden layers of 30.

# %%
deep = (784, *[30] * 8, 10)
fig, ax = plt.subplots(figsize=(7, 4))
for activation, scheme in (("sigmoid", "default"), ("tanh", "xavier"), ("relu", "he")):
    net = mlp.make(deep, activation=activation, scheme=scheme)
    g = jax.jit(jax.grad(lambda p, net=net: cost_ce(net.logits(p, x), y)))
    norms = np.array([[float(jnp.linalg.norm(layer["b"]))
                       for layer in g(net.init(jax.random.key(s)))[:-1]]
                      for s in seeds[:scaled(5, 1)]])
    ratio = norms.mean(0)[0] / norms.mean(0)[-1]
    print(f"{activation:8s} ({scheme:7s}): ||delta^1|| / ||delta^8|| = {ratio:.2e}")
    ax.plot(range(1, 9), norms.mean(0), "o-", label=f"{activation}, {scheme} init")
ax.set(yscale="log", xlabel="hidden layer l", ylabel="$\\|\\delta^l\\|$ (mean over seeds)",
       title="8 hidden layers at initialization")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Exploding gradients and clipping
#
# Now the opposite: a ReLU network whose weights are too large, $N(0, g^2 \cdot 2/n_{in})$ with
# gain $g = 1.5$. Each layer multiplies the signal (and the backward error) by about $g$, so over 8
# layers the signal is $1.5^8 \approx 26$ times too large, the gradient more so, and SGD with
# $\eta = 0.1$ diverges. Clipping by the
# global norm rescales the whole gradient when it is too long,
#
# $$g \leftarrow g \cdot \min\!\left(1, \frac{c}{\|g\|}\right),$$
#
# which `optax.clip_by_global_norm(c)` does (and `jaxnn.optim`'s `clip_norm` option, i.e.
# `--clip-norm` on the command line).

# %%
def big_init(key, gain=1.5):
    p = mlp.init(key, (784, *[100] * 8, 10), scheme="he")
    return [{"w": gain * layer["w"], "b": layer["b"]} for layer in p]


relu_net = mlp.make((784, *[100] * 8, 10), activation="relu", output_activation="softmax")
cost_ll = costs.from_logits("log_likelihood", "softmax")


def run_sgd(optimizer, steps, m=20):
    p = big_init(jax.random.key(0))
    state = optimizer.init(p)

    @jax.jit
    def step(p, state, idx):
        loss, g = jax.value_and_grad(lambda q: cost_ll(relu_net.logits(q, x[idx]), y[idx]))(p)
        updates, state = optimizer.update(g, state, p)
        return optax.apply_updates(p, updates), state, loss, optax.global_norm(g)

    losses, gnorms = [], []
    for i in range(steps):
        idx = jnp.arange(i * m, (i + 1) * m) % n_images
        p, state, loss, gn = step(p, state, idx)
        losses.append(float(loss))
        gnorms.append(float(gn))
    return np.array(losses), np.array(gnorms)


steps = scaled(300, 60)
plain = run_sgd(optax.sgd(0.1), steps)
clipped = run_sgd(optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)), steps)
for name, (losses, gnorms) in (("plain SGD", plain), ("clipped, c = 1", clipped)):
    finite = np.isfinite(losses)
    print(f"{name:15s}: first ||g|| = {gnorms[0]:.3g}, loss {losses[0]:.1f} at step 1, "
          f"{losses[-1]:.3f} at step {steps}, non-finite losses: {np.sum(~finite)} of {steps}")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, (losses, gnorms) in (("plain SGD, $\\eta = 0.1$", plain),
                               ("clip_by_global_norm(1), $\\eta = 0.1$", clipped)):
    axes[0].plot(losses, label=name)
    axes[1].plot(gnorms, label=name)
axes[0].set(yscale="log", xlabel="step", ylabel="mini-batch cost (log-likelihood)",
            title="ReLU [784, 100 x 8, 10], weights 1.5x too large")
axes[1].set(yscale="log", xlabel="step", ylabel="$\\|g\\|$ before clipping",
            title="Global gradient norm")
for ax in axes:
    ax.legend()
fig.tight_layout()

# %% [markdown]
# ## Batch normalization
#
# Batch norm (Ioffe and Szegedy, 2015) normalizes each weighted input over the mini-batch
# before the activation, then lets the network rescale it:
#
# $$\hat z_j = \frac{z_j - \mu_j}{\sqrt{\sigma_j^2 + \epsilon}}, \qquad
#   \tilde z_j = \gamma_j \hat z_j + \beta_j, \qquad a_j = \sigma(\tilde z_j),$$
#
# with $\mu_j, \sigma_j^2$ the mean and variance of $z_j$ over the mini-batch. The sigmoids are
# kept in their steep middle, so $\sigma'$ stops shrinking the error. Below, an inline
# batch-normalized version of the deep sigmoid network (training-mode statistics throughout; at
# test time a real implementation uses running averages, as `jaxnn.cnn`'s `batch_norm=True` does).

# %%
def bn_init(key, sizes):
    p = mlp.init(key, sizes, scheme="default")
    for layer in p[:-1]:
        layer["gamma"] = jnp.ones(layer["w"].shape[0])
        layer["beta"] = jnp.zeros(layer["w"].shape[0])
    return p


def bn_logits(p, xb, eps=1e-5):
    a = xb
    for layer in p[:-1]:
        z = a @ layer["w"].T + layer["b"]
        z_hat = (z - z.mean(0)) / jnp.sqrt(z.var(0) + eps)
        a = jax.nn.sigmoid(layer["gamma"] * z_hat + layer["beta"])
    return a @ p[-1]["w"].T + p[-1]["b"]


sizes = (784, *[30] * 8, 10)
plain_net = mlp.make(sizes, scheme="default")
bn_epochs = scaled(20, 3)
curves = {
    "sigmoid": train_tracking(plain_net.logits, mlp.init(jax.random.key(0), sizes),
                              bn_epochs)[1:],
    # with batch norm b^l cancels out (z - mu), so beta^l plays the bias's role in BP3
    "sigmoid + batch norm": train_tracking(bn_logits, bn_init(jax.random.key(0), sizes),
                                           bn_epochs, bias="beta")[1:],
}
for name, (norms, accs) in curves.items():
    print(f"{name:22s}: ||delta^1|| / ||delta^8|| after epoch 1 = "
          f"{norms[0, 0] / norms[0, -1]:.2e}, "
          f"test accuracy {100 * accs[-1]:.1f}% after {bn_epochs} epochs")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for name, (norms, accs) in curves.items():
    axes[0].plot(range(1, 9), norms[-1], "o-", label=name)
    axes[1].plot(range(1, bn_epochs + 1), 100 * accs, "o-", label=name)
axes[0].set(yscale="log", xlabel="hidden layer l",
            ylabel="$\\|\\partial C/\\partial b^l\\|$ (or $\\beta^l$ with batch norm)",
            title=f"8 hidden sigmoid layers, after {bn_epochs} epochs")
axes[1].set(xlabel="epoch", ylabel="test accuracy (%)",
            title="Trained on 1,000 images, $\\eta = 0.1$")
axes[1].xaxis.get_major_locator().set_params(integer=True)
for ax in axes:
    ax.legend()
fig.tight_layout()

# %% [markdown]
# With batch norm the first layer's gradient is no longer orders of magnitude below the last
# one's, and the deep sigmoid network trains. Deep networks became trainable through such
# measures together: ReLU-like activations, initializations that preserve variance, batch
# normalization, gradient clipping, and (later) residual connections.

# %% [markdown]
# ### Backpropagation through batch norm, by hand
#
# Above, `jax.grad` differentiated `bn_logits`. By hand, the new thing is that every $z_j$ of
# the mini-batch moves $\mu_j$ and $\sigma_j^2$, so $\partial C/\partial z_j$ for one example
# gathers the error of all $N$ examples. With $\delta = \partial C/\partial \tilde z$ (the
# error arriving from above) and means over the mini-batch:
#
# $$\frac{\partial C}{\partial \beta_j} = \sum \delta_j, \qquad
#   \frac{\partial C}{\partial \gamma_j} = \sum \delta_j \hat z_j, \qquad
#   \frac{\partial C}{\partial z_j} = \frac{\gamma_j}{\sqrt{\sigma_j^2 + \epsilon}}
#   \left(\delta_j - \overline{\delta_j} - \hat z_j\, \overline{\delta_j \hat z_j}\right).$$
#
# The two terms taken away are what normalizing removes: shifting a unit's $z$ over the whole
# batch changes nothing, so $\partial C/\partial z_j$ sums to 0 over the batch.
# `manual_grad.batch_norm_backward` computes this; `manual_grad.cnn_backprop` uses it for the
# batch-norm layers of a convolutional network (`jaxnn compare --model conv2 --batch-norm`).

# %%
from jaxnn import layers

z = 3.0 * jax.random.normal(jax.random.key(1), (32, 5)) + 2.0
gamma = 1.0 + 0.3 * jax.random.normal(jax.random.key(2), (5,))
beta = jnp.zeros(5)
delta = jax.random.normal(jax.random.key(3), (32, 5))

_, vjp = jax.vjp(lambda z, g, b: layers.batch_norm(z, g, b, epsilon=1e-5), z, gamma, beta)
by_hand = manual_grad.batch_norm_backward(delta, z, gamma, epsilon=1e-5)
for name, hand, auto in zip(("dC/dz", "dC/dgamma", "dC/dbeta"), by_hand, vjp(delta)):
    print(f"{name:9s}: max |by hand - jax.vjp| = {float(jnp.max(jnp.abs(hand - auto))):.1e}")
sums = np.abs(np.asarray(by_hand[0].sum(axis=0)))
print(f"dC/dz summed over the batch: at most {sums.max():.1e} in size, for dC/dz of size up to "
      f"{float(jnp.abs(by_hand[0]).max()):.1e} (0 up to float32 rounding)")
