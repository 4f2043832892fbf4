"""A run's data, prepared once: the data set loaded, checked against the network it trains and
put on the device, and the network built for it (:func:`prepare`; re-exported by
:mod:`jaxnn.experiment`, where it is usually called)."""

from __future__ import annotations

import math
from typing import NamedTuple

from jaxnn import data, layers, mlp, train
from jaxnn.config import MAXOUT_PIECES, TrainConfig


class Prepared(NamedTuple):
    """Data on the device and the model built for it."""

    network: mlp.Network | layers.CNNSpec  # the MLP, or the CNN's spec (config.model)
    train: train.DeviceData
    validation: train.DeviceData | None
    test: train.DeviceData
    num_classes: int


def prepare(config: TrainConfig) -> Prepared:
    """Load the data set, check it fits the network, and put it on the device."""
    ds = data.load(config.dataset, data_dir=config.data_dir)
    if config.train_size is not None and config.train_size > len(ds.train):
        raise ValueError(f"train_size: expected at most the {len(ds.train)} training examples "
                         f"of {config.dataset}; got {config.train_size}")
    train_split = ds.train if config.train_size is None else ds.train.take(config.train_size)
    validation, test = ds.validation, ds.test
    if config.eval_size is not None and config.eval_size > max(
            len(test), 0 if validation is None else len(validation)):
        held = "" if validation is None else f"{len(validation)} validation and "
        raise ValueError(f"eval_size: expected at most the {held}{len(test)} test examples of "
                         f"{config.dataset}; got {config.eval_size}")
    if config.eval_size is not None:
        validation = None if validation is None else validation.take(
            min(config.eval_size, len(validation)))
        test = test.take(min(config.eval_size, len(test)))
    if config.expanded:
        train_split = type(train_split)(*data.expand(train_split.images, train_split.labels))
    if config.mini_batch_size > len(train_split):
        raise ValueError(
            f"mini_batch_size: expected at most the {len(train_split)} training examples; "
            f"got {config.mini_batch_size}"
        )
    flatten = config.model == "mlp"

    def put(split, arg):
        return None if split is None else train.DeviceData.put(
            data.to_inputs(split.images, flatten=flatten), split.labels, arg=arg,
            num_classes=ds.num_classes)

    if flatten:  # a fully connected network must fit the images and the classes
        n_in = math.prod(ds.image_shape)
        if config.sizes[0] != n_in:
            raise ValueError(
                f"sizes: the first layer must match the {n_in} pixels of a {config.dataset} image "
                f"{ds.image_shape}; got sizes {','.join(map(str, config.sizes))}"
            )
        if config.sizes[-1] != ds.num_classes:
            raise ValueError(
                f"sizes: the last layer must have one unit per class ({ds.num_classes}); "
                f"got sizes {','.join(map(str, config.sizes))}"
            )
    splits = (put(train_split, "train"), put(validation, "validation"), put(test, "test"))
    if not flatten:
        return _prepare_cnn(config, ds, splits)
    return Prepared(_mlp(config), *splits, ds.num_classes)


def _mlp(config: TrainConfig) -> mlp.Network:
    """The fully connected network ``config`` describes (model "mlp")."""
    return mlp.make(config.sizes, activation=config.activation,
                    output_activation=config.output_activation, scheme=config.init,
                    pieces=config.maxout_pieces or MAXOUT_PIECES)


def _prepare_cnn(config, ds, splits) -> Prepared:
    """As :func:`prepare` for a :mod:`jaxnn.cnn` model: NHWC inputs and a CNNSpec as network."""
    from jaxnn import cnn

    shape = data.to_inputs(ds.train.images[:1], flatten=False).shape[1:]
    spec = cnn.architecture(config.model, input_shape=shape, num_classes=ds.num_classes,
                            activation=config.activation, dropout=config.dropout,
                            batch_norm=config.batch_norm)
    return Prepared(spec, *splits, ds.num_classes)
