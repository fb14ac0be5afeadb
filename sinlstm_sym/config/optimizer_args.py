"""The typed schema of MXNet optimizer arguments: each argument's kind and range, checked before MXNet sees it.

MXNet's update operators take their arguments as float32/int32/bool operator parameters: a value they cannot
parse ("Out of range value for wd, value='1e+300'", "expect boolean but value='no'") fails inside the C++
layer at the first update, and some values pass silently and then misbehave (``multi_precision='yes'`` is
taken as true, ``begin_num_update=-5`` is a math domain error in Adam). So every argument has a kind here:

- ``bool``: ``True``/``False`` only (JSON ``true``/``false``), never a string or a number;
- ``int``: an integer (not a bool) in ``[low, OPTIMIZER_INT_LIMIT]`` (int32: MXNet passes counts to int operator
  parameters);
- ``float``: a finite real number in its range, 0 or at least the smallest normal float32 (1.18e-38) in size (the
  operators refuse denormals such as 1e-45) and at most ``OPTIMIZER_FLOAT_LIMIT`` (1e6) in size. The operators
  take float32 parameters (above 3.4e38 MXNet refuses them at the first update) and multiply them with the
  learning rate, the weights and the gradients, which overflows float32 long before; no useful setting of a rate,
  a decay, a bound or an epsilon comes near 1e6 (a learning rate of 1e6 already diverges, and is reported so);
- ``float or None`` (``clip_gradient``, ``clip_weights``, ``lower_bound``, ``upper_bound``): ``None`` turns it off;
- a choice among strings.

An argument not listed (a custom optimizer's) takes the kind of its default value (bool, int, float), or any
JSON scalar when its default is ``None``.
"""
import inspect
import numbers
from typing import Any, Dict, Optional, Tuple, Type

import mxnet as mx

from ..core.checks import check_bool, check_choice, check_condition, check_float, check_float32, check_int
from ..constants import OPTIMIZER_FLOAT_LIMIT, OPTIMIZER_INT_LIMIT

# (kind, low, low inclusive, high, high inclusive); kinds: 'bool', 'int', 'float', 'float?' (None allowed), 'choice'
_Spec = Tuple[str, Any, bool, float, bool]
_LIMIT = OPTIMIZER_FLOAT_LIMIT
_UNIT = (0.0, True, 1.0, False)  # [0, 1): a decay of moving averages
ARG_KINDS: Dict[str, _Spec] = {
    **{name: ("bool", None, True, 0.0, True) for name in
       ("multi_precision", "lazy_update", "centered", "bias_correction", "momentum_correction")},
    "begin_num_update": ("int", 0, True, OPTIMIZER_INT_LIMIT, True),
    "begin_epoch": ("int", 0, True, OPTIMIZER_INT_LIMIT, True),
    **{name: ("int", 1, True, OPTIMIZER_INT_LIMIT, True) for name in
       ("warmup_epochs", "updates_per_epoch", "num_epochs", "batch_scale")},
    "learning_rate": ("float", 0.0, False, _LIMIT, True),
    **{name: ("float", *_UNIT) for name in ("momentum", "beta1", "beta2", "gamma1", "gamma2", "rho")},
    "epsilon": ("float", 0.0, False, _LIMIT, True),
    **{name: ("float", 0.0, True, _LIMIT, True) for name in
       ("wd", "eps", "lamda1", "beta", "lamda", "schedule_decay", "wd_lh")},
    "eta": ("float", 0.0, False, _LIMIT, True),
    **{name: ("float?", 0.0, False, _LIMIT, True) for name in ("clip_gradient", "clip_weights")},
    **{name: ("float?", 0.0, True, _LIMIT, True) for name in ("lower_bound", "upper_bound")},
    "warmup_strategy": ("choice", ("linear", "power2", "sqrt", "lars"), True, 0.0, True),
}


def _spec_from_default(default: Any) -> Optional[_Spec]:
    """The kind of an unlisted argument, from its default value (None: any JSON scalar)."""
    if isinstance(default, bool):
        return ("bool", None, True, 0.0, True)
    if isinstance(default, numbers.Integral):
        return ("int", 0, True, OPTIMIZER_INT_LIMIT, True)
    if isinstance(default, numbers.Real):
        return ("float", -_LIMIT, True, _LIMIT, True)
    return None


def _range_text(low: float, low_inclusive: bool, high: float, high_inclusive: bool) -> str:
    def text(x: float) -> str:
        return str(x) if isinstance(x, int) else f"{x:g}"
    return f"{'>=' if low_inclusive else '>'} {text(low)} and {'<=' if high_inclusive else '<'} {text(high)}"


def check_optimizer_arg(label: str, spec: Optional[_Spec], value: Any) -> Any:
    """``value`` checked against ``spec`` (see the module docstring); ``label`` names it in errors."""
    if spec is None:
        check_condition(value is None or isinstance(value, (bool, numbers.Real, str)),
                        f"{label} must be a number, a bool, a string or None, got {value!r} ({type(value).__name__})",
                        TypeError)
        return value
    kind, low, low_inclusive, high, high_inclusive = spec
    if kind == "bool":
        return check_bool(label, value)
    if kind == "choice":
        return check_choice(label, value, low)
    if kind == "float?" and value is None:
        return None
    number: float = check_int(label, value) if kind == "int" else check_float(label, value)
    ok = (number >= low if low_inclusive else number > low) and (number <= high if high_inclusive else number < high)
    why = "" if kind == "int" or high != _LIMIT else \
        " (MXNet's update operators take float32 arguments and overflow on larger values)"
    check_condition(ok, f"{label} must be {_range_text(low, low_inclusive, high, high_inclusive)}{why}, got "
                        f"{value!r}")
    return number if kind == "int" else check_float32(label, number)


def argument_defaults(klass: Type[mx.optimizer.Optimizer]) -> Dict[str, Any]:
    """Every keyword argument of an optimizer class (its ``__init__`` and its bases'), with its default."""
    defaults: Dict[str, Any] = {}
    for cls in klass.__mro__:
        if cls is object or "__init__" not in vars(cls):
            continue
        for param in inspect.signature(vars(cls)["__init__"]).parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY) and param.name != "self":
                defaults.setdefault(param.name, param.default)
    return defaults


def spec_of(name: str, default: Any) -> Optional[_Spec]:
    """The kind of argument ``name`` (listed, or from its default)."""
    return ARG_KINDS.get(name) or _spec_from_default(default)


# Optimizers whose whole state is their update counters and per-parameter NDArrays (or
# tuples of them, or None); the others keep state in attributes (Nadam's m_schedule,
# LBSGD, LARS), hold None inside a tuple (DCASGD) or draw random numbers (SGLD): a resume could not
# continue exactly.
CHECKPOINTABLE_OPTIMIZERS = ("adam", "sgd", "nag", "adamax", "adagrad", "adadelta", "rmsprop", "ftrl", "signum",
                             "ftml", "lamb")


def check_checkpointable_optimizer(name: str) -> None:
    """Refuse an optimizer whose state a checkpoint cannot hold exactly (``ValueError`` naming the supported ones)."""
    check_condition(isinstance(name, str), f"optimizer must be an MXNet optimizer name such as 'adam' or 'sgd', "
                    f"got {name!r}", TypeError)
    check_condition(name.lower() in CHECKPOINTABLE_OPTIMIZERS,
                    f"optimizer {name!r} cannot be checkpointed (its state is not only per-parameter arrays and "
                    f"update counts); with checkpoint='DIR' use one of {', '.join(CHECKPOINTABLE_OPTIMIZERS)}")


__all__ = ["ARG_KINDS", "CHECKPOINTABLE_OPTIMIZERS", "argument_defaults", "check_checkpointable_optimizer",
           "check_optimizer_arg", "spec_of"]
