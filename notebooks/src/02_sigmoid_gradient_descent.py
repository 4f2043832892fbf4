# %% [markdown]
# # 2. Sigmoid neurons and gradient descent
#
# To learn, a network needs small changes in its weights to cause small changes in its output.
# A perceptron's step makes that impossible: its output either stays put or flips. A sigmoid
# neuron replaces the step with a smooth curve,
#
# $$\sigma(z) = \frac{1}{1 + e^{-z}}, \qquad z = w \cdot x + b,$$
#
# and then, to first order,
#
# $$\Delta\,\text{output} \approx \sum_j \frac{\partial\,\text{output}}{\partial w_j}\,\Delta w_j + \frac{\partial\,\text{output}}{\partial b}\,\Delta b .$$
#
# This notebook shows that smoothness and then uses it: gradient descent on a cost of two
# variables, with learning rates too small, about right, and too large.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from jaxnn import activations

# %%
z = jnp.linspace(-8, 8, 401)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(z, activations.step(z), label="step (perceptron)", lw=2)
ax.plot(z, activations.sigmoid(z), label=r"$\sigma(z)$ (sigmoid neuron)", lw=2)
ax.plot(z, jax.vmap(jax.grad(activations.sigmoid))(z), "--", label=r"$\sigma'(z)$")
ax.set(title="A sigmoid neuron is a smoothed-out perceptron", xlabel="$z = w\\cdot x + b$",
       ylabel="output")
ax.legend()
plt.show()

# %% [markdown]
# ## Small changes in, small changes out
#
# Take one neuron with two inputs and sweep one weight $w_1$ through the point where
# $w\cdot x + b$ crosses zero. The perceptron's output jumps from 0 to 1; the sigmoid neuron's
# output moves a little for a little change. `jax.grad` gives
# $\partial\,\text{output} / \partial w_1$, and the linear prediction above matches the actual
# change for small $\Delta w_1$.

# %%
x = jnp.array([1.0, 0.5])
b = -0.5


def neuron(w1, w2=0.4, b=b):
    return activations.sigmoid(w1 * x[0] + w2 * x[1] + b)


def perceptron_out(w1, w2=0.4, b=b):
    return activations.step(w1 * x[0] + w2 * x[1] + b)


w1s = jnp.linspace(-1, 1.6, 400)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(w1s, jax.vmap(perceptron_out)(w1s), label="perceptron", lw=2)
ax.plot(w1s, jax.vmap(neuron)(w1s), label="sigmoid neuron", lw=2)
ax.set(title="Output as one weight changes ($x = (1, 0.5)$, $w_2 = 0.4$, $b = -0.5$)",
       xlabel="$w_1$", ylabel="output")
ax.legend()

w1 = 0.3
slope = jax.grad(neuron)(w1)
print(f"d output / d w1 at w1 = {w1}: {float(slope):.4f}")
print(" delta w1   actual change   slope * delta w1")
for dw in (0.3, 0.1, 0.01, 0.001):
    print(f"{dw:9.3f}   {float(neuron(w1 + dw) - neuron(w1)):13.6f}   {float(slope * dw):14.6f}")

# %% [markdown]
# ## Gradient descent
#
# To minimize a cost $C(v)$ we repeatedly step against the gradient,
#
# $$v \rightarrow v' = v - \eta \nabla C(v),$$
#
# because then $\Delta C \approx \nabla C \cdot \Delta v = -\eta \|\nabla C\|^2 \le 0$. The
# learning rate $\eta$ must be small enough for the linear approximation to hold and large enough
# to make progress. We use a valley that is steep in one direction and shallow in the other,
#
# $$C(v_1, v_2) = \tfrac12\left(v_1^2 + 10\,v_2^2\right),$$
#
# whose curvatures are 1 and 10. Along $v_2$ each step multiplies the distance to the minimum by
# $1 - 10\eta$, so gradient descent diverges once $\eta > 2/10$.

# %%
def cost(v):
    return 0.5 * (v[0] ** 2 + 10.0 * v[1] ** 2)


grad_cost = jax.jit(jax.grad(cost))
steps = 40  # cheap: no need to scale down in quick mode


def descend(eta, v0=(-4.0, 1.5), steps=steps):
    vs = [jnp.array(v0)]
    for _ in range(steps):
        vs.append(vs[-1] - eta * grad_cost(vs[-1]))  # the whole algorithm
    return jnp.stack(vs)


runs = {r"too small, $\eta = 0.01$": descend(0.01), r"about right, $\eta = 0.15$": descend(0.15),
        r"too large, $\eta = 0.201$": descend(0.201)}

# %%
g1, g2 = jnp.meshgrid(jnp.linspace(-5, 5, 200), jnp.linspace(-2.5, 2.5, 200))
C = jax.vmap(jax.vmap(cost, in_axes=1), in_axes=1)(jnp.stack([g1, g2]))
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1.4, 1]})
axes[0].contour(g1, g2, C, levels=np.geomspace(0.05, 40, 12), cmap="viridis", linewidths=0.8,
                alpha=0.7)
for (label, vs), color in zip(runs.items(), ["tab:blue", "tab:green", "tab:red"]):
    axes[0].plot(vs[:, 0], vs[:, 1], "o-", ms=3, color=color, label=label)
    axes[1].semilogy(jax.vmap(cost)(vs), color=color, label=label)
axes[0].plot(0, 0, "k*", ms=12, label="minimum")
axes[0].set(title="Gradient descent on $C = (v_1^2 + 10 v_2^2)/2$, from $(-4, 1.5)$",
            xlabel="$v_1$", ylabel="$v_2$", xlim=(-5, 5), ylim=(-2.5, 2.5))
axes[0].legend(loc="lower right", fontsize=8)
axes[1].set(title="Cost per step", xlabel="step", ylabel="$C(v)$ (log scale)")
axes[1].legend(fontsize=8)
fig.tight_layout()

for label, vs in runs.items():
    print(f"{label:28s} cost after {steps} steps: {float(cost(vs[-1])):.3g}")

# %% [markdown]
# Too small a rate crawls down the shallow direction; the right rate converges in a few dozen
# steps; a rate just above $2/10$ overshoots across the steep direction a little further on
# every step: after a few steps the zig-zag grows and the cost rises instead of falling.
#
# ## Stochastic gradient descent
#
# A network's cost is an average over training inputs, $C = \frac1n \sum_x C_x$, so its gradient
# is an average too. Stochastic gradient descent estimates it from a random mini-batch of $m$
# inputs, $\nabla C \approx \frac1m \sum_{j=1}^m \nabla C_{X_j}$, which is far cheaper and, as
# the estimate below shows, close to the full gradient for moderate $m$. Here the cost is the
# mean over 10,000 points of a one-neuron least-squares fit.

# %%
key = jax.random.key(0)
kx, kn = jax.random.split(key)
xs = jax.random.normal(kx, (10_000,))
ys = activations.sigmoid(2.0 * xs - 1.0) + 0.05 * jax.random.normal(kn, xs.shape)


def data_cost(v, x, y):
    return 0.5 * jnp.mean((activations.sigmoid(v[0] * x + v[1]) - y) ** 2)


v = jnp.array([0.5, 0.5])
full = jax.grad(data_cost)(v, xs, ys)
errors = {}
for m in scaled((1, 10, 100, 1000), (1, 100)):
    idx = jax.random.randint(jax.random.key(m), (200, m), 0, len(xs))
    est = jax.vmap(lambda i: jax.grad(data_cost)(v, xs[i], ys[i]))(idx)
    errors[m] = float(jnp.mean(jnp.linalg.norm(est - full, axis=1)) / jnp.linalg.norm(full))
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(list(errors), list(errors.values()), "o-", label="measured (200 mini-batches each)")
ax.loglog(list(errors), errors[1] / np.sqrt(list(errors)), "k--", label=r"$\propto 1/\sqrt{m}$")
ax.set(title="Mini-batch gradients estimate the full gradient", xlabel="mini-batch size $m$",
       ylabel=r"mean $\|\hat g - \nabla C\| / \|\nabla C\|$")
ax.legend()
plt.show()
