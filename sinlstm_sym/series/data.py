"""Real series in: checked, split by time, scaled on the training part only.

``check_series`` turns the user's list of 1-D numeric arrays into float64 arrays, refusing
bad input with a message naming the series and the index. ``split_by_time`` holds out the
last part of every series (validation, then test); nothing of it is in ``TimeSplit.train``.
``Scaling`` maps values into the range the model can output: its prediction is the last
LSTM layer's hidden state, which lies in (-1, 1).
"""
import csv
import logging
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..core.checks import SettingValueError, check_condition, check_float, check_int, check_scaling
from ..constants import DEFAULT_WINDOW_LEVEL

logger = logging.getLogger(__name__)

SCALINGS = ("standard", "range", "none")
DEFAULT_SCALING = "standard"
# 'standard' divides by this many standard deviations, so that the series' usual range (about +-2.5 std)
# lies within the (-1, 1) the model can output: a plain z-score puts a third of a Gaussian series out of reach.
STD_PER_UNIT = 3.0
Holdout = Union[int, float]


def series_label(index: int, names: Optional[Sequence[str]] = None) -> str:
    """``series[2]`` or ``series 'sensor-3' (index 2)`` for messages."""
    return f"series {names[index]!r} (index {index})" if names is not None else f"series[{index}]"


def _as_list(series: Any) -> List[Any]:
    if isinstance(series, np.ndarray) and series.ndim == 1 and series.dtype.kind in "biuf":
        return [series]  # one series passed on its own
    check_condition(not isinstance(series, (str, bytes, dict)) and isinstance(series, (list, tuple, np.ndarray)),
                    "series must be a list of 1-D numeric arrays (one per series), got "
                    f"{type(series).__name__}", TypeError)
    return list(series)


def _first_bad_element(values: np.ndarray) -> Tuple[int, Any]:
    for j, v in enumerate(values.ravel()):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return j, v
    return -1, None


def check_one_series(values: Any, label: str) -> np.ndarray:
    """``values`` as a finite 1-D float64 array, or an error naming ``label`` and the bad index."""
    check_condition(not isinstance(values, (str, bytes)), f"{label} must be a 1-D numeric array, got a string "
                    f"{values!r}", TypeError)
    check_condition(not isinstance(values, numbers.Number), f"{label} must be a 1-D numeric array, got the "
                    f"number {values!r} (pass [values] for a single series)", TypeError)
    arr = np.asarray(values)
    check_condition(arr.ndim == 1, f"{label} must be 1-D (one value per time step), got shape {arr.shape}")
    if arr.dtype.kind == "O":
        j, bad = _first_bad_element(arr)
        check_condition(j < 0, f"{label}[{j}] is not a number: {bad!r}", TypeError)
        arr = arr.astype(np.float64)
    check_condition(arr.dtype.kind in "iuf", f"{label} must be numeric, got dtype {arr.dtype} "
                    f"(first value {arr[0]!r})" if arr.size else f"{label} must be numeric, got dtype {arr.dtype}",
                    TypeError)
    arr = np.asarray(arr, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        more = f" (and {bad.size - 1} more non-finite values)" if bad.size > 1 else ""
        raise ValueError(f"{label}[{bad[0]}] is {arr[bad[0]]}{more}: fill or drop missing values first")
    return arr


def check_series(series: Any, names: Optional[Sequence[str]] = None) -> List[np.ndarray]:
    """A list of finite 1-D float64 arrays from ``series`` (a list of 1-D numeric arrays, or one array).

    Raises ``TypeError``/``ValueError`` naming the series (by index, or by ``names``) and the
    index of the first bad value: NaN or inf, non-numeric values, arrays that are not 1-D, an
    empty list.
    """
    items = _as_list(series)
    check_condition(len(items) > 0, "series must hold at least one 1-D numeric array, got an empty list")
    if names is not None:
        names = [str(n) for n in names]
        check_condition(len(names) == len(items), f"names must name every series ({len(items)}), got {len(names)}")
    return [check_one_series(s, series_label(i, names)) for i, s in enumerate(items)]


def _holdout_points(name: str, value: Holdout, length: int) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return check_int(name, value, minimum=0)
    fraction = check_float(name, value, minimum=0.0)
    check_condition(fraction < 1.0, f"{name} must be a fraction in [0, 1) or a number of points (an int), "
                    f"got {value!r}")
    return int(math.ceil(fraction * length - 1e-9))


@dataclass(frozen=True)
class TimeSplit:
    """Each series cut by time: ``train`` | ``valid`` | ``test`` (the last part).

    ``series`` are the whole arrays; ``train_end[i]`` and ``test_start[i]`` the indices where
    series ``i``'s validation and test parts begin (``train`` is ``series[i][:train_end[i]]``).
    """

    series: List[np.ndarray]
    train_end: Tuple[int, ...]
    test_start: Tuple[int, ...]
    names: Optional[Tuple[str, ...]] = None

    @property
    def train(self) -> List[np.ndarray]:
        return [s[:e] for s, e in zip(self.series, self.train_end)]

    @property
    def valid(self) -> List[np.ndarray]:
        return [s[e:t] for s, e, t in zip(self.series, self.train_end, self.test_start)]

    @property
    def test(self) -> List[np.ndarray]:
        return [s[t:] for s, t in zip(self.series, self.test_start)]


def split_by_time(series: Any, test: Holdout = 0.2, valid: Holdout = 0.0,
                  names: Optional[Sequence[str]] = None) -> TimeSplit:
    """Hold out the last ``test`` and, before it, ``valid`` points of every series.

    Each is a fraction of the series' length in [0, 1) (rounded up) or a number of points (int).
    The series are checked with :func:`check_series` first. A series whose training part would
    be empty is refused, naming it.
    """
    arrays = check_series(series, names)
    train_end, test_start = [], []
    for i, s in enumerate(arrays):
        n_test, n_valid = _holdout_points("test", test, len(s)), _holdout_points("valid", valid, len(s))
        end = len(s) - n_test - n_valid
        check_condition(end >= 1, f"{series_label(i, names)} has {len(s)} points: holding out test={test!r} "
                        f"({n_test}) and valid={valid!r} ({n_valid}) leaves nothing to train on")
        train_end.append(end)
        test_start.append(len(s) - n_test)
    return TimeSplit(arrays, tuple(train_end), tuple(test_start), tuple(str(n) for n in names) if names else None)


@dataclass(frozen=True)
class Scaling:
    """Values are modelled as ``(x - center) / scale``; fitted on training data only."""

    center: float
    scale: float

    def __post_init__(self) -> None:
        center, scale = check_scaling((self.center, self.scale))
        object.__setattr__(self, "center", center)  # normalise a frozen field
        object.__setattr__(self, "scale", scale)

    @classmethod
    def fit(cls, arrays: Sequence[np.ndarray], method: str = DEFAULT_SCALING,
            window_level: str = DEFAULT_WINDOW_LEVEL) -> "Scaling":
        """``'standard'``: center = mean, scale = ``STD_PER_UNIT`` standard deviations; ``'range'``:
        center = mid-range, scale = the range (training values in [-0.5, 0.5]); ``'none'``: identity.
        A constant series gets scale 1. With ``window_level='last'`` the model sees changes from a window's
        last value, so the scale is fitted on the one-step changes ``x[t+1] - x[t]`` and the center is 0."""
        check_condition(method in SCALINGS, f"scaling must be one of {list(SCALINGS)}, got {method!r}")
        if method == "none":
            return cls(0.0, 1.0)
        if window_level == "last":
            changes = cls.fit([np.diff(np.asarray(a, dtype=np.float64)) for a in arrays], method)
            return cls(0.0, changes.scale)
        values = np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays])
        check_condition(values.size > 0, "scaling needs at least one training value")
        with np.errstate(over="ignore", invalid="ignore"):
            if method == "standard":
                center, spread = float(values.mean()), STD_PER_UNIT * float(values.std())
            else:
                low, high = float(values.min()), float(values.max())
                center, spread = (low + high) / 2.0, high - low
        check_condition(math.isfinite(center) and math.isfinite(spread), f"scaling {method!r} of the training "
                        f"values overflows float64 (the largest magnitude is {float(np.abs(values).max()):g}): "
                        "divide the values by a power of ten first")
        return cls(center, spread if spread > 0 else 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.center) / self.scale

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(z, dtype=np.float64) * self.scale + self.center

    def as_tuple(self) -> Tuple[float, float]:
        """``(center, scale)``, as ``ModelConfig.scaling`` stores it."""
        return (self.center, self.scale)


def _cell_value(path: str, line: int, column: str, text: Optional[str]) -> float:
    cell = (text or "").strip()
    try:
        value = float(cell)
    except ValueError:
        raise SettingValueError(f"{path}, line {line}: column {column!r} holds {cell[:80]!r}, not a number",
                                ("csv", "column")) from None
    check_condition(math.isfinite(value), f"{path}, line {line}: column {column!r} is {cell!r}: "
                    "fill or drop missing values first", settings=("csv", "column"))
    return value


CSV_ENCODING = "utf-8-sig"  # UTF-8, with or without a byte-order mark


def _check_header(path: str, header: Sequence[str], column: str, group: Optional[str]) -> None:
    """The header names ``column`` (and ``group``) exactly once."""
    for name, what in ((column, "column"), (group, "group")):
        if name is None:
            continue
        settings = ("csv", what) if what == "column" else (what,)
        check_condition(name in header, f"{what} {name!r} is not a column of {path} (columns: {list(header)})",
                        settings=settings)
        check_condition(list(header).count(name) == 1, f"{what} {name!r} names {list(header).count(name)} columns "
                        f"of {path} (columns: {list(header)}); give every column a distinct name",
                        settings=settings)


def _read_groups(path: str, column: str, group: Optional[str]) -> Dict[str, List[float]]:
    """The values of ``column`` by value of ``group`` (one group ``''`` without it), in file order."""
    groups: Dict[str, List[float]] = {}
    with open(path, newline="", encoding=CSV_ENCODING) as handle:
        reader = csv.DictReader(handle)
        try:
            _check_header(path, reader.fieldnames or [], column, group)
            for row in reader:
                groups.setdefault(row[group] if group else "", []).append(_cell_value(path, reader.line_num,
                                                                                      column, row.get(column)))
        except csv.Error as err:  # a cell over the csv module's field limit, a NUL byte, an unclosed quote
            raise SettingValueError(f"{path}, line {reader.line_num + 1}: not a CSV file of values ({err}; a cell may "
                                    f"hold at most {csv.field_size_limit()} characters)", ("csv", "column")) from None
    return groups


def _encoding_problem(path: str) -> str:
    """Where ``path`` stops being UTF-8 (its first line that does not decode), said for the user."""
    def expected(source: str) -> str:
        return ("the CSV file must be UTF-8 text (with or without a byte-order mark): convert it, e.g. "
                f"`iconv -f {source} -t UTF-8 in.csv > out.csv`")
    with open(path, "rb") as raw:
        if raw.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return f"{path}, line 1: UTF-16 text (it starts with a UTF-16 byte-order mark); {expected('UTF-16')}"
        raw.seek(0)
        for number, line in enumerate(raw, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return (f"{path}, line {number}: not UTF-8 (byte 0x{line[err.start]:02x} at column {err.start + 1}; "
                        f"latin-1 or another 8-bit encoding?); {expected('LATIN1')}")
    return f"{path}: not UTF-8 text; {expected('LATIN1')}"


def read_csv_series(path: Union[str, "os.PathLike[str]"], column: str,
                    group: Optional[str] = None) -> Tuple[List[np.ndarray], Optional[List[str]]]:
    """Values of ``column`` in a CSV file with a header row: one series, or one per value of ``group``
    (rows in file order). The file is UTF-8 (a byte-order mark is skipped). Raises naming the file, the line
    and the column for a missing or non-numeric value, a column named twice, or text that is not UTF-8."""
    path = os.fspath(path)
    check_condition(os.path.isfile(path), f"csv: {path!r} is not a file", FileNotFoundError, settings=("csv",))
    try:
        groups = _read_groups(path, column, group)
    except UnicodeDecodeError:
        raise SettingValueError(_encoding_problem(path), ("csv",)) from None
    check_condition(len(groups) > 0, f"{path} has no data rows", settings=("csv", "column"))
    arrays = [np.asarray(v, dtype=np.float64) for v in groups.values()]
    return arrays, (list(groups) if group else None)
