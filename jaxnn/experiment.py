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

from jaxnn import _checks, activations, costs, data, mlp, optim, presets, train
from jaxnn import init as init_schemes


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
        return dataclasses.replace(self, sizes=sizes)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    train_split = ds.train if config.train_size is None else ds.train.take(config.train_size)
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
    if config.mini_batch_size > len(train_split):
        raise ValueError(
            f"mini_batch_size: expected at most the {len(train_split)} training examples; "
            f"got {config.mini_batch_size}"
        )

    def put(split, arg):
        return None if split is None else train.DeviceData.put(
            data.to_inputs(split.images), split.labels, arg=arg, num_classes=ds.num_classes)

    network = mlp.make(config.sizes, activation=config.activation,
                       output_activation=config.output_activation, scheme=config.init)
    return Prepared(network, put(train_split, "train"), put(ds.validation, "validation"),
                    put(ds.test, "test"), ds.num_classes)


def autodiff_grad_fn(network: mlp.Network, cost: str):
    """``jax.grad`` of the mini-batch-averaged cost (L2 is applied by the optimizer)."""
    cost_fn = costs.from_logits(cost, network.output_activation)
    return jax.grad(lambda params, x, y: cost_fn(network.logits(params, x), y))


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
    mesh = None
    if devices != 1:
        from jaxnn import parallel

        mesh = parallel.make_mesh(devices)
        parallel.check_divisible("mini_batch_size", config.mini_batch_size, mesh)
    prepared = prepare(config)
    if mesh is not None:
        prepared = parallel.place(prepared, mesh)
    network = prepared.network
    n = len(prepared.train)
    grad_fn = grad_fn or autodiff_grad_fn(network, config.cost)
    optimizer = optim.make(config.optimizer, config.eta, l2=config.l2, n_train=n)
    key = jax.random.PRNGKey(config.seed)
    init_key, train_key = jax.random.split(key)
    params = network.init(init_key)
    state = train.TrainState(params, optimizer.init(params), train_key, 0)
    history = None
    if resume is not None:
        state, history = resume(state)
    epoch_fn = train.make_epoch(grad_fn, optimizer, mini_batch_size=config.mini_batch_size,
                                n_train=n, num_classes=prepared.num_classes, on_nan=on_nan)
    if mesh is not None:
        state = parallel.replicate_state(state, mesh)
        epoch_fn = parallel.make_epoch(grad_fn, optimizer, mesh=mesh, n_train=n,
                                       mini_batch_size=config.mini_batch_size,
                                       num_classes=prepared.num_classes, on_nan=on_nan)
    cost_fn = costs.from_logits(config.cost, network.output_activation)
    evaluate = train.make_evaluate(network.logits, cost_fn, num_classes=prepared.num_classes)
    penalty = functools.partial(costs.l2_penalty, scale=config.l2 / n) if config.l2 else None
    state, history = train.fit(
        state, epoch_fn=epoch_fn, evaluate=evaluate, train=prepared.train,
        validation=prepared.validation, test=prepared.test, epochs=config.epochs,
        penalty=penalty, callbacks=callbacks, progress=progress, history=history,
        eta=config.eta,
    )
    summary = {"preset": config.preset, **train.summarize(history)}
    return Result(config, state, history, summary)
