# %% [markdown]
# # 12. Convolutional networks
#
# A fully connected layer ignores where pixels are. A convolutional layer (chapter 6) slides one
# small *kernel* (a local receptive field of $k \times k$ shared weights and one bias) over the
# image, so the same feature is detected everywhere:
#
# $$z_{i,j} = b + \sum_{p=0}^{k-1} \sum_{q=0}^{k-1} w_{p,q}\, a_{s i + p,\; s j + q}, \qquad
#   a'_{i,j} = \sigma(z_{i,j}),$$
#
# with stride $s$ (strictly this is a cross-correlation; every framework calls it convolution).
# A *pooling* layer then summarizes each small window (max or mean), and fully connected layers
# finish the job.

# %%
import time

import jax
import jax.numpy as jnp
import numpy as np

import manual_grad
from jaxnn import cnn, data, experiment
from jaxnn import layers as jl
from manual_grad import check

mnist = data.load("mnist")
digit = data.to_inputs(mnist.train.images[:1], flatten=False)[0, :, :, 0]  # (28, 28) in [0, 1]
print("digit", int(mnist.train.labels[0]), digit.shape)

# %% [markdown]
# ## Convolution by hand
#
# Two $3 \times 3$ Sobel kernels respond to vertical and horizontal edges. First four nested
# loops in NumPy, straight from the formula; then `jax.lax.conv_general_dilated` (NHWC images,
# HWIO kernels).

# %%
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)  # vertical edges
kernels = np.stack([sobel_x, sobel_x.T], axis=-1)  # (3, 3, 2): two feature maps


def conv_by_hand(image, kernels, stride=1):
    k = kernels.shape[0]
    out_size = (image.shape[0] - k) // stride + 1
    out = np.zeros((out_size, out_size, kernels.shape[-1]), np.float32)
    for f in range(kernels.shape[-1]):
        for i in range(out_size):
            for j in range(out_size):
                window = image[stride * i:stride * i + k, stride * j:stride * j + k]
                out[i, j, f] = np.sum(window * kernels[:, :, f])
    return out


start = time.perf_counter()
by_hand = conv_by_hand(digit, kernels)
t_hand = time.perf_counter() - start
by_lax = jax.lax.conv_general_dilated(
    jnp.asarray(digit)[None, :, :, None], jnp.asarray(kernels)[:, :, None, :], (1, 1), "VALID",
    dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
print(f"output {by_hand.shape}; "
      f"max |by hand - lax| = {np.max(np.abs(by_hand - np.asarray(by_lax))):.1e}"
      f" (loops took {1e3 * t_hand:.1f} ms)")

fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
axes[0].imshow(digit, cmap="gray_r")
axes[0].set(title=f"input: a {int(mnist.train.labels[0])} (28 x 28)", xlabel="column", ylabel="row")
for ax, f, name in zip(axes[1:], range(2),
                       ("Sobel x: vertical edges", "Sobel y: horizontal edges")):
    im = ax.imshow(by_hand[:, :, f], cmap="RdBu_r", vmin=-4, vmax=4)
    ax.set(title=f"{name} (26 x 26)", xlabel="column", ylabel="row")
cbar = fig.colorbar(im, ax=axes[1:], label="$z_{i,j}$", shrink=0.85)
for ax in axes:
    ax.grid(False)

# %% [markdown]
# ## Output size, stride and padding
#
# With input size $i$, kernel $k$ and stride $s$, a VALID convolution (the kernel stays inside
# the image) gives $o = \lfloor (i - k)/s \rfloor + 1$ positions per axis. SAME padding adds
# zeros around the border so that $o = \lceil i / s \rceil$ (for $s = 1$ the size is unchanged).
# The table checks the formula against the shapes `jax.lax` actually returns.

# %%
print(f"{'i':>3s} {'k':>3s} {'s':>3s} {'padding':>8s} {'formula':>8s} {'jax.lax':>8s}")
for i, k, s in ((28, 5, 1), (28, 3, 1), (28, 5, 2), (12, 5, 1), (8, 3, 2), (7, 2, 2)):
    for padding in ("VALID", "SAME"):
        formula = (i - k) // s + 1 if padding == "VALID" else -(-i // s)
        out = jax.lax.conv_general_dilated(jnp.zeros((1, i, i, 1)), jnp.zeros((k, k, 1, 1)),
                                           (s, s), padding,
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"))
        assert formula == out.shape[1] == jl.conv_output_size(i, k, s, padding)
        print(f"{i:3d} {k:3d} {s:3d} {padding:>8s} {formula:8d} {out.shape[1]:8d}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
for ax, (padding, s) in zip(axes, (("VALID", 1), ("SAME", 1), ("VALID", 2))):
    fmap = jax.lax.conv_general_dilated(
        jnp.asarray(digit)[None, :, :, None], jnp.asarray(sobel_x)[:, :, None, None], (s, s),
        padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))[0, :, :, 0]
    ax.imshow(fmap, cmap="RdBu_r", vmin=-4, vmax=4)
    ax.set(title=f"{padding}, stride {s}: {fmap.shape[0]} x {fmap.shape[1]}", xlabel="column",
           ylabel="row")
    ax.grid(False)
fig.suptitle("Sobel-x feature map of the same digit: padding and stride change the size")
fig.tight_layout()

# %% [markdown]
# ## Pooling
#
# Max pooling keeps the strongest response in each $2 \times 2$ window, average pooling the mean:
#
# $$y_{i,j} = \max_{0 \le p, q < 2} a_{2i+p,\,2j+q} \qquad\text{or}\qquad
#   y_{i,j} = \tfrac14 \sum_{0 \le p, q < 2} a_{2i+p,\,2j+q}.$$
#
# By hand a $2 \times 2$, stride-2 pooling is a reshape; `manual_grad.max_pool` /
# `avg_pool` (the library's pooling, `jaxnn.layers.pool`) must agree.

# %%
edges = np.abs(by_hand[:, :, :1])  # (26, 26, 1): strength of vertical edges
blocks = edges.reshape(13, 2, 13, 2, 1)
max_hand, avg_hand = blocks.max(axis=(1, 3)), blocks.mean(axis=(1, 3))
max_lib = manual_grad.max_pool(jnp.asarray(edges)[None], window=2, stride=2)[0]
avg_lib = manual_grad.avg_pool(jnp.asarray(edges)[None], window=2, stride=2)[0]
print(f"max pooling: max |difference| = {np.max(np.abs(max_hand - np.asarray(max_lib))):.1e}; "
      f"average pooling: {np.max(np.abs(avg_hand - np.asarray(avg_lib))):.1e}")

fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
for ax, img, title in zip(axes, (edges, max_hand, avg_hand),
                          ("|vertical edges|, 26 x 26", "max pooling 2 x 2: 13 x 13",
                           "average pooling 2 x 2: 13 x 13")):
    im = ax.imshow(img[:, :, 0], cmap="magma", vmin=0, vmax=edges.max())
    ax.set(title=title, xlabel="column", ylabel="row")
    ax.grid(False)
cbar = fig.colorbar(im, ax=axes, shrink=0.85, label="activation")

# %% [markdown]
# ## Backpropagation through convolution and pooling
#
# The same four equations hold with shared weights. For $z = a \star w + b$ (stride 1, VALID)
# and $\delta = \partial C/\partial z$:
#
# $$\frac{\partial C}{\partial b} = \sum_{i,j} \delta_{i,j}, \qquad
#   \frac{\partial C}{\partial w_{p,q}} = \sum_{i,j} \delta_{i,j}\, a_{i+p,\,j+q}, \qquad
#   \frac{\partial C}{\partial a_{u,v}} = \sum_{p,q} \delta_{u-p,\,v-q}\, w_{p,q},$$
#
# the last being a "full" convolution of $\delta$ with the flipped kernel. Max pooling routes
# each $\delta$ to the position of its window's maximum; average pooling spreads $\delta/4$ over
# the window. `manual_grad.cnn_backprop` chains these by hand for a whole network; we compare it
# with `jax.grad` of the same cost (softmax log-likelihood) on a small network and a mini-batch.

# %%
spec = jl.CNNSpec((28, 28, 1), (jl.Conv(6, (5, 5)), jl.Pool("max", (2, 2)),
                                jl.Conv(8, (3, 3), padding="SAME"), jl.Pool("avg", (2, 2)),
                                jl.Flatten(), jl.Dense(30), jl.Dense(10)), activation="sigmoid")
params = jl.init(spec, jax.random.key(0))
xb = jnp.asarray(data.to_inputs(mnist.train.images[:8], flatten=False))
yb = jnp.asarray(data.one_hot(mnist.train.labels[:8]))


def C(p):
    z = jl.forward(spec, p, xb)
    return -jnp.mean(jnp.sum(yb * jax.nn.log_softmax(z), axis=1))


manual, info = jax.jit(lambda p: manual_grad.cnn_backprop(spec, p, xb, yb))(params)
auto = jax.jit(jax.grad(C))(params)
manual, auto = jax.tree_util.tree_map(np.asarray, (manual, auto))  # compare in NumPy
print("shapes after each layer:", jl.shapes(spec))
print(f"{'layer':8s} {'param':7s} {'shape':>14s} {'max |manual - jax.grad|':>24s} "
      f"{'max |grad|':>11s}"
      f" {'relative':>9s}")
for i in manual["layers"]:
    for k in ("kernel", "bias"):
        g = manual["layers"][i][k]
        diff = np.max(np.abs(g - auto["layers"][i][k]))
        print(f"{i}: {type(spec.layers[i]).__name__:5s} {k:7s} {str(g.shape):>14s} {diff:24.1e} "
              f"{np.max(np.abs(auto['layers'][i][k])):11.2e} "
              f"{check.relative_error(g, auto['layers'][i][k]):9.1e}")

# %% [markdown]
# The two agree (here to the last bit of float32: XLA compiles both into the same arithmetic;
# agreement to rounding, about $10^{-7}$ relative, would already settle it): the hand-written
# convolution and pooling gradients are right.
# The first convolution's kernel gradients, as images:

# %%
fig, axes = plt.subplots(1, 6, figsize=(12, 2.4))
g0 = np.asarray(manual["layers"][0]["kernel"])
for f, ax in enumerate(axes):
    lim = np.abs(g0[:, :, 0, f]).max()
    ax.imshow(g0[:, :, 0, f], cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set(title=f"$\\partial C/\\partial w$, map {f}", xticks=[], yticks=[])
    ax.grid(False)
fig.suptitle("Gradients of the six 5 x 5 kernels of the first convolution (manual_grad)")
fig.tight_layout()

# %% [markdown]
# ## The chapter-6 network
#
# The book's first convolutional network, preset `ch6-conv1`: 20 feature maps of $5 \times 5$
# (VALID, 24 x 24), $2 \times 2$ max pooling (12 x 12), 100 fully connected neurons and a
# softmax output, log-likelihood cost, mini-batches of 10. The book uses sigmoid units and
# $\eta = 0.1$ for 60 epochs (98.78% test accuracy); jaxnn's runs of that row took 15 to 37
# minutes each on a shared 2-core CPU (README). With only 1,000 images (quick mode) sigmoids learn very little
# in one epoch, so we use the book's later ReLU settings instead ($\eta = 0.03$,
# $\lambda = 0.1$), which learn quickly, and train 3 epochs on the CPU, about 20 seconds on a
# 2-core CPU (quick mode: 1,000 images, one epoch). Expect a lower figure than the book's.

# %%
config = experiment.TrainConfig.from_preset(
    "ch6-conv1", activation="relu", eta=0.03, l2=0.1, epochs=scaled(3, 1),
    train_size=scaled(None, 1000), eval_size=scaled(None, 1000), seed=0,
    monitor_training=True)  # the chapter-6 presets leave the training set out, as network3.py
start = time.perf_counter()
result = experiment.run(config, progress=False)
print(f"trained {config.epochs} epoch(s) on {config.train_size or 50000} images in "
      f"{time.perf_counter() - start:.1f} s")
for r in result.history:
    print(f"epoch {r['epoch'] + 1}: validation {100 * r['validation_accuracy']:.2f}%, "
          f"test {100 * r['test_accuracy']:.2f}%")

fig, ax = plt.subplots(figsize=(6, 3.5))
epochs = [r["epoch"] + 1 for r in result.history]
ax.plot(epochs, [100 * r["validation_accuracy"] for r in result.history], "o-", label="validation")
ax.plot(epochs, [100 * r["test_accuracy"] for r in result.history], "s-", label="test")
ax.axhline(98.78, color="k", ls="--", label="book (sigmoid, 60 epochs): 98.78%")
ax.set(title="ch6-conv1 with ReLU on the CPU", xlabel="epoch", ylabel="accuracy (%)")
ax.xaxis.get_major_locator().set_params(integer=True)
ax.legend()
fig.tight_layout()

# %% [markdown]
# ### The same network trained by hand
#
# `grads="manual"` (`jaxnn train --grads manual`) puts `manual_grad.cnn_backprop` where the
# training step had `jax.grad`: the same network, seed, mini-batches and dropout keys. One
# epoch each way; the two gradients differ only in float32 rounding, so the runs agree to a few
# images.

# %%
by_hand = experiment.run(experiment.TrainConfig.from_preset(
    "ch6-conv1", activation="relu", eta=0.03, l2=0.1, epochs=1, grads="manual",
    train_size=scaled(None, 1000), eval_size=scaled(None, 1000), seed=0,
    monitor_training=True), progress=False)
for name, record in (("jax.grad", result.history[0]), ("manual_grad", by_hand.history[0])):
    print(f"epoch 1 with {name:11s}: validation {100 * record['validation_accuracy']:.2f}%, "
          f"test {100 * record['test_accuracy']:.2f}%, training cost {record['train_cost']:.5f}")

# %% [markdown]
# ## What the trained convolution learned
#
# The 20 learned $5 \times 5$ kernels, and the 20 feature maps $\mathrm{ReLU}(z)$ they produce on
# one test digit. `cnn.pure_params` turns the trained Flax state into the pure layout of
# `jaxnn.layers`.

# %%
trained = cnn.pure_params(result.state.params)
kernel = np.asarray(trained["layers"][0]["kernel"])  # (5, 5, 1, 20)
bias = np.asarray(trained["layers"][0]["bias"])
test_digit = data.to_inputs(mnist.test.images[:1], flatten=False)
maps = jax.nn.relu(jl.conv(jnp.asarray(test_digit), kernel, bias, stride=(1, 1),
                              padding="VALID"))[0]

fig, axes = plt.subplots(4, 10, figsize=(13, 5.6))
for f in range(20):
    ax_k = axes[2 * (f // 10), f % 10]
    lim = np.abs(kernel[:, :, 0, f]).max()
    ax_k.imshow(kernel[:, :, 0, f], cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax_k.set_title(f"kernel {f}", fontsize=8)
    ax_m = axes[2 * (f // 10) + 1, f % 10]
    ax_m.imshow(maps[:, :, f], cmap="gray_r", vmin=0)
    ax_m.set_title(f"map {f}", fontsize=8)
for ax in axes.ravel():
    ax.set(xticks=[], yticks=[])
    ax.grid(False)
fig.suptitle(f"Trained conv layer: 5 x 5 kernels (red +, blue -) and their 24 x 24 feature maps "
             f"on a test {int(mnist.test.labels[0])}")
fig.tight_layout()

# %% [markdown]
# Some kernels have become stroke or edge detectors in a particular orientation, others are still
# close to their random start after so little training. The book's deeper network `ch6-conv2`
# adds a second convolution-pooling block (40 maps) and reaches 99.06%; with ReLU, L2 and the
# expanded training data, 99.37% (`jaxnn train --preset ch6-expanded`, best run on a GPU).

# %% [markdown]
# ## An ensemble of networks
#
# The book's last step in chapter 6: train five networks from different random starts and let
# them vote, each test image getting the label most of them give it. Five of its best network
# reached 99.67% together (preset `ch6-ensemble`), though each alone was near 99.60%: the
# networks make different mistakes, and a vote outnumbers a single network's slip.
#
# The same at a small scale: the ReLU network above, from several seeds.
# `experiment.Trainer` prepares the data and compiles the training once for all the seeds
# (nothing compiled depends on the seed), so the networks after the first train without
# compiling; `ensemble.majority_vote` counts the votes (a tie goes to the smallest label).
# In full mode on a 2-core CPU (2026-11-25, 46 s for the five), the networks of 2 epochs scored
# 98.14% to 98.52% on their own and 98.74% together.

# %%
from jaxnn import ensemble, metrics

members = scaled(5, 3)
trainer = experiment.Trainer(experiment.TrainConfig.from_preset(
    "ch6-conv1", activation="relu", eta=0.03, l2=0.1, epochs=scaled(2, 1),
    train_size=scaled(None, 1000), eval_size=scaled(None, 1000)))
start = time.perf_counter()
runs = [trainer.run(seed=seed, progress=False) for seed in range(members)]
print(f"{members} networks of {trainer.config.epochs} epoch(s) trained in "
      f"{time.perf_counter() - start:.1f} s, compiled once")

test = trainer.prepared.test
network_output = jax.jit(trainer.logits)


def predict(run, x, chunk=1000):
    """A trained network's labels, chunk by chunk (a convolution of 10,000 images at once
    would hold every feature map in memory)."""
    params = metrics.eval_params(run.state)
    return np.concatenate([np.asarray(jnp.argmax(network_output(params, x[i:i + chunk]), -1))
                           for i in range(0, len(x), chunk)])


labels = np.asarray(test.labels)
predictions = np.stack([predict(run, test.x) for run in runs])  # (members, test images)
vote = np.asarray(ensemble.majority_vote(predictions))
for seed, p in enumerate(predictions):
    print(f"network {seed}: {100 * np.mean(p == labels):.2f}% of {len(labels)} test images")
print(f"majority vote: {100 * np.mean(vote == labels):.2f}%")
# where the networks disagree, at least one is wrong: there the vote can make up for it
disagree = (predictions != predictions[0]).any(axis=0)
rescued = np.flatnonzero(disagree & (vote == labels))
print(f"the networks disagree on {disagree.sum()} images, and the vote is right on "
      f"{len(rescued)} of them; they all give the same wrong label to "
      f"{np.sum(~disagree & (vote != labels))}")

# %% [markdown]
# Some of the images the vote gets right although a network got them wrong, with every
# network's answer:

# %%
shown = rescued[:8]
if len(shown):
    fig, axes = plt.subplots(1, len(shown), figsize=(1.6 * len(shown), 2.4), squeeze=False)
    for ax, i in zip(axes[0], shown):
        ax.imshow(np.asarray(test.x[i, :, :, 0]), cmap="gray_r")
        ax.set_title(f"label {labels[i]}\nnets {''.join(map(str, predictions[:, i]))}",
                     fontsize=9)
        ax.set(xticks=[], yticks=[])
        ax.grid(False)
    fig.suptitle("Images the vote gets right and a network gets wrong")
    fig.tight_layout()
else:
    print("no image where the vote corrects a network this time")
