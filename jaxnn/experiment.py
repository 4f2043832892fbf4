"""One training run from a configuration: what ``jaxnn train`` and ``jaxnn reproduce`` call.

>>> from jaxnn import experiment
>>> result = experiment.run(experiment.TrainConfig.from_preset("ch1-30", epochs=1))
>>> result.summary["peak_test_accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnn import _checks, activations, costs, data, metrics, mlp, optim, presets, train
from jaxnn import init as init_schemes

MAXOUT_PIECES = 2
"""Units per maxout group when ``activation="maxout"`` and ``maxout_pieces`` is None."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a run. The defaults are the book's chapter-1 network (preset ch1-30)."""

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
        if overrides.get("sizes") is not None and values.get("model", "mlp") != "mlp":
            raise ValueError(f"sizes: expected only with model 'mlp' (model "
                             f"{values['model']!r} has its own layers); got {overrides['sizes']}")
        return cls(**values).validated()

    def validated(self) -> TrainConfig:
        """Self, after checking every field; ValueError/TypeError naming the bad one."""
        sizes = _checks.sizes("sizes", self.sizes)
        _checks.choice("activation", self.activation, (*activations.HIDDEN, "maxout"))
        costs.check_pair(self.cost, self.output_activation)
        init_schemes.get(self.init)
        _checks.positive("eta", self.eta)
        _checks.positive("epochs", self.epochs, integer=True)
        _checks.positive("mini_batch_size", self.mini_batch_size, integer=True)
        _checks.non_negative("l2", self.l2)
        _checks.choice("optimizer", self.optimizer, optim.OPTIMIZERS)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"seed: expected an integer; got {self.seed!r}")
        if self.train_size is not None:
            _checks.positive("train_size", self.train_size, integer=True)
        _checks.choice("grads", self.grads, ("auto", "manual"))
        data.check_source(self.dataset, self.data_dir)
        self._validate_techniques()
        return dataclasses.replace(self, sizes=sizes)

    def _validate_techniques(self) -> None:
        from jaxnn import cnn

        _checks.choice("model", self.model, ("mlp", *cnn.ARCHITECTURES))
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
            if self.grads != "auto":
                raise ValueError(f"grads: only 'auto' for model {self.model!r}; got {self.grads!r}")
            if self.cost != "log_likelihood" or self.output_activation != "softmax":
                raise ValueError(f"cost: model {self.model!r} has a softmax output with the "
                                 f"log-likelihood cost; got {self.cost}/{self.output_activation}")
            if self.activation not in activations.HIDDEN:
                raise ValueError(f"activation: expected one of {sorted(activations.HIDDEN)} for "
                                 f"model {self.model!r}; got {self.activation!r}")
        if self.l1 and self.grads == "manual":
            raise ValueError("l1: only with --grads auto (the L1 term is differentiated by jax)")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> TrainConfig:
        """The configuration a run directory's ``config.json`` holds (not validated; keys that
        are not settings are ignored). Files written before ``maxout_pieces`` defaulted to None
        hold 2 for every activation; that 2 is dropped where it meant nothing."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in saved.items() if k in fields}
        if values.get("maxout_pieces") == MAXOUT_PIECES and values.get("activation") != "maxout":
            values["maxout_pieces"] = None
        if isinstance(values.get("sizes"), list):
            values["sizes"] = tuple(values["sizes"])
        return cls(**values)


L2_CONVENTIONS = ("chapter3", "chapter6")
"""chapter3: cost + (lambda / 2n) sum w^2; chapter6 (network3): cost + 0.5 lambda sum w^2 /
(number of mini-batches per epoch)."""


def l2_denominator(config: TrainConfig, n_train: int) -> int:
    """The n in the decay lambda / n: the training-set size (chapter 3) or the number of
    mini-batches per epoch, n // m (chapter 6)."""
    if config.l2_convention == "chapter3":
        return n_train
    return max(1, n_train // config.mini_batch_size)


class Prepared(NamedTuple):
    """Data on the device and the model built for it."""

    network: mlp.Network
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
        n_in = int(jnp.prod(jnp.asarray(ds.image_shape)))
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
    network = mlp.make(config.sizes, activation=config.activation,
                       output_activation=config.output_activation, scheme=config.init,
                       pieces=config.maxout_pieces or MAXOUT_PIECES)
    return Prepared(network, *splits, ds.num_classes)


def _prepare_cnn(config, ds, splits) -> Prepared:
    """As :func:`prepare` for a :mod:`jaxnn.cnn` model: NHWC inputs and a CNNSpec as network."""
    from jaxnn import cnn

    shape = data.to_inputs(ds.train.images[:1], flatten=False).shape[1:]
    spec = cnn.architecture(config.model, input_shape=shape, num_classes=ds.num_classes,
                            activation=config.activation, dropout=config.dropout,
                            batch_norm=config.batch_norm)
    return Prepared(spec, *splits, ds.num_classes)


def epoch_loop(config: TrainConfig, backend: str | None = None) -> str:
    """The config's :data:`jaxnn.train.LOOPS` choice; "auto" is "host" for a network with
    convolutions on the CPU (where their gradients run slowly inside a compiled loop) and "scan"
    otherwise, fully connected Flax models (``fc100``) included.
    ``backend`` is the platform that trains (default: JAX's default backend)."""
    if config.loop != "auto":
        return config.loop
    convolutional = False
    if config.model != "mlp":
        from jaxnn import cnn

        convolutional = cnn.has_convolutions(config.model)
    return train.auto_loop(backend or jax.default_backend(), convolutional=convolutional)


def _platform(split: train.DeviceData) -> str:
    """The platform of the device that holds ``split`` (it may differ from JAX's default
    backend under ``jax.default_device``)."""
    return next(iter(split.x.devices())).platform


def autodiff_grad_fn(network: mlp.Network, cost: str, *, l1=None):
    """``jax.grad`` of the mini-batch-averaged cost (L2 is applied by the optimizer);
    ``l1(params)``, when given, is added to the cost: C = C_0 + (lambda_1 / n) sum |w|."""
    cost_fn = costs.from_logits(cost, network.output_activation)
    if l1 is None:
        return jax.grad(lambda params, x, y: cost_fn(network.logits(params, x), y))
    return jax.grad(lambda params, x, y: cost_fn(network.logits(params, x), y) + l1(params))


def make_optimizer(config: TrainConfig, n_train: int):
    """The config's optax optimizer: learning-rate schedule over all the steps, L2 weight decay
    in the config's convention, gradient clipping."""
    steps = config.epochs * -(-n_train // config.mini_batch_size)
    eta = config.eta if config.schedule == "constant" else optim.schedule(
        config.schedule, config.eta, steps)
    return optim.make(config.optimizer, eta, l2=config.l2,
                      n_train=l2_denominator(config, n_train), clip_norm=config.clip_norm)


def _cnn_training(config, prepared, optimizer, init_key, train_key, l1, *, on_nan=None,
                  batch_sharding=None):
    """State, epoch and evaluation for a :mod:`jaxnn.cnn` model: split once, pure jit step
    (its mini-batches split as ``batch_sharding`` says, see :mod:`jaxnn.parallel`)."""
    from jaxnn import cnn

    model = cnn.make(prepared.network, init_key)
    graphdef, params, rest = cnn.split(model)
    cost_fn = costs.from_logits(config.cost, config.output_activation)
    grad_fn = cnn.make_grad_fn(graphdef, cost_fn, penalty=l1)
    state = train.TrainState(params, optimizer.init(params), train_key, 0, rest)
    epoch_fn = train.make_epoch(grad_fn, optimizer, mini_batch_size=config.mini_batch_size,
                                n_train=len(prepared.train), num_classes=prepared.num_classes,
                                stateful=True, on_nan=on_nan, batch_sharding=batch_sharding,
                                loop=epoch_loop(config, _platform(prepared.train)))
    evaluate = metrics.make_evaluate(cnn.make_logits_fn(graphdef), cost_fn,
                                     num_classes=prepared.num_classes, chunk=2000)
    return state, epoch_fn, evaluate


class EarlyStopping:
    """A training callback: stop when validation accuracy has not improved on its best for
    ``patience`` epochs (the book's "no improvement in n epochs"). ``stopped_epoch`` records
    the epoch at which it stopped."""

    def __init__(self, patience: int, metric: str = "validation_accuracy"):
        self.patience = _checks.positive("patience", patience, integer=True)
        self.metric = metric
        self.best = -float("inf")
        self.since_best = 0
        self.stopped_epoch: int | None = None

    def __call__(self, record: dict, state=None) -> bool:
        if self.metric not in record:
            raise ValueError(f"patience: early stopping needs {self.metric!r} in each epoch's "
                             "record (a validation set)")
        if record[self.metric] > self.best:
            self.best, self.since_best = record[self.metric], 0
            return False
        self.since_best += 1
        if self.since_best >= self.patience:
            self.stopped_epoch = record["epoch"]
            return True
        return False


class Result(NamedTuple):
    config: TrainConfig
    state: train.TrainState
    history: list[dict]
    summary: dict


def run(
    config: TrainConfig,
    *,
    grad_fn=None,
    callbacks: Sequence[train.Callback] = (),
    progress: bool = True,
    resume=None,
    on_nan: str | None = "stop",
    devices: int | str = 1,
) -> Result:
    """Train ``config``'s network; ``grad_fn`` replaces ``jax.grad`` of the cost (for
    ``--grads manual`` the command line passes ``manual_grad.backprop``).

    ``resume(fresh_state) -> (state, history)`` starts from a saved state instead of the
    seed's initial one (``fresh_state`` is the template: same network and optimizer), e.g.
    ``lambda s: jaxnn.checkpoint.restore_latest(run_dir, s)[:2]``. ``on_nan`` ("stop", "skip"
    or None) is the divergence guard of :func:`jaxnn.train.make_epoch`. ``devices`` > 1 (or
    ``"all"``) trains data-parallel over that many devices (:mod:`jaxnn.parallel`)."""
    config = config.validated()
    if config.ensemble > 1:
        from jaxnn import ensemble

        if resume is not None:  # a saved state is one network's
            raise ValueError(f"resume: expected a run of one network; got an ensemble of "
                             f"{config.ensemble} (ensembles are not checkpointed)")
        return ensemble.run(config, callbacks=callbacks, progress=progress, devices=devices)
    mesh = batch_sharding = None
    if devices != 1:
        from jaxnn import parallel

        mesh = parallel.make_mesh(devices)
        parallel.check_divisible("mini_batch_size", config.mini_batch_size, mesh)
        batch_sharding = parallel.batch_sharding(mesh)  # every full mini-batch split
    prepared = prepare(config)
    if mesh is not None:
        prepared = parallel.place(prepared, mesh)
    network = prepared.network
    n = len(prepared.train)
    callbacks = list(callbacks)
    stopper = None if config.patience is None else EarlyStopping(config.patience)
    callbacks += [stopper] if stopper is not None else []
    optimizer = make_optimizer(config, n)
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key = jax.random.split(key)
    l2_n = l2_denominator(config, n)
    penalty = functools.partial(costs.l2_penalty, scale=config.l2 / l2_n) if config.l2 else None
    l1 = functools.partial(costs.l1_penalty, scale=config.l1 / n) if config.l1 else None
    if l1 is not None:
        penalty = l1 if penalty is None else (lambda p, a=penalty, b=l1: a(p) + b(p))
    if config.model != "mlp":
        state, epoch_fn, evaluate = _cnn_training(config, prepared, optimizer, init_key,
                                                  train_key, l1, on_nan=on_nan,
                                                  batch_sharding=batch_sharding)
    else:
        if grad_fn is None:
            grad_fn = autodiff_grad_fn(network, config.cost, l1=l1)
        params = network.init(init_key)
        state = train.TrainState(params, optimizer.init(params), train_key, 0)
        epoch_fn = train.make_epoch(grad_fn, optimizer, mini_batch_size=config.mini_batch_size,
                                    n_train=n, num_classes=prepared.num_classes, on_nan=on_nan,
                                    batch_sharding=batch_sharding,
                                    loop=epoch_loop(config, _platform(prepared.train)))
        cost_fn = costs.from_logits(config.cost, network.output_activation)
        evaluate = metrics.make_evaluate(network.logits, cost_fn, num_classes=prepared.num_classes)
    history = None
    if resume is not None:
        state, history = resume(state)
    if mesh is not None:
        state = parallel.replicate_state(state, mesh)
    state, history = train.fit(
        state, epoch_fn=epoch_fn, evaluate=evaluate, train=prepared.train,
        validation=prepared.validation, test=prepared.test, epochs=config.epochs,
        penalty=penalty, callbacks=callbacks, progress=progress, history=history,
        eta=config.eta,
    )
    summary = {"preset": config.preset, **metrics.summarize(history)}
    if stopper is not None and stopper.stopped_epoch is not None:
        summary["early_stopped_after_epoch"] = stopper.stopped_epoch
    return Result(config, state, history, summary)
