"""A learning-rate schedule planned against the run before training: what the configuration left open is
filled in (from the checkpoint on resume, else from the run's length), and a schedule that would divide by
zero, stay in its warm-up, or end before the run (MXNet's cosine and poly schedulers, rebuilt on resume,
return the peak rate past their ``max_update``) is refused with what to do instead."""
import logging
import math
from typing import Any, Dict, Optional, Tuple

from ..core.checks import FLOAT32_MIN_NORMAL, SettingValueError, check_condition, naming
from ..config.fit_config import FitConfig
from ..config.schedules import ExtendSchedule, check_lr_schedule, schedule_has_end, smallest_rate
from ..constants import DEFAULT_LR_SCHEDULE, OPTIMIZER_INT_LIMIT

logger = logging.getLogger(__name__)

_ADAM_BETA2 = 0.999  # mx.optimizer.Adam's default

_HOW_TO_EXTEND = ("to train past it, pass extend_schedule=RATE (--extend-schedule RATE), which appends a cosine "
                  "from RATE down to the schedule's final_lr over the extra updates (a tenth of the peak rate is a "
                  "safe choice), or keep num_epoch at what the checkpoint was trained for")


def _filled(config: FitConfig, saved: Optional[FitConfig], last: Optional[int]) -> Dict[str, Any]:
    """The schedule with ``max_update`` settled: from the checkpoint, else from the run."""
    spec = dict(config.optimizer.lr_schedule or {})
    saved_spec = saved.optimizer.lr_schedule if saved is not None else None
    if saved_spec is not None and saved_spec["name"] == spec["name"]:
        if "max_update" not in spec and "max_update" in saved_spec:
            spec["max_update"] = saved_spec["max_update"]
    elif last is not None and config.optimizer.schedule_needs_length:
        spec["max_update"] = last
        if spec == {**DEFAULT_LR_SCHEDULE, "max_update": last} and spec["warmup_steps"] >= last:
            # the default's warm-up covers the whole run: it stays all warm-up (as it always was), and the
            # cosine that would follow it starts one update after the warm-up, so nothing divides by zero
            spec["max_update"] = spec["warmup_steps"] + 1
            logger.info("the default learning-rate schedule warms up over %d updates, at least this run's %d: "
                        "the whole run trains at a rising rate, with no decay; give lr_schedule (e.g. "
                        "{'name': 'cosine', 'warmup_steps': %d}) for a warm-up and a decay within the run",
                        spec["warmup_steps"], last, last // 10)
    return spec


def _extension(config: FitConfig, spec: Dict[str, Any], saved: Optional[FitConfig], done: int, last: int,
               end: int) -> Tuple[Optional[ExtendSchedule], bool]:
    """(the settled extend_schedule, whether it is new in this run) for a run whose last update is ``last``
    and whose checkpoint's schedule (``spec``, settled) ends at ``end``."""
    asked = config.optimizer.extend_schedule
    stored = saved.optimizer.extend_schedule if saved is not None else None
    if last <= end:
        check_condition(asked is None or (stored is not None and asked.peak_lr == stored.peak_lr),
                        f"extend_schedule={asked and asked.peak_lr!r}: there is nothing to extend, the run's "
                        f"{last} updates end within the schedule (it ends at update {end})",
                        settings=("extend_schedule",))
        return stored, False
    if saved is None:
        raise SettingValueError(f"lr_schedule max_update ({spec.get('max_update')}) is shorter than the run's {last} "
                         f"updates: give max_update >= {last}, or leave it out (the run's updates)"
                         + ("" if asked is None else "; extend_schedule only continues a resumed run"),
                                ("lr_schedule", "num_epoch"))
    check_condition(asked is not None, f"resume=True with num_epoch={config.run.num_epoch} trains {last} updates, "
                    f"past the end of the checkpoint's {spec.get('name')} schedule (update {end}): rebuilt, it would "
                    f"restart at the peak rate; {_HOW_TO_EXTEND}", settings=("num_epoch", "extend_schedule"))
    assert asked is not None
    check_condition(done >= end, f"extend_schedule appends after the schedule's end (update {end}), but the "
                    f"checkpoint stopped at update {done}: resume it with the num_epoch it was trained for first",
                    settings=("extend_schedule", "num_epoch"))
    return ExtendSchedule(asked.peak_lr, end, last), True


def check_update_rates(config: FitConfig, spec: Optional[Dict[str, Any]], first: int, last: Optional[int]) -> None:
    """Refuse a learning rate that reaches MXNet's update operators below the smallest normal float32 (they
    take their ``lr`` as float32 and fail at that update with "Out of range value"): the schedule's smallest
    positive rate over updates ``first`` .. ``last``, times Adam's bias correction (at least ``sqrt(1 -
    beta2)``: Adam hands ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` to its operator)."""
    optimizer = config.optimizer
    learning_rate = optimizer.learning_rate
    factor = 1.0
    if optimizer.name == "adam":
        factor = math.sqrt(1.0 - float(optimizer.params.get("beta2", _ADAM_BETA2)))
    smallest = smallest_rate(spec, learning_rate, first, last) * factor
    if smallest == 0.0 or smallest >= FLOAT32_MIN_NORMAL * (1 + 1e-9):
        return
    needed = learning_rate * FLOAT32_MIN_NORMAL / smallest * (1 + 1e-6)
    raise SettingValueError(
        f"optimizer_params['learning_rate'] = {learning_rate:g} reaches MXNet's update operator as a rate as small "
        f"as {smallest:.3g} (the schedule's smallest rate" + (", times Adam's bias correction" if factor < 1 else "")
        + f"), below {FLOAT32_MIN_NORMAL:.4g}, the smallest float32 number the operators take: give a learning_rate "
        f"of at least {needed:.3g}" + ("" if spec is None else " or a schedule whose rates stay above it"),
        ("optimizer_params", "lr_schedule"))


def plan_schedule(config: FitConfig, saved: Optional[FitConfig], done: int,
                  updates: Optional[int]) -> Tuple[Dict[str, Any], bool]:
    """The flat settings that settle ``config``'s schedule (``lr_schedule``, ``extend_schedule``; empty if
    none changes), checked against a run of ``updates`` updates (``None``: unknown) resumed at update ``done``
    of ``saved`` (``None``: a new run); and whether ``extend_schedule`` starts a new segment in this run (the
    checkpoint then had none or an older one). ``fit`` applies them with its other settled values at once.
    Every learning rate the run hands to MXNet is checked (:func:`check_update_rates`)."""
    changes, new = _plan_schedule(config, saved, done, updates)
    begin = int(config.optimizer.params.get("begin_num_update", 0))
    spec = changes.get("lr_schedule", config.optimizer.lr_schedule)
    check_update_rates(config, spec, max(begin, done) + 1, None if updates is None else begin + updates)
    return changes, new


def _plan_schedule(config: FitConfig, saved: Optional[FitConfig], done: int,
                   updates: Optional[int]) -> Tuple[Dict[str, Any], bool]:
    optimizer = config.optimizer
    begin = int(optimizer.params.get("begin_num_update", 0))
    last = None if updates is None else begin + updates  # the scheduler sees updates begin+1 .. begin+updates
    check_condition(last is None or last <= OPTIMIZER_INT_LIMIT, f"optimizer_params['begin_num_update'] ({begin}) "
                    f"plus the run's {updates} updates must be <= {OPTIMIZER_INT_LIMIT}: MXNet counts updates in int32",
                    settings=("optimizer_params", "num_epoch", "num_samples"))
    if optimizer.lr_schedule is None:
        return {}, False
    spec = _filled(config, saved, last)
    if last is None:
        return {"lr_schedule": spec}, False
    default = optimizer.lr_schedule == DEFAULT_LR_SCHEDULE  # left at the default: it may be all warm-up (logged)
    if not default and "max_update" not in (optimizer.lr_schedule or {}):  # else the run may be a prefix of it
        check_condition(spec.get("warmup_steps", 0) < last, f"lr_schedule warmup_steps ({spec.get('warmup_steps')})"
                        f" must be < the run's {last} updates (num_epoch x batches per epoch), else the run is all "
                        "warm-up and never decays: lower warmup_steps or train longer",
                        settings=("lr_schedule", "num_epoch", "num_samples", "batch_size"))
    with naming("lr_schedule"):
        spec = check_lr_schedule(spec) or {}  # checks warmup_steps < max_update
    if not schedule_has_end(spec):
        return {"lr_schedule": spec}, False
    stored = saved.optimizer.extend_schedule if saved is not None else None
    end = stored.max_update if stored is not None and stored.max_update is not None else spec["max_update"]
    extension, new = _extension(config, spec, saved, done, last, end)
    return {"lr_schedule": spec, "extend_schedule": extension}, new


__all__ = ["check_update_rates", "plan_schedule"]
