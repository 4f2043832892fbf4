"""jaxnn: Nielsen's *Neural Networks and Deep Learning* in JAX.

Submodules (imported lazily on first use as ``jaxnn.<name>``, so ``import jaxnn`` stays fast):
every name in ``__all__``, from activations, costs, init, perceptron and mlp to cnn, parallel
and speedrun. (``jaxnn.cli``, the command line, is imported by its entry point.)
"""

import importlib

__version__ = "0.1.0"

__all__ = [
    "activations",
    "architectures",
    "checkpoint",
    "cnn",
    "config",
    "costs",
    "data",
    "ensemble",
    "experiment",
    "guard",
    "init",
    "layers",
    "metrics",
    "mlp",
    "optim",
    "parallel",
    "perceptron",
    "presets",
    "report",
    "reproduce",
    "speedrun",
    "train",
]


def __dir__():
    """Every submodule, imported or not, so that tab completion in a notebook offers them."""
    return sorted({*globals(), *__all__})


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"jaxnn.{name}")
    raise AttributeError(f"module 'jaxnn' has no attribute {name!r}")
