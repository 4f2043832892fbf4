import jax
import numpy as np
import pytest

from jaxnn import init

N_OUT, N_IN = 400, 500


@pytest.mark.parametrize(
    "name, w_std, b_std",
    [("large", 1.0, 1.0), ("default", N_IN**-0.5, 1.0),
     ("xavier", (2 / (N_IN + N_OUT)) ** 0.5, 0.0), ("he", (2 / N_IN) ** 0.5, 0.0)],
)
def test_scheme_statistics(name, w_std, b_std):
    w, b = init.get(name)(jax.random.key(0), N_OUT, N_IN)
    assert w.shape == (N_OUT, N_IN) and b.shape == (N_OUT,)
    np.testing.assert_allclose(np.std(w), w_std, rtol=0.02)
    assert abs(float(np.mean(w))) < 0.02 * w_std + 1e-3
    if b_std:
        np.testing.assert_allclose(np.std(b), b_std, rtol=0.15)
    else:
        assert not np.any(b)


@pytest.mark.parametrize("name", ["large", "default"])
def test_weights_and_biases_are_drawn_from_different_keys(name):
    """Statistics per leaf would not see one key reused: the biases would repeat weights."""
    w, b = init.get(name)(jax.random.key(0), N_OUT, N_IN)
    scale = {"large": 1.0, "default": N_IN**-0.5}[name]
    # one key draws the same leading normals for both shapes: b would be w's first entries
    assert not np.allclose(np.asarray(b)[:20], np.asarray(w).ravel()[:20] / scale, rtol=1e-3)


def test_default_init_keeps_z_unsaturated():
    # chapter 3: with N(0, 1/n_in) weights and half the inputs on, z has std ~ sqrt(3/2)
    key = jax.random.key(1)
    x = np.zeros(1000)
    x[:500] = 1.0
    zs = []
    for k in jax.random.split(key, 200):
        w, b = init.default(k, 1, 1000)
        zs.append(float((w @ x + b)[0]))
    np.testing.assert_allclose(np.std(zs), np.sqrt(1.5), rtol=0.15)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="init: expected one of"):
        init.get("glorot")


@pytest.mark.parametrize("name", ["large", "default"])
def test_bias_std_is_one(name):
    """Biases N(0, 1): 40000 of them pin the std to within 2%."""
    _, b = init.get(name)(jax.random.key(2), 40_000, 3)
    np.testing.assert_allclose(np.std(b), 1.0, rtol=0.02)
    assert abs(float(np.mean(b))) < 0.02
