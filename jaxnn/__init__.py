"""jaxnn: Nielsen's *Neural Networks and Deep Learning* in JAX.

Submodules (imported lazily, so ``import jaxnn`` stays fast): activations, costs, init,
perceptron, mlp, data, optim, train, metrics, presets, config, experiment, report (and more:
``__all__``).
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "activations",
    "config",
    "costs",
    "data",
    "experiment",
    "init",
    "metrics",
    "mlp",
    "optim",
    "parallel",
    "perceptron",
    "presets",
    "report",
    "train",
]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"jaxnn.{name}")
    raise AttributeError(f"module 'jaxnn' has no attribute {name!r}")
