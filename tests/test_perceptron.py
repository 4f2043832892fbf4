import itertools

import jax
import numpy as np
import pytest

from jaxnn import perceptron as pc

X1, X2 = pc.INPUTS[:, 0], pc.INPUTS[:, 1]


@pytest.mark.parametrize(
    "gate, table",
    [(pc.NAND, [1, 1, 1, 0]), (pc.AND, [0, 0, 0, 1]), (pc.OR, [0, 1, 1, 1])],
)
def test_truth_tables(gate, table):
    np.testing.assert_array_equal(pc.gate(gate)(X1, X2), table)


def test_not():
    np.testing.assert_array_equal(pc.fire(pc.NOT, np.array([[0.0], [1.0]])), [1, 0])


def test_xor_from_nand_and_two_layers():
    for xor in (pc.xor_from_nand, pc.xor_two_layer):
        np.testing.assert_array_equal(xor(X1, X2), [0, 1, 1, 0])


def test_no_single_perceptron_computes_xor():
    """pc.fire over a grid of weights and biases computes 14 of the 16 two-input truth tables
    (every linearly separable one), never XOR or its complement XNOR."""
    grid = np.linspace(-3, 3, 25)
    wwb = np.array(list(itertools.product(grid, grid, grid)))  # rows (w1, w2, b)
    outs = jax.vmap(lambda wi, bi: pc.fire(pc.Perceptron(wi, bi), pc.INPUTS))(wwb[:, :2],
                                                                              wwb[:, 2])
    tables = {tuple(int(v) for v in row) for row in np.asarray(outs)}
    xor, xnor = (0, 1, 1, 0), (1, 0, 0, 1)
    assert xor not in tables and xnor not in tables
    assert tables == set(itertools.product((0, 1), repeat=4)) - {xor, xnor}


def test_learning_rule_converges_on_and_or_but_not_xor():
    for table in ([0, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 0]):
        p, converged = pc.train(pc.INPUTS, table, epochs=100)
        assert converged
        np.testing.assert_array_equal(pc.fire(p, pc.INPUTS), table)
    _, converged = pc.train(pc.INPUTS, [0, 1, 1, 0], epochs=1000)
    assert not converged


def test_learning_rule_takes_bits_and_booleans():
    """Integer inputs and boolean labels are the same problem as float ones."""
    x = np.asarray(pc.INPUTS).astype(np.int64)
    p, converged = pc.train(x, np.array([False, False, False, True]), epochs=100)
    assert converged
    np.testing.assert_array_equal(pc.fire(p, pc.INPUTS), [0, 0, 0, 1])


@pytest.mark.parametrize("labels", [[0, 0, 1], [0, 0, 0, 1, 1]])
def test_labels_must_match_the_inputs_one_to_one(labels):
    """zip() used to drop the unmatched rows, so 3 labels for 4 inputs 'converged'."""
    with pytest.raises(ValueError, match=r"^y: expected 4 labels"):
        pc.train(pc.INPUTS, labels)


def test_a_converged_perceptron_classifies_its_data_on_the_boundary():
    """On w . x + b = 0 the learning rule decides as fire() does (the step is 0 there): training
    reports convergence only when every example is classified as its label."""
    for y in ([0], [1]):
        p, converged = pc.train([[0.0, 0.0]], y, epochs=5)
        assert converged and int(pc.fire(p, np.zeros(2))) == y[0]
    _, converged = pc.train([[0.0, 0.0]], [0], epochs=1)
    assert converged


def test_the_seed_sets_the_initial_weights():
    a, _ = pc.train(pc.INPUTS, [0, 0, 0, 1], epochs=1, seed=0)
    b, _ = pc.train(pc.INPUTS, [0, 0, 0, 1], epochs=1, seed=1)
    assert not np.array_equal(a.w, b.w)
