"""The settings of one training run, :class:`TrainConfig`, checked field by field.

>>> from jaxnn.config import TrainConfig
>>> TrainConfig.from_preset("ch3-ce-30", eta=0.1).eta
0.1
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from jaxnn import _checks, activations, costs, data, optim, presets, train
from jaxnn import init as init_schemes

MAXOUT_PIECES = 2
"""Units per maxout group when ``activation="maxout"`` and ``maxout_pieces`` is None."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. The defaults are the book's chapter-1 network (preset ch1-30).

    ``preset`` is a label: ``TrainConfig(preset="ch3-ce-30")`` keeps chapter 1's settings;
    ``TrainConfig.from_preset(name, **overrides)`` applies a preset's. Fields (default):

    - preset: a name in :data:`jaxnn.presets.PRESETS`, or None for a custom run (None)
    - sizes: layer sizes, input first, MLPs only ((784, 30, 10))
    - activation: hidden-layer activation, :data:`jaxnn.activations.HIDDEN` or maxout (sigmoid)
    - output_activation: sigmoid, softmax or identity (sigmoid)
    - cost: quadratic, cross_entropy or log_likelihood (quadratic); CNNs: log_likelihood with
      softmax
    - init: MLP weights: large = N(0, 1), chapter 1's; default = N(0, 1/n_in), chapter 3's;
      xavier; he (large)
    - eta: learning rate (3.0)
    - epochs: epochs to train (30)
    - mini_batch_size: 1 is online learning, n is full batch (10)
    - l2: the book's lambda, its meaning set by l2_convention (0.0)
    - optimizer: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw (sgd)
    - seed: weights and shuffling, 0 to 2**32 - 1; ensemble members take seed, seed + 1, ... (0)
    - dataset: mnist (embedded; any case) or a prepared tensorflow-datasets name (mnist)
    - train_size: use only the first N training images (None: all)
    - data_dir: tensorflow-datasets data directory (None)
    - grads: auto (jax.grad) or manual (manual_grad.backprop, or cnn_backprop for a CNN)
      (auto)
    - model: mlp (:mod:`jaxnn.mlp`) or a :data:`jaxnn.architectures.ARCHITECTURES` network
      (mlp)
    - schedule: learning-rate schedule, constant, step, cosine or one-cycle (constant)
    - l1: L1 strength, cost + (l1 / n) sum |w|; grads auto only (0.0)
    - l2_convention: chapter3: (lambda / 2n) sum w^2; chapter6: 0.5 lambda sum w^2 /
      (mini-batches per epoch) (chapter3)
    - dropout: rate in [0, 1) of every dropout layer of a CNN (one is added before each dense
      layer of a CNN with none) (None: the model's own)
    - patience: stop after N epochs without a better validation accuracy (None: never)
    - clip_norm: clip the gradient to this global norm (None: no clipping)
    - batch_norm: batch normalization after every conv and hidden dense layer, CNNs (False)
    - expanded: the book's expanded training set, 5x: shifted by one pixel (False)
    - maxout_pieces: units per maxout group, activation maxout only (None: 2)
    - eval_size: evaluate on the first N validation/test images (None: all)
    - ensemble: train N networks and take their majority vote (1)
    - loop: scan (one compiled call per epoch), host (one per mini-batch) or auto (host for
      convolutions on the CPU, scan otherwise) (auto)
    - monitor_training: evaluate the training set's cost and accuracy after every epoch, as
      network2.py's monitor_training_* flags do; the chapter-6 presets do not, as network3.py
      does not (True)
    """

    preset: str | None = None
    sizes: tuple[int, ...] = (784, 30, 10)
    activation: str = "sigmoid"
    output_activation: str = "sigmoid"
    cost: str = "quadratic"
    init: str = "large"
    eta: float = 3.0
    epochs: int = 30
    mini_batch_size: int = 10
    l2: float = 0.0
    optimizer: str = "sgd"
    seed: int = 0
    dataset: str = "mnist"
    train_size: int | None = None
    data_dir: str | None = None
    grads: str = "auto"
    # Techniques (issue 4). model "mlp" is jaxnn.mlp; any other name is a jaxnn.cnn architecture.
    model: str = "mlp"
    schedule: str = "constant"
    l1: float = 0.0
    l2_convention: str = "chapter3"
    dropout: float | None = None
    patience: int | None = None
    clip_norm: float | None = None
    batch_norm: bool = False
    expanded: bool = False
    maxout_pieces: int | None = None  # units per maxout group; activation maxout only (2)
    eval_size: int | None = None
    ensemble: int = 1
    loop: str = "auto"  # jaxnn.train.LOOPS, or auto: host for convolutions on the CPU, else scan
    monitor_training: bool = True

    @classmethod
    def from_preset(cls, name: str | None = None, **overrides) -> TrainConfig:
        """The preset's settings (``ch1-30`` when ``name`` is None), then ``overrides``
        (entries that are None are ignored, so argparse namespaces pass straight in)."""
        name = name or presets.DEFAULT
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise TypeError(f"TrainConfig: unknown settings {sorted(unknown)}")
        values = {**presets.get(name), "preset": name}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("model", "mlp") != "mlp":
            for arg in _MLP_ONLY:  # an explicit one is refused; an MLP preset's is dropped
                if overrides.get(arg) is not None:
                    _refuse_mlp_only(arg, values["model"], overrides[arg])
                values.pop(arg, None)
        return cls(**values).validated()

    def validated(self) -> TrainConfig:
        """Self, after checking every field; ValueError/TypeError naming the bad one. NumPy
        scalars (``np.int64(3)``, ``np.float32(0.5)``, ``np.True_``) become Python ints, floats
        and bools, which config.json can hold."""
        numpy_scalars = {f.name: getattr(self, f.name).item() for f in dataclasses.fields(self)
                         if isinstance(getattr(self, f.name), np.integer | np.floating | np.bool_)}
        if numpy_scalars:
            return dataclasses.replace(self, **numpy_scalars).validated()
        if self.preset is not None:
            _checks.choice("preset", self.preset, presets.PRESETS)
        for f in dataclasses.fields(self):
            if f.type in ("bool", bool) and not isinstance(getattr(self, f.name), bool):
                value = getattr(self, f.name)
                raise TypeError(f"{f.name}: expected True or False; got "
                                f"{type(value).__name__} {value!r}")
        sizes = _checks.sizes("sizes", self.sizes)
        _checks.choice("activation", self.activation, (*activations.HIDDEN, "maxout"))
        costs.check_pair(self.cost, self.output_activation)
        init_schemes.get(self.init)
        _checks.positive("eta", self.eta)
        for name in ("eta", "l2", "l1"):  # the network trains in float32: inf at the 1st step
            _checks.at_most_float32(name, getattr(self, name))
        _checks.positive("epochs", self.epochs, integer=True)
        _checks.positive("mini_batch_size", self.mini_batch_size, integer=True)
        _checks.non_negative("l2", self.l2)
        _checks.choice("optimizer", self.optimizer, optim.OPTIMIZERS)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"seed: expected an integer; got {self.seed!r}")
        if not 0 <= self.seed < 2**32:  # jax.random.key keeps the low 32 bits
            raise ValueError(f"seed: expected an integer in [0, 2**32); got {self.seed}")
        if isinstance(self.ensemble, int) and self.seed + self.ensemble > 2**32:
            raise ValueError(f"seed: expected at most {2**32 - self.ensemble} with ensemble "
                             f"{self.ensemble} (members take seeds seed, seed + 1, ...); got "
                             f"{self.seed}")
        if self.train_size is not None:
            _checks.positive("train_size", self.train_size, integer=True)
        _checks.choice("grads", self.grads, ("auto", "manual"))
        data.check_source(self.dataset, self.data_dir)
        self._validate_techniques()
        # 'MNIST' is the embedded 'mnist' (data.builtin_name); config.json records 'mnist'
        return dataclasses.replace(self, sizes=sizes, dataset=data.builtin_name(self.dataset))

    def _validate_techniques(self) -> None:
        from jaxnn import architectures, layers

        _checks.choice("model", self.model, ("mlp", *architectures.ARCHITECTURES))
        if self.model != "mlp":
            if tuple(self.sizes) != _DEFAULTS["sizes"]:  # a list from JSON is the same sizes
                _refuse_mlp_only("sizes", self.model, self.sizes)
            if self.init != _DEFAULTS["init"]:
                _refuse_mlp_only("init", self.model, self.init)
        _checks.choice("schedule", self.schedule, optim.SCHEDULES)
        _checks.non_negative("l1", self.l1)
        _checks.choice("l2_convention", self.l2_convention, L2_CONVENTIONS)
        if self.dropout is not None:
            _checks.in_unit_interval("dropout", self.dropout)
            if self.model == "mlp" and self.dropout > 0:
                raise ValueError("dropout: needs a jaxnn.cnn model (e.g. --model fc100); "
                                 f"got model 'mlp' with dropout {self.dropout}")
        if self.patience is not None:
            _checks.positive("patience", self.patience, integer=True)
        if self.clip_norm is not None:
            _checks.positive("clip_norm", self.clip_norm)
        if self.batch_norm and self.model == "mlp":
            raise ValueError("batch_norm: needs a jaxnn.cnn model (e.g. --model conv2); got 'mlp'")
        if self.maxout_pieces is not None:
            _checks.positive("maxout_pieces", self.maxout_pieces, integer=True)
            if self.activation != "maxout" or self.model != "mlp":
                raise ValueError(f"maxout_pieces: expected only with activation 'maxout' (an "
                                 f"MLP); got activation {self.activation!r}, model "
                                 f"{self.model!r}")
        if self.eval_size is not None:
            _checks.positive("eval_size", self.eval_size, integer=True)
        _checks.positive("ensemble", self.ensemble, integer=True)
        _checks.choice("loop", self.loop, ("auto", *train.LOOPS))
        if self.model != "mlp":
            if self.cost != "log_likelihood" or self.output_activation != "softmax":
                raise ValueError(f"cost: model {self.model!r} has a softmax output with the "
                                 f"log-likelihood cost; got {self.cost}/{self.output_activation}")
            layers.check_activation(self.activation, f"model {self.model!r}")
        if self.l1 and self.grads == "manual":
            raise ValueError("l1: only with --grads auto (the L1 term is differentiated by jax)")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> TrainConfig:
        """The configuration a run directory's ``config.json`` holds (not validated; keys that
        are not settings are ignored). Files written before ``maxout_pieces`` defaulted to None
        hold 2 for every activation; that 2 is dropped where it meant nothing. So are the sizes
        and init of a CNN, which older files took from an MLP preset (``--preset ch1-100
        --model conv1``)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in saved.items() if k in fields}
        if values.get("maxout_pieces") == MAXOUT_PIECES and values.get("activation") != "maxout":
            values["maxout_pieces"] = None
        if values.get("model", "mlp") != "mlp":
            for arg in _MLP_ONLY:
                values.pop(arg, None)
        if isinstance(values.get("sizes"), list):
            values["sizes"] = tuple(values["sizes"])
        return cls(**values)


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
_MLP_ONLY = {"sizes": "has its own layers", "init": "initialises its own layers"}


def _refuse_mlp_only(arg: str, model: str, value: Any) -> None:
    """ValueError for ``sizes`` or ``init`` given to a CNN ``model``, which would ignore it."""
    shown = value if arg == "sizes" else repr(value)
    raise ValueError(f"{arg}: expected only with model 'mlp' (model {model!r} "
                     f"{_MLP_ONLY[arg]}); got {shown}")


L2_CONVENTIONS = ("chapter3", "chapter6")
"""chapter3: cost + (lambda / 2n) sum w^2; chapter6 (network3): cost + 0.5 lambda sum w^2 /
(number of mini-batches per epoch)."""


def l2_denominator(config: TrainConfig, n_train: int) -> int:
    """The n in the decay lambda / n: the training-set size (chapter 3) or the number of
    mini-batches per epoch, n // m (chapter 6)."""
    if config.l2_convention == "chapter3":
        return n_train
    return max(1, n_train // config.mini_batch_size)
