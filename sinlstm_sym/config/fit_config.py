"""One typed configuration for :func:`~sinlstm_sym.train.fit.fit`: frozen dataclasses, validated on creation.

``FitConfig`` has four sections: ``model`` (what is trained), ``data`` (the built-in sine
windows), ``optimizer`` and ``run`` (epochs, seed, devices, logging, checkpoints). Every
field is checked when the object is made, so a wrong value fails before anything is bound
or trained, with a message naming the field (under its flat ``fit`` keyword) and what is
accepted. Checkpoints store :meth:`FitConfig.to_json`; a resumed run compares
:meth:`FitConfig.training_json`, which leaves out the settings that change no number.
"""
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Type

import mxnet as mx

from ..core.checks import check_condition, check_int, check_int_sequence, check_scaling, check_weights, naming
from ..constants import (DEFAULT_BATCH_SIZE, DEFAULT_BUCKETS, DEFAULT_CELL, DEFAULT_FEATURE,
                        DEFAULT_FORGET_BIAS, DEFAULT_HIDDEN_SIZES, DEFAULT_INIT, DEFAULT_LABEL_MODE,
                        DEFAULT_LR_SCHEDULE, DEFAULT_NUM_EPOCH, DEFAULT_NUM_SAMPLES, DEFAULT_OPTIMIZER,
                        DEFAULT_OPTIMIZER_PARAMS, DEFAULT_STEP_TAU, DEFAULT_STEP_WEIGHT, DEFAULT_T_RANGE, FEATURES,
                        INITS, KVSTORES, LABEL_MODES, ORIGINAL_BATCH_SIZE, ORIGINAL_BUCKETS,
                        ORIGINAL_FORGET_BIAS, ORIGINAL_INIT, ORIGINAL_NUM_SAMPLES, ORIGINAL_T_RANGE, SERIES_BATCH_SIZE,
                        SERIES_BUCKETS, SERIES_FORGET_BIAS, SERIES_HIDDEN_SIZES, SERIES_NUM_EPOCH, SERIES_NUM_SAMPLES,
                        SERIES_OPTIMIZER_PARAMS, SERIES_WINDOW_LEVEL, DEFAULT_WINDOW_LEVEL, WINDOW_LEVELS)
from ..constants import EXPLODED_PARAMETER
from ..core.context import context_strings
from .limits import check_training, check_validation
from .schedules import ExtendSchedule, check_extend_schedule, check_lr_schedule, create_scheduler, schedule_needs_length
from .optimizer_args import argument_defaults, check_checkpointable_optimizer, check_optimizer_arg, spec_of
from ..recurrence.cells import AUTO, cell_choices, cell_named, cell_names, requested_layout
from ..recurrence.params import check_hidden_sizes
from .settings import SettingInfo, check_declared, declared, setting

# Arguments fit sets itself or that cannot be stored as JSON.
_RESERVED_ARGS = {"rescale_grad": "fit sets it to 1/batch_size", "param_idx2name": "the module sets it",
                  "sym": "the module sets it", "lr_scheduler": "give lr_schedule={'name': 'cosine', ...} instead",
                  "param_dict": "the module sets it"}

def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalise a field of a frozen dataclass in __post_init__


@dataclass(frozen=True)
class ModelConfig:
    """The model section of :class:`FitConfig`: the stacked LSTM and what it is trained to predict.

    Every value is checked when the object is made. The settings reference lists each setting's
    default, bounds and command-line flag (generated from the declarations below).

    Parameters
    ----------
    hidden_sizes : tuple of int, default (10, 20, 1)
        One LSTM layer per size; the last must be 1, its hidden state is the prediction.
    label_mode : {'sequence', 'last'}
        A label at every step, or only after the last step.
    feature : {'time', 'value'}
        The input at each step: the time stamp ``t`` or the value at ``t``.
    cell : {'auto', 'native', 'fused', 'unrolled'}
        How the stack is built; all share one parameter layout.
    forget_bias : float, default 0.0
        Initial forget-gate bias.
    step_weight : float, default 4.0
        The loss of step ``k`` weighs ``1 + step_weight * exp(-(k - 1) / step_tau)``.
    step_tau : float, default 1.0
        How many steps the extra weight lasts.
    scaling : tuple of (float, float), default None
        ``(center, scale)`` for ``feature='value'``: the model sees ``(x - center) / scale``, a
        ``Predictor`` takes and returns values in the series' own units.
    window_level : {'none', 'last'}
        Series models: ``'last'`` models each window around its own last value, ``(x - x_last) / scale``
        (``feature='value'`` and ``label_mode='last'`` only), so a trending series never leaves the range
        the model was trained on; ``'none'`` around the fixed ``center``.
    init : {'library', 'gluon'}
        Initial weights drawn from the run's seed: Xavier per gate block, or Gluon's default
        ``U[-0.07, 0.07]``.

    Raises
    ------
    ValueError, TypeError
        A value out of range or of the wrong kind, naming the setting and what is accepted.

    Examples
    --------
    >>> from sinlstm_sym import ModelConfig
    >>> ModelConfig(hidden_sizes=[16, 1]).hidden_sizes
    (16, 1)
    """

    hidden_sizes: Tuple[int, ...] = setting(
        DEFAULT_HIDDEN_SIZES, kind="ints", help="one stacked LSTM layer per size; the last must be 1 (it is the "
        "prediction)")
    label_mode: str = setting(DEFAULT_LABEL_MODE, kind="choice", choices=LABEL_MODES,
                              help="'sequence': a label at every step; 'last': the step after the window only")
    feature: str = setting(DEFAULT_FEATURE, kind="choice", choices=FEATURES,
                           help="input at each step: the time stamp t (as the original) or the value at t "
                           "(sin(t)/2 for the built-in windows)")
    cell: str = setting(DEFAULT_CELL, kind="choice", choices=cell_choices, help="'auto': 'native' (one C++ operator "
                        "for the stack) where it builds, else 'fused' (one mx.sym.RNN per layer); 'unrolled': "
                        "mx.rnn.LSTMCell per step; the same parameters, outputs equal within about 1e-5 (not bit "
                        "for bit)")
    forget_bias: float = setting(  # beyond EXPLODED_PARAMETER a parameter counts as diverged
        DEFAULT_FORGET_BIAS, kind="float", minimum=-EXPLODED_PARAMETER, maximum=EXPLODED_PARAMETER, flag=False,
        help="initial forget-gate bias")
    step_weight: float = setting(  # loss weight of step k: 1 + step_weight * exp(-(k - 1) / step_tau)
        DEFAULT_STEP_WEIGHT, kind="float", minimum=0.0, flag=False, help="extra loss weight of the first steps")
    step_tau: float = setting(DEFAULT_STEP_TAU, kind="float", minimum=0.0, strict=True, flag=False,
                              help="how many steps the extra weight lasts")
    scaling: Optional[Tuple[float, float]] = setting(None, kind="tuple", flag=False,
                                                     help="(center, scale) of the series' values")
    window_level: str = setting(DEFAULT_WINDOW_LEVEL, kind="choice", choices=WINDOW_LEVELS, flag=False,
                                help="series models: 'last' models each window around its own last value, "
                                "(x - x_last) / scale, and predicts the change from it; 'none': around the fixed "
                                "center of the training values")
    init: str = setting(DEFAULT_INIT, kind="choice", choices=INITS, help="initial weights, drawn from the seed: "
                        "'library' (Xavier per gate block) or 'gluon' (Gluon's default, every weight "
                        "U[-0.07, 0.07], the original's)")

    def __post_init__(self) -> None:
        check_declared(self, _set)
        with naming("hidden_sizes"):
            sizes = check_hidden_sizes(self.hidden_sizes)
            check_condition(sizes[-1] == 1, "hidden_sizes must end with 1: the last layer's hidden state is the "
                            f"prediction of one value per step, got {list(sizes)}")
        _set(self, "hidden_sizes", sizes)
        if self.scaling is not None:
            with naming("scaling"):
                _set(self, "scaling", check_scaling(self.scaling))
            check_condition(self.feature == "value", "scaling applies to past values: it needs feature='value', "
                            f"got feature={self.feature!r}", settings=("scaling", "feature"))
        if self.window_level != "none":
            check_condition(self.feature == "value" and self.label_mode == "last",
                            f"window_level={self.window_level!r} models a window of past values around its last "
                            "one and predicts the value after the window: it needs feature='value' and "
                            f"label_mode='last', got feature={self.feature!r}, label_mode={self.label_mode!r}",
                            settings=("window_level", "feature", "label_mode"))


@dataclass(frozen=True)
class DataConfig:
    """The data section of :class:`FitConfig`: the built-in sine windows (:class:`SinBucketIter`).

    Ignored by ``fit(train_iter=...)`` except ``batch_size``, which then comes from the iterator.

    Parameters
    ----------
    buckets : tuple of int, default (1, ..., 9, 12, 16, 20)
        Window lengths to train on, one bucket each (kept sorted).
    batch_size : int, default 100
        Windows per batch.
    num_samples : int, default 100000
        Windows per epoch (at least ``batch_size``).
    length_weights : tuple of float, default None
        Relative frequency of each bucket, in the order the buckets were given (``None``: equal).
    t_low : float, default -0.1
        Training windows start at ``t0 ~ U[t_low, t_high)``.
    t_high : float, default 1.12
        The end of the start times' range (excluded).

    Raises
    ------
    ValueError, TypeError
        A value out of range or of the wrong kind, naming the setting and what is accepted.

    Examples
    --------
    >>> from sinlstm_sym import DataConfig
    >>> DataConfig(buckets=[9, 3], length_weights=[1, 2]).length_weights
    (2.0, 1.0)
    """

    buckets: Tuple[int, ...] = setting(DEFAULT_BUCKETS, kind="ints", help="window lengths to train on, one "
                                       "bucket each, e.g. '1-9' or '3,6,9'")
    batch_size: int = setting(DEFAULT_BATCH_SIZE, kind="int", minimum=1, help="windows per batch")
    num_samples: int = setting(DEFAULT_NUM_SAMPLES, kind="int", minimum=1, help="windows per epoch")
    length_weights: Optional[Tuple[float, ...]] = setting(
        None, kind="floats", help="relative frequency of each bucket, in the order of the buckets (default: equal)")
    t_low: float = setting(DEFAULT_T_RANGE[0], kind="float", flag=False,  # t0 ~ U[t_low, t_high)
                           help="earliest start time of a training window")
    t_high: float = setting(DEFAULT_T_RANGE[1], kind="float", flag=False, help="latest start time (excluded)")

    def __post_init__(self) -> None:
        check_declared(self, _set)
        with naming("buckets"):
            given = check_int_sequence("buckets", self.buckets, minimum=1)
        _set(self, "buckets", tuple(sorted(given)))
        with naming("num_samples", "batch_size"):
            check_int("num_samples", self.num_samples, minimum=self.batch_size)
        if self.length_weights is not None:
            with naming("length_weights", "buckets"):
                by_key = dict(zip(given, check_weights("length_weights", self.length_weights, len(given))))
            weights = tuple(by_key[k] for k in self.buckets)
            _set(self, "length_weights", None if len(set(weights)) == 1 else weights)  # equal weights: the default
        check_condition(self.t_high > self.t_low, f"t_high must be > t_low, got t_low={self.t_low!r}, "
                        f"t_high={self.t_high!r}", settings=("t_high", "t_low"))


def _optimizer_class(name: str) -> Type[mx.optimizer.Optimizer]:
    registry = mx.optimizer.Optimizer.opt_registry
    check_condition(name.lower() in registry, f"optimizer must be an MXNet optimizer name such as 'adam' or "
                    f"'sgd' (known: {sorted(registry)}), got {name!r}")
    return registry[name.lower()]


def _default_learning_rate(name: str) -> float:
    """The optimizer's own default learning rate (Adam 0.001, SGD 0.01, ...)."""
    default = argument_defaults(_optimizer_class(name)).get("learning_rate")
    return float(default) if isinstance(default, (int, float)) else 0.01


def _checked_params(name: str, klass: Type[mx.optimizer.Optimizer], params: Any) -> Dict[str, Any]:
    """``optimizer_params`` checked against optimizer ``name``'s arguments (kinds and ranges)."""
    params = {} if params is None else params
    check_condition(isinstance(params, Mapping) and all(isinstance(k, str) for k in params),
                    f"optimizer_params must be a dict of keyword arguments, got {params!r}", TypeError)
    defaults = {k: v for k, v in argument_defaults(klass).items() if k not in _RESERVED_ARGS}
    clean: Dict[str, Any] = {}
    for key, value in params.items():
        check_condition(key not in _RESERVED_ARGS, f"optimizer_params must not set {key}: {_RESERVED_ARGS.get(key)}")
        check_condition(key in defaults, f"optimizer_params: {key!r} is not an argument of optimizer {name!r}; "
                        f"accepted: {sorted(defaults)}")
        clean[key] = check_optimizer_arg(f"optimizer_params[{key!r}]", spec_of(key, defaults[key]), value)
    return clean


@dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer section of :class:`FitConfig`: an MXNet optimizer and its learning-rate schedule.

    Parameters
    ----------
    name : str, default 'adam'
        An MXNet optimizer name (flat keyword ``optimizer``).
    params : dict, default {'learning_rate': 0.03, 'beta2': 0.99}
        The optimizer's keyword arguments (flat keyword ``optimizer_params``), each checked against
        its kind and range; another optimizer starts from ``{}``.
    lr_schedule : dict or None, default {'name': 'cosine', 'warmup_steps': 100}
        MXNet's ``mx.lr_scheduler`` as JSON (names ``cosine``, ``poly``, ``factor``,
        ``multifactor``; ``max_update`` defaults to the run's updates). ``None``: a constant rate.
    extend_schedule : float or ExtendSchedule, default None
        For a resumed run longer than its schedule: the peak rate of a cosine appended over the
        extra updates, down to the schedule's final rate (kept as an
        :class:`~sinlstm_sym.config.schedules.ExtendSchedule`, which ``fit`` settles against the run).

    Raises
    ------
    ValueError, TypeError
        An unknown optimizer, an argument it does not take (the message lists those it takes), a
        value out of range, or a schedule that does not fit the run.

    Examples
    --------
    >>> from sinlstm_sym import OptimizerConfig
    >>> OptimizerConfig(name="sgd", params={"momentum": 0.9}).learning_rate
    0.01
    """

    name: str = setting(DEFAULT_OPTIMIZER, kind="name", name="optimizer",
                        help="an MXNet optimizer name, e.g. adam or sgd")
    params: Dict[str, Any] = setting(kind="json", name="optimizer_params",
                                     factory=lambda: dict(DEFAULT_OPTIMIZER_PARAMS),
                                     help="JSON object of optimizer arguments")
    lr_schedule: Optional[Dict[str, Any]] = setting(  # None: a constant rate
        kind="json_or_null", factory=lambda: dict(DEFAULT_LR_SCHEDULE),
        help="JSON learning-rate schedule, e.g. '{\"name\": \"cosine\", \"warmup_steps\": 100}' (names: cosine, "
             "poly, factor, multifactor; max_update defaults to the run's updates; 'null' for a constant rate)")
    extend_schedule: Optional[ExtendSchedule] = setting(
        None, kind="float", metavar="RATE", help="with a resume for more updates than the checkpoint's schedule "
        "covers: append a cosine from RATE down to the schedule's final rate over the extra updates (e.g. a tenth "
        "of the peak rate); without it such a resume is refused")

    def __post_init__(self) -> None:
        with naming("optimizer"):
            check_condition(isinstance(self.name, str), f"optimizer must be an MXNet optimizer name such as "
                            f"'adam' or 'sgd', got {self.name!r}", TypeError)
            klass = _optimizer_class(self.name)
        _set(self, "name", self.name.lower())
        with naming("optimizer_params", "optimizer"):
            _set(self, "params", _checked_params(self.name, klass, self.params))
        with naming("lr_schedule"):
            _set(self, "lr_schedule", check_lr_schedule(self.lr_schedule))
        warmup_begin = (self.lr_schedule or {}).get("warmup_begin_lr", 0.0)
        check_condition(warmup_begin <= self.learning_rate, f"lr_schedule warmup_begin_lr ({warmup_begin:g}) must "
                        f"be <= the learning_rate ({self.learning_rate:g}) the warm-up rises to",
                        settings=("lr_schedule", "optimizer_params"))
        with naming("extend_schedule", "lr_schedule", "optimizer_params"):
            _set(self, "extend_schedule", check_extend_schedule(self.extend_schedule, self.lr_schedule,
                                                                self.learning_rate))

    @property
    def learning_rate(self) -> float:
        """The configured (peak) learning rate: ``params['learning_rate']`` or the optimizer's default."""
        return float(self.params.get("learning_rate", _default_learning_rate(self.name)))

    @property
    def schedule_needs_length(self) -> bool:
        """Whether the schedule still needs ``max_update`` (``fit`` fills in the run's number of updates)."""
        return schedule_needs_length(self.lr_schedule)

    def create(self, rescale_grad: float,
               implementation: Optional[Type[mx.optimizer.Optimizer]] = None) -> mx.optimizer.Optimizer:
        """A fresh MXNet optimizer; gradients are multiplied by ``rescale_grad`` (1 / windows per update).

        Parameters
        ----------
        rescale_grad : float
            The factor of every gradient.
        implementation : type, optional
            A subclass of the named optimizer's class with the same arguments and updates, built instead of it
            (``fit`` passes :class:`~sinlstm_sym.native.adam.FusedAdam` for 'adam' where the native operator runs).

        Returns
        -------
        mxnet.optimizer.Optimizer

        Raises
        ------
        ValueError, TypeError
            A schedule still lacking its length, arguments the optimizer refuses, or an ``implementation``
            that is not a subclass of the named optimizer's class.
        """
        check_condition(not self.schedule_needs_length, "lr_schedule needs max_update (the number of updates)")
        params = dict(self.params)
        if self.lr_schedule is not None:
            params["lr_scheduler"] = create_scheduler(self.lr_schedule, self.learning_rate)
        if self.extend_schedule is not None:
            check_condition(self.extend_schedule.settled, "extend_schedule needs from_update and max_update "
                            "(fit settles them against the checkpoint and the run)")
            params["lr_scheduler"] = self._extension()
        klass = _optimizer_class(self.name)
        check_condition(implementation is None or (isinstance(implementation, type) and
                                                   issubclass(implementation, klass)),
                        f"implementation must be a subclass of {klass.__name__}, got {implementation!r}", TypeError)
        try:
            if implementation is not None:
                return implementation(rescale_grad=rescale_grad, **params)
            return mx.optimizer.create(self.name, rescale_grad=rescale_grad, **params)
        except (TypeError, ValueError) as err:
            raise ValueError(f"optimizer_params {self.params!r} do not fit optimizer {self.name!r}: {err}") from None

    def _extension(self) -> mx.lr_scheduler.LRScheduler:
        """The appended segment as MXNet's own cosine schedule (it pickles to the servers as it is): a cosine
        from ``peak_lr`` at ``from_update`` down to ``final_lr`` at ``max_update``. Its constant 'warm-up'
        covers the updates before ``from_update``, which a resumed run has already done."""
        assert self.extend_schedule is not None and self.lr_schedule is not None
        final = float(self.lr_schedule.get("final_lr", 0.0))
        ext = self.extend_schedule
        segment = mx.lr_scheduler.CosineScheduler(max_update=ext.max_update, base_lr=ext.peak_lr,
                                                  final_lr=final, warmup_steps=ext.from_update,
                                                  warmup_begin_lr=final, warmup_mode="constant")
        # The optimizer overwrites a scheduler's base_lr that differs from its learning_rate (with a printed
        # warning); the cosine computes from base_lr_orig (peak_lr), so base_lr may hold the learning_rate.
        segment.base_lr = self.learning_rate
        return segment


# (setting, the setting it needs, the message when it is missing)
_NEEDS = (("checkpoint_every", "checkpoint", "checkpoint_every needs checkpoint='DIR'"),
          ("overwrite", "checkpoint", "overwrite=True needs checkpoint='DIR' (the directory whose checkpoints the "
                                      "new run replaces)"),
          ("resume", "checkpoint", "resume=True needs checkpoint='DIR'"),
          *((name, "validation_lengths", f"{name} needs validation_lengths (the held-out lengths to score)")
            for name in ("validate_every", "target_max_error", "patience")))


@dataclass(frozen=True)
class RunConfig:
    """The run section of :class:`FitConfig`: epochs, seed, devices, logging, checkpoints, validation.

    Parameters
    ----------
    num_epoch : int, default 2
        Passes over fresh windows.
    seed : int, default None
        Seed of the windows and the initial weights; ``None`` draws one, recorded in the result.
    ctx : str or list, default None
        Devices: ``'cpu'``, ``'cpu:0,1'``, ``'gpu'``, ``'gpu:0,1'`` (default CPU).
    kvstore : str, default 'local'
        Gradient aggregation: ``'local'``/``'device'``, or ``'dist_sync'``/``'dist_async'`` under
        ``python -m sinlstm_sym.launch``.
    log_every : int, default 100
        Log the mean loss every N batches.
    progress_bar : bool, default False
        A progress bar (needs the ``progress`` extra).
    checkpoint : str, default None
        Run directory for checkpoints, written after every epoch.
    checkpoint_every : int, default None
        Also checkpoint every N batches.
    resume : bool, default False
        Continue the run in ``checkpoint``.
    allow_pickle : bool, default False
        Resume a version 0.1 checkpoint (its optimizer state is a pickle: trusted files only).
    overwrite : bool, default False
        Start a new run in a directory holding another run's checkpoints.
    validation_lengths : tuple of int, default None
        Score held-out windows of these lengths while training and keep the best parameters.
    validation_samples : int, default 500
        Held-out windows per length.
    validate_every : int, default None
        Also validate every N batches (always at each epoch end).
    target_max_error : float, default None
        Stop once the held-out max abs error is this small.
    patience : int, default None
        Stop after this many validations without improvement.

    Raises
    ------
    ValueError, TypeError
        A value out of range, or a setting without the one it needs (``resume`` without
        ``checkpoint``, ``patience`` without ``validation_lengths``, ...).

    Examples
    --------
    >>> from sinlstm_sym import RunConfig
    >>> RunConfig(ctx="cpu:0,1").ctx
    ('cpu:0', 'cpu:1')
    """

    num_epoch: int = setting(DEFAULT_NUM_EPOCH, kind="int", minimum=1, help="passes over fresh windows")
    seed: Optional[int] = setting(None, kind="int", minimum=0, help="seed of the windows and the initial weights "
                                  "(a resumed run keeps its checkpoint's)")
    ctx: Any = setting(None, kind="contexts", help="devices: 'cpu', 'cpu:0,1', 'gpu', 'gpu:0,1' (GPUs need the "
                       "GPU build); checked against the machine by fit")
    kvstore: str = setting("local", kind="choice", choices=KVSTORES, help="gradient aggregation: local/device for "
                           "several devices, dist_* for workers started by python -m sinlstm_sym.launch (then only "
                           "rank 0 reports)")
    log_every: int = setting(100, kind="int", minimum=1, help="log the mean loss every N batches")
    progress_bar: bool = setting(False, kind="flag", flag=False, help="a progress bar (needs tqdm)")
    checkpoint: Optional[str] = setting(None, kind="path", metavar="DIR", help="write an atomic checkpoint to DIR "
                                        "after every epoch (see sinlstm-evaluate)")
    checkpoint_every: Optional[int] = setting(None, kind="int", minimum=1, metavar="N",
                                              help="also checkpoint every N batches (needs a checkpoint directory)")
    resume: bool = setting(False, kind="flag", help="continue from the latest checkpoint in the checkpoint directory")
    allow_pickle: bool = setting(  # a version 0.1 checkpoint's optimizer state is a pickle
        False, kind="flag", flag=False, help="resume a version 0.1 checkpoint")
    overwrite: bool = setting(False, kind="flag", help="start a new run in a checkpoint directory that holds another "
                              "run's checkpoints; they are removed once this run's first checkpoint is complete "
                              "(without it, such a directory is refused)")
    validation_lengths: Optional[Tuple[int, ...]] = setting(
        None, kind="ints", help="score held-out windows of these lengths while training (e.g. '1-20'); keeps the "
        "best parameters (and DIR/best with a checkpoint directory)")
    validation_samples: int = setting(500, kind="int", minimum=1, help="held-out windows per length")
    validate_every: Optional[int] = setting(None, kind="int", minimum=1, metavar="N",
                                            help="also validate every N batches (always at each epoch end)")
    target_max_error: Optional[float] = setting(None, kind="float", minimum=0.0, strict=True,
                                                help="stop once the held-out max abs error is this small")
    patience: Optional[int] = setting(None, kind="int", minimum=1,
                                      help="stop after this many validations without improvement")

    def __post_init__(self) -> None:
        check_declared(self, _set)
        with naming("ctx"):
            _set(self, "ctx", context_strings(self.ctx))  # checked against the machine by fit
        if self.checkpoint is not None:
            check_condition(isinstance(self.checkpoint, (str, os.PathLike)) and str(self.checkpoint) != "",
                            f"checkpoint must be a directory path or None, got {self.checkpoint!r}", TypeError,
                            settings=("checkpoint",))
            _set(self, "checkpoint", os.fspath(self.checkpoint))
        if self.validation_lengths is not None:
            with naming("validation_lengths"):
                lengths = check_int_sequence("validation_lengths", self.validation_lengths, minimum=1)
            _set(self, "validation_lengths", tuple(sorted(lengths)))
        self._check_combinations()

    def _check_combinations(self) -> None:
        """The settings that need another one, or exclude it."""
        for name, needed, message in _NEEDS:
            check_condition(getattr(self, name) in (None, False) or getattr(self, needed) is not None, message,
                            settings=(name, needed))
        check_condition(not (self.overwrite and self.resume), "overwrite=True starts a new run over another run's "
                        "checkpoints; it cannot be combined with resume=True, which continues that run",
                        settings=("overwrite", "resume"))
        check_condition(not (self.resume and self.distributed), f"resume=True is not supported with "
                        f"kvstore={self.kvstore!r}: the optimizer state lives on the servers",
                        settings=("resume", "kvstore"))

    @property
    def distributed(self) -> bool:
        return self.kvstore.startswith("dist")


_SECTIONS: Dict[str, Type[Any]] = {"model": ModelConfig, "data": DataConfig, "optimizer": OptimizerConfig,
                                   "run": RunConfig}
# fit's flat keyword -> (section, field); the optimizer's fields keep their 0.1 keyword names.
_DECLARED: Dict[str, Tuple[str, str, SettingInfo]] = {  # flat keyword -> (section, field, declaration)
    info.name: (s, name, info) for s in ("model", "data", "run", "optimizer")
    for name, info in declared(_SECTIONS[s]).items()}
_FLAT: Dict[str, Tuple[str, str]] = {key: (s, name) for key, (s, name, _) in _DECLARED.items()}
# Settings a resumed run may change: they change no number of the training.
RESUMABLE_CHANGES = ("num_epoch", "ctx", "kvstore", "log_every", "progress_bar", "checkpoint", "checkpoint_every",
                     "resume", "allow_pickle", "overwrite", "validation_lengths", "validation_samples",
                     "validate_every", "target_max_error", "patience")


def _changed_sections(sections: Dict[str, Any], flat: Mapping[str, Any]) -> Dict[str, Any]:
    """``sections`` (name -> section object) with the given flat settings changed."""
    unknown = sorted(set(flat) - set(_FLAT))
    check_condition(not unknown, f"unknown setting(s) {unknown}; accepted: {list(_FLAT)}", TypeError, settings=unknown)
    if "optimizer" in flat and "optimizer_params" not in flat and \
            str(flat["optimizer"]).lower() != sections["optimizer"].name:
        flat = dict(flat, optimizer_params={})  # another optimizer starts from MXNet's own arguments
    changes: Dict[str, Dict[str, Any]] = {}
    for key, value in flat.items():
        section, name = _FLAT[key]
        changes.setdefault(section, {})[name] = value
    return {s: dataclasses.replace(obj, **changes[s]) if s in changes else obj for s, obj in sections.items()}


@dataclass(frozen=True)
class FitConfig:
    """Everything :func:`~sinlstm_sym.train.fit.fit` needs, in four validated sections.

    The defaults are the library's training recipe. Sections are frozen; :meth:`replace` and
    the flat keywords of ``fit`` change single settings by name (``buckets``, ``seed``, ...).

    Parameters
    ----------
    model : ModelConfig
        The stacked LSTM and what it predicts.
    data : DataConfig
        The built-in sine windows.
    optimizer : OptimizerConfig
        The optimizer and its learning-rate schedule.
    run : RunConfig
        Epochs, seed, devices, logging, checkpoints and validation.

    Raises
    ------
    ValueError, TypeError
        A section of the wrong type, or settings of two sections that do not fit together
        (more devices than windows per batch, an optimizer checkpoints cannot hold).

    See Also
    --------
    FitConfig.original : the 2018 setup.
    FitConfig.series : the recipe for real series.

    Examples
    --------
    >>> from sinlstm_sym import FitConfig
    >>> config = FitConfig().replace(buckets=range(1, 10), seed=1)
    >>> config.data.buckets, config.run.seed
    ((1, 2, 3, 4, 5, 6, 7, 8, 9), 1)
    >>> FitConfig.from_json(config.to_json()) == config
    True
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        for name, klass in _SECTIONS.items():
            check_condition(isinstance(getattr(self, name), klass), f"FitConfig.{name} must be a {klass.__name__}, "
                            f"got {getattr(self, name)!r}", TypeError)
        if self.run.checkpoint is not None and not self.run.distributed:
            with naming("optimizer", "checkpoint"):
                check_checkpointable_optimizer(self.optimizer.name)
        check_condition(self.data.batch_size >= len(self.run.ctx), f"ctx lists {len(self.run.ctx)} devices but "
                        f"batch_size is {self.data.batch_size}: every device needs at least one window of a batch",
                        settings=("ctx", "batch_size"))

    def check_memory(self) -> "FitConfig":
        """This configuration, unless its buckets, batch, model or held-out set would not fit in the memory
        available now (``ValueError`` with the estimate; time: one pass over the lengths). ``fit`` calls it
        before training; it is not part of creating a configuration, so a checkpoint's always loads."""
        model, data = self.model, self.data
        with naming("buckets", "batch_size", "hidden_sizes"):
            check_training(data.buckets, data.batch_size, model.hidden_sizes, model.cell)
        if self.run.validation_lengths is not None:
            with naming("validation_lengths", "validation_samples", "batch_size", "hidden_sizes"):
                check_validation(self.run.validation_lengths, self.run.validation_samples, data.batch_size,
                                 model.hidden_sizes, model.cell)
        return self

    @staticmethod
    def flat_names() -> Tuple[str, ...]:
        """The keywords :func:`fit` and :meth:`replace` accept."""
        return tuple(_FLAT)

    @staticmethod
    def declarations() -> Dict[str, SettingInfo]:
        """What each setting is (help, kind, bounds, choices), by flat keyword: the command lines' flags are
        made from it."""
        return {key: info for key, (_, _, info) in _DECLARED.items()}

    def replace(self, **flat: Any) -> "FitConfig":
        """A copy with the given flat settings changed.

        Parameters
        ----------
        **flat
            Settings by their flat keyword (``buckets=...``, ``optimizer_params=...``). Changing
            ``optimizer`` alone starts its arguments from ``{}``.

        Returns
        -------
        FitConfig
            The new configuration, checked as a whole.

        Raises
        ------
        TypeError
            An unknown setting (the message lists the accepted ones).
        ValueError
            A value that does not fit.
        """
        return type(self)(**_changed_sections({s: getattr(self, s) for s in _SECTIONS}, flat))

    @classmethod
    def from_flat(cls, **flat: Any) -> "FitConfig":
        """A configuration from flat settings, the others at their defaults."""
        return cls(**_changed_sections({s: klass() for s, klass in _SECTIONS.items()}, flat))

    def flat(self) -> Dict[str, Any]:
        """Every setting under its flat keyword."""
        return {key: getattr(getattr(self, s), n) for key, (s, n) in _FLAT.items()}

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict, section by section (tuples as lists; ``extend_schedule`` as its dict)."""
        payload = dataclasses.asdict(self)
        if self.optimizer.extend_schedule is not None:
            payload["optimizer"]["extend_schedule"] = self.optimizer.extend_schedule.to_json()
        return json.loads(json.dumps(payload))

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> "FitConfig":
        """The inverse of :meth:`to_json`; raises ``ValueError`` naming what does not fit."""
        check_condition(isinstance(payload, Mapping) and set(payload) <= set(_SECTIONS),
                        f"a FitConfig JSON must be an object with sections {list(_SECTIONS)}, got {payload!r}")
        sections = {}
        for name, klass in _SECTIONS.items():
            values = dict(payload.get(name, {}))
            known = {f.name for f in dataclasses.fields(klass)}
            check_condition(set(values) <= known, f"FitConfig section {name!r} has unknown fields "
                            f"{sorted(set(values) - known)}")
            sections[name] = klass(**values)
        return cls(**sections)

    def training_json(self) -> Dict[str, Any]:
        """The flat settings that determine the numbers of a training (compared on resume). A cell counts as
        its parameter layout: the cells of one layout ('fused', 'native' and 'auto' hold the fused one) share
        parameters and numbers, so they compare equal."""
        flat = self.flat()
        if flat["extend_schedule"] is not None:
            flat["extend_schedule"] = flat["extend_schedule"].to_json()
        flat = json.loads(json.dumps(flat))
        flat["cell"] = f"{requested_layout(flat['cell']).name} layout"
        return {k: v for k, v in flat.items() if k not in RESUMABLE_CHANGES}

    def differences(self, other: "FitConfig") -> Dict[str, Tuple[Any, Any]]:
        """``{name: (this value, other's value)}`` for every training setting that differs, by name (cells are
        compared by their parameter layout and shown by the names given)."""
        mine, theirs = self.training_json(), other.training_json()
        if mine["cell"] != theirs["cell"]:
            mine["cell"], theirs["cell"] = self.model.cell, other.model.cell
        return {k: (mine.get(k), theirs.get(k)) for k in sorted(set(mine) | set(theirs))
                if mine.get(k) != theirs.get(k)}

    def describe_differences(self, other: "FitConfig") -> str:
        """``'name=a there, b now'`` for every training setting that differs ('' if none)."""
        return ", ".join(f"{k}={a!r} there, {b!r} now" for k, (a, b) in self.differences(other).items())

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "FitConfig":
        """The configuration stored in a checkpoint: sections (this version) or flat settings (version 0.1,
        whose defaults were :data:`V01_DEFAULTS`)."""
        check_condition(isinstance(settings, Mapping), f"settings must be a JSON object, got {settings!r}")
        if set(settings) <= set(_SECTIONS):
            return cls.from_json(settings)
        return cls.from_flat(**{**V01_DEFAULTS, **{k: v for k, v in settings.items() if k in _FLAT}})

    @classmethod
    def original(cls, **flat: Any) -> "FitConfig":
        """The original 2018 setup, in every respect that changes a number.

        9 steps, last-step label, batch 300, 300000 windows, one epoch, ``t0 ~ U[0, 1)``, the
        optimizer at MXNet's defaults (Adam at 0.001, SGD at 0.01) with no schedule, Gluon's
        default initial weights (``init='gluon'``: every weight ``U[-0.07, 0.07]``, every bias 0).

        Parameters
        ----------
        **flat
            Settings changed from the original's, by flat keyword (``optimizer='sgd'``).

        Returns
        -------
        FitConfig

        Examples
        --------
        >>> from sinlstm_sym import FitConfig
        >>> FitConfig.original().data.buckets, FitConfig.original().model.label_mode
        ((9,), 'last')
        """
        return cls.from_flat(**{**ORIGINAL_SETTINGS, **flat})

    @classmethod
    def series(cls, **flat: Any) -> "FitConfig":
        """The recipe for real series (``sinlstm_sym.series.fit_series``, ``sinlstm-series``).

        Next-value windows of 5, 10, 15 and 20 points (``feature='value'``, last-step label), a
        32-32-1 stack, batch 100, 60000 windows per epoch, 5 epochs, Adam at a constant 0.01
        with weight decay 1e-4, forget-gate bias 1, and each window modelled around its last value
        (``window_level='last'``).

        Parameters
        ----------
        **flat
            Settings changed from the recipe's, by flat keyword.

        Returns
        -------
        FitConfig
        """
        return cls.from_flat(**{**SERIES_SETTINGS, **flat})


ORIGINAL_SETTINGS: Dict[str, Any] = dict(
    buckets=ORIGINAL_BUCKETS, label_mode="last", batch_size=ORIGINAL_BATCH_SIZE, num_samples=ORIGINAL_NUM_SAMPLES,
    num_epoch=1, optimizer_params={}, lr_schedule=None, forget_bias=ORIGINAL_FORGET_BIAS, init=ORIGINAL_INIT,
    step_weight=0.0, t_low=ORIGINAL_T_RANGE[0], t_high=ORIGINAL_T_RANGE[1])
SERIES_SETTINGS: Dict[str, Any] = dict(
    feature="value", label_mode="last", buckets=SERIES_BUCKETS, hidden_sizes=SERIES_HIDDEN_SIZES,
    batch_size=SERIES_BATCH_SIZE, num_samples=SERIES_NUM_SAMPLES, num_epoch=SERIES_NUM_EPOCH,
    optimizer_params=SERIES_OPTIMIZER_PARAMS, lr_schedule=None, forget_bias=SERIES_FORGET_BIAS,
    window_level=SERIES_WINDOW_LEVEL)
# The defaults of version 0.1, whose checkpoints store flat settings: the original's task with the library's
# initial weights and forget bias 1 (what 0.1 called the original).
V01_DEFAULTS: Dict[str, Any] = dict(ORIGINAL_SETTINGS, forget_bias=1.0, init=DEFAULT_INIT)


# Settings of one invocation: on resume they never come from the checkpoint (an extension of the schedule is
# asked for again by each resume that needs one; the checkpoint's own segment stays recorded there).
RESUME_INVOCATION_DEFAULTS: Dict[str, Any] = dict(resume=True, overwrite=False, allow_pickle=False,
                                                  extend_schedule=None)


def resumed_config(saved: FitConfig, given: Mapping[str, Any]) -> FitConfig:
    """The configuration of a resumed run: the checkpoint's settings ``saved``, with the flat settings
    ``given`` explicitly replacing them.

    Parameters
    ----------
    saved : FitConfig
        The settings the checkpoint was trained with (as :meth:`FitConfig.from_settings` reads them).
    given : mapping of str to any
        The flat settings given for this run (``checkpoint`` among them); they override the
        checkpoint's. ``resume``, ``overwrite``, ``allow_pickle`` and ``extend_schedule`` are never
        taken from the checkpoint, and a checkpoint trained with a cell that may not run on another machine
        (``cell='native'``) resumes with ``cell='auto'`` (the same parameters; 'fused' where the native
        operator does not build).

    Returns
    -------
    FitConfig
        The checked configuration.

    Raises
    ------
    ValueError, TypeError
        A given setting is invalid or does not fit the checkpoint's others (the error names it).
    """
    base = dict(RESUME_INVOCATION_DEFAULTS)
    if saved.model.cell in cell_names() and cell_named(saved.model.cell).conditional:
        base["cell"] = AUTO
    return saved.replace(**{**base, **given})
