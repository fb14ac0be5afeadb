"""A picture of a series forecast: history, held-out truth, one-step and multi-step forecasts (needs matplotlib)."""
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..core.outputs import AtomicOutputs
from ..infer.plotting import _pyplot
from .data import TimeSplit
from .evaluation import Forecaster


def plot_series_forecast(split: TimeSplit, forecasters: Mapping[str, Forecaster], horizon: int,
                         path: Union[str, Path], max_series: int = 4, context: Optional[int] = None,
                         times: Optional[Sequence[np.ndarray]] = None) -> Path:
    """Save, for up to ``max_series`` series: the history before the test part (the last ``context``
    points; default 4 x horizon), the test truth, each method's ``horizon``-step forecast from the test
    start, and its one-step forecasts over the test part. Written atomically; returns ``path``."""
    plt = _pyplot()
    shown = [i for i in range(len(split.series)) if split.test_start[i] < len(split.series[i])][:max_series]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 3.2 * len(shown)), squeeze=False)
    for ax, i in zip(axes[:, 0], shown):
        x, start = split.series[i], split.test_start[i]
        t = np.asarray(times[i]) if times is not None else np.arange(len(x))
        lo = max(0, start - (context or 4 * horizon))
        ax.plot(t[lo:start], x[lo:start], color="0.4", label="history")
        ax.plot(t[start:], x[start:], color="black", marker=".", label="truth (held out)")
        for name, fn in forecasters.items():
            multi: Any = np.asarray(fn(i, [x[:start]], horizon))[0]
            steps = min(horizon, len(x) - start)
            line = ax.plot(t[start:start + steps], multi[:steps], linestyle="--", label=f"{name}, {horizon}-step")[0]
            one = np.asarray(fn(i, [x[:o] for o in range(start, len(x))], 1))[:, 0]
            ax.plot(t[start:], one, linestyle=":", color=line.get_color(), label=f"{name}, 1-step")
        title = split.names[i] if split.names else f"series {i}"
        ax.set_title(f"{title}: forecasts from the start of the held-out part")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with AtomicOutputs() as outputs:
        fig.savefig(outputs.stage(path))
    plt.close(fig)
    return Path(path)
