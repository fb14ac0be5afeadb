"""Classical references from statsmodels (optional, ``pip install 'sinlstm-sym[data]'``): ARIMA and ETS
fitted on each series' training part, then applied with those parameters to every forecast origin's history.

Both fit on the latest ``REFERENCE_MAX_HISTORY`` points of a training part and forecast from the latest
``REFERENCE_FORECAST_HISTORY`` points of each history (their cost grows with its length; the forecasts depend
on the recent past): long series are subsampled this way. Fitting and forecasting log their progress."""
import logging
import warnings
from typing import Any, Dict, Optional

import numpy as np

from ..checks import check_int
from ..constants import REFERENCE_FORECAST_HISTORY, REFERENCE_MAX_HISTORY
from .data import TimeSplit
from .evaluation import Forecaster

logger = logging.getLogger(__name__)


def statsmodels_available() -> bool:
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        return False
    return True


def recent(history: Any, points: int = REFERENCE_MAX_HISTORY) -> np.ndarray:
    """The latest ``points`` of ``history``: what a reference fits on (or, fewer, forecasts from)."""
    return np.asarray(history)[-points:]


def forecast_all(name: str, series_index: int, histories: Any, one: Any) -> np.ndarray:
    """``one(history)`` for every history, stacked, logging progress about every tenth of a long list."""
    total = len(histories)
    step = max(total // 10, 1000)
    out = []
    for done, history in enumerate(histories, start=1):
        out.append(np.asarray(one(recent(history, REFERENCE_FORECAST_HISTORY))))
        if done % step == 0 and done < total:
            logger.info("%s: series %d, %d of %d forecast origins", name, series_index, done, total)
    return np.stack(out)


def arima_forecaster(split: TimeSplit, max_ar: int = 12) -> Forecaster:
    """ARIMA(p, 0, 0) with a constant per series, ``p <= max_ar`` chosen by AIC on the training part."""
    from statsmodels.tsa.arima.model import ARIMA
    max_ar = check_int("max_ar", max_ar, minimum=1)
    fitted: Dict[int, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of statsmodels' optimizers
        for i, train in enumerate(split.train):
            train = recent(train)
            logger.info("ARIMA: fitting series %d (%d points, AR orders 1..%d)", i, len(train), max_ar)
            best = None
            for p in range(1, min(max_ar, len(train) // 3) + 1):
                res = ARIMA(train, order=(p, 0, 0), trend="c").fit()
                if best is None or res.aic < best.aic:
                    best = res
            fitted[i] = best
            logger.info("series %d: ARIMA(%d,0,0) by AIC", i, best.model.order[0] if best is not None else -1)

    def forecast(series_index: int, histories: Any, steps: int) -> np.ndarray:
        res = fitted[series_index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return forecast_all("ARIMA", series_index, histories, lambda h: res.apply(h).forecast(steps))
    forecast.order = {i: r.model.order for i, r in fitted.items()}  # type: ignore[attr-defined]
    return forecast


def ets_forecaster(split: TimeSplit, season: Optional[int] = None) -> Forecaster:
    """ETS(A, Ad, A) (additive error, damped additive trend, additive season of ``season`` when given)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    spec: Dict[str, Any] = {"error": "add", "trend": "add", "damped_trend": True}
    if season is not None and season > 1:
        if min(len(t) for t in split.train) >= 2 * check_int("season", season, minimum=2):
            spec.update(seasonal="add", seasonal_periods=season)
        else:
            logger.warning("ETS: a training part is shorter than two seasons (%d): no seasonal component", 2 * season)
    params: Dict[int, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, train in enumerate(split.train):
            logger.info("ETS: fitting series %d (%d points)", i, len(recent(train)))
            params[i] = ETSModel(recent(train), **spec).fit(disp=False).params

    def forecast(series_index: int, histories: Any, steps: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return forecast_all("ETS", series_index, histories,
                                lambda h: ETSModel(h, **spec).smooth(params[series_index]).forecast(steps))
    return forecast
