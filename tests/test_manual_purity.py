"""manual_grad derives every gradient by hand: no differentiation transform may appear in it.

(a) a static scan of every manual_grad/*.py for the transforms, as attribute access
    (``jax.grad``, ``jax.lax.linear_transpose`` ...) or as an import (``from jax import vjp``);
(b) a dynamic check: with every transform of jax monkeypatched to raise, ``backprop`` and
    ``cnn_backprop`` still run (jit is allowed; the functions are traced afresh here).
"""

import ast
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import manual_grad
from jaxnn import layers as jl
from jaxnn import mlp

TRANSFORMS = {"grad", "value_and_grad", "vjp", "jvp", "jacfwd", "jacrev", "jacobian",
              "linear_transpose", "custom_vjp", "custom_jvp", "custom_gradient", "hessian",
              "linearize"}
SOURCES = sorted((pathlib.Path(manual_grad.__file__).parent).glob("*.py"))


def transforms_used(source: str) -> list[str]:
    """Names of TRANSFORMS reached by attribute access or imported by name, with line numbers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in TRANSFORMS:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name in TRANSFORMS or a.name.split(".")[-1] in TRANSFORMS]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[-1] in TRANSFORMS]
    return found


def test_the_scan_sees_every_form_of_use():
    bad = ("import jax\nf = jax.grad(g)\n", "from jax import vjp\n",
           "from jax import numpy as jnp, jacrev\n", "import jax.lax as L\nL.linear_transpose\n",
           "@jax.custom_vjp\ndef f(x): return x\n", "y = jax.linearize(f, 1.0)\n",
           "import jax\nf = jax.jacobian(g)\n", "@jax.custom_gradient\ndef f(x): return x\n")
    for src in bad:
        assert transforms_used(src), src
    assert not transforms_used("import jax\ny = jax.jit(jax.vmap(f))\nz = jax.lax.conv(x)\n")


def test_manual_grad_sources_use_no_differentiation_transform():
    assert len(SOURCES) >= 8  # the package's modules were found
    used = {p.name: transforms_used(p.read_text()) for p in SOURCES}
    assert not any(used.values()), {k: v for k, v in used.items() if v}


@pytest.fixture
def no_autodiff(monkeypatch):
    def forbidden(name):
        def raise_(*args, **kwargs):
            raise AssertionError(f"manual_grad called jax.{name}")
        return raise_

    for module in (jax, jax.lax):
        for name in TRANSFORMS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, forbidden(name))
    jax.clear_caches()
    yield
    jax.clear_caches()


def test_the_patch_is_in_force(no_autodiff):
    with pytest.raises(AssertionError, match="jax.grad"):
        jax.grad(jnp.sum)(jnp.ones(3))


def test_backprop_runs_with_autodiff_disabled(no_autodiff):
    net = mlp.make([6, 5, 3], activation="relu", output_activation="softmax")
    params = net.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 6)), jnp.float32)
    y = jax.nn.one_hot(jnp.array([0, 1, 2, 1]), 3)
    grads, _ = manual_grad.backprop(params, x, y, activation="relu",
                                    output_activation="softmax", cost="log_likelihood")
    assert all(np.isfinite(np.asarray(g["w"])).all() for g in grads)


def test_cnn_backprop_runs_with_autodiff_disabled(no_autodiff):
    spec = jl.CNNSpec((8, 8, 1), (jl.Conv(3, (3, 3)), jl.BatchNorm(), jl.Pool("max"),
                                  jl.Flatten(), jl.Dropout(0.5), jl.Dense(4)))
    params = jl.init(spec, jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 8, 8, 1)), jnp.float32)
    y = jax.nn.one_hot(jnp.array([0, 3]), 4)
    grads, _ = manual_grad.cnn_backprop(spec, params, x, y, key=jax.random.key(2))
    assert set(grads["layers"]) == {0, 1, 5}
    assert set(grads["layers"][1]) == {"scale", "bias"}
