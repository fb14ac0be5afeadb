"""Learning-rate schedules as JSON (``{'name': 'cosine', 'warmup_steps': 100, ...}``), checked, and the segment
a resumed run may append past a schedule's end (``extend_schedule``); both become MXNet's own
``mx.lr_scheduler`` objects in :meth:`~sinlstm_sym.config.OptimizerConfig.create`."""
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import mxnet as mx

from ..core.checks import check_choice, check_condition, check_float, check_int, check_int_sequence
from .optimizer_args import check_optimizer_arg, spec_of

# Learning-rate schedules (MXNet's own ``mx.lr_scheduler`` classes) by name, and the checks of their arguments:
# name -> (class, {argument: kind}); kinds: 'int>=1', 'int>=0', 'ints>=1' (increasing), 'rate' (0 < x <= 1),
# 'float>=0', 'float>0', 'mode'. ``base_lr`` is the optimizer's learning_rate.
SCHEDULES: Dict[str, Tuple[Any, Dict[str, str]]] = {
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
    number = check_float(name, value, minimum=0.0, strict_minimum=kind in ("float>0", "rate"), float32=True)
    check_condition(kind != "rate" or number <= 1.0, f"{name} must be in (0, 1], got {value!r}")
    return number


def check_lr_schedule(spec: Any) -> Optional[Dict[str, Any]]:
    """A learning-rate schedule as JSON: ``{'name': 'cosine'|'poly'|'factor'|'multifactor', **arguments}``."""
    if spec is None:
        return None
    check_condition(isinstance(spec, Mapping) and isinstance(spec.get("name"), str),
                    f"lr_schedule must be None or a dict with a 'name' among {sorted(SCHEDULES)}, got {spec!r}",
                    TypeError)
    name = spec["name"]
    check_condition(name in SCHEDULES, f"lr_schedule name must be one of {sorted(SCHEDULES)}, got {name!r}")
    kinds = {**SCHEDULES[name][1], **_WARMUP_ARGS}
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
    return spec is not None and "max_update" in SCHEDULES[spec["name"]][1]


@dataclass(frozen=True)
class ExtendSchedule:
    """A cosine segment appended past the end of a schedule (``extend_schedule``), from ``peak_lr`` down to the
    schedule's final rate; checked on creation.

    Parameters
    ----------
    peak_lr : float
        The segment's first rate.
    from_update, max_update : int, optional
        The updates it spans, settled by ``fit`` against the checkpoint and the run (both or neither).

    Raises
    ------
    ValueError, TypeError
        A rate that is not a positive float32 number, or updates that are not ints with
        ``1 <= from_update < max_update`` (or one without the other).
    """

    peak_lr: float
    from_update: Optional[int] = None
    max_update: Optional[int] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak_lr", check_optimizer_arg("extend_schedule", spec_of("learning_rate", None),
                                                                self.peak_lr))
        if self.from_update is not None or self.max_update is not None:
            first = check_int("extend_schedule['from_update']", self.from_update, minimum=1)
            check_int("extend_schedule['max_update']", self.max_update, minimum=first + 1)

    @property
    def settled(self) -> bool:
        """Whether the updates it spans are known."""
        return self.max_update is not None

    def to_json(self) -> Dict[str, Any]:
        """What a checkpoint stores: ``{'peak_lr'}``, with ``from_update`` and ``max_update`` once settled."""
        if not self.settled:
            return {"peak_lr": self.peak_lr}
        return {"peak_lr": self.peak_lr, "from_update": self.from_update, "max_update": self.max_update}


def check_extend_schedule(value: Any, lr_schedule: Optional[Mapping[str, Any]],
                          learning_rate: float) -> Optional[ExtendSchedule]:
    """``extend_schedule``: ``None``, the peak rate of a cosine segment appended past the schedule's end, or
    that segment settled as ``{'peak_lr', 'from_update', 'max_update'}`` (what a checkpoint stores) or as an
    :class:`ExtendSchedule`, checked against the schedule it extends."""
    if value is None:
        return None
    spec = value.to_json() if isinstance(value, ExtendSchedule) else \
        value if isinstance(value, Mapping) else {"peak_lr": value}
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
    if "from_update" in spec or "max_update" in spec:
        first = check_int("extend_schedule['from_update']", spec.get("from_update"), minimum=1)
        return ExtendSchedule(peak, first, check_int("extend_schedule['max_update']", spec.get("max_update"),
                                                     minimum=first + 1))
    return ExtendSchedule(peak)


def _warmup_rate(spec: Mapping[str, Any], base_lr: float, update: int) -> float:
    """The rate of MXNet's warm-up at ``update`` (< warmup_steps)."""
    begin = float(spec.get("warmup_begin_lr", 0.0))
    if spec.get("warmup_mode", "linear") == "constant":
        return begin
    return begin + (base_lr - begin) * update / spec["warmup_steps"]


def _decayed_rate(spec: Mapping[str, Any], base_lr: float, update: int) -> float:
    """A lower bound of the rate at ``update`` past the warm-up (a rate that underflows to 0 in MXNet's
    repeated multiplications counts as the smallest double, which no operator takes)."""
    name = spec["name"]
    if name in ("cosine", "poly"):  # stateless formulas: MXNet's own, from a fresh scheduler
        return float(create_scheduler(spec, base_lr)(update))
    if name == "factor":
        decayed = base_lr * float(spec["factor"]) ** (update // spec["step"])
        stop = float(spec.get("stop_factor_lr", 1e-8))
        return max(stop, decayed if decayed > 0 else 5e-324)
    decayed = base_lr * float(spec.get("factor", 1.0)) ** sum(1 for s in spec["step"] if s <= update)
    return decayed if decayed > 0 else 5e-324


def smallest_rate(spec: Optional[Mapping[str, Any]], base_lr: float, first: int, last: Optional[int]) -> float:
    """The smallest positive learning rate (a lower bound) of ``spec`` from ``base_lr`` over updates ``first``
    .. ``last`` (``None``: unknown, the decay is then judged at the schedule's ``max_update`` if it has one).
    MXNet's schedules rise during the warm-up and never rise after it, so the smallest rate is at an end of
    the run: its first update, or its last ones. ``0``: no positive rate (a constant warm-up from 0 only)."""
    if spec is None:
        return base_lr
    warmup = int(spec.get("warmup_steps", 0))
    end = last if last is not None else spec.get("max_update")
    updates = [first] + ([end - 1, end] if end is not None else [])
    rates = [_warmup_rate(spec, base_lr, t) if t < warmup else _decayed_rate(spec, base_lr, t)
             for t in updates if t >= first]
    positive = [r for r in rates if r > 0]
    return min(positive) if positive else 0.0


def schedule_needs_length(spec: Optional[Mapping[str, Any]]) -> bool:
    """Whether a schedule still needs ``max_update`` (``fit`` fills in the run's number of updates)."""
    return spec is not None and schedule_has_end(spec) and "max_update" not in spec


def create_scheduler(spec: Mapping[str, Any], base_lr: float) -> mx.lr_scheduler.LRScheduler:
    """MXNet's scheduler for a checked ``spec``, starting from ``base_lr`` (the optimizer's learning rate:
    MXNet's schedulers keep their own ``base_lr`` otherwise)."""
    arguments = {k: v for k, v in spec.items() if k != "name"}
    return SCHEDULES[spec["name"]][0](base_lr=base_lr, **arguments)
