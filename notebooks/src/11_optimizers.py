# %% [markdown]
# # 11. Optimizers
#
# Plain stochastic gradient descent moves every parameter by the same multiple of its gradient,
# $\theta \rightarrow \theta - \eta\, g$ with $g = \nabla C(\theta)$. On a surface that is steep in
# one direction and flat in another, no single $\eta$ suits both. The optimizers below change the
# step:
#
# | optimizer | update | idea |
# |---|---|---|
# | momentum | $v \rightarrow \mu v - \eta g,\; \theta \rightarrow \theta + v$ | a heavy ball: velocity builds up along consistent directions and oscillations cancel |
# | Nesterov | momentum, with the gradient taken at the look-ahead point $\theta + \mu v$ | corrects the overshoot earlier |
# | Adagrad | $G \rightarrow G + g^2$ ($G$ starts at 0.1), $\theta \rightarrow \theta - \eta\, g / \sqrt{G + \epsilon}$, $\epsilon = 10^{-7}$ | per-parameter steps, smaller where gradients have been large |
# | RMSProp | $G \rightarrow \rho G + (1 - \rho) g^2$ ($\rho = 0.9$, $G$ from 0), $\theta \rightarrow \theta - \eta\, g / \sqrt{G + \epsilon}$, $\epsilon = 10^{-8}$ | a moving average, so the step size does not decay to zero |
# | Adam | momentum on $g$ and RMSProp on $g^2$, both bias-corrected | $\theta \rightarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$ |
#
# In jaxnn every optimizer is an optax `GradientTransformation`, made by
# `jaxnn.optim.make(name, eta)` ($\mu = 0.9$ for momentum and Nesterov; Adam's $\beta_1 = 0.9$,
# $\beta_2 = 0.999$, $\epsilon = 10^{-8}$). The table's momentum is the book's form; optax keeps
# $v \rightarrow \mu v + g$ and steps $-\eta v$, the same for a constant $\eta$. Its Nesterov
# takes the gradient at the current point and steps $-\eta (g + \mu v)$, the look-ahead form
# rewritten in the look-ahead variables. The Adagrad, RMSProp and Adam rows are optax's forms
# exactly (the docstring of `jaxnn.optim` writes each out, and a test checks them step by step). Many texts start Adagrad's
# $G$ at 0 and add $\epsilon$ outside the root; optax's $G_0 = 0.1$ keeps the first steps of
# parameters with tiny gradients small.

# %%
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnn import experiment, optim

# %% [markdown]
# ## SGD by hand, and the same step through optax
#
# To make the notation concrete: one SGD step written out, and the optax transformation doing the
# same thing.

# %%
theta = jnp.array([1.0, -2.0])
g = jnp.array([0.5, 4.0])
eta = 0.1
by_hand = theta - eta * g
sgd = optim.make("sgd", eta)
updates, _ = sgd.update(g, sgd.init(theta), theta)
print("by hand:", by_hand, " optax:", optax.apply_updates(theta, updates))

# %% [markdown]
# ## Trajectories on a 2-D loss surface
#
# A Rosenbrock-style valley, $C(x, y) = (1 - x)^2 + 10\,(y - x^2)^2$: a curved, narrow canyon
# whose floor leads slowly to the minimum at $(1, 1)$. Every optimizer starts at $(-1.5, 2)$ and
# takes 300 steps; each learning rate was picked by hand to behave, not tuned to the edge. At
# twice its rate SGD ends with a loss 80 times lower, and at 2.5 times it diverges; momentum and
# Nesterov keep improving up to 4 times theirs, RMSProp does best at 1.5 to 2 times its rate and
# Adagrad at about three times; tuned so, they would all look closer to Adam. Adagrad cannot
# blow up: no step moves a coordinate by more than $\eta$.
# (Adagrad's first step moves a coordinate by $\eta\, g / \sqrt{0.1 + g^2}$, about $\eta$ when
# $|g|$ is well above $\sqrt{0.1} \approx 0.3$; at the start the gradient is $(-20, -5)$, hence
# its straight diagonal first jump.)

# %%
def valley(v):
    return (1 - v[0]) ** 2 + 10 * (v[1] - v[0] ** 2) ** 2


SETTINGS = {"sgd": 0.01, "momentum": 0.002, "nesterov": 0.002, "adagrad": 0.5,
            "rmsprop": 0.01, "adam": 0.1}
STEPS_2D = 300


def trajectory(name, eta, v0=(-1.5, 2.0)):
    opt = optim.make(name, eta)

    def step(carry, _):
        v, state = carry
        updates, state = opt.update(jax.grad(valley)(v), state, v)
        v = optax.apply_updates(v, updates)
        return (v, state), v

    v0 = jnp.array(v0)
    _, vs = jax.lax.scan(step, (v0, opt.init(v0)), None, length=STEPS_2D)
    return jnp.concatenate([v0[None], vs])


paths = {name: trajectory(name, eta) for name, eta in SETTINGS.items()}

# %%
gx, gy = jnp.meshgrid(jnp.linspace(-2, 2, 300), jnp.linspace(-1, 3.5, 300))
surface = (1 - gx) ** 2 + 10 * (gy - gx**2) ** 2
fig, axes = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [1.2, 1]})
axes[0].contour(gx, gy, surface, levels=np.geomspace(0.01, 200, 20), cmap="Greys",
                linewidths=0.7)
for i, (name, vs) in enumerate(paths.items()):
    axes[0].plot(vs[:, 0], vs[:, 1], "-", color=f"C{i}", lw=1.5,
                 label=f"{name} ($\\eta = {SETTINGS[name]}$)")
    axes[0].plot(vs[::10, 0], vs[::10, 1], ".", color=f"C{i}", ms=4)
    axes[1].semilogy(jax.vmap(valley)(vs), color=f"C{i}", label=name)
axes[0].plot(-1.5, 2, "ko", ms=8, label="start")
axes[0].plot(1, 1, "k*", ms=14, label="minimum (1, 1)")
axes[0].set(title="$C = (1 - x)^2 + 10 (y - x^2)^2$: 300 steps (dots every 10)", xlabel="$x$",
            ylabel="$y$", xlim=(-2, 2), ylim=(-1, 3.5))
axes[0].legend(fontsize=8, loc="lower right")
axes[1].set(title="Loss per step", xlabel="step", ylabel="$C$ (log scale)")
axes[1].legend(fontsize=9)
fig.tight_layout()
for name, vs in paths.items():
    print(f"{name:9s} loss after {STEPS_2D} steps: {float(valley(vs[-1])):.2e}")

# %% [markdown]
# ## On MNIST
#
# The same [784, 100, 10] sigmoid network with a softmax output and the log-likelihood cost,
# Xavier initialization, mini-batches of 10, trained with each optimizer. Learning rates are
# typical values for each method (not tuned per method on this problem). Momentum and Nesterov
# with $\eta = 0.01$ and $\mu = 0.9$ take, once the velocity has built up, steps of
# $\eta / (1 - \mu) = 0.1$ times the gradient, SGD's step: expect their curves close to SGD's.
# Quick mode trains three of them on 1,000 images for 2 epochs; full mode trains all six, most
# of the notebook's 280 s on a 2-core CPU (docs/notebooks.md).

# %%
MNIST_ETAS = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.05,
              "rmsprop": 0.001, "adam": 0.001}
MNIST_ETAS = scaled(MNIST_ETAS, {k: MNIST_ETAS[k] for k in ("sgd", "momentum", "adam")})
results = {}
for name, eta in MNIST_ETAS.items():
    cfg = experiment.TrainConfig.from_preset(
        "ch1-30", sizes=(784, 100, 10), cost="log_likelihood", output_activation="softmax",
        init="xavier", optimizer=name, eta=eta, epochs=scaled(10, 2),
        train_size=scaled(None, 1000))
    results[name] = experiment.run(cfg, progress=False).history

fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
for i, (name, h) in enumerate(results.items()):
    ep = [r["epoch"] + 1 for r in h]
    label = f"{name} ($\\eta = {MNIST_ETAS[name]}$)"
    axes[0].plot(ep, [100 * r["validation_accuracy"] for r in h], "o-", color=f"C{i}",
                 label=label)
    axes[1].semilogy(ep, [r["train_cost"] for r in h], "o-", color=f"C{i}", label=label)
axes[0].set(title="MNIST [784, 100, 10]: validation accuracy", xlabel="epoch",
            ylabel="accuracy (%)")
axes[0].legend(fontsize=9)
axes[1].set(title="Training cost (log-likelihood)", xlabel="epoch", ylabel="cost (log scale)")
axes[1].legend(fontsize=9)
fig.tight_layout()
plt.show()

print(f"{'optimizer':10s} {'eta':>6s} {'epoch 1':>8s} {'best val':>9s} {'test at best':>13s}"
      f" {'s/epoch':>8s}")
for name, h in results.items():
    best = max(reversed(h), key=lambda r: r["validation_accuracy"])  # the last of ties
    later = [r["seconds"] for r in h[1:]] or [h[0]["seconds"]]
    print(f"{name:10s} {MNIST_ETAS[name]:6g} {100 * h[0]['validation_accuracy']:7.2f}% "
          f"{100 * best['validation_accuracy']:8.2f}% {100 * best['test_accuracy']:12.2f}% "
          f"{np.median(later):8.2f}")
