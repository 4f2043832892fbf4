# %% [markdown]
# # 4. Backpropagation, step by step
#
# Backpropagation computes every $\partial C / \partial w^l_{jk}$ and $\partial C / \partial b^l_j$
# in one backward sweep. With $z^l = w^l a^{l-1} + b^l$, $a^l = \sigma(z^l)$ and the error
# $\delta^l \equiv \partial C / \partial z^l$, the book's four equations are
#
# $$\begin{aligned}
# \text{BP1}\quad & \delta^L = \nabla_a C \odot \sigma'(z^L) \\
# \text{BP2}\quad & \delta^l = \big((w^{l+1})^T \delta^{l+1}\big) \odot \sigma'(z^l) \\
# \text{BP3}\quad & \partial C / \partial b^l_j = \delta^l_j \\
# \text{BP4}\quad & \partial C / \partial w^l_{jk} = a^{l-1}_k \, \delta^l_j
# \end{aligned}$$
#
# `manual_grad.backprop` implements exactly these (no `jax.grad` inside) and returns, besides
# the gradients, an `info` dict with every `zs`, `activations` and `deltas`, so each equation can
# be looked at. We work in float64 so that the hand-computed numbers match to 9 digits.

# %%
import jax

jax.config.update("jax_enable_x64", True)  # float64: exact comparisons and finite differences

import jax.numpy as jnp
import numpy as np

import manual_grad
from jaxnn import costs, data, mlp
from manual_grad import check

F64 = jnp.float64

# %% [markdown]
# ## The classic worked example: a 2-2-2 sigmoid network
#
# Inputs $x = (0.05, 0.10)$, hidden weights $w_1 \dots w_4 = 0.15, 0.20, 0.25, 0.30$ with bias
# $b_1 = 0.35$, output weights $w_5 \dots w_8 = 0.40, 0.45, 0.50, 0.55$ with bias $b_2 = 0.60$,
# targets $y = (0.01, 0.99)$, and the quadratic cost $E = \tfrac12 \sum_j (y_j - a_j)^2$
# (jaxnn's `quadratic` cost on a single example). In the book's layout row $j$ of $w^l$ holds
# the weights into neuron $j$:
#
# $$w^1 = \begin{pmatrix} w_1 & w_2 \\ w_3 & w_4 \end{pmatrix}, \qquad
#   w^2 = \begin{pmatrix} w_5 & w_6 \\ w_7 & w_8 \end{pmatrix}.$$

# %%
x1, x2 = 0.05, 0.10
w1, w2, w3, w4, w5, w6, w7, w8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55
b1, b2 = 0.35, 0.60
t1, t2 = 0.01, 0.99
params = [{"w": jnp.asarray([[w1, w2], [w3, w4]], F64), "b": jnp.asarray([b1, b1], F64)},
          {"w": jnp.asarray([[w5, w6], [w7, w8]], F64), "b": jnp.asarray([b2, b2], F64)}]
x = jnp.asarray([[x1, x2]], F64)
y = jnp.asarray([[t1, t2]], F64)

grads, info = manual_grad.backprop(params, x, y, activation="sigmoid",
                                   output_activation="sigmoid", cost="quadratic")
z1, z2 = info["zs"]
a1, a2 = info["activations"][1:]
d1, d2 = info["deltas"]
print("forward pass")
print(f"  z^1 = {np.asarray(z1[0])}   (net_h1 = w1 x1 + w2 x2 + b1 = {w1 * x1 + w2 * x2 + b1:.6f})")
print(f"  a^1 = {np.asarray(a1[0])}   (out_h1, out_h2)")
print(f"  z^2 = {np.asarray(z2[0])}")
print(f"  a^2 = {np.asarray(a2[0])}   (out_o1, out_o2)")
E = 0.5 * float(jnp.sum((y - a2) ** 2))
print(f"  E = 1/2 (0.01 - out_o1)^2 + 1/2 (0.99 - out_o2)^2 = {E:.9f}")

# %% [markdown]
# **BP1.** For the quadratic cost $\nabla_a E = a^L - y$ and
# $\sigma'(z) = \sigma(z)(1 - \sigma(z))$, so $\delta^2_1 = (a_{o1} - y_1)\, a_{o1}(1 - a_{o1})$.
# **BP4** then gives $\partial E / \partial w_5 = \delta^2_1 \, a_{h1}$.
# **BP2** carries the error back: $\delta^1 = (w^2)^T \delta^2 \odot a^1 (1 - a^1)$, and
# $\partial E / \partial w_1 = \delta^1_1 x_1$, which collects the error of *both* outputs.

# %%
o1, o2 = float(a2[0, 0]), float(a2[0, 1])
h1, h2 = float(a1[0, 0]), float(a1[0, 1])
delta_o1 = (o1 - t1) * o1 * (1 - o1)
delta_o2 = (o2 - t2) * o2 * (1 - o2)
print(f"BP1  delta^2 = {np.asarray(d2[0])}   by hand: ({delta_o1:.9f}, {delta_o2:.9f})")
print(f"BP4  dE/dw5 = {float(grads[1]['w'][0, 0]):.9f}   "
      f"by hand delta_o1 * h1 = {delta_o1 * h1:.9f}")
print(f"     dE/dw6 = {float(grads[1]['w'][0, 1]):.9f}   dE/dw7 = {float(grads[1]['w'][1, 0]):.9f}"
      f"   dE/dw8 = {float(grads[1]['w'][1, 1]):.9f}")
delta_h1 = (delta_o1 * w5 + delta_o2 * w7) * h1 * (1 - h1)
print(f"BP2  delta^1 = {np.asarray(d1[0])}   by hand delta_h1 = {delta_h1:.9f}")
print(f"BP4  dE/dw1 = {float(grads[0]['w'][0, 0]):.9f}   "
      f"by hand delta_h1 * x1 = {delta_h1 * x1:.9f}")
print(f"     dE/dw2 = {float(grads[0]['w'][0, 1]):.9f}   dE/dw3 = {float(grads[0]['w'][1, 0]):.9f}"
      f"   dE/dw4 = {float(grads[0]['w'][1, 1]):.9f}")
print(f"BP3  dE/db^2 = {np.asarray(grads[1]['b'])} = delta^2")

# one gradient-descent step with eta = 0.5, as the worked example does
eta = 0.5
new_w5 = w5 - eta * float(grads[1]["w"][0, 0])
new_w1 = w1 - eta * float(grads[0]["w"][0, 0])
print(f"after one step (eta = 0.5): w5 = {new_w5:.8f}, w1 = {new_w1:.9f}")

# %% [markdown]
# The worked example reports $E = 0.298371109$, $\partial E/\partial w_5 = 0.082167041$,
# $w_5^+ = 0.35891648$, $\partial E/\partial w_1 = 0.000438568$ and $w_1^+ = 0.149780716$: the
# numbers above. With a single output (the 2-2-1 network, target 0.01, the variant the tests
# check) $\partial E/\partial w_5$ is the same, since $w_5$ feeds only $o_1$, but
# $\partial E/\partial w_1 = \delta^2_1 w_5 \, a_{h1}(1 - a_{h1}) x_1 = 0.000668396$: the second
# output's error no longer flows back.

# %%
params_221 = [params[0], {"w": params[1]["w"][:1], "b": params[1]["b"][:1]}]
g221, _ = manual_grad.backprop(params_221, x, y[:, :1], cost="quadratic")
print(f"2-2-1: dE/dw5 = {float(g221[1]['w'][0, 0]):.9f}, dE/dw1 = {float(g221[0]['w'][0, 0]):.9f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
names = ["w1", "w2", "w3", "w4"]
axes[0].bar(names, np.asarray(grads[0]["w"]).ravel(), label="2-2-2 (both outputs)", width=0.4,
            align="edge")
axes[0].bar(names, np.asarray(g221[0]["w"]).ravel(), label="2-2-1 (output o1 only)", width=-0.4,
            align="edge")
axes[0].set(title="Hidden-layer gradients $\\partial E/\\partial w_i$", xlabel="weight",
            ylabel="gradient")
axes[0].legend(loc="upper left")
axes[1].bar(["w5", "w6", "w7", "w8"], np.asarray(grads[1]["w"]).ravel(), color="C2")
axes[1].set(title="Output-layer gradients (2-2-2)", xlabel="weight", ylabel="gradient")
fig.tight_layout()

# %% [markdown]
# ## A linear example: the chain rule without $\sigma'$
#
# Take identity activations and no biases: $h_1 = w_1 x_1 + w_2 x_2$, $h_2 = w_3 x_1 + w_4 x_2$,
# $y = w_5 h_1 + w_6 h_2$ and $\text{loss} = (\text{label} - y)^2$. Then
#
# $$\frac{\partial\,\text{loss}}{\partial w_1}
#   = \frac{\partial\,\text{loss}}{\partial y}\,\frac{\partial y}{\partial h_1}\,
#     \frac{\partial h_1}{\partial w_1} = -2(\text{label} - y)\, w_5\, x_1 .$$
#
# jaxnn's quadratic cost is $\tfrac12(\text{label} - y)^2$, so its gradients are half of these.

# %%
x1l, x2l, label = 2.0, 3.0, 1.0
v1, v2, v3, v4, v5, v6 = 0.11, 0.21, 0.12, 0.08, 0.14, 0.15
lin = [{"w": jnp.asarray([[v1, v2], [v3, v4]], F64), "b": jnp.zeros(2, F64)},
       {"w": jnp.asarray([[v5, v6]], F64), "b": jnp.zeros(1, F64)}]
glin, ilin = manual_grad.backprop(lin, jnp.asarray([[x1l, x2l]], F64),
                                  jnp.asarray([[label]], F64), activation="identity",
                                  output_activation="identity", cost="quadratic")
yl = float(ilin["activations"][2][0, 0])
hl = np.asarray(ilin["activations"][1][0])
print(f"h1, h2 = {hl}, y = {yl:.3f}, loss = (label - y)^2 = {(label - yl) ** 2:.6f}")
dw1 = float(glin[0]["w"][0, 0])
print(f"dloss/dw1: backprop 2 x {dw1:.5f} = {2 * dw1:.5f};"
      f" formula -2 (label - y) w5 x1 = {-2 * (label - yl) * v5 * x1l:.5f}")
print(f"dloss/dw5: {2 * float(glin[1]['w'][0, 0]):.5f}; formula -2 (label - y) h1 = "
      f"{-2 * (label - yl) * hl[0]:.5f}")

# %% [markdown]
# ## The full network [784, 30, 10] on an MNIST mini-batch
#
# Now the chapter-1 network on a mini-batch of $m$ images. For the mini-batch cost
# $C = \frac1m \sum_x C_x$ the gradients are the batch means of BP3 and BP4. We compare
# `manual_grad.backprop` with `jax.grad` of the same cost, layer by layer.

# %%
mnist = data.load("mnist")
m = scaled(100, 20)
xb = jnp.asarray(data.to_inputs(mnist.train.images[:m]), F64)
yb = jnp.asarray(data.one_hot(mnist.train.labels[:m]), F64)
network = mlp.make((784, 30, 10), scheme="large", dtype=F64)
p = network.init(jax.random.key(0))
cost_fn = costs.from_logits("quadratic", "sigmoid")


@jax.jit
def C(params):
    return cost_fn(network.logits(params, xb), yb)


manual, info = manual_grad.backprop(p, xb, yb, cost="quadratic")
auto = jax.grad(C)(p)
manual, auto = jax.tree_util.tree_map(np.asarray, (manual, auto))  # compare in NumPy
print("shapes: " + ", ".join(f"delta^{l + 1} {d.shape}" for l, d in enumerate(info["deltas"])))
print(f"{'parameter':10s} {'max |manual - jax.grad|':>24s} {'relative error':>15s} "
      f"{'max |grad|':>11s}")
for l in range(2):
    for k in ("w", "b"):
        diff = np.max(np.abs(manual[l][k] - auto[l][k]))
        rel = check.relative_error(manual[l][k], auto[l][k])
        print(f"{k}^{l + 1:<8d} {diff:24.2e} {rel:15.2e} {np.max(np.abs(auto[l][k])):11.4f}")

# %% [markdown]
# The errors are at float64 rounding level ($10^{-16}$ to $10^{-13}$ relative): the hand-derived equations and
# automatic differentiation compute the same numbers. Below, the errors $\delta^l$ for a few
# examples and where in the image the first-layer gradient lives (BP4: $a^0_k = 0$ for blank
# pixels, so their weights get no gradient).

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
for i in range(4):
    axes[0].plot(np.asarray(info["deltas"][1][i]), "o-",
                 label=f"image {i} (digit {int(mnist.train.labels[i])})")
axes[0].set(title="Output error $\\delta^2 = (a^2 - y) \\odot \\sigma'(z^2)$",
            xlabel="output neuron j",
            ylabel="$\\delta^2_j$", xticks=range(10))
axes[0].legend(fontsize=8)
axes[1].hist(np.asarray(info["deltas"][0]).ravel(), bins=60, color="C3")
axes[1].set(title="Hidden errors $\\delta^1_j$ over the batch", xlabel="$\\delta^1_j$",
            ylabel="count",
            yscale="log")
im = axes[2].imshow(np.linalg.norm(manual[0]["w"], axis=0).reshape(28, 28), cmap="magma")
axes[2].set(title="$\\|\\partial C/\\partial w^1_{\\cdot k}\\|$ per input pixel k",
            xlabel="pixel column",
            ylabel="pixel row")
axes[2].grid(False)
fig.colorbar(im, ax=axes[2])
fig.tight_layout()

# %% [markdown]
# ## A finite-difference check
#
# Neither method is an independent witness of the other's correctness unless they are compared
# with the definition of the derivative. The central five-point difference
#
# $$\frac{\partial C}{\partial \theta} \approx
#   \frac{C(\theta - 2h) - 8C(\theta - h) + 8C(\theta + h) - C(\theta + 2h)}{12h}$$
#
# uses only evaluations of $C$. We check a few random coordinates of every parameter.

# %%
rng = np.random.default_rng(0)
rows = []
for l in range(2):
    for k in ("w", "b"):
        for idx in check.sample_coordinates(p[l][k].shape, 3, rng):
            def C_at(leaf, l=l, k=k):
                moved = [dict(layer) for layer in p]
                moved[l][k] = jnp.asarray(leaf)
                return C(moved)

            fd = check.central_difference(C_at, p[l][k], idx)
            bp = float(manual[l][k][idx])
            # relative error, or against the differences' resolution where the gradient is ~0
            err = check.fd_error(fd, bp, check.fd_resolution(C(p)), tol=1e-6)
            rows.append((f"{k}^{l + 1}{list(idx)}", bp, fd, err))
print(f"{'coordinate':18s} {'backprop':>14s} {'finite diff.':>14s} {'error':>9s}")
for name, bp, fd, err in rows:
    print(f"{name:18s} {bp:14.4e} {fd:14.4e} {err:9.1e}")

# %% [markdown]
# The error column is $|fd - bp| / \max(|bp|, |fd|, r/10^{-6})$, where
# $r \approx 1.5\,\epsilon\,C/h$ is the smallest derivative that differences of $C$ can
# resolve: a plain relative error, except for a weight from a blank pixel, whose gradient is
# exactly 0 by BP4 and whose difference is rounding noise, held to that resolution instead (its
# error can be up to $10^{-6}$). The others' errors are about $10^{-10}$: backprop agrees with
# the definition.
# A finite-difference gradient of all 23,860 parameters would need four
# cost evaluations per parameter, about 95,000 forward passes, where backprop needs one forward
# and one backward pass; that is the whole point of backpropagation.
