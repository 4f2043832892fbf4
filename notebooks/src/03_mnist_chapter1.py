# %% [markdown]
# # 3. Handwritten digits with the chapter-1 network
#
# The book's first real network reads $28 \times 28$ MNIST images as 784 input pixels, has one
# hidden layer of 30 sigmoid neurons and 10 sigmoid outputs, one per digit:
#
# $$a^1 = \sigma(w^1 x + b^1), \qquad a^2 = \sigma(w^2 a^1 + b^2), \qquad \text{prediction} = \arg\max_j a^2_j .$$
#
# It is trained by mini-batch stochastic gradient descent on the quadratic cost
# $C = \frac{1}{2n} \sum_x \|y(x) - a^2(x)\|^2$ with $\eta = 3$, mini-batches of 10 and weights
# and biases drawn from $N(0, 1)$. The book reaches 95.42% test accuracy after 30 epochs.
# MNIST ships inside jaxnn, so nothing is downloaded.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import data, experiment, presets

mnist = data.load("mnist")  # 50,000 training, 10,000 validation, 10,000 test images
for name in ("train", "validation", "test"):
    split = getattr(mnist, name)
    print(f"{name:10s} {split.images.shape} {split.images.dtype}, labels {split.labels[:10]}")

# %% [markdown]
# ## A look at the digits

# %%
fig, axes = plt.subplots(3, 10, figsize=(12, 4))
for digit in range(10):
    examples = np.flatnonzero(mnist.train.labels == digit)[:3]
    for row, i in enumerate(examples):
        ax = axes[row, digit]
        ax.imshow(mnist.train.images[i], cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if row == 0:
            ax.set_title(str(digit))
fig.suptitle("MNIST training images, three of each digit")
fig.tight_layout()

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].bar(range(10), np.bincount(mnist.train.labels, minlength=10))
axes[0].set(title="Training images per digit", xlabel="digit", ylabel="count", xticks=range(10))
darkness = mnist.train.images.reshape(len(mnist.train), -1).mean(axis=1)
for digit in (0, 1, 8):
    axes[1].hist(darkness[mnist.train.labels == digit], bins=50, alpha=0.5, label=f"digit {digit}")
axes[1].set(title="Average darkness of an image", xlabel="mean pixel value (0-255)",
            ylabel="images")
axes[1].legend()
fig.tight_layout()

# %% [markdown]
# ## A baseline: guess by darkness
#
# Before any learning, the book's naive classifier: compute each digit's average darkness on
# the training set and label a test image with the digit whose average darkness is closest.
# The book reports 22.25%.

# %%
mean_dark = np.array([darkness[mnist.train.labels == d].mean() for d in range(10)])
test_dark = mnist.test.images.reshape(len(mnist.test), -1).mean(axis=1)
guess = np.argmin(np.abs(test_dark[:, None] - mean_dark[None, :]), axis=1)
print(f"darkness baseline: {100 * np.mean(guess == mnist.test.labels):.2f}% of test images")

# %% [markdown]
# ## Training
#
# `experiment.run` trains a configuration: the whole training set lives on the device and each
# epoch is one compiled call (shuffle, then a `lax.scan` over mini-batches). The preset `ch1-30`
# holds the book's settings. Quick mode trains on 2,000 images for 2 epochs. Epochs are numbered
# from 0, as the book prints them ("Epoch 0: 9129 / 10000") and as the summary counts them.

# %%
config = experiment.TrainConfig.from_preset(
    "ch1-30", epochs=scaled(30, 2), train_size=scaled(None, 2000), seed=0)
# the settings that matter here (print(config) shows all of them, on one long line)
print("\n".join(f"  {k} = {v!r}" for k, v in config.to_json().items()
                if k in ("preset", "sizes", "activation", "cost", "eta", "mini_batch_size",
                         "epochs", "init", "train_size", "seed")))
result = experiment.run(config, progress=False)
history = result.history
for r in history[:3] + history[max(3, len(history) - 2):]:
    print(f"Epoch {r['epoch']:2d}: test {100 * r['test_accuracy']:.2f}%, "
          f"validation {100 * r['validation_accuracy']:.2f}%, {r['seconds']:.2f} s")
print("summary:", {k: round(v, 4) if isinstance(v, float) else v
                   for k, v in result.summary.items()})

# %%
epochs = [r["epoch"] for r in history]
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(epochs, [100 * r["test_accuracy"] for r in history], "o-", label="test")
axes[0].plot(epochs, [100 * r["validation_accuracy"] for r in history], "s-", label="validation")
axes[0].plot(epochs, [100 * r["train_accuracy"] for r in history], "^-", label="training")
axes[0].axhline(presets.book("ch1-30")["value"], color="k", ls="--",
                label="book: 95.42% (best test, 30 epochs)")
axes[0].set(title="Chapter-1 network [784, 30, 10], $\\eta = 3$", xlabel="epoch",
            ylabel="accuracy (%)")
axes[0].legend()
axes[1].plot(epochs, [r["train_cost"] for r in history], "o-")
axes[1].set(title="Quadratic cost on the training set", xlabel="epoch", ylabel="cost $C$")
fig.tight_layout()

# %% [markdown]
# ## What does it get wrong?
#
# Evaluate the trained network on the 10,000 test images and look at the mistakes: many are
# digits a person would hesitate over too.

# %%
network = experiment.prepare(config).network
params = result.state.params
x_test = data.to_inputs(mnist.test.images)
outputs = jax.jit(network.apply)(params, jnp.asarray(x_test))
pred = np.asarray(jnp.argmax(outputs, axis=1))
labels = mnist.test.labels
wrong = np.flatnonzero(pred != labels)
print(f"{len(wrong)} of {len(labels)} test images misclassified "
      f"({100 * (1 - len(wrong) / len(labels)):.2f}% correct)")

fig, axes = plt.subplots(3, 8, figsize=(12, 5))
for ax, i in zip(axes.ravel(), wrong[:24]):
    ax.imshow(mnist.test.images[i], cmap="gray_r")
    ax.set_title(f"true {labels[i]}, said {pred[i]}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
fig.suptitle("Misclassified test digits")
fig.tight_layout()

# %%
confusion = np.zeros((10, 10), int)
np.add.at(confusion, (labels, pred), 1)
fig, ax = plt.subplots(figsize=(6, 5))
off_diagonal = confusion - np.diag(np.diag(confusion))
im = ax.imshow(off_diagonal, cmap="Reds")
for i in range(10):
    for j in range(10):
        if i != j and off_diagonal[i, j]:
            ax.text(j, i, off_diagonal[i, j], ha="center", va="center", fontsize=7,
                    color="white" if off_diagonal[i, j] > off_diagonal.max() / 2 else "black")
ax.set(title="Test mistakes: true digit vs prediction", xlabel="predicted digit",
       ylabel="true digit", xticks=range(10), yticks=range(10))
ax.grid(False)
fig.colorbar(im, ax=ax, label="test images")
fig.tight_layout()
