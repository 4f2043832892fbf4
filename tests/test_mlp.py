import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnn import activations, mlp


def test_shapes_follow_the_book_layout():
    params = mlp.init(jax.random.key(0), [784, 30, 10])
    assert [(p["w"].shape, p["b"].shape) for p in params] == [((30, 784), (30,)),
                                                             ((10, 30), (10,))]
    assert mlp.sizes_of(params) == (784, 30, 10)


def test_forward_is_the_equations():
    params = mlp.init(jax.random.key(1), [4, 3, 2])
    x = jax.random.normal(jax.random.key(2), (5, 4))
    zs, acts = mlp.forward(params, x, activation="tanh", output_activation="softmax")
    z1 = x @ params[0]["w"].T + params[0]["b"]
    np.testing.assert_allclose(zs[0], z1, rtol=1e-6)
    np.testing.assert_allclose(acts[1], jnp.tanh(z1), rtol=1e-6)
    z2 = acts[1] @ params[1]["w"].T + params[1]["b"]
    np.testing.assert_allclose(acts[2], activations.softmax(z2), rtol=1e-6)
    np.testing.assert_allclose(mlp.apply(params, x, activation="tanh",
                                         output_activation="softmax"), acts[2], rtol=1e-6)
    assert acts[0] is x and len(zs) == 2 and len(acts) == 3


def test_prelu_and_maxout_networks():
    p = mlp.init(jax.random.key(0), [4, 3, 2], activation="prelu")
    assert float(p[0]["alpha"]) == activations.PRELU_INIT and "alpha" not in p[1]
    m = mlp.init(jax.random.key(0), [4, 3, 2], activation="maxout", pieces=3)
    assert m[0]["w"].shape == (9, 4) and m[1]["w"].shape == (2, 3)
    x = jnp.ones((2, 4))
    out = mlp.apply(m, x, activation="maxout", output_activation="identity")
    expected = jnp.max((x @ m[0]["w"].T + m[0]["b"]).reshape(2, 3, 3), -1) @ m[1]["w"].T + m[1]["b"]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_make_binds_static_choices_and_jits():
    net = mlp.make([6, 5, 3], activation="relu", output_activation="softmax", scheme="he")
    params = net.init(jax.random.key(3))
    x = jnp.ones((4, 6))
    np.testing.assert_allclose(jax.jit(net.apply)(params, x),
                               mlp.apply(params, x, activation="relu", output_activation="softmax"),
                               rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(sizes=[784]), "sizes: expected at least two"),
     (dict(sizes=[784, 0, 10]), "sizes"),
     (dict(sizes=[784, 30, 10], activation="sigmod"), "activation"),
     (dict(sizes=[784, 30, 10], scheme="glorot"), "init")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mlp.init(jax.random.key(0), **kwargs)


def test_check_params():
    params = mlp.init(jax.random.key(0), [4, 3, 2])
    mlp.check_params(params, jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="x: expected 4 features"):
        mlp.check_params(params, jnp.ones((1, 5)))
    bad = [params[0], {"w": jnp.ones((2, 5)), "b": jnp.ones(2)}]
    with pytest.raises(ValueError, match=r"params\[1\]: w expects 5 inputs"):
        mlp.check_params(bad)


def test_check_params_knows_maxout_groups_and_prelu_slopes():
    m = mlp.init(jax.random.key(0), [4, 3, 2], activation="maxout", pieces=3)
    mlp.check_params(m, jnp.ones((1, 4)), activation="maxout")
    mlp.check_params(m, activation="maxout", pieces=3)
    with pytest.raises(ValueError, match=r"params\[1\]: w expects 3 inputs but layer 1 has 9"):
        mlp.check_params(m)  # 9 units feed 3 inputs only as maxout groups
    with pytest.raises(ValueError, match=r"expected w of shape \(n, 9\) for groups of 1"):
        mlp.check_params(m, activation="maxout", pieces=1)
    p = mlp.init(jax.random.key(0), [4, 3, 2], activation="prelu")
    mlp.check_params(p, activation="prelu")
    with pytest.raises(ValueError, match=r"params\[0\]: expected a prelu hidden layer"):
        mlp.check_params([{k: v for k, v in p[0].items() if k != "alpha"}, p[1]],
                         activation="prelu")


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "maxout"])
def test_a_slope_alpha_is_refused_unless_the_activation_is_prelu(activation):
    """A prelu network's params with another activation would silently drop alpha."""
    p = mlp.make([4, 3, 2], activation="prelu").init(jax.random.key(0))
    x = jnp.ones((2, 4))
    for call in (lambda: mlp.apply(p, x, activation=activation),
                 lambda: mlp.logits(p, x, activation=activation),
                 lambda: mlp.forward(p, x, activation=activation),
                 lambda: mlp.check_params(p, activation=activation)):
        with pytest.raises(ValueError, match=rf"params\[0\]: .*'alpha'.*only a prelu.*"
                                             rf"activation='{activation}'"):
            call()
    mlp.apply(p, x, activation="prelu")  # the right activation still works


def test_a_slope_alpha_on_the_output_layer_is_refused():
    p = mlp.make([4, 3, 2], activation="prelu").init(jax.random.key(0))
    p[1] = {**p[1], "alpha": jnp.asarray(0.25)}
    with pytest.raises(ValueError, match=r"params\[1\]: .*output layer.*'alpha'"):
        mlp.apply(p, jnp.ones((2, 4)), activation="prelu")


@pytest.mark.parametrize("output", activations.OUTPUTS)
def test_apply_and_make_accept_the_same_output_activations(output):
    net = mlp.make([4, 3, 2], output_activation=output)
    params = net.init(jax.random.key(0))
    x = jnp.linspace(0.0, 1.0, 8).reshape(2, 4)
    np.testing.assert_allclose(mlp.apply(params, x, output_activation=output),
                               net.apply(params, x), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_init_takes_every_floating_dtype(dtype):
    params = mlp.make([4, 3, 2], dtype=dtype).init(jax.random.key(0))
    assert all(leaf.dtype == dtype for leaf in jax.tree_util.tree_leaves(params))
    assert mlp.apply(params, jnp.ones((2, 4), dtype)).dtype == dtype
