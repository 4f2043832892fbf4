# %% [markdown]
# # 1. Perceptrons
#
# A perceptron takes binary inputs $x_1, \dots, x_n$ and produces one binary output. Each input
# has a weight $w_j$; the neuron fires when the weighted sum passes a threshold. Writing the bias
# $b = -\text{threshold}$ turns the rule into
#
# $$\text{output} = \begin{cases} 0 & \text{if } w \cdot x + b \le 0 \\ 1 & \text{if } w \cdot x + b > 0 \end{cases}$$
#
# The bias measures how easy it is to make the perceptron fire: a large positive $b$ fires
# almost always, a large negative $b$ almost never. This notebook builds logic gates from
# perceptrons, shows why NAND alone is enough to compute anything, why XOR needs a hidden layer,
# and why stacking layers is pointless without a non-linear activation.

# %%
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import perceptron
from jaxnn.perceptron import AND, INPUTS, NAND, NOT, OR, Perceptron

# %% [markdown]
# ## Logic gates
#
# The book's NAND gate is $w = (-2, -2)$, $b = 3$: input $(1, 1)$ gives $-2 - 2 + 3 = -1 \le 0$,
# so it outputs 0; every other input gives a positive sum. AND, OR and NOT are single perceptrons
# too. `perceptron.fire(p, x)` evaluates $\text{step}(w \cdot x + b)$ for a batch of inputs.

# %%
print("x1 x2 | NAND AND OR")
for x, nand, and_, or_ in zip(INPUTS.astype(int).tolist(), perceptron.fire(NAND, INPUTS),
                              perceptron.fire(AND, INPUTS), perceptron.fire(OR, INPUTS)):
    print(f" {x[0]}  {x[1]} |   {int(nand)}    {int(and_)}   {int(or_)}")
print("NOT:", {x: int(perceptron.fire(NOT, jnp.array([[x]]))[0]) for x in (0, 1)})

# %% [markdown]
# Each two-input perceptron draws a line $w_1 x_1 + w_2 x_2 + b = 0$ through the input plane and
# fires on one side of it. The shaded region is where the gate outputs 1.

# %%
grid = jnp.stack(jnp.meshgrid(jnp.linspace(-0.5, 1.5, 201), jnp.linspace(-0.5, 1.5, 201)), -1)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
for ax, (name, p) in zip(axes, [("NAND", NAND), ("AND", AND), ("OR", OR)]):
    out = perceptron.fire(p, grid.reshape(-1, 2)).reshape(grid.shape[:2])
    ax.contourf(grid[..., 0], grid[..., 1], out, levels=[-0.5, 0.5, 1.5],
                colors=["white", "tab:green"], alpha=0.25)
    xs = np.linspace(-0.5, 1.5, 2)
    ax.plot(xs, -(p.w[0] * xs + p.b) / p.w[1], "k--", label=r"$w\cdot x + b = 0$")
    y = perceptron.fire(p, INPUTS)
    for label, marker, color in [(0, "o", "tab:red"), (1, "s", "tab:green")]:
        sel = np.asarray(y) == label
        ax.scatter(INPUTS[sel, 0], INPUTS[sel, 1], s=120, marker=marker, color=color,
                   edgecolor="k", zorder=3, label=f"output {label}")
    ax.set(title=f"{name}: w = {np.asarray(p.w).tolist()}, b = {p.b}", xlabel="$x_1$",
           xlim=(-0.5, 1.5), ylim=(-0.5, 1.5))
axes[0].set_ylabel("$x_2$")
axes[0].legend(loc="lower left", fontsize=8)
fig.suptitle("Each perceptron separates the input plane with one line")
fig.tight_layout()

# %% [markdown]
# ## NAND is universal
#
# Every Boolean function can be written with NAND gates alone, so networks of perceptrons can
# compute anything a circuit can: $\text{NOT}\,x = \text{NAND}(x, x)$,
# $\text{AND}(x, y) = \text{NOT}(\text{NAND}(x, y))$, $\text{OR}(x, y) = \text{NAND}(\text{NOT}\,x, \text{NOT}\,y)$,
# and XOR takes four NANDs (the book's adder circuit). We check every truth table.

# %%
nand = perceptron.gate(NAND)


def not_(x):
    return nand(x, x)


def and_(x, y):
    return not_(nand(x, y))


def or_(x, y):
    return nand(not_(x), not_(y))


x1, x2 = INPUTS[:, 0], INPUTS[:, 1]
x1i, x2i = np.asarray(x1, bool), np.asarray(x2, bool)
checks = {
    "NOT x1": (not_(x1), ~x1i),
    "AND": (and_(x1, x2), x1i & x2i),
    "OR": (or_(x1, x2), x1i | x2i),
    "XOR (four NANDs)": (perceptron.xor_from_nand(x1, x2), x1i ^ x2i),
}
for name, (got, want) in checks.items():
    print(f"{name:18s} {np.asarray(got, int).tolist()}  correct: {np.array_equal(got, want)}")

# %% [markdown]
# ## XOR has no linear separator
#
# A single perceptron fires on one side of a line. XOR wants $(0,1)$ and $(1,0)$ on one side and
# $(0,0)$, $(1,1)$ on the other, and no line does that. The perceptron learning rule
#
# $$w \leftarrow w + \eta\,(y - \text{output})\,x, \qquad b \leftarrow b + \eta\,(y - \text{output})$$
#
# converges whenever the classes are linearly separable and never otherwise. Let it try.

# %%
targets = {"AND": x1i & x2i, "OR": x1i | x2i, "NAND": ~(x1i & x2i), "XOR": x1i ^ x2i}
learned = {}
for name, y in targets.items():
    p, converged = perceptron.train(INPUTS, y.astype(np.float32), epochs=1000)
    learned[name] = p
    acc = np.mean(np.asarray(perceptron.fire(p, INPUTS)) == y)
    print(f"{name:5s} converged: {converged!s:5s}  accuracy {acc:.2f}")

# %% [markdown]
# A hidden layer fixes it. The first layer computes OR and NAND; in their coordinates
# $(h_1, h_2)$ the four inputs land where a single line (AND) separates them.

# %%
h = jnp.stack([perceptron.gate(OR)(x1, x2), perceptron.gate(NAND)(x1, x2)], -1)
print("XOR from a hidden layer:", np.asarray(perceptron.xor_two_layer(x1, x2), int).tolist())

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
xor = x1i ^ x2i
for ax, pts, title, xl, yl in [
    (axes[0], np.asarray(INPUTS), "Input space: XOR is not linearly separable", "$x_1$", "$x_2$"),
    (axes[1], np.asarray(h), "Hidden space (OR, NAND): one line (AND) separates",
     "$h_1$ = OR$(x_1, x_2)$", "$h_2$ = NAND$(x_1, x_2)$"),
]:
    jitter = 0.03 * np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]])  # overlapping points
    for label, marker, color in [(False, "o", "tab:red"), (True, "s", "tab:green")]:
        sel = xor == label
        ax.scatter(pts[sel, 0] + jitter[sel, 0], pts[sel, 1] + jitter[sel, 1], s=120,
                   marker=marker, color=color, edgecolor="k", zorder=3,
                   label=f"XOR = {int(label)}")
    offsets = [(8, 8), (-42, 8), (8, -18), (8, 8)]  # (0,1) and (1,0) share a hidden point
    for (a, b), p, off in zip(np.asarray(INPUTS, int), pts + jitter, offsets):
        ax.annotate(f"({a},{b})", p, textcoords="offset points", xytext=off)
    ax.set(title=title, xlabel=xl, ylabel=yl, xlim=(-0.4, 1.5), ylim=(-0.4, 1.5))
xs = np.linspace(-0.4, 1.5, 2)
axes[1].plot(xs, -(AND.w[0] * xs + AND.b) / AND.w[1], "k--", label="AND's line")
axes[0].legend(loc="center")
axes[1].legend(loc="lower left")
fig.tight_layout()

# %% [markdown]
# ## Without activation functions, depth buys nothing
#
# A layer without an activation function is affine: $a^l = w^l a^{l-1} + b^l$. Composing two
# gives $w^2(w^1 x + b^1) + b^2 = (w^2 w^1)\,x + (w^2 b^1 + b^2)$, again one affine map; by
# induction any number of layers collapses to a single $W x + B$. We check this numerically on a
# five-layer network built with `jaxnn.mlp` and the `identity` activation.

# %%
from jaxnn import mlp

sizes = (4, 16, 16, 16, 16, 3)
params = mlp.init(jax.random.key(0), sizes, activation="identity")
W = params[0]["w"]
B = params[0]["b"]
for layer in params[1:]:
    W, B = layer["w"] @ W, layer["w"] @ B + layer["b"]
print("collapsed map: W", W.shape, "B", B.shape)

x = jax.random.normal(jax.random.key(1), (1000, sizes[0]))
deep = mlp.apply(params, x, activation="identity", output_activation="identity")
shallow = x @ W.T + B
print(f"max |deep - shallow| over 1000 inputs: {float(jnp.max(jnp.abs(deep - shallow))):.2e}")

# %% [markdown]
# So a linear network, however deep, cannot compute XOR either: the best linear fit (least
# squares) to XOR's truth table outputs 0.5 everywhere. With a sigmoid between the layers the
# network is no longer linear, and the next notebook trains such networks by gradient descent.

# %%
X = np.c_[np.asarray(INPUTS), np.ones(4)]
coef, *_ = np.linalg.lstsq(X, xor.astype(float), rcond=None)
print("best linear fit to XOR:", np.round(X @ coef, 3).tolist())
