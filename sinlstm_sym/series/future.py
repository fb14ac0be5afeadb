"""Forecasts past the end of the data: every series rolled forward from all its values, written as CSV or
JSON and drawn (the series command's ``--forecast``)."""
import csv
import io
import json
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from ..core.checks import check_condition, check_int
from ..core.outputs import AtomicOutputs, write_text_atomic
from .data import series_label

FORECAST_SUFFIXES = (".csv", ".json")


def forecast_past_end(predictor: Any, series: Sequence[np.ndarray], steps: int,
                      window: Optional[int] = None) -> List[np.ndarray]:
    """The next ``steps`` values of every series, from its whole history (its latest ``window`` values).

    Parameters
    ----------
    predictor : Predictor
        A trained series model (``feature='value'``).
    series : sequence of 1-D arrays
        The histories, in the series' own units.
    steps : int
        How many values to forecast after the last one (>= 1).
    window : int, optional
        Values fed at each step (default: the longest trained length).

    Returns
    -------
    list of numpy.ndarray
        One array of ``steps`` forecasts per series.
    """
    steps = check_int("steps", steps, minimum=1)
    return [np.asarray(predictor.forecast(np.asarray(x, dtype=np.float64), steps, window=window))
            for x in series]


def forecast_text(forecasts: Sequence[np.ndarray], suffix: str, names: Optional[Sequence[str]] = None) -> str:
    """``forecasts`` as CSV (columns ``series, step, forecast``) or JSON (``{"steps": N, "series": [{"name":
    ..., "forecast": [...]}, ...]}``), by ``suffix`` (``'.csv'`` or ``'.json'``)."""
    check_condition(suffix in FORECAST_SUFFIXES, f"a forecast file must end in {', '.join(FORECAST_SUFFIXES)}, "
                    f"got {suffix!r}")
    labels = [names[i] if names else str(i) for i in range(len(forecasts))]
    if suffix == ".json":
        steps = len(forecasts[0]) if forecasts else 0
        return json.dumps({"steps": steps, "series": [{"name": label, "forecast": [float(v) for v in f]}
                                                      for label, f in zip(labels, forecasts)]}, indent=1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["series", "step", "forecast"])
    for label, values in zip(labels, forecasts):
        writer.writerows([label, step, repr(float(v))] for step, v in enumerate(values, start=1))
    return buffer.getvalue()


def write_forecasts(path: Union[str, Path], forecasts: Sequence[np.ndarray],
                    names: Optional[Sequence[str]] = None) -> Path:
    """Write ``forecasts`` to ``path`` (``.csv`` or ``.json``, :func:`forecast_text`) atomically."""
    return write_text_atomic(path, forecast_text(forecasts, Path(path).suffix.lower(), names))


def plot_forecasts(series: Sequence[np.ndarray], forecasts: Sequence[np.ndarray], path: Union[str, Path],
                   names: Optional[Sequence[str]] = None, max_series: int = 4, context: Optional[int] = None) -> Path:
    """Save, for up to ``max_series`` series, the latest ``context`` values (default 4 x the forecast length)
    and the forecast after them (needs matplotlib). Written atomically; returns ``path``."""
    from ..infer.plotting import _pyplot
    plt = _pyplot()
    shown = list(range(min(len(series), max_series)))
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 3.2 * len(shown)), squeeze=False)
    for ax, i in zip(axes[:, 0], shown):
        x, future = np.asarray(series[i]), np.asarray(forecasts[i])
        lo = max(0, len(x) - (context or 4 * len(future)))
        ax.plot(np.arange(lo, len(x)), x[lo:], color="black", marker=".", label="data")
        ax.plot(np.arange(len(x) - 1, len(x) + len(future)), np.concatenate([x[-1:], future]), linestyle="--",
                marker=".", label=f"forecast, {len(future)} steps")
        ax.set_title(f"{series_label(i, names)}: forecast past the end of the data")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with AtomicOutputs() as outputs:
        fig.savefig(outputs.stage(path))
    plt.close(fig)
    return Path(path)
