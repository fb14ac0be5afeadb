"""Forecast accuracy on the held-out part of series, per horizon, beside naive baselines.

Rolling origins: every held-out (test) value ``x[t]`` is forecast at every horizon
``h = 1..H`` from the history ``x[:t - h + 1]`` (observed values only; the origin may lie
before the test part). So each horizon is scored on the same targets. Metrics per horizon:
MAE, RMSE, MASE (absolute error divided by the series' in-sample naive one-step MAE on its
training part, then averaged) and sMAPE (percent, ``200 |f - y| / (|f| + |y|)``, 0 where
both are 0).

A forecaster is ``fn(series_index, histories, steps) -> array (len(histories), steps)``;
``histories`` are 1-D arrays (observed values, original units) of one series.
"""
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..core.checks import check_condition, check_int
from ..core.heartbeat import Heartbeat
from ..core.outputs import write_text_atomic
from .data import TimeSplit

logger = logging.getLogger(__name__)

Forecaster = Callable[[int, Sequence[np.ndarray], int], np.ndarray]


# --- metrics on flat arrays -----------------------------------------------------------------------
def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(forecast, float) - np.asarray(actual, float))))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(forecast, float) - np.asarray(actual, float)) ** 2)))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent: mean of ``200 |f - y| / (|f| + |y|)``, a term being 0 where ``f = y = 0``."""
    y, f = np.asarray(actual, float), np.asarray(forecast, float)
    denominator = np.abs(y) + np.abs(f)
    terms = np.divide(200.0 * np.abs(f - y), denominator, out=np.zeros_like(y), where=denominator > 0)
    return float(np.mean(terms))


def naive_scale(train: np.ndarray) -> float:
    """The in-sample naive one-step MAE of a training part: ``mean |x[t] - x[t-1]|`` (MASE's denominator)."""
    x = np.asarray(train, float)
    check_condition(x.size >= 2, f"MASE needs a training part of at least 2 points, got {x.size}")
    return float(np.mean(np.abs(np.diff(x))))


# --- baselines ------------------------------------------------------------------------------------
def naive_forecaster(series_index: int, histories: Sequence[np.ndarray], steps: int) -> np.ndarray:
    """The last observed value, at every horizon."""
    return np.repeat(np.array([h[-1] for h in histories], float)[:, None], steps, axis=1)


def seasonal_naive_forecaster(season: int) -> Forecaster:
    """The value one season before the target (``x[T + h - m * ceil(h / m)]`` from the last index ``T``)."""
    season = check_int("season", season, minimum=1)

    def forecast(series_index: int, histories: Sequence[np.ndarray], steps: int) -> np.ndarray:
        out = np.empty((len(histories), steps))
        for i, h in enumerate(histories):
            check_condition(len(h) >= season, f"seasonal naive needs at least one season ({season}) of history, "
                            f"got {len(h)} points")
            last_season = h[-season:]
            out[i] = last_season[np.arange(steps) % season]
        return out
    return forecast


def model_forecaster(predictor: Any, window: Optional[int] = None) -> Forecaster:
    """Forecasts of a trained series model (``Predictor.forecast``), histories batched by length."""
    def forecast(series_index: int, histories: Sequence[np.ndarray], steps: int) -> np.ndarray:
        longest = window or (max(predictor.trained_lengths) if predictor.trained_lengths else None)
        out = np.empty((len(histories), steps))
        cut = [h if longest is None else h[-longest:] for h in histories]
        by_length: Dict[int, List[int]] = {}
        for i, h in enumerate(cut):
            by_length.setdefault(len(h), []).append(i)
        for rows in by_length.values():
            out[rows] = predictor.forecast(np.stack([cut[i] for i in rows]), steps, window=longest)
        return out
    return forecast


# --- rolling-origin evaluation --------------------------------------------------------------------
@dataclass
class SeriesEvaluation:
    """Metrics per method and horizon: ``metrics[method][metric]`` is a list over horizons 1..H."""

    horizon: int
    metrics: Dict[str, Dict[str, List[float]]]
    count: List[int]  # forecasts scored per horizon
    season: Optional[int] = None
    forecasts: Dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> Dict[str, Any]:
        """``{"horizon": [1..H], "mase": [...], "mae": ..., "naive_mae": ..., "seasonal_naive_mae": ...}``:
        the model's metrics unprefixed, every other method's prefixed by its name."""
        out: Dict[str, Any] = {"horizon": list(range(1, self.horizon + 1)), "count": self.count,
                               "season": self.season}
        for method, values in self.metrics.items():
            for metric, per_horizon in values.items():
                out[metric if method == "model" else f"{method}_{metric}"] = per_horizon
        return out

    def write_json(self, path: Union[str, Path]) -> Path:
        return write_text_atomic(path, json.dumps(self.to_json(), indent=1))

    def table(self, metrics: Sequence[str] = ("mase", "mae")) -> str:
        """One row per horizon, one column per method and metric."""
        methods = list(self.metrics)
        head = f"{'h':>3}  " + "  ".join(f"{(m + ' ' + k)[:22]:>22}" for k in metrics for m in methods)
        lines = [head]
        for h in range(self.horizon):
            lines.append(f"{h + 1:>3}  " + "  ".join(f"{self.metrics[m][k][h]:>22.4f}" for k in metrics
                                                      for m in methods))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def better_than(self, method: str = "model", metric: str = "mase") -> Dict[str, List[int]]:
        """The methods that beat ``method`` on ``metric``, each with the horizons (1-based) where it does.

        Parameters
        ----------
        method : str
            The method judged (default: the trained model).
        metric : str
            ``'mase'``, ``'mae'``, ``'rmse'`` or ``'smape'``; lower is better.

        Returns
        -------
        dict
            ``{other method: [horizons where its metric is lower]}``, only methods with at least one.
        """
        check_condition(method in self.metrics, f"method must be one of {list(self.metrics)}, got {method!r}")
        check_condition(metric in self.metrics[method], f"metric must be one of {list(self.metrics[method])}, "
                        f"got {metric!r}")
        ours = self.metrics[method][metric]
        out = {}
        for other, values in self.metrics.items():
            wins = [h + 1 for h in range(self.horizon) if other != method and values[metric][h] < ours[h]]
            if wins:
                out[other] = wins
        return out

    def shortfall(self, method: str = "model", metric: str = "mase") -> Optional[str]:
        """A one-paragraph warning naming every method that beats ``method`` and by how much, or ``None``
        when none does at any horizon."""
        beaten = self.better_than(method, metric)
        if not beaten:
            return None
        ours = self.metrics[method][metric]
        parts = []
        for other, horizons in beaten.items():
            shown = ", ".join(f"h={h}: {self.metrics[other][metric][h - 1]:.3f} vs {ours[h - 1]:.3f}"
                              for h in horizons[:4])
            more = f" and {len(horizons) - 4} more horizons" if len(horizons) > 4 else ""
            parts.append(f"{other} ({shown}{more})")
        return (f"{'; '.join(parts)}: better than the {method} on the held-out part ({metric.upper()}, lower "
                "is better); prefer that method where it wins")


def _with_baselines(forecasters: Mapping[str, Forecaster], season: Optional[int]) -> Dict[str, Forecaster]:
    """``forecasters`` plus ``naive`` and (with ``season``) ``seasonal_naive`` where absent."""
    methods: Dict[str, Forecaster] = dict(forecasters)
    methods.setdefault("naive", naive_forecaster)
    if season is not None:
        methods.setdefault("seasonal_naive", seasonal_naive_forecaster(season))
    return methods


def _origins(split: TimeSplit, i: int, horizon: int, needed: int) -> Optional[np.ndarray]:
    """The forecast origins ``o`` (histories ``x[:o]``) of series ``i``, or None if it is not evaluated."""
    x, start = split.series[i], split.test_start[i]
    if start == len(x):
        return None
    if start - horizon + 1 < needed:
        logger.warning("series %d: %d points before its test part, fewer than horizon + season needs (%d): "
                       "not evaluated", i, start, needed + horizon - 1)
        return None
    return np.arange(start - horizon + 1, len(x))


def _targets(x: np.ndarray, start: int, origins: np.ndarray, horizon: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Per horizon h: the rows of ``origins`` whose target ``x[o + h - 1]`` is a test value, and those targets."""
    out = []
    for h in range(1, horizon + 1):
        rows = np.flatnonzero((origins + h - 1 >= start) & (origins + h - 1 < len(x)))
        out.append((rows, x[origins[rows] + h - 1]))
    return out


def _horizon_metrics(errors: Sequence[np.ndarray], actual: Sequence[np.ndarray],
                     scales: Sequence[np.ndarray]) -> Dict[str, List[float]]:
    """MAE, RMSE, MASE and sMAPE per horizon of one method's errors (forecast - actual)."""
    return {
        "mae": [float(np.mean(np.abs(e))) for e in errors],
        "rmse": [float(np.sqrt(np.mean(e ** 2))) for e in errors],
        "mase": [float(np.mean(np.abs(e[s > 0]) / s[s > 0])) if np.any(s > 0) else float("nan")
                 for e, s in zip(errors, scales)],
        "smape": [smape(a, a + e) for a, e in zip(actual, errors)],
    }


def rolling_origin_evaluation(split: TimeSplit, forecasters: Mapping[str, Forecaster], horizon: int,
                              season: Optional[int] = None) -> SeriesEvaluation:
    """Score each forecaster on every test value of every series at horizons 1..``horizon``.

    ``forecasters`` maps a method name to a forecaster; ``naive`` and (with ``season``)
    ``seasonal_naive`` are added when absent. MASE divides by each series' naive one-step MAE
    on its training part (series where that is 0 are left out of MASE, with a warning).
    """
    horizon = check_int("horizon", horizon, minimum=1)
    methods = _with_baselines(forecasters, season)
    errors: Dict[str, List[List[np.ndarray]]] = {m: [[] for _ in range(horizon)] for m in methods}
    actuals: List[List[np.ndarray]] = [[] for _ in range(horizon)]
    scales: List[List[np.ndarray]] = [[] for _ in range(horizon)]
    kept: Dict[str, Any] = {}
    logger.info("rolling-origin evaluation of %s on %d series, horizons 1..%d", ", ".join(methods),
                len(split.series), horizon)
    heartbeat = Heartbeat(logger)
    for i, x in enumerate(split.series):
        origins = _origins(split, i, horizon, max(horizon, season or 1))
        if origins is None:
            continue
        scale = naive_scale(x[:split.train_end[i]])
        if scale == 0:
            logger.warning("series %d is constant on its training part: MASE leaves it out", i)
        targets = _targets(x, split.test_start[i], origins, horizon)
        for h, (rows, target) in enumerate(targets):
            actuals[h].append(target)
            scales[h].append(np.full(rows.size, scale))
        histories = [x[:o] for o in origins]
        for name, fn in methods.items():
            heartbeat.beat("rolling-origin evaluation: series %d of %d, %s", i + 1, len(split.series), name)
            preds = np.asarray(fn(i, histories, horizon), float)
            check_condition(preds.shape == (len(origins), horizon), f"forecaster {name!r} returned shape "
                            f"{preds.shape}, expected {(len(origins), horizon)}")
            kept.setdefault(name, []).append((origins, preds))
            for h, (rows, target) in enumerate(targets):
                errors[name][h].append(preds[rows, h] - target)
    check_condition(any(len(a) for a in actuals), "no series has a test part to evaluate")
    actual = [np.concatenate(a) for a in actuals]
    scale_per_horizon = [np.concatenate(s) for s in scales]
    metrics = {name: _horizon_metrics([np.concatenate(e) for e in errors[name]], actual, scale_per_horizon)
               for name in methods}
    return SeriesEvaluation(horizon, metrics, [int(a.size) for a in actual], season, kept)
