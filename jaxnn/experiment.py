"""One training run from a configuration: what ``jaxnn train`` and ``jaxnn reproduce`` call.

>>> from jaxnn import experiment
>>> result = experiment.run(experiment.TrainConfig.from_preset("ch1-30", epochs=1))
>>> result.summary["peak_test_accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax

from jaxnn import costs, layers, metrics, optim, train
from jaxnn._grad_fns import (  # noqa: F401  (re-exported: a run's gradient functions)
    autodiff_grad_fn,
    check_grad_fn,
    check_grad_fn_model,
    manual_cnn_grad_fn,
)
from jaxnn._prepare import Prepared, _mlp, prepare  # noqa: F401  (re-exported)
from jaxnn.config import (  # noqa: F401  (re-exported: experiment.TrainConfig is the usual name)
    L2_CONVENTIONS,
    MAXOUT_PIECES,
    TrainConfig,
    l2_denominator,
)
from jaxnn.train import EarlyStopping  # noqa: F401  (re-exported, as before it moved there)


def epoch_loop(config: TrainConfig, backend: str | None = None) -> str:
    """The config's :data:`jaxnn.train.LOOPS` choice; "auto" is "host" for a network with
    convolutions on the CPU (where their gradients run slowly inside a compiled loop) and "scan"
    otherwise, fully connected Flax models (``fc100``) included.
    ``backend`` is the platform that trains (default: JAX's default backend)."""
    if config.loop != "auto":
        return config.loop
    return train.auto_loop(backend or jax.default_backend(),
                           convolutional=_convolutional(config))


def _convolutional(config: TrainConfig) -> bool:
    if config.model == "mlp":
        return False
    from jaxnn import cnn

    return cnn.has_convolutions(config.model)


def _platform(split: train.DeviceData) -> str:
    """The platform of the device that holds ``split`` (it may differ from JAX's default
    backend under ``jax.default_device``)."""
    return next(iter(split.x.devices())).platform


def make_optimizer(config: TrainConfig, n_train: int):
    """The config's optax optimizer: learning-rate schedule over all the steps, L2 weight decay
    in the config's convention, gradient clipping."""
    steps = config.epochs * -(-n_train // config.mini_batch_size)
    eta = config.eta if config.schedule == "constant" else optim.schedule(
        config.schedule, config.eta, steps)
    return optim.make(config.optimizer, eta, l2=config.l2,
                      n_train=l2_denominator(config, n_train), clip_norm=config.clip_norm)


class Result(NamedTuple):
    """What :func:`run` returns: the ``config`` it ran, the final ``state`` (params, optimizer
    state, key, epochs done), the ``history`` (one record per epoch, see
    :func:`jaxnn.train.fit`) and the ``summary`` (:func:`jaxnn.metrics.summarize`)."""

    config: TrainConfig
    state: train.TrainState
    history: list[dict]
    summary: dict

    def __repr__(self) -> str:
        """The summary, not every weight (``result.state.params`` holds those)."""
        return (f"Result(preset={self.config.preset!r}, epochs={len(self.history)}, "
                f"summary={self.summary!r})")


def manual_grad_fn(config: TrainConfig):
    """``manual_grad.backprop`` bound to ``config``'s MLP as a ``grad_fn(params, x, y) ->
    grads`` for :func:`run` (backprop returns ``(grads, info)``; this drops ``info``): what
    ``config.grads == "manual"`` (``--grads manual``) trains with. manual_grad is imported only
    when asked for."""
    import manual_grad

    def grad_fn(params, x, y):
        grads, _ = manual_grad.backprop(params, x, y, activation=config.activation,
                                        output_activation=config.output_activation,
                                        cost=config.cost)
        return grads

    return grad_fn


def chosen_grad_fn(config: TrainConfig, grad_fn=None):
    """``grad_fn``, or for an MLP :func:`manual_grad_fn` when it is None and ``config.grads``
    is "manual" (None again otherwise: ``jax.grad`` of the cost; a CNN's manual gradient,
    :func:`manual_cnn_grad_fn`, needs its spec, so the run builds it). ``config`` is validated
    (no L1 when "manual")."""
    if grad_fn is None and config.grads == "manual" and config.model == "mlp":
        return manual_grad_fn(config)
    return grad_fn


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
    """Train ``config``'s network; ``grad_fn(params, x, y) -> grads`` (``y`` one-hot; model
    "mlp" only) replaces ``jax.grad`` of the cost. ``config.grads == "manual"`` without a
    ``grad_fn`` trains with :func:`manual_grad_fn`, the hand-derived backprop. Before
    training, ``grad_fn`` is traced once on one mini-batch (``jax.eval_shape``): a result
    without the structure, shapes and dtypes of ``params`` is a TypeError naming ``grad_fn``,
    a CNN model a ValueError.

    ``resume(fresh_state) -> (state, history)`` (or a whole :class:`jaxnn.checkpoint.Restored`)
    starts from a saved state instead of the seed's initial one (``fresh_state`` is the
    template: same network and optimizer), e.g.
    ``lambda s: checkpoint.restore_latest(run_dir, s)``. To keep checkpointing the run, resume
    through its saver, ``saver = checkpoint.SaveEvery(checkpoint.Checkpointer(run_dir),
    every)`` with ``callbacks=[saver], resume=saver.resume``: its later checkpoints then hold
    every epoch.
    ``on_nan`` ("stop", "skip" or None) is the divergence guard of
    :func:`jaxnn.train.make_epoch`. ``devices`` > 1 (or ``"all"``) trains data-parallel over
    that many devices (:mod:`jaxnn.parallel`).
    With ``config.ensemble`` > 1, every member trains with ``grad_fn``, ``on_nan`` and
    ``devices`` (:func:`jaxnn.ensemble.run`).

    ``callbacks`` see each epoch's live state, whose buffers the next epoch reuses (see
    :func:`jaxnn.train.fit`): a callback that keeps parameters for later (the best epoch's,
    say) keeps a copy, ``jax.tree.map(jnp.copy, state.params)``."""
    config = config.validated()
    if config.ensemble > 1:
        from jaxnn import ensemble

        if resume is not None:  # a saved state is one network's
            raise ValueError(f"resume: expected a run of one network; got an ensemble of "
                             f"{config.ensemble} (resume its members through "
                             f"ensemble.run's member_run, as jaxnn train --resume does)")
        return ensemble.run(config, callbacks=callbacks, progress=progress, devices=devices,
                            grad_fn=grad_fn, on_nan=on_nan)
    trainer = Trainer(config, grad_fn=grad_fn, on_nan=on_nan, devices=devices)
    return trainer.run(callbacks=callbacks, progress=progress, resume=resume)


def _initial(model: str, network, seed: int):
    """``(params, model_state, train_key)`` that seed ``seed`` starts from: the seed's key split
    into an initialization key and a training key (model_state: None for an MLP)."""
    init_key, train_key = jax.random.split(jax.random.key(seed))
    if model == "mlp":
        return network.init(init_key), None, train_key
    params, rest = _cnn_initializer(network)(init_key)
    return params, rest, train_key


@functools.cache
def _cnn_initializer(spec: layers.CNNSpec):
    """``init(key) -> (params, rest)`` of a fresh :class:`jaxnn.cnn.CNN`, as one compiled
    program (``train.jit_once``) kept for the spec: drawing the weights eagerly compiles one
    program per weight shape, several seconds in all on the CPU."""
    from jaxnn import cnn

    return train.jit_once(lambda key: cnn.split(cnn.make(spec, key))[1:])


def initial_params(config: TrainConfig, network=None):
    """The parameters :func:`run` starts ``config`` from (its seed's, bit for bit), to compare
    a trained network with its start. ``network``: ``prepare(config).network``; without it, an
    MLP's is built from ``config`` alone and a CNN's from the data set's shapes (which loads
    the data set)."""
    config = config.validated()
    if network is None:
        network = _mlp(config) if config.model == "mlp" else prepare(config).network
    return _initial(config.model, network, config.seed)[0]


def _seeds_trainer():
    """``train(config) -> Result`` for configs that differ only in the seed, as :func:`run`
    with its defaults trains them, but preparing the data and compiling the programs once for
    all seeds (:mod:`jaxnn.reproduce` trains 3 seeds per row), through one :class:`Trainer`.
    An ensemble is run by :func:`run` each time (it shares its work among its own members)."""
    trainer = None

    def train_seed(seed_config: TrainConfig, *, callbacks=(), progress=True,
                   resume=None) -> Result:
        nonlocal trainer
        if seed_config.ensemble > 1:
            return run(seed_config, callbacks=callbacks, progress=progress, resume=resume)
        if trainer is None:
            trainer = Trainer(seed_config)
        return trainer.run_config(seed_config, callbacks=callbacks, progress=progress,
                                  resume=resume)

    return train_seed


class Trainer:
    """One configuration's training, built once for any number of seeds: the data placed on
    the devices, the optimizer and the compiled programs (epoch, evaluation, penalty). Nothing
    in them depends on the seed, so the seeds after the first train without compiling:

    >>> from jaxnn import experiment
    >>> config = experiment.TrainConfig.from_preset("ch1-30", epochs=1, train_size=1000)
    >>> trainer = experiment.Trainer(config)
    >>> results = [trainer.run(seed=s, progress=False) for s in range(3)]
    >>> [r.config.seed for r in results]
    [0, 1, 2]

    Each ``trainer.run(seed=s)`` is ``experiment.run`` of the configuration with that seed,
    bit for bit (``tests/test_experiment_api.py``); ``jaxnn reproduce`` trains a row's seeds and
    :func:`jaxnn.ensemble.run` its members this way. ``grad_fn``, ``on_nan`` and ``devices``
    are :func:`run`'s; ``prepared`` (:func:`prepare` of ``config``, made when left out) lets
    several trainers share one copy of the data. ``config`` must be a run of one network.

    Its parts, for benchmarks and other loops of one's own: :meth:`initial_state`,
    ``epoch_fn`` (:func:`jaxnn.train.make_epoch`), ``evaluate``, ``penalty_value`` (the
    regularization term of the training cost, or None), ``logits(params, x)`` (a CNN's on
    ``(params, model_state)``), ``prepared`` and ``optimizer``, as :func:`jaxnn.train.fit`
    takes them."""

    def __init__(self, config: TrainConfig, *, grad_fn=None, on_nan: str | None = "stop",
                 devices: int | str = 1, prepared: Prepared | None = None):
        config = config.validated()
        if config.ensemble > 1:
            raise ValueError(f"config: expected a run of one network; got an ensemble of "
                             f"{config.ensemble} (jaxnn.ensemble.run trains its members with "
                             "one Trainer)")
        check_grad_fn_model(grad_fn, config)
        grad_fn = chosen_grad_fn(config, grad_fn)
        prepared = prepare(config) if prepared is None else prepared
        self.config, self.mesh, batch_sharding = config, None, None
        if devices != 1:
            from jaxnn import parallel

            self.mesh = parallel.make_mesh(devices)
            parallel.check_divisible("mini_batch_size", config.mini_batch_size, self.mesh)
            batch_sharding = parallel.batch_sharding(self.mesh)  # every full mini-batch split
            prepared = parallel.place(prepared, self.mesh)
        self.prepared = prepared
        network, n = prepared.network, len(prepared.train)
        self.optimizer = optimizer = make_optimizer(config, n)
        penalty = (functools.partial(costs.l2_penalty, scale=config.l2 / l2_denominator(config, n))
                   if config.l2 else None)
        l1 = functools.partial(costs.l1_penalty, scale=config.l1 / n) if config.l1 else None
        if l1 is not None:
            penalty = l1 if penalty is None else (lambda p, a=penalty, b=l1: a(p) + b(p))
        # The epoch record adds the penalty to the training cost on the host: one compiled
        # call, not a dozen eager operations (and their compiles) over every weight, each epoch.
        self.penalty_value = None if penalty is None else jax.jit(penalty)
        cost_fn = costs.from_logits(config.cost, config.output_activation)
        platform = _platform(prepared.train)
        epoch_args = dict(mini_batch_size=config.mini_batch_size, n_train=n,
                          num_classes=prepared.num_classes, on_nan=on_nan,
                          batch_sharding=batch_sharding, loop=epoch_loop(config, platform))
        chunk = metrics.eval_chunk(platform, convolutional=_convolutional(config))
        if config.model != "mlp":
            from flax import nnx

            from jaxnn import cnn

            # the graph alone (no weights drawn): every seed's model has this structure
            graphdef = cnn.split(nnx.eval_shape(lambda: cnn.make(network,
                                                                 jax.random.key(0))))[0]
            grad_fn = (manual_cnn_grad_fn(network) if config.grads == "manual"
                       else cnn.make_grad_fn(graphdef, cost_fn, penalty=l1))
            self.epoch_fn = train.make_epoch(grad_fn, optimizer, stateful=True, **epoch_args)
            self.logits = cnn.make_logits_fn(graphdef)
            self.evaluate = metrics.make_evaluate(self.logits, cost_fn,
                                                  num_classes=prepared.num_classes, chunk=chunk)
            return
        if grad_fn is None:
            grad_fn = autodiff_grad_fn(network, config.cost, l1=l1)
        else:
            check_grad_fn(grad_fn, jax.eval_shape(network.init, jax.random.key(0)),
                          (config.mini_batch_size, *prepared.train.x.shape[1:]),
                          prepared.num_classes, prepared.train.x.dtype)
        self.epoch_fn = train.make_epoch(grad_fn, optimizer, **epoch_args)
        self.logits = network.logits
        self.evaluate = metrics.make_evaluate(self.logits, cost_fn,
                                              num_classes=prepared.num_classes, chunk=chunk)

    def initial_state(self, seed: int) -> train.TrainState:
        """The seed's initial parameters, optimizer state and training key."""
        params, rest, train_key = _initial(self.config.model, self.prepared.network, seed)
        return train.TrainState(params, self.optimizer.init(params), train_key, 0, rest)

    def run(self, seed: int | None = None, *, callbacks: Sequence[train.Callback] = (),
            progress: bool = True, resume=None) -> Result:
        """Train from ``seed`` (None: the configuration's own); ``callbacks``, ``progress``
        and ``resume`` are :func:`run`'s."""
        config = self.config if seed is None else dataclasses.replace(self.config, seed=seed)
        return self.run_config(config, callbacks=callbacks, progress=progress, resume=resume)

    def run_config(self, config: TrainConfig, *, callbacks=(), progress=True,
                   resume=None) -> Result:
        """:meth:`run` of ``config``, which may differ from the trainer's only in its seed."""
        config = config.validated()  # what trains, and what the Result reports
        if dataclasses.replace(config, seed=self.config.seed) != self.config:
            raise ValueError("config: expected the configuration these programs were built "
                             "for, up to the seed")
        prepared = self.prepared
        callbacks = list(callbacks)
        stopper = None if config.patience is None else EarlyStopping(config.patience)
        callbacks += [stopper] if stopper is not None else []
        state, history = self.initial_state(config.seed), None
        if resume is not None:
            restored = resume(state)
            if hasattr(restored, "state") and hasattr(restored, "history"):  # a Restored
                restored = (restored.state, restored.history)
            if not (isinstance(restored, tuple) and len(restored) == 2):
                raise TypeError(
                    f"resume: expected (state, history); got {type(restored).__name__}"
                    f"{f' of {len(restored)}' if isinstance(restored, tuple) else ''}")
            state, history = restored
            # the early stopper takes up where the run was: its best and its patience so far
            for record in history if stopper is not None else ():
                if stopper(record):
                    break  # the run had stopped early: it trains no further epochs
        if self.mesh is not None:
            from jaxnn import parallel

            state = parallel.replicate_state(state, self.mesh)
        state, history = train.fit(
            state, epoch_fn=self.epoch_fn, evaluate=self.evaluate, train=prepared.train,
            validation=prepared.validation, test=prepared.test,
            epochs=config.epochs if stopper is None or stopper.stopped_epoch is None
            else state.epoch,
            penalty=self.penalty_value, callbacks=callbacks, history=history,
            progress=progress and f"{config.preset or 'custom'} seed {config.seed}",
            eta=config.eta, l2=config.l2, l1=config.l1, monitor_training=config.monitor_training,
        )
        summary = {"preset": config.preset, **metrics.summarize(history)}
        if stopper is not None and stopper.stopped_epoch is not None:
            summary["early_stopped_after_epoch"] = stopper.stopped_epoch
        return Result(config, state, history, summary)
