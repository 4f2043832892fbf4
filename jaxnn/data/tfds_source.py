"""Data sets from tensorflow-datasets, read offline into the same shape as MNIST.

tensorflow-datasets is imported here only, when a data set other than the embedded MNIST is
asked for: it is slow to import and may be absent (the GPU machine has none).

Offline use: the data set must already be prepared in ``data_dir`` in tfds's ``array_record``
format, which tfds reads without TensorFlow. Prepare it once on a machine with a network:

    python -c "import tensorflow_datasets as tfds; \\
        tfds.builder('fashion_mnist', data_dir='DIR', file_format='array_record') \\
            .download_and_prepare()"

Without a prepared copy the loader fails at once with a message saying so, instead of letting
tfds retry a download for minutes.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from jaxnn.data.sets import DataSet, Split


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ImportError(
            "dataset: data sets other than 'mnist' need tensorflow-datasets "
            "(pip install tensorflow-datasets)"
        ) from e
    return tfds


def _split_arrays(source) -> Split:
    n = len(source)
    if n == 0:
        raise ValueError("dataset: the split is empty")
    try:
        records = source.__getitems__(list(range(n)))  # one batched read
    except (AttributeError, TypeError):  # older sources, and tfds's mock data
        records = [source[i] for i in range(n)]
    images = np.stack([np.asarray(r["image"]) for r in records])
    labels = np.asarray([r["label"] for r in records], np.int32)
    if images.dtype != np.uint8:
        raise ValueError(f"dataset: expected uint8 images; got {images.dtype}")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    return Split(images, labels)


def load_tfds(name: str, *, data_dir: str | Path | None = None) -> DataSet:
    """Train and test splits of tfds data set ``name`` as uint8 images and int32 labels.

    A prepared data set without a 'train' or a 'test' split (eurosat, tf_flowers) is a
    ValueError that names the splits it has."""
    tfds = _import_tfds()
    try:
        builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
    except Exception as e:  # tfds raises its own DatasetNotFoundError and friends
        raise ValueError(_not_found(tfds, name, e)) from None
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise ValueError(f"dataset: {name!r} has no 'image' and 'label' features")
    with _quiet_absl():  # each look at an unprepared folder logs a warning; the error says it
        prepared = builder.is_prepared()
    if prepared:  # its splits are known: say which are there before reading
        _check_splits(name, list(builder.info.splits))
    try:
        with contextlib.nullcontext() if prepared else _quiet_absl():
            train = _split_arrays(builder.as_data_source(split="train"))
            test = _split_arrays(builder.as_data_source(split="test"))
    except Exception as e:
        if not prepared:
            where = data_dir or tfds.core.constants.DATA_DIR
            raise ValueError(
                f"dataset: {name!r} is not prepared in {where} and this machine may be offline; "
                "prepare it once where there is a network (see jaxnn/data/tfds_source.py) and "
                "pass its directory as data_dir (--data-dir on the command line)"
            ) from None
        raise ValueError(_unreadable(name, builder, e)) from None
    return DataSet(name, train, test, None, int(features["label"].num_classes))


@contextlib.contextmanager
def _quiet_absl():
    """tfds's absl warnings at ERROR level only, for the calls inside (then as before)."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


def _unreadable(name: str, builder, error: Exception) -> str:
    """One line for a prepared data set whose splits could not be read. jaxnn reads them
    without TensorFlow, which only tfds's ``array_record`` files allow: a set prepared in
    another format is told to prepare it again in that one; any other failure is named."""
    fmt = builder.info.file_format
    fmt = getattr(fmt, "value", fmt)  # a tfds FileFormat, or None for a very old set
    what = f"{type(error).__name__}: {error}"
    if fmt != "array_record":
        return (f"dataset: could not read {name!r} without TensorFlow ({what}); it is prepared "
                f"in {fmt or 'an unknown format'}: prepare it again with "
                "file_format='array_record'")
    return f"dataset: could not read the prepared {name!r} ({what})"


def _check_splits(name: str, splits: list[str]) -> None:
    """ValueError unless a prepared data set has the 'train' and 'test' splits jaxnn reads
    (its validation images are held out of 'train'; no test split is made up)."""
    missing = [s for s in ("train", "test") if s not in splits]
    if missing:
        have = ", ".join(repr(s) for s in splits) or "none"
        lack = " or ".join(repr(s) for s in missing)
        raise ValueError(
            f"dataset: {name!r} has no {lack} split (its splits: {have}); jaxnn needs a "
            "'train' and a 'test' split, and holds its validation images out of 'train'"
        )


def _not_found(tfds, name: str, error: Exception) -> str:
    """One line for a name tfds does not know (its own message lists its whole catalogue):
    the name, the built-in data sets and the closest known name (difflib)."""
    import difflib

    from jaxnn.data.sets import BUILTIN

    builtin = ", ".join(repr(b) for b in BUILTIN)
    try:
        known = [*BUILTIN, *tfds.list_builders(with_community_datasets=False)]
    except Exception:  # an older tfds: suggest among the built-in names only
        known = list(BUILTIN)
    base, _, config = name.partition("/")  # 'emnist/letters': a data set and its config
    close = difflib.get_close_matches(base.lower(), known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close and close[0] != base else ""
    if close and close[0] == base:  # a known data set that failed for another reason
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"dataset: tensorflow-datasets cannot open {name!r} ({first[:200]})"
    return (f"dataset: {name!r} is not a tensorflow-datasets data set (built in: {builtin}; "
            f"other names: tfds.list_builders()){hint}")
