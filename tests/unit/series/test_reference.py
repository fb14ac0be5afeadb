"""The ARIMA/ETS references of the series command: exact against statsmodels' own forecasts, and the
warning that names a method beating the model."""
import warnings

import numpy as np
import pytest

from sinlstm_sym.series import split_by_time
from sinlstm_sym.series.evaluation import SeriesEvaluation
from sinlstm_sym.series.reference import ar_forecasts, arima_forecaster

pytest.importorskip("statsmodels")


def ar2_series(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for t in range(2, n):
        x[t] = 0.6 * x[t - 1] - 0.3 * x[t - 2] + rng.normal()
    return 50.0 + x


def test_ar_recursion_against_hand_computed_values():
    out = ar_forecasts([np.array([1.0, 3.0]), np.array([5.0])], mean=1.0, coefficients=np.array([0.5, 0.25]),
                       steps=2)
    # history 1: deviations (0, 2): next 0.5*2 + 0.25*0 = 1 -> 2; then 0.5*1 + 0.25*2 = 1 -> 2
    # history 2: deviations (pad 0, 4): next 2 -> 3; then 0.5*2 + 0.25*4 = 2 -> 3
    np.testing.assert_allclose(out, [[2.0, 2.0], [3.0, 3.0]])
    np.testing.assert_allclose(ar_forecasts([np.array([7.0])], 2.0, np.empty(0), 3), [[2.0, 2.0, 2.0]])


def test_arima_reference_forecasts_equal_statsmodels_filter_from_every_origin():
    from statsmodels.tsa.arima.model import ARIMA
    x = ar2_series()
    split = split_by_time([x], test=30)
    forecaster = arima_forecaster(split, max_ar=6)
    order = forecaster.order[0]
    assert 1 <= order[0] <= 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ARIMA(split.train[0], order=order, trend="c").fit()
        origins = [240, 255, 269]
        expected = np.stack([result.apply(x[:o]).forecast(5) for o in origins])
    got = forecaster(0, [x[:o] for o in origins], 5)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_shortfall_names_every_method_that_beats_the_model_with_its_numbers():
    evaluation = SeriesEvaluation(2, {"model": {"mase": [0.5, 0.9]}, "naive": {"mase": [0.8, 0.7]},
                                      "ets": {"mase": [0.4, 1.2]}}, [10, 10])
    assert evaluation.better_than() == {"naive": [2], "ets": [1]}
    message = evaluation.shortfall()
    assert "naive (h=2: 0.700 vs 0.900)" in message and "ets (h=1: 0.400 vs 0.500)" in message
    winning = SeriesEvaluation(1, {"model": {"mase": [0.3]}, "naive": {"mase": [0.8]}}, [3])
    assert winning.better_than() == {} and winning.shortfall() is None
    with pytest.raises(ValueError, match=r"metric must be one of \['mase'\], got 'mae'"):
        winning.better_than(metric="mae")
