"""Importable test helpers (conftest's fixtures are not importable by name)."""

from conftest import assert_trees_close  # noqa: F401


def initial_params(config):
    """The MLP parameters ``experiment.run(config)`` starts from (its init key is the first
    split of the seed's key)."""
    import jax

    from jaxnn import experiment

    network = experiment.prepare(config).network
    return network.init(jax.random.split(jax.random.PRNGKey(config.seed))[0])
