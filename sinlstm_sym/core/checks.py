"""Argument checks shared by every public entry point.

Each helper raises ``TypeError`` for a value of the wrong kind and ``ValueError``
for a value of the right kind outside the accepted set, always naming the
argument and what is accepted, so that nothing bad reaches MXNet's C++ layer.
"""
import contextlib
import math
import numbers
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Tuple, Type


class SettingError(Exception):
    """A bad value of named settings (``settings``: their :func:`~sinlstm_sym.train.fit.fit` keywords, the one at
    fault first), so a caller such as the command line can name its flags without reading the message."""

    def __init__(self, message: str, settings: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.settings: Tuple[str, ...] = tuple(settings)


class SettingValueError(SettingError, ValueError):
    """A setting's value outside what is accepted."""


class SettingTypeError(SettingError, TypeError):
    """A setting's value of the wrong kind."""


class SettingFileNotFoundError(SettingError, FileNotFoundError):
    """A setting names a file or directory that does not exist."""


_NAMED: Dict[Type[Exception], Type[SettingError]] = {
    ValueError: SettingValueError, TypeError: SettingTypeError, FileNotFoundError: SettingFileNotFoundError}


def check_condition(condition: bool, message: str, error: Type[Exception] = ValueError,
                    settings: Sequence[str] = ()) -> None:
    """Raise ``error(message)`` unless ``condition`` holds; with ``settings``, its :class:`SettingError` twin
    naming them."""
    if not condition:
        raise _NAMED[error](message, settings) if settings and error in _NAMED else error(message)


def settings_of(err: BaseException) -> Tuple[str, ...]:
    """The settings an error names (``()`` for an error that names none)."""
    return err.settings if isinstance(err, SettingError) else ()


@contextlib.contextmanager
def naming(*settings: str) -> Iterator[None]:
    """Name ``settings`` in a ``ValueError``, ``TypeError`` or ``FileNotFoundError`` raised inside (same
    message; an error that already names settings, or of another class, passes unchanged)."""
    try:
        yield
    except (ValueError, TypeError, FileNotFoundError) as err:
        if isinstance(err, SettingError) or type(err) not in _NAMED:
            raise
        raise _NAMED[type(err)](str(err), settings) from err


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: Optional[int] = None) -> int:
    """Return ``value`` as ``int`` if it is an integer (not bool) ``>= minimum``."""
    check_condition(_is_int(value), f"{name} must be an int, got {value!r} ({type(value).__name__})", TypeError)
    if minimum is not None:
        check_condition(value >= minimum, f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


# What MXNet's operators take: their float parameters are parsed as float32, and a value outside the float32
# range or below its smallest normal number (a denormal, 1e-45) is refused with "Out of range value" (or a
# native operator's "must be a number") at the first update, or overflows to inf in the graph.
FLOAT32_MIN_NORMAL = 2.0 ** -126  # 1.1754943508222875e-38
FLOAT32_MAX = (2.0 - 2.0 ** -23) * 2.0 ** 127  # 3.4028234663852886e+38
FLOAT32_RANGE = f"0 or a magnitude between {FLOAT32_MIN_NORMAL:.4g} and {FLOAT32_MAX:.4g}"


def is_float32_normal(value: float) -> bool:
    """Whether ``value`` is 0 or a normal float32 number in magnitude (what MXNet's float parameters take)."""
    return value == 0.0 or FLOAT32_MIN_NORMAL <= abs(value) <= FLOAT32_MAX


def check_float32(name: str, value: float) -> float:
    """Refuse a ``value`` MXNet's float32 operator parameters cannot take (see :func:`is_float32_normal`)."""
    check_condition(is_float32_normal(value), f"{name} must be {FLOAT32_RANGE} (MXNet computes in float32 and "
                    f"refuses smaller, denormal, or larger values), got {value!r}")
    return value


def check_float(name: str, value: Any, minimum: Optional[float] = None, strict_minimum: bool = False,
                maximum: Optional[float] = None, float32: bool = False) -> float:
    """Return ``value`` as a finite ``float`` (``> minimum`` if strict, else ``>=``; ``<= maximum``); with
    ``float32``, also 0 or a normal float32 number (:func:`check_float32`), as every value that reaches MXNet."""
    check_condition(isinstance(value, numbers.Real) and not isinstance(value, bool),
                    f"{name} must be a real number, got {value!r} ({type(value).__name__})", TypeError)
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite, got a number too large for a float") from None
    check_condition(math.isfinite(value), f"{name} must be finite, got {value!r}")
    if minimum is not None:
        if strict_minimum:
            check_condition(value > minimum, f"{name} must be > {minimum}, got {value!r}")
        else:
            check_condition(value >= minimum, f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None:
        check_condition(value <= maximum, f"{name} must be <= {maximum:g}, got {value!r}")
    return check_float32(name, value) if float32 else value


_ENV_INT_DIGITS = 18  # longer numbers saturate (as C's strtol does) instead of reaching Python's digit limit


def parse_env_int(name: str, text: str, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """The integer in environment variable ``name``, whose value is ``text``: ASCII digits ``0-9`` only (no
    sign, space or other Unicode digit: what C's ``strtol`` and every process reading the variable agree on),
    ``>= minimum`` and ``<= maximum``. A number of more than 18 digits saturates at ``10**18``.

    Raises
    ------
    ValueError
        naming the variable, the accepted values and the text."""
    accepted = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
    digits = text.isascii() and text.isdigit()
    check_condition(digits, f"environment variable {name} must be {accepted}, got {text!r} (the digits 0-9 only)")
    significant = text.lstrip("0")
    value = int(significant or "0") if len(significant) <= _ENV_INT_DIGITS else 10 ** _ENV_INT_DIGITS
    check_condition(value >= minimum and (maximum is None or value <= maximum),
                    f"environment variable {name} must be {accepted}, got {text!r}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of the string ``choices``."""
    check_condition(isinstance(value, str), f"{name} must be one of {list(choices)}, got {value!r}", TypeError)
    check_condition(value in choices, f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool."""
    check_condition(isinstance(value, bool), f"{name} must be True or False, got {value!r}", TypeError)
    return value


def check_name(name: str, value: Any) -> str:
    """Return ``value`` if it is a non-empty identifier-like string (a symbol variable name)."""
    check_condition(isinstance(value, str), f"{name} must be a str, got {value!r}", TypeError)
    check_condition(value != "" and value.replace("_", "a").isalnum(),
                    f"{name} must be a non-empty name of letters, digits and '_', got {value!r}")
    return value


def check_int_sequence(name: str, value: Any, minimum: int = 1, distinct: bool = True,
                       allow_empty: bool = False) -> Tuple[int, ...]:
    """Return ``value`` as a tuple of ints ``>= minimum`` (distinct unless told otherwise)."""
    check_condition(not isinstance(value, (str, bytes)) and isinstance(value, Iterable),
                    f"{name} must be an iterable of ints, got {value!r}", TypeError)
    items = tuple(value)
    check_condition(allow_empty or len(items) > 0, f"{name} must not be empty")
    for item in items:  # the messages are built only on failure: formatting `items` each time is quadratic
        if not _is_int(item):
            raise TypeError(f"{name} must hold only ints, got {item!r} ({type(item).__name__}) in {items!r}")
        if item < minimum:
            raise ValueError(f"{name} must hold ints >= {minimum}, got {item!r} in {items!r}")
    if distinct:
        check_condition(len(set(items)) == len(items), f"{name} must hold distinct values, got {items!r}")
    return tuple(int(i) for i in items)


def check_weights(name: str, value: Any, count: int) -> Tuple[float, ...]:
    """Return ``count`` finite non-negative weights with a positive sum."""
    check_condition(not isinstance(value, (str, bytes)) and isinstance(value, Iterable),
                    f"{name} must be an iterable of {count} non-negative numbers, got {value!r}", TypeError)
    items = tuple(value)
    check_condition(len(items) == count, f"{name} must have one weight per bucket ({count}), got {len(items)}")
    weights = tuple(check_float(f"{name}[{i}]", w, minimum=0.0) for i, w in enumerate(items))
    check_condition(sum(weights) > 0, f"{name} must have a positive sum, got {items!r}")
    return weights


def check_scaling(value: Any) -> Tuple[float, float]:
    """Return ``(center, scale)`` (finite, ``scale > 0``): values are modelled as ``(x - center) / scale``."""
    check_condition(not isinstance(value, (str, bytes)) and isinstance(value, Iterable),
                    f"scaling must be (center, scale) or None, got {value!r}", TypeError)
    items = tuple(value)
    check_condition(len(items) == 2, f"scaling must be (center, scale) or None, got {value!r}")
    return (check_float("scaling center", items[0], float32=True),
            check_float("scaling scale", items[1], minimum=0.0, strict_minimum=True, float32=True))
