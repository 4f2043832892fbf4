"""Data sets: the embedded MNIST (offline), tensorflow-datasets by name, and the book's
expanded training set.

Images are uint8 NHWC-ready arrays of shape (N, H, W) or (N, H, W, C); labels are int32 (N,).
"""

from jaxnn.data.mnist import MNIST_SHA256, load_mnist
from jaxnn.data.sets import (
    BUILTIN,
    MAX_VALIDATION,
    DataSet,
    Split,
    builtin_name,
    check_source,
    default_validation_size,
    expand,
    load,
    one_hot,
    to_inputs,
)

__all__ = [
    "BUILTIN",
    "MAX_VALIDATION",
    "MNIST_SHA256",
    "DataSet",
    "Split",
    "builtin_name",
    "check_source",
    "default_validation_size",
    "expand",
    "load",
    "load_mnist",
    "one_hot",
    "to_inputs",
]
