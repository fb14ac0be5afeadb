"""``fit``: train the stacked LSTM on bucketed windows with ``mx.mod.BucketingModule``."""
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple, Type

import mxnet as mx
import numpy as np

from ..model.bucketing import check_sym_gen
from ..checkpoint import Checkpoint, RunDirectory, RunWriter, load_checkpoint, new_run_id, save_checkpoint
from ..checkpoint.store import checkpoint_settings
from ..core.checks import SettingError, SettingValueError, check_condition, naming, settings_of
from ..config.fit_config import FitConfig, RunConfig, resumed_config
from ..config.settings import declared
from ..core.context import resolve_contexts
from ..data.windows import SinBucketIter, label_shape
from ..distributed import RankLogAdapter, create_kvstore, pull_final_params
from ..core.outputs import check_output_dir
from ..recurrence.params import ParamDict
from .progress import LossRecord, Progress
from .schedule import plan_schedule
from ..model.batches import SineBucketingModule, check_key
from ..model.cells import builder_of
from ..model.spec import ModelSpec
from ..model.graph import SymGen
from .loop import Trainer, deferring_signals
from .validation import ValidationRecord, ValidationSet, Validator, best_record

if TYPE_CHECKING:
    from ..infer.predictor import Predictor

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained module, its loss history and the configuration used.

    Parameters
    ----------
    module : mxnet.mod.BucketingModule
        The trained module (a ``SafeBucketingModule``), bound for the largest length.
    sym_gen : callable
        ``sym_gen(bucket_key)`` of the trained model, with every ``grad_req`` honoured.
    config : FitConfig
        The configuration as trained: the seed drawn if none was given, the cell chosen by
        ``cell='auto'`` (``spec.cell``; the cell asked for is ``requested.model.cell``), the schedule's
        ``max_update`` filled in.
    progress : sinlstm_sym.train.progress.Progress
        Updates, epochs, loss and validation records, training seconds.
    spec : sinlstm_sym.model.spec.ModelSpec
        The model with its cell resolved for the run's devices.
    requested : FitConfig, optional
        The configuration as settled before the cell was resolved: the cell as asked for (e.g. ``'auto'``).
    rank, num_workers : int
        This worker's rank and the number of workers (0 and 1 outside distributed runs).
    best_params : dict of str to numpy.ndarray, optional
        The parameters of the best validation (``None`` without ``validation_lengths``).

    See Also
    --------
    fit : what returns it.
    Predictor : what :meth:`predictor` returns.

    Examples
    --------
    >>> from sinlstm_sym import fit
    >>> result = fit(buckets=[3, 6], num_samples=1000, num_epoch=1, seed=0, log_every=5)
    >>> len(result.losses), result.trained_lengths
    (2, (3, 6))
    """

    module: mx.mod.BucketingModule
    sym_gen: SymGen
    config: FitConfig
    progress: Progress
    spec: ModelSpec  # the model as trained: its cell resolved for the run's devices
    rank: int = 0
    num_workers: int = 1
    best_params: Optional[ParamDict] = None  # by validation, in the trained cell's layout
    requested: Optional[FitConfig] = None  # the settled configuration with the cell as asked for

    @property
    def validation_history(self) -> List[ValidationRecord]:
        """The held-out scores, one record per validation."""
        return self.progress.validation

    @property
    def best(self) -> Optional[ValidationRecord]:
        """The validation with the smallest max absolute error (``None`` without validation)."""
        return best_record(self.progress.validation)

    @property
    def loss_history(self) -> List[LossRecord]:
        """One record per log point."""
        return self.progress.history

    @property
    def losses(self) -> List[float]:
        """The loss at each log point, in order."""
        return [r.loss for r in self.progress.history]

    @property
    def epoch_losses(self) -> List[float]:
        """The mean training loss of each epoch."""
        return self.progress.epoch_losses

    @property
    def eval_losses(self) -> List[float]:
        """The mean loss on ``eval_iter`` after each epoch (empty without one)."""
        return self.progress.eval_losses

    @property
    def trained_lengths(self) -> Tuple[int, ...]:
        """The window lengths that had at least one training batch."""
        return tuple(self.progress.trained_lengths)

    def arg_params(self, best: bool = False) -> ParamDict:
        """The trained parameters as numpy arrays in the canonical (per-gate matrix) layout.

        Parameters
        ----------
        best : bool, default False
            The best parameters by validation instead of the last ones.

        Returns
        -------
        dict of str to numpy.ndarray
            One array per parameter, the same for every cell.

        Raises
        ------
        ValueError
            ``best=True`` in a run without validation.
        """
        if best:
            check_condition(self.best_params is not None, "best=True needs validation (validation_lengths=...)")
            assert self.best_params is not None
            return self.spec.to_canonical(self.best_params)
        args, _ = self.module.get_params()
        return self.spec.to_canonical({k: v.asnumpy() for k, v in args.items()})

    def predictor(self, ctx: Any = None, best: Optional[bool] = None, **kwargs: Any) -> "Predictor":
        """A :class:`~sinlstm_sym.infer.predictor.Predictor` of the trained model.

        Parameters
        ----------
        ctx : str or mxnet.Context, optional
            Where it predicts (default: CPU).
        best : bool, optional
            ``True``: the best parameters by validation; ``False``: the last ones. Default: the best
            when the run validated, else the last.
        **kwargs
            Further arguments of ``Predictor.from_config``.

        Returns
        -------
        Predictor
            Predicts windows of any number and any length.
        """
        from ..infer.predictor import Predictor
        kwargs.setdefault("trained_lengths", self.trained_lengths)
        use_best = self.best_params is not None if best is None else best
        return Predictor.from_config(self.arg_params(best=use_best), self.config.model, ctx=ctx, **kwargs)


class SessionClosedError(RuntimeError):
    """A :class:`FitSession` used after its ``with fit_session(...)`` block ended (its run directory's lock
    was released there)."""


def _resolve_config(config: Optional[FitConfig], overrides: Dict[str, Any]) -> FitConfig:
    check_condition(config is None or isinstance(config, FitConfig),
                    f"config must be a FitConfig or None, got {type(config).__name__}", TypeError)
    if config is None:
        if overrides.get("resume") is True and overrides.get("checkpoint") is not None:
            return resume_config(**overrides)
        return FitConfig.from_flat(**overrides)
    return config.replace(**overrides) if overrides else config


def resume_config(**settings: Any) -> FitConfig:
    """The configuration ``fit(resume=True, checkpoint=DIR, **settings)`` trains with: the settings recorded
    in the checkpoint, with those given in ``settings`` replacing them.

    ``fit(checkpoint='DIR', resume=True, num_epoch=3)`` thus continues a run without repeating its
    settings (``overwrite`` and ``extend_schedule`` are never taken from the checkpoint). The
    settings that change the numbers of the training (data, model, optimizer, seed) must equal the
    checkpoint's: ``fit`` refuses every difference, and a schedule that cannot be continued (training
    past its end needs ``extend_schedule``), in one message naming the values to pass. The devices
    may change (update counts continue on new devices). Other validation settings
    (``validation_lengths``, ``validation_samples``, or none) remove ``DIR/best`` and the old
    validation records, with a warning: they were chosen on other held-out windows.

    Parameters
    ----------
    **settings
        Flat settings (:meth:`FitConfig.flat_names`), ``checkpoint`` among them.

    Returns
    -------
    FitConfig
        The checkpoint's settings with the given ones; ``resume=True``, ``overwrite=False``.

    Raises
    ------
    FileNotFoundError
        The checkpoint directory or its ``latest.json``/``config.json`` is missing.
    ValueError, TypeError
        A given setting is invalid, or the checkpoint's settings cannot be read (the error names
        the settings or the file).
    """
    run_names = {info.name for info in declared(RunConfig).values()}
    # the run's own settings checked first (types, combinations such as overwrite with resume)
    checkpoint = FitConfig.from_flat(**{k: v for k, v in settings.items() if k in run_names}).run.checkpoint
    check_condition(checkpoint is not None, "resume=True needs checkpoint='DIR'", settings=("resume", "checkpoint"))
    assert checkpoint is not None
    with naming("checkpoint", "resume"):
        path, saved = checkpoint_settings(checkpoint)
        try:
            base = FitConfig.from_settings(saved)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as err:
            raise ValueError(f"{path / 'config.json'}: its settings cannot be read ({err})") from None
    return resumed_config(base, dict(settings, resume=True))


def _check_train_iter(train_iter: Any, label_mode: str) -> Tuple[int, str, str, int]:
    """(default bucket key, data name, label name, batch size) of a user's iterator, checked."""
    check_condition(isinstance(train_iter, mx.io.DataIter), f"train_iter must be an mx.io.DataIter, got "
                    f"{type(train_iter).__name__}", TypeError)
    check_condition(hasattr(train_iter, "default_bucket_key"), "train_iter must have default_bucket_key (the "
                    "largest window length it yields), as BucketingModule iterators do")
    key = check_key(train_iter.default_bucket_key, "train_iter.default_bucket_key")
    data, labels = list(train_iter.provide_data or []), list(train_iter.provide_label or [])
    check_condition(len(data) == 1 and len(labels) == 1, "train_iter must provide one data and one label array "
                    f"(provide_data/provide_label), got {len(data)} and {len(labels)}")
    data_name, data_shape = data[0][0], tuple(data[0][1])
    label_name, label_shape_ = labels[0][0], tuple(labels[0][1])
    check_condition(len(data_shape) == 3 and data_shape[1:] == (key, 1), f"train_iter.provide_data must describe "
                    f"(batch, {key}, 1) for default_bucket_key {key} (layout NTC), got {data_shape}")
    expected = label_shape(data_shape[0], key, label_mode)
    check_condition(label_shape_ == expected, f"train_iter.provide_label must describe {expected} for "
                    f"label_mode={label_mode!r}, got {label_shape_}")
    return key, data_name, label_name, data_shape[0]


def _check_window_level(window_level: str, train_iter: Any, eval_iter: Any) -> None:
    """The windows trained on are modelled around the level the model declares: an iterator says so with its
    ``window_level`` attribute (``SeriesBucketIter`` has one); the built-in sine windows have none."""
    for name, it in (("train_iter", train_iter), ("eval_iter", eval_iter)):
        if it is None and name == "eval_iter":
            continue
        level = getattr(it, "window_level", "none") if it is not None else "none"
        source = f"{name} (window_level={level!r})" if it is not None else "the built-in sine windows"
        check_condition(level == window_level, f"window_level={window_level!r} but {source} "
                        f"{'are not' if level == 'none' else 'are'} taken relative to each window's last value: "
                        "the Predictor would apply another rule than the training saw; pass an iterator whose "
                        f"window_level is {window_level!r} (SeriesBucketIter(window_level=...)), or set "
                        f"window_level={level!r}", settings=("window_level",))


def _load_resume(config: FitConfig, cleanup: contextlib.ExitStack
                 ) -> Tuple[Optional[Checkpoint], Optional[RunWriter]]:
    """The checkpoint to resume from and the writer of its run directory, locked before it is read (so a
    second writer is refused before it reads a checkpoint the first one may rotate away)."""
    if not config.run.resume:
        return None, None
    assert config.run.checkpoint is not None  # RunConfig guarantees it
    given = RunDirectory(config.run.checkpoint)
    run_dir = RunDirectory(given.root.parent) if given.is_checkpoint() else given  # the run of a ckpt-N too
    writer = cleanup.enter_context(run_dir.open(None, new_run=False))
    saved = load_checkpoint(config.run.checkpoint, allow_pickle=config.run.allow_pickle)
    writer.continue_run(saved.run_id, saved.path)
    return saved, writer


def _saved_config(saved: Checkpoint) -> FitConfig:
    try:
        return FitConfig.from_settings(saved.config["settings"])
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as err:
        raise ValueError(f"{saved.path / 'config.json'}: its settings cannot be read ({err})") from None


def _batches_per_epoch(train_iter: Any) -> int:
    check_condition(hasattr(train_iter, "__len__"), "lr_schedule without max_update needs a train_iter with "
                    "__len__ (its batches per epoch); give max_update")
    return len(train_iter)


def fit(config: Optional[FitConfig] = None, *, train_iter: Optional[mx.io.DataIter] = None,
        eval_iter: Optional[mx.io.DataIter] = None, logger: Optional[logging.Logger] = None,
        **settings: Any) -> FitResult:
    """Train a stacked LSTM on windows of variable length with a ``BucketingModule``.

    One bucket per window length, one shared parameter set. Everything is checked before anything is
    bound or trained. ``seed`` fixes the windows and initial weights (same seed, same losses and
    weights). ``checkpoint='DIR'`` (its parent must exist) writes a checkpoint after every epoch. A new
    run refuses a directory holding another run's checkpoints unless ``overwrite=True``. Several
    devices: ``ctx='cpu:0,1'`` or ``'gpu:0,1'``; several processes: ``kvstore='dist_sync'`` under
    ``python -m sinlstm_sym.launch``. ``resume=True`` continues the checkpoint's run with its settings:
    only those given as keywords replace them (:func:`resume_config`; a ``config`` is taken as given in
    full); differences are refused in one message. Other validation settings drop ``DIR/best``.

    Parameters
    ----------
    config : FitConfig, optional
        The whole configuration (default: the library's training recipe).
    train_iter : mxnet.io.DataIter, optional
        Batches instead of the built-in windows: ``default_bucket_key`` the largest length, each batch
        of one length ``L`` with ``bucket_key == L``, data ``(B, L, 1)``, labels ``(B, L)`` or
        ``(B, 1)`` by ``label_mode``. Every batch is checked.
    eval_iter : mxnet.io.DataIter, optional
        Scored after every epoch (``FitResult.eval_losses``).
    logger : logging.Logger, optional
        Where progress goes (default: this module's logger).
    **settings
        Flat settings overriding ``config``'s (``buckets=range(1, 10)``, ``seed=0``, ...); see
        :meth:`FitConfig.flat_names` and the settings reference.

    Returns
    -------
    FitResult
        The trained module, its loss history (L2 loss ``0.5 * (pred - label)^2``), validation
        records and the configuration used (with the seed drawn, if none was given).

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        Before training: a setting, device, checkpoint directory or batch does not fit (named).
    NonFiniteLossError
        The loss became NaN or infinite (epoch, batch and bucket named).
    sinlstm_sym.train.loop.TrainingDivergedError
        The loss or a parameter ran away: lower the learning rate.
    sinlstm_sym.train.loop.TrainingInterrupted
        Ctrl-C or SIGTERM stopped training at a batch boundary (after a checkpoint, if set).
    sinlstm_sym.core.callback_errors.UpdaterError, sinlstm_sym.checkpoint.DiskFullError
        An exception inside MXNet's updater; a full disk while a checkpoint was written
        (:class:`~sinlstm_sym.checkpoint.CheckpointWriteError`: a refused permission).

    Examples
    --------
    >>> from sinlstm_sym import fit
    >>> result = fit(buckets=range(1, 10), num_samples=3000, num_epoch=1, seed=0)
    >>> result.predictor().predict_function([0.1, 0.5], length=20).shape
    (2, 20)
    """
    with fit_session(config, train_iter=train_iter, eval_iter=eval_iter, logger=logger, **settings) as session:
        return session.train()


@contextlib.contextmanager
def fit_session(config: Optional[FitConfig] = None, *, train_iter: Optional[mx.io.DataIter] = None,
                eval_iter: Optional[mx.io.DataIter] = None, logger: Optional[logging.Logger] = None,
                **settings: Any) -> Iterator["FitSession"]:
    """What :func:`fit` does before its first batch (same arguments): every check, the module bound, its
    parameters and optimizer initialised (or resumed), the run directory locked; yields the
    :class:`FitSession` whose :meth:`~FitSession.train` trains. An error on entering comes before any
    training (a bad setting names it: :class:`~sinlstm_sym.core.checks.SettingError`); the lock is released on
    leaving."""
    log: Any = logger if logger is not None else logging.getLogger(__name__)
    check_condition(isinstance(log, logging.Logger), f"logger must be a logging.Logger or None, got {log!r}",
                    TypeError)
    config = _resolve_config(config, settings)
    with contextlib.ExitStack() as cleanup:  # releases the run directory's lock however fit ends
        session = _prepare(config, train_iter, eval_iter, log, cleanup)
        try:
            yield session
        finally:
            session.closed = True


@dataclass(frozen=True)
class _Plan:
    """What fit settles before anything is bound: the one configuration (seed, batch size, schedule; its cell
    as asked for), the model's spec (the cell resolved), the devices, the one training iterator, the run resumed
    and the kvstore."""

    config: FitConfig
    spec: ModelSpec
    contexts: List[mx.Context]
    train_iter: mx.io.DataIter
    saved: Optional[Checkpoint]
    kv: Any
    rank: int
    num_workers: int

    @functools.cached_property
    def trained_config(self) -> FitConfig:
        """The configuration as trained, what results and checkpoints show: the cell the spec resolved to."""
        return self.config if self.config.model.cell == self.spec.cell else self.config.replace(cell=self.spec.cell)


@dataclass
class FitSession:
    """A fit checked, bound and initialised, ready to train (:func:`fit_session` makes it)."""

    plan: _Plan
    module: SineBucketingModule
    sym_gen: SymGen
    optimizer: mx.optimizer.Optimizer
    progress: Progress
    eval_iter: Optional[mx.io.DataIter]
    validation_set: Optional[ValidationSet]
    writer: Optional[RunWriter]
    log: Any
    closed: bool = field(default=False, repr=False)  # set when the fit_session block ends

    @property
    def config(self) -> FitConfig:
        """The settled configuration: seed, batch size, cell and schedule as this run trains them."""
        return self.plan.trained_config

    def train(self) -> FitResult:
        """Run the epochs; the trained module, its history and the configuration.

        Returns
        -------
        FitResult
            The trained module, its history and the settled configuration.

        Raises
        ------
        SessionClosedError
            The session's ``with fit_session(...)`` block has ended (its lock is released: another
            training may be writing into its run directory).
        """
        if self.closed:
            where = f" its checkpoint directory {self.writer.root} is no longer locked for it," \
                if self.writer is not None else ""
            raise SessionClosedError(f"this FitSession's `with fit_session(...)` block has ended:{where} it cannot "
                                     "train any more; call train() inside the block, or start a new fit_session")
        plan = self.plan
        best_params = _train(plan, self.module, self.optimizer, self.progress, self.eval_iter, self.validation_set,
                             self.writer, self.log)
        if plan.config.run.kvstore == "dist_async":
            pull_final_params(self.module, plan.kv)
        return FitResult(module=self.module, sym_gen=self.sym_gen, config=plan.trained_config, progress=self.progress,
                         spec=plan.spec, rank=plan.rank, num_workers=plan.num_workers, best_params=best_params,
                         requested=plan.config)


def _prepare(config: FitConfig, train_iter: Optional[mx.io.DataIter], eval_iter: Optional[mx.io.DataIter], log: Any,
             cleanup: contextlib.ExitStack) -> FitSession:
    plan, writer = _plan(config, train_iter, eval_iter, cleanup)
    config, run = plan.config, plan.config.run
    if plan.num_workers > 1:
        log = RankLogAdapter(log, plan.rank, plan.num_workers)
    module, sym_gen, validation_set = _build_module(plan, eval_iter)
    optimizer = config.optimizer.create(
        rescale_grad=1.0 / (config.data.batch_size * (plan.num_workers if run.kvstore == "dist_sync" else 1)),
        implementation=_optimizer_implementation(plan))
    progress = _init_state(module, optimizer, plan.kv, plan.saved, log, plan.contexts)
    if plan.saved is not None and writer is not None:
        _drop_other_validation(plan.saved, config, progress, writer)
    if writer is None and run.checkpoint is not None and plan.rank == 0:  # a new run: lock after every check
        with naming("checkpoint"):
            writer = cleanup.enter_context(RunDirectory(run.checkpoint).open(new_run_id(), new_run=True,
                                                                             overwrite=run.overwrite))
    return FitSession(plan, module, sym_gen, optimizer, progress, eval_iter, validation_set, writer, log)


def _optimizer_implementation(plan: _Plan) -> Optional[Type[mx.optimizer.Optimizer]]:
    """The trained cell's own implementation of the optimizer (the native cell's library holds a fused Adam),
    where the updates run in this process (not on the servers of a distributed run); else ``None``: MXNet's."""
    if plan.config.run.distributed:
        return None
    return builder_of(plan.spec.cell).optimizers.get(plan.config.optimizer.name)


def _plan(config: FitConfig, train_iter: Optional[mx.io.DataIter], eval_iter: Optional[mx.io.DataIter],
          cleanup: contextlib.ExitStack) -> Tuple[_Plan, Optional[RunWriter]]:
    """Every check and settled value, in order: the devices, the output and the run resumed, the data (the
    built-in iterator is made once: it checks the data settings), the kvstore, the model's spec (its cell
    resolved once); then the settled configuration. Also the locked writer of a resumed run."""
    with naming("ctx"):
        contexts = resolve_contexts(list(config.run.ctx))  # the configuration names devices; this machine has them?
    saved, writer = _check_before_training(config, train_iter, eval_iter, cleanup)
    with naming("checkpoint", "resume"):
        saved_config = _saved_config(saved) if saved is not None else None
    seed = config.run.seed if config.run.seed is not None or saved_config is None else saved_config.run.seed
    built_in = train_iter is None
    if train_iter is None:  # before connecting to anything
        train_iter = SinBucketIter.from_config(config.data, config.model, seed=seed)
        seed = train_iter.seed
    elif seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    with naming("kvstore"):
        kv, rank, num_workers = _connect(config.run)
    if built_in and config.run.distributed:  # this worker's shard of the same epoch, once its rank is known
        train_iter = SinBucketIter.from_config(config.data, config.model, seed=seed, num_parts=num_workers,
                                               part_index=rank)
    with naming("cell", "ctx"):
        spec = ModelSpec.from_model(config.model, contexts)  # the cell resolved once (it may build the operator)
    config = _settle(config, saved, saved_config, train_iter, spec, seed)
    return _Plan(config, spec, contexts, train_iter, saved, kv, rank, num_workers), writer


def _train(plan: _Plan, module: SineBucketingModule, optimizer: mx.optimizer.Optimizer, progress: Progress,
           eval_iter: Optional[mx.io.DataIter], validation_set: Optional[ValidationSet], writer: Optional[RunWriter],
           log: Any) -> Optional[ParamDict]:
    """Run the epochs (checkpoints through ``writer``); the best parameters by validation, if validated."""
    config, train_iter, saved = plan.config, plan.train_iter, plan.saved
    run = config.run
    log.info("training %s stacked LSTM %s on buckets %s (%s batches of %d per epoch, %s), %d epoch(s), seed %d",
             plan.spec.cell, list(config.model.hidden_sizes), getattr(train_iter, "buckets", "?"),
             len(train_iter) if hasattr(train_iter, "__len__") else "?", config.data.batch_size,
             config.model.label_mode, run.num_epoch, run.seed)
    names = _data_label_names(train_iter)
    save, save_best = _checkpoint_writers(plan, module, optimizer, progress, writer, names)
    validator = None
    if validation_set is not None:
        validator = Validator(validation_set, module, config.data.batch_size, log, progress.validation,
                              every=run.validate_every, target_max_error=run.target_max_error, patience=run.patience,
                              save_best=deferring_signals(save_best), data_name=names[0], label_name=names[1])
        best = RunDirectory(saved.path.parent).best_for(saved.path) if saved is not None else None
        if best is not None:
            validator.best_params = load_checkpoint(best).arg_params
    Trainer(module, train_iter, progress, log, run.log_every, save=save, checkpoint_every=run.checkpoint_every,
            eval_iter=eval_iter, progress_bar=run.progress_bar, learning_rate=config.optimizer.learning_rate,
            validator=validator, contexts=plan.contexts, optimizer=optimizer,
            batch_size=config.data.batch_size).run(run.num_epoch)
    return validator.best_params if validator is not None else None


def _check_before_training(config: FitConfig, train_iter: Optional[mx.io.DataIter],
                           eval_iter: Optional[mx.io.DataIter], cleanup: contextlib.ExitStack
                           ) -> Tuple[Optional[Checkpoint], Optional[RunWriter]]:
    """Every check that needs no bound module; the checkpoint to resume from and its locked run directory
    (or ``None``s)."""
    run, model = config.run, config.model
    _check_window_level(model.window_level, train_iter, eval_iter)
    if train_iter is None:  # the built-in data's memory, before anything is locked or built
        config.check_memory()
    if run.checkpoint is not None and not run.resume:
        parent = Path(run.checkpoint).parent
        check_condition(parent.exists(), f"checkpoint: the directory {str(parent)!r} does not exist (for "
                        f"{run.checkpoint!r}); create it first", FileNotFoundError, settings=("checkpoint",))
        with naming("checkpoint", "overwrite"):
            check_output_dir("checkpoint", run.checkpoint)
            RunDirectory(run.checkpoint).check_new_run(run.overwrite)
    with naming("checkpoint", "resume"):
        saved, writer = _load_resume(config, cleanup)
    check_condition(not run.distributed or run.seed is not None or saved is not None,
                    f"kvstore={run.kvstore!r} needs an explicit seed: every worker must draw the same epoch to "
                    "shard it", settings=("seed", "kvstore"))
    if train_iter is not None:  # the built-in one is made (and checks the data settings) by _plan
        check_condition(not run.distributed, "train_iter cannot be combined with a distributed kvstore: each worker "
                        "needs its own shard; use the built-in iterator (config.data)")
        check_condition(saved is None or hasattr(train_iter, "set_epoch"), "resume=True with train_iter needs an "
                        "iterator with set_epoch(epoch, cursor) to continue where the checkpoint stopped")
        check_condition(run.validation_lengths is None, "validation_lengths scores held-out sine windows: it needs "
                        "the built-in data; with train_iter, pass eval_iter")
        _check_train_iter(train_iter, model.label_mode)
    if eval_iter is not None:
        _check_train_iter(eval_iter, model.label_mode)
    return saved, writer


def _connect(run: RunConfig) -> Tuple[Any, int, int]:
    """(kvstore or its name, rank, number of workers)."""
    if not run.distributed:
        return run.kvstore, 0, 1
    kv = create_kvstore(run.kvstore)
    return kv, kv.rank, kv.num_workers


def _settle(config: FitConfig, saved: Optional[Checkpoint], saved_config: Optional[FitConfig],
            train_iter: mx.io.DataIter, spec: ModelSpec, seed: int) -> FitConfig:
    """The one settled configuration: the seed, the batch size of the iterator and the schedule planned
    against the run (the cell stays as asked for; ``spec`` holds the one resolved); compared with a resumed
    run."""
    batch_size = _check_train_iter(train_iter, config.model.label_mode)[3]
    updates = config.run.num_epoch * len(train_iter) if hasattr(train_iter, "__len__") else None
    if updates is None and config.optimizer.schedule_needs_length:
        _batches_per_epoch(train_iter)  # refuses: the schedule's length is unknown
    done = 0 if saved is None else int(config.optimizer.params.get("begin_num_update", 0)) + \
        int(saved.config["progress"].get("global_batch", 0))
    schedule_error: Optional[SettingError] = None
    try:
        changes, extended = plan_schedule(config, saved_config, done, updates)
    except SettingError as err:
        if saved_config is None:
            raise
        schedule_error, changes, extended = err, {}, True  # reported with every other difference, below
    current = config.flat()
    changes.update({k: v for k, v in dict(seed=seed, batch_size=batch_size).items() if v != current[k]})
    config = config.replace(**changes) if changes else config
    if saved_config is not None:
        if extended:  # the new segment is the one setting a resumed run may add
            saved_config = saved_config.replace(extend_schedule=config.optimizer.extend_schedule)
        assert saved is not None
        _check_resumable(saved, saved_config, config, schedule_error)
        batch = saved.config["progress"]["batch"]
        check_condition(not hasattr(train_iter, "__len__") or batch <= len(train_iter),
                        f"{saved.path / 'config.json'}: progress.batch is {batch}, beyond the {len(train_iter)} "
                        "batches of an epoch; the file is damaged or was edited")
    return config


def _check_resumable(saved: Checkpoint, saved_config: FitConfig, config: FitConfig,
                     schedule_error: Optional[SettingError]) -> None:
    """Refuse, in one message naming what to pass, every setting of a resumed run that does not fit its
    checkpoint: training settings that differ, and a schedule that cannot be continued."""
    differ = saved_config.differences(config)
    names, problems = list(differ), []
    if differ:
        values = ", ".join(f"{k}={a!r}" for k, (a, _) in differ.items())
        shown = ", ".join(f"{k}={a!r} there, {b!r} now" for k, (a, b) in differ.items())
        problems.append(f"was trained with other settings: {shown} (leave {'them' if len(differ) > 1 else 'it'} "
                        f"out to keep the checkpoint's, i.e. pass {values} or nothing)")
    if schedule_error is not None:
        problems.append(f"cannot be continued as asked: {schedule_error}")
        names += [n for n in settings_of(schedule_error) if n not in names]
    if problems:
        raise SettingValueError(f"resume=True: the checkpoint {saved.path} {'; and it '.join(problems)}",
                                (*names, "resume"))


def _data_label_names(train_iter: mx.io.DataIter) -> Tuple[str, str]:
    return train_iter.provide_data[0][0], train_iter.provide_label[0][0]


def _build_module(plan: _Plan, eval_iter: Optional[mx.io.DataIter]
                  ) -> Tuple[SineBucketingModule, SymGen, Optional[ValidationSet]]:
    """The bound module (default bucket: the longest length it will see), its sym_gen, the held-out set."""
    train_iter, model, run, batch_size = plan.train_iter, plan.spec, plan.config.run, plan.config.data.batch_size
    default_key = check_key(train_iter.default_bucket_key, "train_iter.default_bucket_key")
    if eval_iter is not None:
        default_key = max(default_key, check_key(eval_iter.default_bucket_key, "eval_iter.default_bucket_key"))
    validation_set = None
    if run.validation_lengths is not None:
        assert run.seed is not None
        validation_set = ValidationSet(run.validation_lengths, run.validation_samples, run.seed, model.label_mode,
                                       model.feature)
        default_key = max(default_key, max(run.validation_lengths))
    data_name, label_name = _data_label_names(train_iter)
    sym_gen = model.sym_gen(data_name=data_name, label_name=label_name, init_seed=run.seed or 0)
    # bound with grad_req 'write': the module's symbols need no grad_req guards (the user's sym_gen keeps them)
    module_gen = model.sym_gen(data_name=data_name, label_name=label_name, init_seed=run.seed or 0,
                               writes_only=True)
    keys = sorted(set(getattr(train_iter, "buckets", ())) | {default_key})
    check_sym_gen(module_gen, keys, lambda key: {data_name: (batch_size, key, 1),
                                                 label_name: label_shape(batch_size, key, model.label_mode)})
    module = SineBucketingModule(module_gen, default_bucket_key=default_key, label_mode=model.label_mode,
                                 context=plan.contexts)
    module.bind(data_shapes=[(data_name, (batch_size, default_key, 1))],
                label_shapes=[(label_name, label_shape(batch_size, default_key, model.label_mode))],
                for_training=True)
    return module, sym_gen, validation_set


def _drop_other_validation(saved: Checkpoint, config: FitConfig, progress: Progress, writer: RunWriter) -> None:
    """A resume with other validation settings than its checkpoint's: ``DIR/best`` and the validation records,
    chosen on other held-out windows, are dropped (with a warning)."""
    before = _saved_config(saved).run
    now = config.run
    old = (before.validation_lengths, before.validation_samples if before.validation_lengths else None)
    new = (now.validation_lengths, now.validation_samples if now.validation_lengths else None)
    if old == new:
        return
    def shown(lengths: Any, samples: Any) -> str:
        return "no validation" if lengths is None else f"validation_lengths={list(lengths)}, " \
            f"validation_samples={samples}"
    reason = f"chosen on the held-out windows of {shown(*old)}, but this run has {shown(*new)}"
    writer.drop_best(reason)
    if progress.validation:
        logger.warning("%s: the %d validation record(s) of the checkpoint were %s; they are dropped", saved.path,
                       len(progress.validation), reason)
        progress.validation.clear()


def _init_state(module: SineBucketingModule, optimizer: mx.optimizer.Optimizer, kv: Any,
                saved: Optional[Checkpoint], log: Any, contexts: List[mx.Context]) -> Progress:
    """Initial or resumed parameters and optimizer state; the progress to continue from."""
    if saved is None:
        module.init_params(initializer=mx.init.Xavier())  # every parameter carries its own StackInit
        progress = Progress()
    else:
        module.init_params(arg_params={k: mx.nd.array(v) for k, v in saved.arg_params.items()}, aux_params={},
                           allow_missing=False, force_init=True)
        progress = Progress.from_json({"history": [], **saved.config["progress"]})  # fields checked on load
        log.info("resuming from %s at epoch %d, batch %d", saved.path, progress.epoch, progress.batch)
    module.init_optimizer(kvstore=kv, optimizer=optimizer)
    if saved is not None:
        saved.restore_optimizer(module, optimizer, devices=[c.device_id for c in contexts])
    return progress


Writer = Optional[Callable[[], Path]]


def _checkpoint_writers(plan: _Plan, module: SineBucketingModule, optimizer: mx.optimizer.Optimizer,
                        progress: Progress, writer: Optional[RunWriter],
                        names: Tuple[str, str]) -> Tuple[Writer, Writer]:
    """``save()`` for the run's checkpoints and ``save_best()`` for its best one (both ``None`` without a
    ``writer``)."""
    config, run = plan.trained_config, plan.config.run  # checkpoints store the cell the run trained
    if writer is None:
        return None, None
    # plain MXNet must load a checkpoint without the native operator's library: fused symbols, same parameters
    portable = plan.spec.sym_gen(data_name=names[0], label_name=names[1], init_seed=run.seed or 0).checkpoint_sym_gen

    def write(where: RunWriter, with_optimizer: bool) -> Path:
        return save_checkpoint(where, module, optimizer, {"settings": config.to_json(), "progress": progress.to_json()},
                               with_optimizer=with_optimizer, symbols=portable)

    return (lambda: write(writer, not run.distributed)), (lambda: write(writer.best, False))
