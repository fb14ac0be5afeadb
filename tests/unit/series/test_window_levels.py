"""``window_level='last'``: a series model that sees each window around its own last value.

The rule (``sinlstm_sym.model.scaling``) against hand-computed values, the training windows it produces,
the settings it needs, the Predictor's exact translation invariance, the checkpoint round trip, and (slow)
a trending seasonal series on which the model must beat the naive and seasonal-naive baselines.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sinlstm_sym import Predictor
from sinlstm_sym.config import FitConfig, ModelConfig
from sinlstm_sym.model.scaling import from_model_units, to_model_units
from sinlstm_sym.series import Scaling, SeriesBucketIter, fit_series, rolling_origin_evaluation
from sinlstm_sym.series.data import STD_PER_UNIT
from sinlstm_sym.series.evaluation import model_forecaster


def trend_season(n: int, seed: int = 0, noise: float = 2.0) -> np.ndarray:
    """A monthly series: level 100, trend 0.5 per step, a 12-step season of amplitude 10, Gaussian noise."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, noise, size=n)


# --- the rule ------------------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 9), st.just(1)),
              elements=st.floats(-1e3, 1e3)),
       st.floats(-50, 50), st.floats(0.1, 100))
def test_last_level_inputs_are_changes_from_the_last_value_and_outputs_come_back(windows, center, scale):
    inputs, levels = to_model_units(windows, (center, scale), "last")
    np.testing.assert_allclose(inputs, (windows - windows[:, -1:, :]) / scale, rtol=1e-12, atol=1e-12)
    assert (inputs[:, -1, 0] == 0).all()
    # an output meaning "the next value is the last one plus 0.3 scales" comes back as exactly that
    outputs = np.full(windows.shape[0], 0.3, dtype=np.float32)
    back = from_model_units(outputs, levels, (center, scale))
    np.testing.assert_allclose(back, windows[:, -1, 0] + np.float32(0.3) * scale, rtol=1e-12, atol=1e-9)


def test_fixed_level_keeps_the_center_and_no_scaling_is_the_identity():
    windows = np.arange(6, dtype=np.float64).reshape(2, 3, 1)
    inputs, level = to_model_units(windows, (2.0, 4.0), "none")
    np.testing.assert_array_equal(inputs, (windows - 2.0) / 4.0)
    np.testing.assert_array_equal(from_model_units(np.array([[0.5, 1.0, -1.0]] * 2), level, (2.0, 4.0)),
                                  np.array([[4.0, 6.0, -2.0]] * 2))
    same, none = to_model_units(windows, None, "none")
    assert same is windows and none is None


# --- the setting ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, named", [({"label_mode": "sequence"}, "label_mode='sequence'"),
                                            ({"feature": "time"}, "feature='time'")])
def test_last_level_needs_value_inputs_and_a_last_step_label(changes, named):
    settings_ = {**dict(feature="value", label_mode="last", window_level="last"), **changes}
    with pytest.raises(ValueError, match=r"window_level='last'.*" + named.replace("(", r"\(")):
        ModelConfig(**settings_)


def test_window_level_refuses_an_unknown_value_naming_the_choices():
    with pytest.raises(ValueError, match=r"window_level.*'none'.*'last'"):
        ModelConfig(feature="value", label_mode="last", window_level="mean")


def test_the_series_recipe_models_windows_around_their_last_value_and_the_sine_recipe_does_not():
    assert FitConfig.series().model.window_level == "last"
    assert FitConfig().model.window_level == "none"
    assert FitConfig.original().model.window_level == "none"


def test_a_configuration_saved_without_window_level_loads_with_the_fixed_center():
    payload = FitConfig.series(window_level="none").to_json()
    del payload["model"]["window_level"]  # as version 0.2 wrote it
    assert FitConfig.from_json(payload).model.window_level == "none"


# --- training windows ----------------------------------------------------------------------------------
def test_training_windows_and_labels_are_relative_to_each_windows_last_value():
    x = trend_season(120)
    it = SeriesBucketIter([x], (4, 7), batch_size=8, num_samples=64, label_mode="last", seed=3,
                          window_level="last")
    scale = STD_PER_UNIT * float(np.std(np.diff(x)))
    assert it.scaling == Scaling(0.0, scale)
    for batch in it:
        length = batch.bucket_key
        data, label = batch.data[0].asnumpy()[:, :, 0], batch.label[0].asnumpy()[:, 0]
        assert (data[:, -1] == 0).all()
        # every window is a run of consecutive values of x, shifted by its last one
        for row, lab in zip(data, label):
            window = row * scale
            candidates = [s for s in range(len(x) - length) if
                          np.allclose(x[s:s + length] - x[s + length - 1], window, atol=1e-3)]
            assert candidates, "a window is not a shifted run of the series"
            s = candidates[0]
            assert np.isclose(lab * scale, x[s + length] - x[s + length - 1], atol=1e-3)


def test_last_level_windows_need_a_last_step_label():
    with pytest.raises(ValueError, match=r"window_level='last' needs label_mode='last'"):
        SeriesBucketIter([trend_season(50)], (4,), batch_size=4, num_samples=16, label_mode="sequence",
                         window_level="last")


# --- prediction ----------------------------------------------------------------------------------------
def _tiny_params(hidden_sizes=(4, 1), seed=0):
    from sinlstm_sym.recurrence.params import unpacked_shapes
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
            for name, shape in unpacked_shapes(hidden_sizes).items()}


@pytest.mark.parametrize("cell", ["unrolled", "fused", "native"])
def test_a_last_level_predictor_moves_with_the_series(cell):
    """Adding c to every value of a window adds exactly c to the forecast: a trend cannot leave the range
    the model was trained on."""
    predictor = Predictor(_tiny_params(), hidden_sizes=(4, 1), label_mode="last", feature="value", cell=cell,
                          scaling=(0.0, 2.5), window_level="last")
    if predictor.cell != cell:
        pytest.skip(f"cell {cell!r} is not available here")
    windows = trend_season(40)[np.arange(3)[:, None] * 7 + np.arange(12)]
    base = predictor.predict(windows)
    for shift in (1e3, -250.0):
        np.testing.assert_allclose(predictor.predict(windows + shift), base + shift, rtol=0, atol=1e-9)
    fixed = Predictor(_tiny_params(), hidden_sizes=(4, 1), label_mode="last", feature="value", cell=cell,
                      scaling=(0.0, 2.5))
    assert not np.allclose(fixed.predict(windows + 1e3), fixed.predict(windows) + 1e3, atol=1.0)


# --- end to end ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_trending_seasonal_series_beats_the_naive_baselines_and_the_level_survives_a_checkpoint(tmp_path):
    x = trend_season(360)
    fitted = fit_series([x], test=0.1, valid=0.1, seed=0, log_every=10 ** 6, num_epoch=3,
                        checkpoint=str(tmp_path / "run"))
    assert fitted.config.model.window_level == "last"
    evaluation = rolling_origin_evaluation(fitted.split, {"model": model_forecaster(fitted.predictor())}, 6,
                                           season=12)
    mase = evaluation.metrics
    for h in range(6):
        assert mase["model"]["mase"][h] < mase["naive"]["mase"][h]
        assert mase["model"]["mase"][h] < mase["seasonal_naive"]["mase"][h]
    loaded = Predictor.load(str(tmp_path / "run"))
    assert loaded.window_level == "last"
    windows = x[np.arange(4)[:, None] * 20 + np.arange(20)]
    np.testing.assert_allclose(loaded.predict(windows), fitted.predictor().predict(windows), rtol=0, atol=1e-9)


# --- the data must be what the model declares ------------------------------------------------------------
def test_fit_refuses_a_window_level_its_training_windows_do_not_have(tmp_path):
    from sinlstm_sym import fit
    with pytest.raises(ValueError, match=r"window_level='last' but the built-in sine windows are not taken "
                                         r"relative to each window's last value"):
        fit(feature="value", label_mode="last", window_level="last", num_samples=200, batch_size=100,
            checkpoint=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    level_windows = SeriesBucketIter([trend_season(60)], (4,), batch_size=10, num_samples=40, label_mode="last",
                                     window_level="last")
    config = FitConfig.series(window_level="none", hidden_sizes=(3, 1), num_epoch=1)
    with pytest.raises(ValueError, match=r"window_level='none' but train_iter \(window_level='last'\) are taken"):
        fit(config, train_iter=level_windows)


def test_a_forecast_of_more_steps_than_the_bound_is_refused_before_any_call():
    from sinlstm_sym.constants import MAX_FORECAST_STEPS
    predictor = Predictor(_tiny_params(), hidden_sizes=(4, 1), label_mode="last", feature="value", cell="fused",
                          scaling=(0.0, 2.5), window_level="last")
    with pytest.raises(ValueError, match=rf"steps must be at most {MAX_FORECAST_STEPS} .*got {MAX_FORECAST_STEPS + 1}"):
        predictor.forecast(trend_season(30), MAX_FORECAST_STEPS + 1)
    assert predictor.forecast(trend_season(30), 3).shape == (3,)
