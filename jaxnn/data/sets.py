"""The data-set containers, loading by name, and the transforms every model shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxnn import _checks


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 (N, H, W[, C]) and ``labels`` int32 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise ValueError(
                f"labels: expected one label per image ({len(self.images)}); "
                f"got {len(self.labels)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, n: int) -> Split:
        """The first ``n`` examples (the book's 1,000-image overfitting runs use this)."""
        _checks.positive("n", n, integer=True)
        if n > len(self):
            raise ValueError(f"n: expected at most {len(self)} examples; got {n}")
        return Split(self.images[:n], self.labels[:n])


MAX_VALIDATION = 10_000
"""The most training examples held out as validation by default (the book's 10,000)."""


def default_validation_size(num_train: int) -> int:
    """The validation examples held out by default from ``num_train`` training examples:
    a fifth of them (rounded down), at most :data:`MAX_VALIDATION` (10,000); 0 for fewer than
    5. MNIST's 60,000 and every set of 50,000 or more (the MNIST-like sets, cifar10) give the
    book's 10,000; beans' 1,034 give 206."""
    return min(MAX_VALIDATION, num_train // 5)


def _check_validation_size(size, *, none_allowed: bool = True) -> None:
    """ValueError (or TypeError) unless ``size`` is ``"auto"`` or a positive integer (the
    message lists None too where the caller takes it, as :func:`load` does)."""
    if isinstance(size, str):
        if size != "auto":
            allowed = "a positive integer, 'auto' or None" if none_allowed else \
                "a positive integer or 'auto'"
            raise ValueError(f"validation_size: expected {allowed}; got {size!r}")
    else:
        _checks.positive("validation_size", size, integer=True)


@dataclass(frozen=True)
class DataSet:
    """A named data set: ``train``, ``test`` and optionally ``validation`` splits."""

    name: str
    train: Split
    test: Split
    validation: Split | None = None
    num_classes: int = 10

    def with_validation(self, size: int | str = "auto") -> DataSet:
        """Hold out the *last* ``size`` training examples as validation (the book's split).

        ``size="auto"`` holds out :func:`default_validation_size` of the training split
        (10,000 of MNIST's 60,000, as the book does). A data set that already has a validation
        split is returned as it is for ``"auto"`` or that split's own size; any other ``size``
        is a ValueError, never silently ignored: hold out from the original split instead
        (``load(name, validation_size=None).with_validation(size)``).
        """
        if self.validation is not None:
            if size == "auto" or (not isinstance(size, bool) and size == len(self.validation)):
                return self
            raise ValueError(
                f"validation_size: {self.name!r} already holds out {len(self.validation)} "
                f"validation examples; got {size!r} (hold out from the original split: "
                f"load({self.name!r}, validation_size=None).with_validation({size!r}))"
            )
        if size == "auto":
            size = default_validation_size(len(self.train))
            if size < 1:
                raise ValueError(
                    f"dataset: {self.name!r} has {len(self.train)} training images; jaxnn "
                    f"holds out the last fifth of them (at most {MAX_VALIDATION:,}) as "
                    f"validation, so it needs at least 5 (validation_size=None keeps the "
                    f"original split)"
                )
        _check_validation_size(size, none_allowed=False)
        if size >= len(self.train):
            raise ValueError(
                f"validation_size: expected fewer than the {len(self.train)} training "
                f"examples of {self.name!r}; got {size}"
            )
        cut = len(self.train) - size
        return DataSet(
            self.name,
            Split(self.train.images[:cut], self.train.labels[:cut]),
            self.test,
            Split(self.train.images[cut:], self.train.labels[cut:]),
            self.num_classes,
        )

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.train.images.shape[1:])


def to_inputs(images, *, flatten: bool = True, dtype=np.float32) -> np.ndarray:
    """Scale uint8 pixels to [0, 1) as the book does (x / 256).

    ``flatten=True`` gives (N, H*W*C) rows for fully connected networks; otherwise NHWC with a
    channel axis added to grayscale images, for convolutional networks. ``dtype`` is any
    floating dtype-like (``np.float32``, ``np.dtype("float64")``, ``"float32"``, bfloat16).
    """
    dt = _checks.floating_dtype("dtype", dtype)
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise ValueError(f"images: expected shape (N, H, W) or (N, H, W, C); got {images.shape}")
    if images.dtype != np.uint8:
        raise TypeError(f"images: expected uint8 pixels; got dtype {images.dtype}")
    x = images.astype(dt) / dt.type(256.0)
    if flatten:
        return x.reshape(len(x), int(np.prod(x.shape[1:])))  # not -1: N may be 0
    return x if x.ndim == 4 else x[..., None]


def one_hot(labels, num_classes: int = 10, dtype=np.float32) -> np.ndarray:
    """Labels (N,) to one-hot rows (N, num_classes); ValueError for labels out of range."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels: expected a 1-D integer array; got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels: expected values in [0, {num_classes}); "
            f"got range [{labels.min()}, {labels.max()}]"
        )
    return np.eye(num_classes, dtype=dtype)[labels]


def expand(images, labels):
    """The book's expanded training set: every image, then copies shifted one pixel
    up, down, left and right (pixels shifted off the edge are dropped, the gap filled with 0;
    nothing wraps around). Returns 5 N images: [originals, up, down, left, right]."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValueError(
            f"images: expected (N, H, W[, C]) with one label each; "
            f"got {images.shape} and {labels.shape} labels"
        )
    up = np.zeros_like(images)
    up[:, :-1] = images[:, 1:]
    down = np.zeros_like(images)
    down[:, 1:] = images[:, :-1]
    left = np.zeros_like(images)
    left[:, :, :-1] = images[:, :, 1:]
    right = np.zeros_like(images)
    right[:, :, 1:] = images[:, :, :-1]
    return np.concatenate([images, up, down, left, right]), np.tile(labels, 5)


BUILTIN = ("mnist",)
"""The data sets embedded in jaxnn (no tensorflow-datasets, no network)."""


def builtin_name(name: str) -> str:
    """``name`` as a built-in data set's name when it is one in any case (``MNIST`` is
    ``mnist``); otherwise ``name`` unchanged (tensorflow-datasets names are case-sensitive)."""
    if isinstance(name, str) and name.lower() in BUILTIN:
        return name.lower()
    return name


def check_source(name: str, data_dir: str | Path | None = None) -> None:
    """ValueError unless ``name`` is a data-set name and ``data_dir`` fits it (the embedded
    ``mnist`` takes none: a directory would be ignored). Cheap: nothing is read."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset: expected a data-set name such as 'mnist'; got {name!r}")
    if builtin_name(name) == "mnist" and data_dir is not None:
        raise ValueError(f"data_dir: expected only with a tensorflow-datasets data set; "
                         f"'mnist' is the embedded copy; got {str(data_dir)!r}")


def load(
    name: str = "mnist",
    *,
    validation_size: int | str | None = "auto",
    data_dir: str | Path | None = None,
) -> DataSet:
    """A data set by name, with the last ``validation_size`` training images held out
    (``None`` keeps the original train/test split).

    ``validation_size="auto"`` holds out :func:`default_validation_size` images: a fifth of the
    training split, at most 10,000. That is the book's 10,000 for MNIST (60,000 training
    images) and for every set of 50,000 or more (fashion_mnist, kmnist, cifar10); a smaller set
    keeps four fifths for training (beans: 828 of 1,034). A set too small to hold anything out
    is a ValueError that says how many training images it has.

    ``mnist`` is the embedded copy (no network), in any case (``MNIST``). Any other name
    (``fashion_mnist``, ``kmnist``, ``emnist``, ``cifar10``, ...) is read through
    tensorflow-datasets from ``data_dir`` (tfds's default when None); it must already be
    prepared there, because this machine may have no network. See
    :func:`jaxnn.data.tfds_source.load_tfds`.
    """
    check_source(name, data_dir)
    if validation_size is not None:  # before a tfds set is read
        _check_validation_size(validation_size)
    name = builtin_name(name)  # the embedded MNIST in any case: 'MNIST', 'Mnist'
    if name == "mnist":
        from jaxnn.data.mnist import load_mnist

        ds = load_mnist()
    else:
        from jaxnn.data.tfds_source import load_tfds

        ds = load_tfds(name, data_dir=data_dir)
    return ds if validation_size is None else ds.with_validation(validation_size)
