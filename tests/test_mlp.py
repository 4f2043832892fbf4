import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnn import activations, mlp


def test_shapes_follow_the_book_layout():
    params = mlp.init(jax.random.PRNGKey(0), [784, 30, 10])
    assert [(p["w"].shape, p["b"].shape) for p in params] == [((30, 784), (30,)),
                                                             ((10, 30), (10,))]
    assert mlp.sizes_of(params) == (784, 30, 10)


def test_forward_is_the_equations():
    params = mlp.init(jax.random.PRNGKey(1), [4, 3, 2])
    x = jax.random.normal(jax.random.PRNGKey(2), (5, 4))
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
    p = mlp.init(jax.random.PRNGKey(0), [4, 3, 2], activation="prelu")
    assert float(p[0]["alpha"]) == activations.PRELU_INIT and "alpha" not in p[1]
    m = mlp.init(jax.random.PRNGKey(0), [4, 3, 2], activation="maxout", pieces=3)
    assert m[0]["w"].shape == (9, 4) and m[1]["w"].shape == (2, 3)
    x = jnp.ones((2, 4))
    out = mlp.apply(m, x, activation="maxout", output_activation="identity")
    expected = jnp.max((x @ m[0]["w"].T + m[0]["b"]).reshape(2, 3, 3), -1) @ m[1]["w"].T + m[1]["b"]
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_make_binds_static_choices_and_jits():
    net = mlp.make([6, 5, 3], activation="relu", output_activation="softmax", scheme="he")
    params = net.init(jax.random.PRNGKey(3))
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
        mlp.init(jax.random.PRNGKey(0), **kwargs)


def test_check_params():
    params = mlp.init(jax.random.PRNGKey(0), [4, 3, 2])
    mlp.check_params(params, jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="x: expected 4 features"):
        mlp.check_params(params, jnp.ones((1, 5)))
    bad = [params[0], {"w": jnp.ones((2, 5)), "b": jnp.ones(2)}]
    with pytest.raises(ValueError, match=r"params\[1\]: w expects 5 inputs"):
        mlp.check_params(bad)
