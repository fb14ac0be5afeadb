"""One typed configuration for :func:`~sinlstm_sym.fitting.fit`: frozen dataclasses, validated on creation.

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

from .checks import (check_bool, check_choice, check_condition, check_float, check_int, check_int_sequence,
                     check_scaling, check_weights)
from .constants import (CELLS, DEFAULT_BATCH_SIZE, DEFAULT_BUCKETS, DEFAULT_CELL, DEFAULT_FEATURE,
                        DEFAULT_FORGET_BIAS, DEFAULT_HIDDEN_SIZES, DEFAULT_INIT, DEFAULT_LABEL_MODE,
                        DEFAULT_LR_SCHEDULE, DEFAULT_NUM_EPOCH, DEFAULT_NUM_SAMPLES, DEFAULT_OPTIMIZER,
                        DEFAULT_OPTIMIZER_PARAMS, DEFAULT_STEP_TAU, DEFAULT_STEP_WEIGHT, DEFAULT_T_RANGE, FEATURES,
                        FUSED_LAYOUT_CELLS, INITS, KVSTORES, LABEL_MODES, ORIGINAL_BATCH_SIZE, ORIGINAL_BUCKETS,
                        ORIGINAL_FORGET_BIAS, ORIGINAL_INIT, ORIGINAL_NUM_SAMPLES, ORIGINAL_T_RANGE, SERIES_BATCH_SIZE,
                        SERIES_BUCKETS, SERIES_FORGET_BIAS, SERIES_HIDDEN_SIZES, SERIES_NUM_EPOCH, SERIES_NUM_SAMPLES,
                        SERIES_OPTIMIZER_PARAMS)
from .context import context_strings
from .limits import check_training, check_validation
from .optimizer_args import argument_defaults, check_checkpointable_optimizer, check_optimizer_arg, spec_of
from .params import check_hidden_sizes

# Arguments fit sets itself or that cannot be stored as JSON.
_RESERVED_ARGS = {"rescale_grad": "fit sets it to 1/batch_size", "param_idx2name": "the module sets it",
                  "sym": "the module sets it", "lr_scheduler": "give lr_schedule={'name': 'cosine', ...} instead",
                  "param_dict": "the module sets it"}

def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalise a field of a frozen dataclass in __post_init__


@dataclass(frozen=True)
class ModelConfig:
    """The stacked LSTM: ``hidden_sizes`` (the last is 1: it is the prediction), what it is
    trained to predict (``label_mode``), its input (``feature``), the cell, the forget-gate bias and the
    initial weights (``init``: ``'library'``, Xavier per gate block, or ``'gluon'``, Gluon's default
    ``U[-0.07, 0.07]``; both drawn from the run's seed).
    ``scaling=(center, scale)`` (``feature='value'`` only): the model sees ``(x - center) / scale``;
    a :class:`~sinlstm_sym.infer.predictor.Predictor` takes and returns values in the series' own units."""

    hidden_sizes: Tuple[int, ...] = DEFAULT_HIDDEN_SIZES
    label_mode: str = DEFAULT_LABEL_MODE
    feature: str = DEFAULT_FEATURE
    cell: str = DEFAULT_CELL
    forget_bias: float = DEFAULT_FORGET_BIAS
    step_weight: float = DEFAULT_STEP_WEIGHT  # loss weight of step k: 1 + step_weight * exp(-(k - 1) / step_tau)
    step_tau: float = DEFAULT_STEP_TAU
    scaling: Optional[Tuple[float, float]] = None
    init: str = DEFAULT_INIT

    def __post_init__(self) -> None:
        sizes = check_hidden_sizes(self.hidden_sizes)
        check_condition(sizes[-1] == 1, "hidden_sizes must end with 1: the last layer's hidden state is the "
                        f"prediction of one value per step, got {list(sizes)}")
        _set(self, "hidden_sizes", sizes)
        check_choice("label_mode", self.label_mode, LABEL_MODES)
        check_choice("feature", self.feature, FEATURES)
        check_choice("cell", self.cell, CELLS)
        check_choice("init", self.init, INITS)
        _set(self, "forget_bias", check_float("forget_bias", self.forget_bias))
        _set(self, "step_weight", check_float("step_weight", self.step_weight, minimum=0.0))
        _set(self, "step_tau", check_float("step_tau", self.step_tau, minimum=0.0, strict_minimum=True))
        if self.scaling is not None:
            _set(self, "scaling", check_scaling(self.scaling))
            check_condition(self.feature == "value", "scaling applies to past values: it needs feature='value', "
                            f"got feature={self.feature!r}")


@dataclass(frozen=True)
class DataConfig:
    """The built-in sine windows (:class:`~sinlstm_sym.data.windows.SinBucketIter`): lengths, batch size,
    windows per epoch and the relative frequency of each length. Ignored by ``fit(train_iter=...)``
    except ``batch_size``, which then comes from the iterator."""

    buckets: Tuple[int, ...] = DEFAULT_BUCKETS
    batch_size: int = DEFAULT_BATCH_SIZE
    num_samples: int = DEFAULT_NUM_SAMPLES
    length_weights: Optional[Tuple[float, ...]] = None
    t_low: float = DEFAULT_T_RANGE[0]  # start times of training windows: t0 ~ U[t_low, t_high)
    t_high: float = DEFAULT_T_RANGE[1]

    def __post_init__(self) -> None:
        given = check_int_sequence("buckets", self.buckets, minimum=1)
        _set(self, "buckets", tuple(sorted(given)))
        batch_size = check_int("batch_size", self.batch_size, minimum=1)
        _set(self, "batch_size", batch_size)
        _set(self, "num_samples", check_int("num_samples", self.num_samples, minimum=batch_size))
        if self.length_weights is not None:
            by_key = dict(zip(given, check_weights("length_weights", self.length_weights, len(given))))
            weights = tuple(by_key[k] for k in self.buckets)
            _set(self, "length_weights", None if len(set(weights)) == 1 else weights)  # equal weights: the default
        _set(self, "t_low", check_float("t_low", self.t_low))
        _set(self, "t_high", check_float("t_high", self.t_high))
        check_condition(self.t_high > self.t_low, f"t_high must be > t_low, got t_low={self.t_low!r}, "
                        f"t_high={self.t_high!r}")


# Learning-rate schedules (MXNet's own ``mx.lr_scheduler`` classes) by name, and the checks of their arguments:
# name -> (class, {argument: kind}); kinds: 'int>=1', 'int>=0', 'ints>=1' (increasing), 'rate' (0 < x <= 1),
# 'float>=0', 'float>0', 'mode'. ``base_lr`` is the optimizer's learning_rate.
_SCHEDULES: Dict[str, Tuple[Any, Dict[str, str]]] = {
    "cosine": (mx.lr_scheduler.CosineScheduler, {"max_update": "int>=1", "final_lr": "float>=0"}),
    "poly": (mx.lr_scheduler.PolyScheduler, {"max_update": "int>=1", "final_lr": "float>=0", "pwr": "float>0"}),
    "factor": (mx.lr_scheduler.FactorScheduler, {"step": "int>=1", "factor": "rate", "stop_factor_lr": "float>=0"}),
    "multifactor": (mx.lr_scheduler.MultiFactorScheduler, {"step": "ints>=1", "factor": "rate"}),
}
_WARMUP_ARGS = {"warmup_steps": "int>=0", "warmup_begin_lr": "float>=0", "warmup_mode": "mode"}
_REQUIRED = {"factor": ("step",), "multifactor": ("step",)}  # max_update defaults to the run's total updates


def _check_schedule_value(name: str, kind: str, value: Any) -> Any:
    if kind in ("int>=1", "int>=0"):
        return check_int(name, value, minimum=1 if kind == "int>=1" else 0)
    if kind == "ints>=1":
        steps = check_int_sequence(name, value, minimum=1)
        check_condition(list(steps) == sorted(steps), f"{name} must be increasing, got {list(steps)}")
        return list(steps)
    if kind == "mode":
        return check_choice(name, value, ("linear", "constant"))
    number = check_float(name, value, minimum=0.0, strict_minimum=kind in ("float>0", "rate"))
    check_condition(kind != "rate" or number <= 1.0, f"{name} must be in (0, 1], got {value!r}")
    return number


def check_lr_schedule(spec: Any) -> Optional[Dict[str, Any]]:
    """A learning-rate schedule as JSON: ``{'name': 'cosine'|'poly'|'factor'|'multifactor', **arguments}``."""
    if spec is None:
        return None
    check_condition(isinstance(spec, Mapping) and isinstance(spec.get("name"), str),
                    f"lr_schedule must be None or a dict with a 'name' among {sorted(_SCHEDULES)}, got {spec!r}",
                    TypeError)
    name = spec["name"]
    check_condition(name in _SCHEDULES, f"lr_schedule name must be one of {sorted(_SCHEDULES)}, got {name!r}")
    kinds = {**_SCHEDULES[name][1], **_WARMUP_ARGS}
    clean: Dict[str, Any] = {"name": name}
    for key, value in spec.items():
        if key == "name":
            continue
        check_condition(key in kinds, f"lr_schedule {name!r} takes {sorted(kinds)}, got {key!r}")
        clean[key] = _check_schedule_value(f"lr_schedule[{key!r}]", kinds[key], value)
    missing = [k for k in _REQUIRED.get(name, ()) if k not in clean]
    check_condition(not missing, f"lr_schedule {name!r} needs {missing}")
    if "max_update" in clean:  # MXNet divides by max_update - warmup_steps once the warm-up is over
        check_condition(clean.get("warmup_steps", 0) < clean["max_update"], f"lr_schedule warmup_steps "
                        f"({clean.get('warmup_steps')}) must be < max_update ({clean['max_update']}): the "
                        f"{name} decay needs at least one update after the warm-up")
    return clean


def schedule_has_end(spec: Optional[Mapping[str, Any]]) -> bool:
    """Whether a schedule ends at its ``max_update`` (cosine, poly): past it MXNet's scheduler, rebuilt on
    resume, would return the peak rate."""
    return spec is not None and "max_update" in _SCHEDULES[spec["name"]][1]


def check_extend_schedule(value: Any, lr_schedule: Optional[Mapping[str, Any]],
                          learning_rate: float) -> Optional[Dict[str, Any]]:
    """``extend_schedule``: ``None``, the peak rate of a cosine segment appended past the schedule's end, or
    that segment settled as ``{'peak_lr', 'from_update', 'max_update'}`` (what a checkpoint stores)."""
    if value is None:
        return None
    spec = value if isinstance(value, Mapping) else {"peak_lr": value}
    check_condition(set(spec) <= {"peak_lr", "from_update", "max_update"} and "peak_lr" in spec,
                    f"extend_schedule must be None, a learning rate or {{'peak_lr', 'from_update', 'max_update'}}, "
                    f"got {value!r}", TypeError)
    check_condition(schedule_has_end(lr_schedule), "extend_schedule appends to a schedule that ends (lr_schedule "
                    f"'cosine' or 'poly'), got lr_schedule={lr_schedule!r}")
    assert lr_schedule is not None
    final = float(lr_schedule.get("final_lr", 0.0))
    peak = check_optimizer_arg("extend_schedule", spec_of("learning_rate", None), spec["peak_lr"])
    check_condition(final <= peak <= learning_rate, f"extend_schedule must be a rate between the schedule's final_lr "
                    f"({final:g}) and its peak learning_rate ({learning_rate:g}), got {spec['peak_lr']!r}")
    clean: Dict[str, Any] = {"peak_lr": peak}
    if "from_update" in spec or "max_update" in spec:
        clean["from_update"] = check_int("extend_schedule['from_update']", spec.get("from_update"), minimum=1)
        clean["max_update"] = check_int("extend_schedule['max_update']", spec.get("max_update"),
                                        minimum=clean["from_update"] + 1)
    return clean


def _optimizer_class(name: str) -> Type[mx.optimizer.Optimizer]:
    registry = mx.optimizer.Optimizer.opt_registry
    check_condition(name.lower() in registry, f"optimizer must be an MXNet optimizer name such as 'adam' or "
                    f"'sgd' (known: {sorted(registry)}), got {name!r}")
    return registry[name.lower()]


def _default_learning_rate(name: str) -> float:
    """The optimizer's own default learning rate (Adam 0.001, SGD 0.01, ...)."""
    default = argument_defaults(_optimizer_class(name)).get("learning_rate")
    return float(default) if isinstance(default, (int, float)) else 0.01


@dataclass(frozen=True)
class OptimizerConfig:
    """An MXNet optimizer by ``name`` with keyword arguments ``params`` (JSON values, each checked against its
    kind and range: :mod:`~sinlstm_sym.optimizer_args`), a learning-rate schedule and, for a resumed run
    trained past its schedule's end, ``extend_schedule`` (the peak rate of a cosine segment over the extra
    updates, down to the schedule's ``final_lr``)."""

    name: str = DEFAULT_OPTIMIZER
    params: Dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZER_PARAMS))
    lr_schedule: Optional[Dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_LR_SCHEDULE))  # None: constant
    extend_schedule: Optional[Any] = None

    def __post_init__(self) -> None:
        check_condition(isinstance(self.name, str), f"optimizer must be an MXNet optimizer name such as 'adam' or "
                        f"'sgd', got {self.name!r}", TypeError)
        klass = _optimizer_class(self.name)
        _set(self, "name", self.name.lower())
        params = {} if self.params is None else self.params
        check_condition(isinstance(params, Mapping) and all(isinstance(k, str) for k in params),
                        f"optimizer_params must be a dict of keyword arguments, got {params!r}", TypeError)
        defaults = {k: v for k, v in argument_defaults(klass).items() if k not in _RESERVED_ARGS}
        clean: Dict[str, Any] = {}
        for key, value in params.items():
            check_condition(key not in _RESERVED_ARGS,
                            f"optimizer_params must not set {key}: {_RESERVED_ARGS.get(key)}")
            check_condition(key in defaults, f"optimizer_params: {key!r} is not an argument of optimizer "
                            f"{self.name!r}; accepted: {sorted(defaults)}")
            clean[key] = check_optimizer_arg(f"optimizer_params[{key!r}]", spec_of(key, defaults[key]), value)
        _set(self, "params", clean)
        _set(self, "lr_schedule", check_lr_schedule(self.lr_schedule))
        warmup_begin = (self.lr_schedule or {}).get("warmup_begin_lr", 0.0)
        check_condition(warmup_begin <= self.learning_rate, f"lr_schedule warmup_begin_lr ({warmup_begin:g}) must "
                        f"be <= the learning_rate ({self.learning_rate:g}) the warm-up rises to")
        _set(self, "extend_schedule", check_extend_schedule(self.extend_schedule, self.lr_schedule,
                                                            self.learning_rate))

    @property
    def learning_rate(self) -> float:
        """The configured (peak) learning rate: ``params['learning_rate']`` or the optimizer's default."""
        return float(self.params.get("learning_rate", _default_learning_rate(self.name)))

    @property
    def schedule_needs_length(self) -> bool:
        """Whether the schedule still needs ``max_update`` (``fit`` fills in the run's number of updates)."""
        return self.lr_schedule is not None and "max_update" in _SCHEDULES[self.lr_schedule["name"]][1] and \
            "max_update" not in self.lr_schedule

    def create(self, rescale_grad: float) -> mx.optimizer.Optimizer:
        """A fresh MXNet optimizer; gradients are multiplied by ``rescale_grad`` (1 / windows per update)."""
        check_condition(not self.schedule_needs_length, "lr_schedule needs max_update (the number of updates)")
        params = dict(self.params)
        if self.lr_schedule is not None:
            schedule = dict(self.lr_schedule)
            # the schedule starts from the optimizer's rate (MXNet's schedulers keep their own base_lr otherwise)
            schedule["base_lr"] = params.get("learning_rate", _default_learning_rate(self.name))
            params["lr_scheduler"] = _SCHEDULES[schedule.pop("name")][0](**schedule)
        if self.extend_schedule is not None:
            check_condition("max_update" in self.extend_schedule, "extend_schedule needs from_update and max_update "
                            "(fit settles them against the checkpoint and the run)")
            params["lr_scheduler"] = self._extension()
        try:
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
        segment = mx.lr_scheduler.CosineScheduler(max_update=ext["max_update"], base_lr=ext["peak_lr"],
                                                  final_lr=final, warmup_steps=ext["from_update"],
                                                  warmup_begin_lr=final, warmup_mode="constant")
        # The optimizer overwrites a scheduler's base_lr that differs from its learning_rate (with a printed
        # warning); the cosine computes from base_lr_orig (peak_lr), so base_lr may hold the learning_rate.
        segment.base_lr = self.learning_rate
        return segment


@dataclass(frozen=True)
class RunConfig:
    """How the run goes: epochs, seed (``None``: drawn once and recorded), devices, kvstore,
    logging, progress bar and checkpoints."""

    num_epoch: int = DEFAULT_NUM_EPOCH
    seed: Optional[int] = None
    ctx: Any = None  # normalised to a tuple of 'cpu:0'-style strings; its devices are checked by fit
    kvstore: str = "local"
    log_every: int = 100
    progress_bar: bool = False
    checkpoint: Optional[str] = None
    checkpoint_every: Optional[int] = None
    resume: bool = False
    allow_pickle: bool = False  # resume a version 0.1 checkpoint, whose optimizer state is a pickle
    overwrite: bool = False  # a new run may replace another run's checkpoints in `checkpoint`
    validation_lengths: Optional[Tuple[int, ...]] = None  # held-out windows of these lengths (None: no validation)
    validation_samples: int = 500  # held-out windows per length
    validate_every: Optional[int] = None  # also validate every N batches (always at each epoch end)
    target_max_error: Optional[float] = None  # stop once the max abs error on the held-out set is this small
    patience: Optional[int] = None  # stop after this many validations without improvement

    def __post_init__(self) -> None:
        _set(self, "num_epoch", check_int("num_epoch", self.num_epoch, minimum=1))
        if self.seed is not None:
            _set(self, "seed", check_int("seed", self.seed, minimum=0))
        _set(self, "ctx", context_strings(self.ctx))  # checked against the machine by fit
        check_choice("kvstore", self.kvstore, KVSTORES)
        _set(self, "log_every", check_int("log_every", self.log_every, minimum=1))
        check_bool("progress_bar", self.progress_bar)
        if self.checkpoint is not None:
            check_condition(isinstance(self.checkpoint, (str, os.PathLike)) and str(self.checkpoint) != "",
                            f"checkpoint must be a directory path or None, got {self.checkpoint!r}", TypeError)
            _set(self, "checkpoint", os.fspath(self.checkpoint))
        if self.checkpoint_every is not None:
            _set(self, "checkpoint_every", check_int("checkpoint_every", self.checkpoint_every, minimum=1))
            check_condition(self.checkpoint is not None, "checkpoint_every needs checkpoint='DIR'")
        check_bool("resume", self.resume)
        check_bool("allow_pickle", self.allow_pickle)
        check_bool("overwrite", self.overwrite)
        check_condition(not self.overwrite or self.checkpoint is not None, "overwrite=True needs checkpoint='DIR' "
                        "(the directory whose checkpoints the new run replaces)")
        check_condition(not (self.overwrite and self.resume), "overwrite=True starts a new run over another run's "
                        "checkpoints; it cannot be combined with resume=True, which continues that run")
        if self.validation_lengths is not None:
            _set(self, "validation_lengths", tuple(sorted(check_int_sequence("validation_lengths",
                                                                             self.validation_lengths, minimum=1))))
        _set(self, "validation_samples", check_int("validation_samples", self.validation_samples, minimum=1))
        if self.validate_every is not None:
            _set(self, "validate_every", check_int("validate_every", self.validate_every, minimum=1))
        if self.target_max_error is not None:
            _set(self, "target_max_error", check_float("target_max_error", self.target_max_error, minimum=0.0,
                                                       strict_minimum=True))
        if self.patience is not None:
            _set(self, "patience", check_int("patience", self.patience, minimum=1))
        for name in ("validate_every", "target_max_error", "patience"):
            check_condition(getattr(self, name) is None or self.validation_lengths is not None,
                            f"{name} needs validation_lengths (the held-out lengths to score)")
        check_condition(not self.resume or self.checkpoint is not None, "resume=True needs checkpoint='DIR'")
        check_condition(not (self.resume and self.distributed), f"resume=True is not supported with "
                        f"kvstore={self.kvstore!r}: the optimizer state lives on the servers")

    @property
    def distributed(self) -> bool:
        return self.kvstore.startswith("dist")


_SECTIONS: Dict[str, Type[Any]] = {"model": ModelConfig, "data": DataConfig, "optimizer": OptimizerConfig,
                                   "run": RunConfig}
# fit's flat keyword -> (section, field); the optimizer's fields keep their 0.1 keyword names.
_FLAT: Dict[str, Tuple[str, str]] = {
    **{f.name: (s, f.name) for s, k in _SECTIONS.items() if s != "optimizer" for f in dataclasses.fields(k)},
    "optimizer": ("optimizer", "name"), "optimizer_params": ("optimizer", "params"),
    "lr_schedule": ("optimizer", "lr_schedule"), "extend_schedule": ("optimizer", "extend_schedule")}
# Settings a resumed run may change: they change no number of the training.
RESUMABLE_CHANGES = ("num_epoch", "ctx", "kvstore", "log_every", "progress_bar", "checkpoint", "checkpoint_every",
                     "resume", "allow_pickle", "overwrite", "validation_lengths", "validation_samples",
                     "validate_every", "target_max_error", "patience")


def _changed_sections(sections: Dict[str, Any], flat: Mapping[str, Any]) -> Dict[str, Any]:
    """``sections`` (name -> section object) with the given flat settings changed."""
    unknown = sorted(set(flat) - set(_FLAT))
    check_condition(not unknown, f"unknown setting(s) {unknown}; accepted: {list(_FLAT)}", TypeError)
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
    """Everything :func:`~sinlstm_sym.fitting.fit` needs, in four validated sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        for name, klass in _SECTIONS.items():
            check_condition(isinstance(getattr(self, name), klass), f"FitConfig.{name} must be a {klass.__name__}, "
                            f"got {getattr(self, name)!r}", TypeError)
        if self.run.checkpoint is not None and not self.run.distributed:
            check_checkpointable_optimizer(self.optimizer.name)
        check_condition(self.data.batch_size >= len(self.run.ctx), f"ctx lists {len(self.run.ctx)} devices but "
                        f"batch_size is {self.data.batch_size}: every device needs at least one window of a batch")

    def check_memory(self) -> "FitConfig":
        """This configuration, unless its buckets, batch, model or held-out set would not fit in the memory
        available now (``ValueError`` with the estimate; time: one pass over the lengths). ``fit`` calls it
        before training; it is not part of creating a configuration, so a checkpoint's always loads."""
        model, data = self.model, self.data
        check_training(data.buckets, data.batch_size, model.hidden_sizes, model.cell)
        if self.run.validation_lengths is not None:
            check_validation(self.run.validation_lengths, self.run.validation_samples, data.batch_size,
                             model.hidden_sizes, model.cell)
        return self

    @staticmethod
    def flat_names() -> Tuple[str, ...]:
        """The keywords :func:`fit` and :meth:`replace` accept."""
        return tuple(_FLAT)

    def replace(self, **flat: Any) -> "FitConfig":
        """A copy with the given flat settings changed (``buckets=...``, ``optimizer_params=...``)."""
        return type(self)(**_changed_sections({s: getattr(self, s) for s in _SECTIONS}, flat))

    @classmethod
    def from_flat(cls, **flat: Any) -> "FitConfig":
        """A configuration from flat settings, the others at their defaults."""
        return cls(**_changed_sections({s: klass() for s, klass in _SECTIONS.items()}, flat))

    def flat(self) -> Dict[str, Any]:
        """Every setting under its flat keyword."""
        return {key: getattr(getattr(self, s), n) for key, (s, n) in _FLAT.items()}

    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict, section by section (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

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
        """The flat settings that determine the numbers of a training (compared on resume). The cells of
        the fused layout ('fused', 'native', 'auto') share parameters and numbers, so they compare equal."""
        flat = json.loads(json.dumps(self.flat()))
        if flat["cell"] in FUSED_LAYOUT_CELLS:
            flat["cell"] = "fused layout"
        return {k: v for k, v in flat.items() if k not in RESUMABLE_CHANGES}

    def describe_differences(self, other: "FitConfig") -> str:
        """``'name=a there, b now'`` for every training setting that differs ('' if none)."""
        mine, theirs = self.training_json(), other.training_json()
        return ", ".join(f"{k}={mine.get(k)!r} there, {theirs.get(k)!r} now" for k in sorted(set(mine) | set(theirs))
                         if mine.get(k) != theirs.get(k))

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
        """The original 2018 setup, in every respect that changes a number: 9 steps, last-step label, batch
        300, 300000 windows, one epoch, t0 ~ U[0, 1), the optimizer at MXNet's defaults (Adam at 0.001, SGD at
        0.01) with no schedule, Gluon's default initial weights (``init='gluon'``: every weight U[-0.07, 0.07],
        every bias 0, no forget-gate offset); with ``flat`` settings changed."""
        return cls.from_flat(**{**ORIGINAL_SETTINGS, **flat})

    @classmethod
    def series(cls, **flat: Any) -> "FitConfig":
        """The recipe for real series (:func:`~sinlstm_sym.series.fit_series`, ``examples/own_series.py``):
        next-value windows of 5, 10, 15 and 20 points (``feature='value'``, last-step label), a 32-32-1 stack,
        batch 100, 60000 windows per epoch, 5 epochs, Adam at a constant 0.01 with weight decay 1e-4 and the
        forget-gate bias 1; with ``flat`` settings changed."""
        return cls.from_flat(**{**SERIES_SETTINGS, **flat})


ORIGINAL_SETTINGS: Dict[str, Any] = dict(
    buckets=ORIGINAL_BUCKETS, label_mode="last", batch_size=ORIGINAL_BATCH_SIZE, num_samples=ORIGINAL_NUM_SAMPLES,
    num_epoch=1, optimizer_params={}, lr_schedule=None, forget_bias=ORIGINAL_FORGET_BIAS, init=ORIGINAL_INIT,
    step_weight=0.0, t_low=ORIGINAL_T_RANGE[0], t_high=ORIGINAL_T_RANGE[1])
SERIES_SETTINGS: Dict[str, Any] = dict(
    feature="value", label_mode="last", buckets=SERIES_BUCKETS, hidden_sizes=SERIES_HIDDEN_SIZES,
    batch_size=SERIES_BATCH_SIZE, num_samples=SERIES_NUM_SAMPLES, num_epoch=SERIES_NUM_EPOCH,
    optimizer_params=SERIES_OPTIMIZER_PARAMS, lr_schedule=None, forget_bias=SERIES_FORGET_BIAS)
# The defaults of version 0.1, whose checkpoints store flat settings: the original's task with the library's
# initial weights and forget bias 1 (what 0.1 called the original).
V01_DEFAULTS: Dict[str, Any] = dict(ORIGINAL_SETTINGS, forget_bias=1.0, init=DEFAULT_INIT)
