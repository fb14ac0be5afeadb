"""Classical references from statsmodels (optional, ``pip install 'sinlstm-sym[data]'``): ARIMA and ETS
fitted on each series' training part, then applied with those parameters to every forecast origin's history.

Both fit on the latest ``REFERENCE_MAX_HISTORY`` points of a training part and forecast from the latest
``REFERENCE_FORECAST_HISTORY`` points of each history (their cost grows with its length; the forecasts depend
on the recent past): long series are subsampled this way. Fitting and forecasting log their progress."""
import logging
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from ..core.checks import check_int
from ..constants import REFERENCE_FORECAST_HISTORY, REFERENCE_MAX_HISTORY
from .data import TimeSplit
from .evaluation import Forecaster

logger = logging.getLogger(__name__)

ARIMA_CANDIDATE_ORDERS = 3  # AR orders refitted by exact likelihood, the best by least-squares AIC


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
    """ARIMA(p, 0, 0) with a constant per series: ``p <= max_ar`` chosen by AIC on the training part.

    The orders of the ``ARIMA_CANDIDATE_ORDERS`` best least-squares AR fits by AIC (statsmodels'
    ``ar_select_order``) are fitted by exact maximum likelihood (``ARIMA``) and the best of those by AIC is kept:
    a few likelihood fits instead of one per order. Forecasts from every origin come from the
    AR recursion on the origin's latest ``p`` values, which is what the model's state-space filter forecasts
    once ``p`` values are observed, for all origins at once (:func:`ar_forecasts`).
    """
    from statsmodels.tsa.ar_model import ar_select_order
    from statsmodels.tsa.arima.model import ARIMA
    max_ar = check_int("max_ar", max_ar, minimum=1)
    fitted: Dict[int, Tuple[float, np.ndarray]] = {}
    orders: Dict[int, Tuple[int, int, int]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of statsmodels' optimizers
        for i, train in enumerate(split.train):
            train = recent(train)
            maxlag = max(min(max_ar, len(train) // 3), 1)
            logger.info("ARIMA: choosing the AR order of series %d (%d points, orders 0..%d)", i, len(train), maxlag)
            by_aic = ar_select_order(train, maxlag=maxlag, trend="c", ic="aic").aic  # {lags: AIC}, least squares
            candidates = sorted(by_aic, key=by_aic.get)[:ARIMA_CANDIDATE_ORDERS]
            # keys: 0 for no lag, else the tuple of lags 1..p
            results = [ARIMA(train, order=(len(lags) if lags else 0, 0, 0), trend="c").fit() for lags in candidates]
            best = min(results, key=lambda r: r.aic)
            order = best.model.order
            fitted[i] = (float(best.params[0]), np.asarray(best.params[1:1 + order[0]], dtype=np.float64))
            orders[i] = order
            logger.info("series %d: ARIMA(%d,0,0) by AIC", i, order[0])

    def forecast(series_index: int, histories: Any, steps: int) -> np.ndarray:
        mean, coefficients = fitted[series_index]
        return ar_forecasts(histories, mean, coefficients, steps)
    forecast.order = orders  # type: ignore[attr-defined]
    return forecast


def ar_forecasts(histories: Sequence[np.ndarray], mean: float, coefficients: np.ndarray, steps: int) -> np.ndarray:
    """Forecasts ``(len(histories), steps)`` of the AR model ``x[t] - mean = sum_k coefficients[k-1] *
    (x[t-k] - mean)`` from the end of every history; a history shorter than the order starts at ``mean``."""
    order = len(coefficients)
    deviations = np.zeros((len(histories), order + steps))
    for row, history in enumerate(histories):
        last = np.asarray(history, dtype=np.float64)[-order:] if order else np.empty(0)
        deviations[row, order - len(last):order] = last - mean
    for k in range(steps):
        # coefficients[0] weighs the latest value: the window before step k, newest first
        deviations[:, order + k] = deviations[:, k:order + k][:, ::-1] @ coefficients
    return deviations[:, order:] + mean


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
