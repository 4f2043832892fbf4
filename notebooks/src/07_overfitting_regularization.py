# %% [markdown]
# # 7. Overfitting and regularization
#
# A network with 23,860 parameters trained on only 1,000 images can memorize them: its training
# cost keeps falling while its accuracy on new images stops improving. This notebook reproduces
# the book's experiment ([784, 30, 10], sigmoid, cross-entropy, $\eta = 0.5$, mini-batches of 10,
# the first 1,000 training images, 400 epochs) and then tries the cures: L2 and L1 weight
# penalties, dropout, early stopping and an artificially expanded training set.
#
# To see exactly what each technique changes, the training loop is written out here: plain
# mini-batch SGD, $w \rightarrow w - \eta \nabla C$, where $C$ is the mean cross-entropy of the
# mini-batch plus a penalty. The model and costs come from jaxnn. The whole run (all epochs,
# with the metrics of every epoch) is a single compiled `lax.scan`.

# %%
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import activations, costs, data, mlp

mnist = data.load("mnist")
N_TRAIN = scaled(1000, 200)
EPOCHS = scaled(400, 30)
N_EVAL = scaled(10_000, 1000)  # validation and test images evaluated each epoch
SIZES, ETA, M = (784, 30, 10), 0.5, 10


def device_split(split, n=None):
    images, labels = (split.images, split.labels) if n is None else (
        split.images[:n], split.labels[:n])
    return jnp.asarray(data.to_inputs(images)), jnp.asarray(labels)


train_x, train_labels = device_split(mnist.train, N_TRAIN)
val_x, val_labels = device_split(mnist.validation, N_EVAL)
test_x, test_labels = device_split(mnist.test, N_EVAL)
print("training", train_x.shape, "validation", val_x.shape, "test", test_x.shape)

# %% [markdown]
# ## The training loop
#
# `penalty(params)` is added to the cost; `dropout` is the probability $p$ of dropping each
# hidden unit during training. We use *inverted* dropout: kept units are scaled by $1/(1-p)$
# while training, so the full network needs no rescaling at test time (the book, with $p = 1/2$,
# instead halves the outgoing weights at test time, i.e. scales them by $1 - p$; the two agree
# in expectation).

# %%
cross_entropy = costs.from_logits("cross_entropy", "sigmoid")


def logits(params, x, key=None, dropout=0.0):
    """z^L of the [784, 30, 10] sigmoid network; with ``key``, hidden units are dropped."""
    a = x
    for layer in params[:-1]:
        a = activations.sigmoid(a @ layer["w"].T + layer["b"])
        if key is not None and dropout > 0:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - dropout, a.shape)
            a = jnp.where(keep, a / (1.0 - dropout), 0.0)
    return a @ params[-1]["w"].T + params[-1]["b"]


def accuracy(params, x, labels):
    return jnp.mean(jnp.argmax(logits(params, x), axis=1) == labels)


@functools.partial(jax.jit, static_argnames=("penalty", "dropout", "epochs"))
def _train(x, labels, *, epochs, penalty=None, dropout=0.0, seed=0):
    n = x.shape[0]
    y = jax.nn.one_hot(labels, 10)
    full = n // M

    def loss(params, xb, yb, key):
        c = cross_entropy(logits(params, xb, key, dropout), yb)
        return c if penalty is None else c + penalty(params)

    def step(params, batch):
        grads = jax.grad(loss)(params, *batch)
        return jax.tree.map(lambda p, g: p - ETA * g, params, grads), None

    def epoch(params, key):
        k_perm, k_drop = jax.random.split(key)
        idx = jax.random.permutation(k_perm, n)[: full * M].reshape(full, M)
        params, _ = jax.lax.scan(step, params, (x[idx], y[idx], jax.random.split(k_drop, full)))
        cost = cross_entropy(logits(params, x), y)
        if penalty is not None:
            cost = cost + penalty(params)
        return params, {"train_cost": cost, "train_accuracy": accuracy(params, x, labels),
                        "validation_accuracy": accuracy(params, val_x, val_labels),
                        "test_accuracy": accuracy(params, test_x, test_labels)}

    k_init, k_train = jax.random.split(jax.random.key(seed))
    params = mlp.init(k_init, SIZES, scheme="large")
    return jax.lax.scan(epoch, params, jax.random.split(k_train, epochs))


def train(x, labels, *, epochs, penalty=None, dropout=0.0, seed=0):
    """SGD by hand for ``epochs`` epochs; returns the final params and per-epoch metrics."""
    params, history = _train(x, labels, epochs=epochs, penalty=penalty, dropout=dropout,
                             seed=seed)
    return params, {k: np.asarray(v) for k, v in history.items()}


runs = {}
runs["no regularization"] = train(train_x, train_labels, epochs=EPOCHS)

# %% [markdown]
# ## Overfitting
#
# The training cost falls smoothly for the whole run and training accuracy reaches 100%, while
# test accuracy climbs for a while and then stalls: past that point the network learns
# peculiarities of its 1,000 images, not digits.

# %%
def plot_baseline(h, title):
    ep = np.arange(1, len(h["train_cost"]) + 1)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(ep, h["train_cost"])
    axes[0].set(title="Cost on the training data", xlabel="epoch", ylabel="cross-entropy")
    axes[1].plot(ep, 100 * h["test_accuracy"], color="tab:orange")
    axes[1].set(title="Accuracy on the test data", xlabel="epoch", ylabel="accuracy (%)")
    axes[2].plot(ep, 100 * h["train_accuracy"], label="training data")
    axes[2].plot(ep, 100 * h["test_accuracy"], label="test data")
    axes[2].set(title="Training vs test accuracy", xlabel="epoch", ylabel="accuracy (%)")
    axes[2].legend()
    fig.suptitle(title)
    fig.tight_layout()


plot_baseline(runs["no regularization"][1],
              f"[784, 30, 10] on {N_TRAIN:,} training images, no regularization")
h = runs["no regularization"][1]
print(f"peak test accuracy {100 * h['test_accuracy'].max():.2f}% at epoch "
      f"{h['test_accuracy'].argmax() + 1}; final training accuracy "
      f"{100 * h['train_accuracy'][-1]:.2f}% (book, 1,000 images and 400 epochs: 82.27% "
      "peak test)")

# %% [markdown]
# ## L2 and L1 regularization
#
# L2 adds $\frac{\lambda}{2n}\sum_w w^2$ to the cost (weights only, not biases), so each step
# shrinks every weight in proportion to its size:
# $w \rightarrow \left(1 - \frac{\eta\lambda}{n}\right) w - \eta \frac{\partial C_0}{\partial w}$.
# L1 adds $\frac{\lambda}{n}\sum_w |w|$ and shrinks every weight by the same constant amount,
# $w \rightarrow w - \frac{\eta\lambda}{n}\,\mathrm{sgn}(w) - \eta \frac{\partial C_0}{\partial w}$,
# which drives unimportant weights to zero and keeps a few large ones.
# `costs.l2_penalty` and `costs.l1_penalty` compute the penalties; the book uses $\lambda = 0.1$
# for L2 here.

# %%
L2, L1 = 0.1, 0.1
runs["L2, λ = 0.1"] = train(train_x, train_labels, epochs=EPOCHS,
                            penalty=functools.partial(costs.l2_penalty, scale=L2 / N_TRAIN))
runs["L1, λ = 0.1"] = train(train_x, train_labels, epochs=EPOCHS,
                            penalty=functools.partial(costs.l1_penalty, scale=L1 / N_TRAIN))

# %% [markdown]
# ## Dropout
#
# Dropout removes each hidden unit at random in every mini-batch, so no unit can rely on the
# presence of particular others; the trained network acts like an average over many thinned
# networks. With only 30 hidden units we drop a modest $p = 0.2$.

# %%
runs["dropout, p = 0.2"] = train(train_x, train_labels, epochs=EPOCHS, dropout=0.2)

# %% [markdown]
# ## Expanded training data
#
# More data is the best regularizer. `data.expand` adds, for every image, four copies shifted by
# one pixel up, down, left and right: 5,000 images from 1,000. We train for one fifth of the
# epochs, so the network takes the same number of gradient steps.

# %%
big_images, big_labels = data.expand(mnist.train.images[:N_TRAIN], mnist.train.labels[:N_TRAIN])
fig, axes = plt.subplots(1, 5, figsize=(9, 2.2))
for ax, k, title in zip(axes, range(5), ["original", "up", "down", "left", "right"]):
    ax.imshow(big_images[k * N_TRAIN], cmap="gray_r")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
fig.suptitle("data.expand: one image and its four one-pixel shifts")
fig.tight_layout()

big_x, big_y = jnp.asarray(data.to_inputs(big_images)), jnp.asarray(big_labels)
runs["expanded data (×5)"] = train(big_x, big_y, epochs=EPOCHS // 5)

# %% [markdown]
# ## Training vs test, all methods
#
# Solid lines are test accuracy, dashed lines training accuracy; the gap between them is the
# overfitting. The expanded-data run has fewer (longer) epochs, so it is drawn against gradient
# steps.

# %%
steps_per_epoch = {name: (5 if "expanded" in name else 1) * N_TRAIN // M for name in runs}
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
for i, (name, (_, h)) in enumerate(runs.items()):
    steps = steps_per_epoch[name] * np.arange(1, len(h["test_accuracy"]) + 1)
    axes[0].plot(steps, 100 * h["test_accuracy"], color=f"C{i}", label=f"{name}")
    axes[0].plot(steps, 100 * h["train_accuracy"], "--", color=f"C{i}", lw=0.8)
    axes[1].plot(steps, 100 * (h["train_accuracy"] - h["test_accuracy"]), color=f"C{i}",
                 label=name)
low = min(100 * h["test_accuracy"][-1] for _, h in runs.values())
axes[0].set(title="Test (solid) and training (dashed) accuracy", xlabel="gradient steps",
            ylabel="accuracy (%)", ylim=(max(0, low - 15), 101))
axes[0].legend(loc="lower right")
axes[1].set(title="Overfitting gap: training minus test accuracy", xlabel="gradient steps",
            ylabel="percentage points")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# ## Early stopping
#
# Early stopping needs no change to training: keep the validation accuracy of every epoch and
# stop when it has not improved for a while ("no improvement in 10 epochs"). We report the test
# accuracy at the best validation epoch, never choosing by the test set itself.

# %%
def early_stop(val, patience=10):
    best, since = 0, 0
    for epoch, v in enumerate(val):
        if v > val[best]:
            best, since = epoch, 0
        else:
            since += 1
        if since >= patience:
            return epoch, best
    return len(val) - 1, best


h = runs["no regularization"][1]
stop, best = early_stop(h["validation_accuracy"])
print(f"no improvement in 10 epochs: stop after epoch {stop + 1} (best validation at epoch "
      f"{best + 1}); test accuracy there {100 * h['test_accuracy'][best]:.2f}% "
      f"vs {100 * h['test_accuracy'][-1]:.2f}% after all {len(h['test_accuracy'])} epochs")

ep = np.arange(1, len(h["validation_accuracy"]) + 1)
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(ep, 100 * h["validation_accuracy"], label="validation accuracy")
ax.plot(ep, 100 * h["test_accuracy"], label="test accuracy", alpha=0.7)
ax.axvline(best + 1, color="k", ls=":", label=f"best validation (epoch {best + 1})")
ax.axvline(stop + 1, color="k", ls="--", label=f"early stop (epoch {stop + 1})")
ax.set(title="Early stopping on the unregularized run", xlabel="epoch", ylabel="accuracy (%)")
ax.legend()
plt.show()

# %% [markdown]
# A patience of 10 epochs is a judgement call: on a plateau that still creeps upward it can stop
# too soon (compare the two test accuracies printed above), while a long patience costs
# training time. Try `early_stop(h["validation_accuracy"], patience=50)`.

# %% [markdown]
# ## Summary

# %%
print(f"{'method':20s} {'peak test':>10s} {'final test':>11s} {'final train':>12s} "
      f"{'test at best val':>17s}")
for name, (_, h) in runs.items():
    b = len(h["validation_accuracy"]) - 1 - int(h["validation_accuracy"][::-1].argmax())  # last tie
    print(f"{name:20s} {100 * h['test_accuracy'].max():9.2f}% {100 * h['test_accuracy'][-1]:10.2f}%"
          f" {100 * h['train_accuracy'][-1]:11.2f}% {100 * h['test_accuracy'][b]:16.2f}%")

# %% [markdown]
# Finally the weights themselves: L2 keeps them small, L1 pushes many of them to (near) zero.

# %%
fig, ax = plt.subplots(figsize=(8, 4))
weights = {name: np.asarray(runs[name][0][0]["w"]).ravel()
           for name in ("no regularization", "L2, λ = 0.1", "L1, λ = 0.1")}
top = max(np.abs(w).max() for w in weights.values())
bins = np.linspace(-top, top, 121)  # every weight in range, tails included
for name, w in weights.items():
    ax.hist(w, bins=bins, histtype="step", lw=1.5, label=f"{name} (mean |w| = {np.abs(w).mean():.2f})")
ax.set(title="First-layer weights after training", xlabel="weight", ylabel="count (log scale)",
       yscale="log")
ax.legend(fontsize=8, loc="lower center")
plt.show()
