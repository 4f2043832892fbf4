"""MNIST, embedded in the package so everything runs offline.

``mnist.npz`` holds the original 60,000 training and 10,000 test images (uint8, 28x28) and
their labels, converted exactly from the book's ``mnist.pkl.gz`` by
``scripts/make_mnist_npz.py``. Its sha256 is checked on every load.

MNIST is by Yann LeCun and Corinna Cortes (with Christopher Burges), distributed under
CC BY-SA 3.0.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from jaxnn.data.sets import DataSet, Split

MNIST_PATH = Path(__file__).with_name("mnist.npz")
MNIST_SHA256 = "39b9b1ffaa0ba4d8995a616551f0966941fe02a3fe79ba4a9db7373db16d53ad"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read(path: Path, sha256: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"MNIST file missing: {path}; reinstall jaxnn")
    digest = _sha256(path)
    if digest != sha256:
        raise ValueError(
            f"{path}: checksum mismatch (expected sha256 {sha256}, got {digest}); the file is "
            "corrupted: restore it with `git checkout jaxnn/data/mnist.npz` or reinstall jaxnn"
        )
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@functools.lru_cache(maxsize=2)
def _cached(path: str, sha256: str) -> DataSet:
    arrays = _read(Path(path), sha256)
    for key in ("train_labels", "test_labels"):
        arrays[key] = arrays[key].astype(np.int32)
    for a in arrays.values():  # shared by every caller: nobody may change them in place
        a.setflags(write=False)
    return DataSet(
        "mnist",
        Split(arrays["train_images"], arrays["train_labels"]),
        Split(arrays["test_images"], arrays["test_labels"]),
    )


def load_mnist(split: str = "original", *, path: str | Path = MNIST_PATH,
               sha256: str = MNIST_SHA256) -> DataSet:
    """The embedded MNIST.

    ``split="original"``: 60,000 training and 10,000 test images.
    ``split="book"``: the book's 50,000 training images, the last 10,000 of the original
    training set as validation, and the 10,000 test images.
    Arrays are read-only and shared between calls (the file is read and verified once).
    """
    if split not in ("original", "book"):
        raise ValueError(f"split: expected 'original' or 'book'; got {split!r}")
    ds = _cached(str(path), sha256)
    return ds.with_validation(10_000) if split == "book" else ds
