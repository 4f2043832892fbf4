# %% [markdown]
# # 9. Universal approximation
#
# A network with one hidden layer of sigmoid neurons can approximate any continuous function on
# a bounded interval as closely as we like, given enough hidden neurons. The book's visual proof
# goes in three steps, and so does this notebook: a sigmoid neuron with a large weight is a step;
# two steps make a bump; a row of bumps traces any function. Then we let gradient descent find the
# weights itself, and watch the fit improve with the number of hidden neurons.
#
# The target is the book's function
#
# $$f(x) = 0.2 + 0.4x^2 + 0.3x \sin(15x) + 0.05\cos(50x), \qquad x \in [0, 1].$$

# %%
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import activations, mlp


def f(x):
    return 0.2 + 0.4 * x**2 + 0.3 * x * jnp.sin(15 * x) + 0.05 * jnp.cos(50 * x)


xs = jnp.linspace(0, 1, 1000)

# %% [markdown]
# ## From a sigmoid to a step to a bump
#
# $\sigma(wx + b)$ switches from 0 to 1 at $s = -b/w$, and the larger $w$, the sharper the
# switch. Two hidden neurons stepping at $s_1 < s_2$, with output weights $+h$ and $-h$, add up
# to a bump of height $h$ on $[s_1, s_2]$.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
s = 0.4
for w in (5, 20, 100, 1000):
    axes[0].plot(xs, activations.sigmoid(w * (xs - s)), label=f"$w = {w}$, $b = {-w * s:g}$")
axes[0].set(title="$\\sigma(wx + b)$ approaches a step at $s = -b/w = 0.4$", xlabel="$x$",
            ylabel="hidden neuron output")
axes[0].legend()
h, s1, s2, w = 0.6, 0.4, 0.6, 1000.0
bump = h * activations.sigmoid(w * (xs - s1)) - h * activations.sigmoid(w * (xs - s2))
axes[1].plot(xs, bump, lw=2)
axes[1].set(title=f"Two neurons, output weights $\\pm{h}$: a bump on [{s1}, {s2}]",
            xlabel="$x$", ylabel="weighted output")
fig.tight_layout()

# %% [markdown]
# ## A row of bumps, built by hand
#
# Split $[0, 1]$ into $N$ pieces and give piece $i$ a bump of height $f$ at its midpoint. That
# needs $2N$ hidden neurons and no training. We build it as a [1, 2N, 1] network in jaxnn's
# parameter layout (sigmoid hidden layer, identity output) and evaluate it with `mlp.apply`.

# %%
def bump_network(n_bumps, w=2000.0):
    edges = jnp.linspace(0, 1, n_bumps + 1)
    heights = f((edges[:-1] + edges[1:]) / 2)
    edges = edges.at[0].add(-0.01).at[-1].add(0.01)  # outer steps just outside [0, 1]
    steps_at = jnp.concatenate([edges[:-1], edges[1:]])
    hidden = {"w": jnp.full((2 * n_bumps, 1), w), "b": -w * steps_at}
    out = {"w": jnp.concatenate([heights, -heights])[None, :], "b": jnp.zeros(1)}
    return [hidden, out]


fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(xs, f(xs), "k", lw=2.5, label="$f(x)$")
for n_bumps in (5, 10, 50):
    params = bump_network(n_bumps)
    approx = mlp.apply(params, xs[:, None], output_activation="identity")[:, 0]
    err = float(jnp.mean(jnp.abs(approx - f(xs))))
    ax.plot(xs, approx, lw=1.2, label=f"{n_bumps} bumps ({2 * n_bumps} neurons), "
            f"mean error {err:.3f}")
ax.set(title="Hand-built one-hidden-layer networks", xlabel="$x$", ylabel="output")
ax.legend()
plt.show()

# %% [markdown]
# ## Letting gradient descent find the weights
#
# Now [1, n, 1] networks with sigmoid hidden neurons and a linear output, trained on 400 points
# of $f$ with the quadratic cost $C = \frac{1}{2m}\sum_x (f(x) - a(x))^2$ and Adam
# (`jaxnn.optim.make("adam", ...)`, its learning rate decaying from 0.01 to 0 along a cosine),
# full-batch, for the same number of steps at every width.
#
# One detail matters. With the usual small random weights every hidden neuron is a gentle slope
# across $[0, 1]$, and gradient descent needs a very long time to grow the weights of about 50
# that the $\cos(50x)$ wiggle requires. So, in the spirit of the construction above, each hidden
# neuron starts as a soft step of slope $w = 50$ at a random point $s \in [0, 1]$
# ($b = -ws$), with small random output weights; training then moves the steps and sets their
# heights.

# %%
from jaxnn import optim

x_train = jnp.linspace(0, 1, 400)[:, None]
y_train = f(x_train)
STEPS = scaled(8000, 1000)
widths = scaled((1, 2, 5, 10, 20, 50, 100), (2, 10))


def step_init(key, width, slope=50.0):
    """Hidden neuron j: sigma(slope (x - s_j)), s_j uniform on [0, 1]; output weights N(0, 1/n)."""
    k_s, k_out = jax.random.split(key)
    s = jax.random.uniform(k_s, (width,))
    w = jnp.full((width, 1), slope)
    return [{"w": w, "b": -slope * s},
            {"w": jax.random.normal(k_out, (1, width)) / jnp.sqrt(width), "b": jnp.zeros(1)}]


def fit(width, seed=0):
    net = mlp.make((1, width, 1), output_activation="identity")
    opt = optim.make("adam", optax.cosine_decay_schedule(0.01, STEPS))
    params = step_init(jax.random.key(seed), width)
    mlp.check_params(params, x_train)

    def loss(p):
        return 0.5 * jnp.mean((net.apply(p, x_train) - y_train) ** 2)

    def step(carry, _):
        p, s = carry
        c, g = jax.value_and_grad(loss)(p)
        updates, s = opt.update(g, s, p)
        return (optax.apply_updates(p, updates), s), c

    (params, _), curve = jax.jit(
        lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=STEPS))(params)
    return net, params, curve


fits = {n: fit(n) for n in widths}

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
axes[0].plot(xs, f(xs), "k", lw=2.5, label="$f(x)$")
for n, (net, params, curve) in fits.items():
    axes[0].plot(xs, net.apply(params, xs[:, None])[:, 0], lw=1.2, label=f"{n} hidden")
    axes[1].semilogy(curve, label=f"{n} hidden")
axes[0].set(title="Trained [1, n, 1] networks", xlabel="$x$", ylabel="output")
axes[0].legend(ncol=2, fontsize=9)
axes[1].set(title="Training cost (Adam, full batch)", xlabel="step", ylabel="cost (log scale)")
axes[1].legend(fontsize=9)
fig.tight_layout()

# %%
errors = {n: float(jnp.max(jnp.abs(net.apply(p, xs[:, None])[:, 0] - f(xs))))
          for n, (net, p, _) in fits.items()}
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(list(errors), list(errors.values()), "o-")
ax.set(title="More neurons, better fit", xlabel="hidden neurons $n$",
       ylabel=r"max error $|f(x) - a(x)|$ on [0, 1]")
plt.show()
for n, e in errors.items():
    print(f"{n:3d} hidden neurons: max error {e:.4f}")

# %% [markdown]
# The theorem promises that *some* weights achieve any accuracy $\epsilon$; it does not promise
# that gradient descent finds them quickly, nor that one wide layer is the most economical
# network. That is what deeper networks and the rest of the course are about.
