"""Chapter 6's networks, and Flax's MNIST CNN, as :class:`jaxnn.layers.CNNSpec` data by name.

Kept apart from :mod:`jaxnn.cnn`, which re-exports these names, so that the command line and
the configuration can name and check a model without importing Flax: an MLP run, and
``jaxnn --help``, never load it.
"""

from __future__ import annotations

from jaxnn import layers
from jaxnn.layers import CNNSpec, Conv, Dense, Dropout, Flatten, Pool


def _conv_block(features, kernel=5, padding="VALID", pool="max"):
    return (Conv(features, kernel, 1, padding), Pool(pool, 2))


def _fc(*widths, dropout=0.0):
    out = []
    for w in widths:
        if dropout:
            out.append(Dropout(dropout))
        out.append(Dense(w))
    return out


def _book(blocks, widths, dropout=0.0):
    def build(num_classes):
        convs = [layer for f in blocks for layer in _conv_block(f)]
        fcs = _fc(*widths, num_classes, dropout=dropout)
        return (*convs, Flatten(), *fcs)

    return build


ARCHITECTURES = {
    "fc100": _book((), (100,)),
    "conv1": _book((20,), (100,)),
    "conv2": _book((20, 40), (100,)),
    "conv2-fc300": _book((20, 40), (300,)),
    "conv2-fc1000": _book((20, 40), (1000,)),
    "conv2-2fc": _book((20, 40), (100, 100)),
    "conv2-2fc300": _book((20, 40), (300, 300)),
    "conv2-2fc1000": _book((20, 40), (1000, 1000)),
    "conv2-dropout": _book((20, 40), (1000, 1000), dropout=0.5),
    "flax-mnist": lambda n: (*_conv_block(32, 3, "SAME", "avg"), *_conv_block(64, 3, "SAME", "avg"),
                             Flatten(), Dense(256), Dense(n)),
}
"""Chapter 6's networks (valid 5x5 convolutions, 2x2 max-pooling, dropout before each
fully connected layer as network3 does) and Flax's MNIST example (SAME 3x3, average pooling)."""


def has_convolutions(name: str) -> bool:
    """Whether architecture ``name`` (a key of :data:`ARCHITECTURES`) has a convolution."""
    from jaxnn import _checks

    build = _checks.lookup("model", name, ARCHITECTURES)
    return any(isinstance(layer, Conv) for layer in build(10))


def architecture(name: str, *, input_shape, num_classes: int = 10, activation: str = "relu",
                 dropout: float | None = None, batch_norm: bool = False) -> CNNSpec:
    """A :class:`CNNSpec` by ``name`` (a key of :data:`ARCHITECTURES`). ``dropout`` replaces the
    rate of every Dropout layer (or, for an architecture without any, adds one before every
    Dense layer); ``batch_norm`` adds a BatchNorm after every convolution and hidden Dense."""
    from jaxnn import _checks

    build = _checks.lookup("model", name, ARCHITECTURES)
    spec_layers = list(build(num_classes))
    if dropout is not None:
        rate = _checks.in_unit_interval("dropout", dropout)
        if any(isinstance(x, Dropout) for x in spec_layers):
            spec_layers = [Dropout(rate) if isinstance(x, Dropout) else x for x in spec_layers]
        elif rate > 0:
            spec_layers = [y for x in spec_layers
                           for y in ((Dropout(rate), x) if isinstance(x, Dense) else (x,))]
    if batch_norm:
        last = len(spec_layers) - 1
        spec_layers = [y for i, x in enumerate(spec_layers) for y in (
            (x, layers.BatchNorm()) if isinstance(x, Conv) or (isinstance(x, Dense) and i != last)
            else (x,))]
    return CNNSpec(tuple(input_shape), tuple(spec_layers), activation)
