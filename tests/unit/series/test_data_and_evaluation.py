"""``sinlstm_sym.series``: windows from real series (contract, no crossing, no held-out leak, determinism,
sharding), bad input with its message, scaling through a checkpoint, metrics against hand-computed values,
and (slow) the sunspots demo against the naive baseline."""
import collections
import json
import logging
import re

import numpy as np
import pytest

from sinlstm_sym import Predictor, fit
from sinlstm_sym.config import FitConfig, ModelConfig
from sinlstm_sym.series import (Scaling, SeriesBucketIter, check_series, fit_series, mae, model_forecaster,
                                naive_forecaster, naive_scale, read_csv_series, rmse, rolling_origin_evaluation,
                                seasonal_naive_forecaster, smape, split_by_time)
from sinlstm_sym.series.data import STD_PER_UNIT, TimeSplit

# Values that encode their own position: series i, index j -> 1000 * i + j (exact in float32).
LENGTHS = (12, 7, 30, 4, 16)


def coded_series(lengths=LENGTHS):
    return [1000.0 * i + np.arange(n, dtype=np.float64) for i, n in enumerate(lengths)]


def make_iter(series=None, **kwargs):
    args = dict(buckets=(3, 5, 8), batch_size=4, num_samples=48, seed=0, scaling="none")
    args.update(kwargs)
    return SeriesBucketIter(coded_series() if series is None else series, **args)


def epoch_arrays(it):
    return [(b.bucket_key, b.data[0].asnumpy(), b.label[0].asnumpy()) for b in it]


def decode(values):
    return np.floor_divide(values, 1000).astype(int), np.mod(values, 1000).astype(int)


# --- windows ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label_mode", ["sequence", "last"])
def test_windows_are_consecutive_values_of_one_series_with_the_next_value_as_label(label_mode):
    series = coded_series()
    it = make_iter(series, label_mode=label_mode, num_samples=400)
    seen = collections.Counter()
    for key, data, label in epoch_arrays(it):
        assert data.shape == (4, key, 1) and data.dtype == np.float32
        assert label.shape == ((4, key) if label_mode == "sequence" else (4, 1))
        whole = np.concatenate([data[:, :, 0], label[:, -1:]], axis=1)  # inputs + next value
        which, index = decode(whole)
        assert (which == which[:, :1]).all(), "a window spans two series"
        assert (np.diff(index, axis=1) == 1).all()
        for i, j in zip(which[:, 0], index[:, -1]):
            assert j < len(series[i])  # the label is a real value of that series
        if label_mode == "sequence":
            np.testing.assert_array_equal(label, whole[:, 1:])
        seen.update(which[:, 0].tolist())
    assert set(seen) == set(range(len(series)))  # series 3 (4 points) fits bucket 3 and its label


def test_every_window_start_is_reachable_and_counted():
    it = make_iter()
    for k in it.buckets:
        assert it.windows_per_bucket[k] == sum(max(0, n - k) for n in LENGTHS)
        starts = it._starts[:it.windows_per_bucket[k]]  # the bucket's windows, as the iterator samples them
        located = it.locate(starts)
        expected = {(i, j) for i, n in enumerate(LENGTHS) for j in range(n - k)}
        assert set(map(tuple, located.tolist())) == expected


def test_schedule_follows_largest_remainder_and_default_bucket_is_the_largest():
    it = make_iter(num_samples=40, length_weights=[1, 1, 2])
    assert it.default_bucket_key == 8 and len(it) == 10
    assert it.batches_per_bucket == {3: 3, 5: 2, 8: 5}  # quotas 2.5, 2.5, 5 -> the tie goes to the shorter
    assert collections.Counter(k for k, _, _ in epoch_arrays(it)) == {3: 3, 5: 2, 8: 5}
    assert [d.shape for d in it.provide_data] == [(4, 8, 1)] and [d.shape for d in it.provide_label] == [(4, 8)]


def test_same_seed_same_batches_other_seed_other_batches_and_global_rng_untouched():
    state = np.random.get_state()
    a, b, c = epoch_arrays(make_iter()), epoch_arrays(make_iter()), epoch_arrays(make_iter(seed=1))
    assert all(x[0] == y[0] and np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(a, c))
    assert np.array_equal(np.random.get_state()[1], state[1])


def test_set_epoch_resumes_and_refresh_false_replays():
    it = make_iter()
    epoch_arrays(it)
    it.reset()
    second = epoch_arrays(it)
    other = make_iter()
    other.set_epoch(1, cursor=3)
    resumed = epoch_arrays(other)
    assert len(resumed) == len(second) - 3
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(second[3:], resumed))
    fixed = make_iter(refresh=False)
    first = epoch_arrays(fixed)
    fixed.reset()
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(first, epoch_arrays(fixed)))


def test_shards_are_disjoint_equal_sized_and_cover_the_global_epoch():
    whole = make_iter(num_samples=108)  # 27 batches: 9 per bucket, so 3 per bucket in each of 3 parts
    reference = {int(i): (k, d) for i, (k, _, d) in zip(whole.batch_indices, epoch_arrays(whole))}
    parts = [make_iter(num_samples=108, num_parts=3, part_index=p) for p in range(3)]
    positions = [set(p.batch_indices.tolist()) for p in parts]
    assert [len(p) for p in parts] == [9, 9, 9]
    assert set.union(*positions) == set(reference) and sum(map(len, positions)) == len(reference)
    for part in parts:
        for pos, (key, _, label) in zip(part.batch_indices, epoch_arrays(part)):
            assert key == reference[int(pos)][0]
            np.testing.assert_array_equal(label, reference[int(pos)][1])
        assert collections.Counter(part.schedule.tolist()) == collections.Counter(parts[0].schedule.tolist())


def test_memory_is_the_data_plus_one_index_per_point_whatever_the_number_of_series():
    few = SeriesBucketIter([np.arange(100000.0)], buckets=range(1, 10), seed=0, scaling="none")
    many = SeriesBucketIter(list(np.arange(100000.0).reshape(10000, 10)), buckets=range(1, 10), seed=0,
                            scaling="none")
    for it in (few, many):
        assert it._values.nbytes == 400000 and it._starts.nbytes == 400000  # float32 values, int32 starts
    assert many.offsets.nbytes == 8 * 10001  # one offset per series: the only per-series cost


def test_default_num_samples_is_every_window_once():
    it = make_iter(num_samples=None)
    assert it.num_samples == sum(it.windows_per_bucket.values())


# --- split by time ------------------------------------------------------------------------------------
def test_split_by_time_holds_out_the_tail_by_fraction_or_count():
    series = [np.arange(100.0), np.arange(10.0)]
    split = split_by_time(series, test=0.1, valid=5)
    assert split.test_start == (90, 9) and split.train_end == (85, 4)
    np.testing.assert_array_equal(split.test[0], np.arange(90.0, 100.0))
    np.testing.assert_array_equal(split.valid[1], np.arange(4.0, 9.0))
    with pytest.raises(ValueError, match=r"series\[1\] has 10 points: holding out test=8 \(8\) and valid=5 "):
        split_by_time(series, test=8, valid=5)
    with pytest.raises(ValueError, match=r"test must be a fraction in \[0, 1\) or a number of points"):
        split_by_time(series, test=1.5)


def test_no_held_out_value_ever_reaches_training():
    series = coded_series((40, 25, 60))
    split = split_by_time(series, test=0.2, valid=3)
    it = SeriesBucketIter(split.train, buckets=(2, 5, 9), batch_size=8, num_samples=2000, seed=3, scaling="none",
                          label_mode="sequence")
    held_out = {v for i, s in enumerate(series) for v in s[split.train_end[i]:]}
    for _ in range(3):
        for _, data, label in epoch_arrays(it):
            assert held_out.isdisjoint(data.ravel().tolist()) and held_out.isdisjoint(label.ravel().tolist())
            which, index = decode(label)
            assert (index < np.array(split.train_end)[which]).all()
        it.reset()


def test_scaling_is_fitted_on_the_training_part_only():
    x = np.concatenate([np.arange(80.0), 1e6 * np.ones(20)])  # a huge held-out tail
    split = split_by_time([x], test=20)
    it = SeriesBucketIter(split.train, buckets=(4,), batch_size=2, seed=0)
    assert it.scaling.center == pytest.approx(np.mean(np.arange(80.0)))
    assert it.scaling.scale == pytest.approx(STD_PER_UNIT * np.std(np.arange(80.0)))
    rng = Scaling.fit([np.array([2.0, 6.0, 4.0])], "range")
    assert (rng.center, rng.scale) == (4.0, 4.0)
    np.testing.assert_allclose(rng.inverse(rng.transform([1.0, 7.0])), [1.0, 7.0])
    assert Scaling.fit([np.full(5, 3.0)], "standard").scale == 1.0  # constant: no division by zero


# --- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("series, error, message", [
    ([], ValueError, "series must hold at least one 1-D numeric array, got an empty list"),
    ([np.ones(5), np.array([1.0, np.nan, 2.0])], ValueError, r"series[1][1] is nan: fill or drop missing values"),
    ([np.array([1.0, 2.0, np.inf, -np.inf])], ValueError, r"series[0][2] is inf (and 1 more non-finite values)"),
    ([np.ones(5), np.ones((3, 4))], ValueError, r"series[1] must be 1-D (one value per time step), got shape (3, 4)"),
    ([np.ones(3), ["1", "2"]], TypeError, "series[1] must be numeric, got dtype <U1"),
    ([[1.0, None, 3.0]], TypeError, "series[0][1] is not a number: None"),
    ([5.0], TypeError, "series[0] must be a 1-D numeric array, got the number 5.0 (pass [values]"),
    ("abc", TypeError, "series must be a list of 1-D numeric arrays (one per series), got str"),
])
def test_bad_series_are_refused_naming_series_and_index(series, error, message):
    with pytest.raises(error, match=re.escape(message)):
        check_series(series)
    with pytest.raises(error, match=re.escape(message)):
        SeriesBucketIter(series, buckets=(2,), batch_size=1, seed=0)


def test_bad_value_is_named_by_the_series_name_when_given():
    with pytest.raises(ValueError, match=re.escape("series 'pump-2' (index 1)[3] is nan")):
        check_series([np.ones(4), np.array([1, 2, 3, np.nan])], names=["pump-1", "pump-2"])


def test_short_series_are_skipped_with_a_warning_or_refused_if_none_remain(caplog):
    with caplog.at_level(logging.WARNING, logger="sinlstm_sym.series.iterator"):
        it = SeriesBucketIter([np.arange(3.0), np.arange(20.0), np.arange(5.0)], buckets=(5, 8), batch_size=2,
                              seed=0)
    assert it.series_indices == (1,)
    assert "series[0] has 3 points, fewer than the smallest bucket + 1 (6): skipped" in caplog.text
    assert "series[2] has 5 points" in caplog.text
    with pytest.raises(ValueError, match=r"no series has at least 6 points \(the smallest bucket, 5, \+ 1"):
        SeriesBucketIter([np.arange(3.0), np.arange(5.0)], buckets=(5,), batch_size=2, seed=0)
    with pytest.raises(ValueError, match=r"bucket 30 is longer than every series \(the longest has 20 points"):
        SeriesBucketIter([np.arange(20.0)], buckets=(5, 30), batch_size=2, seed=0)


def test_csv_reading_names_file_line_and_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("t,v,id\n0,1.5,a\n1,2.5,b\n2,3.5,a\n")
    series, names = read_csv_series(path, "v", group="id")
    assert names == ["a", "b"]
    np.testing.assert_array_equal(series[0], [1.5, 3.5])
    path.write_text("t,v\n0,1.5\n1,\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 3: column 'v' holds '', not a number")):
        read_csv_series(path, "v")
    with pytest.raises(ValueError, match=r"column 'w' is not a column of .* \(columns: \['t', 'v'\]\)"):
        read_csv_series(path, "w")


def test_model_config_scaling_is_validated():
    assert ModelConfig(feature="value", scaling=[1, 2.5]).scaling == (1.0, 2.5)
    with pytest.raises(ValueError, match="scaling applies to past values: it needs feature='value'"):
        ModelConfig(scaling=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"scaling scale must be > 0.0, got 0.0"):
        ModelConfig(feature="value", scaling=(0.0, 0.0))
    with pytest.raises(ValueError, match=r"scaling must be \(center, scale\) or None"):
        ModelConfig(feature="value", scaling=(1.0,))


# --- scaling travels with the model -----------------------------------------------------------------
def test_scaling_round_trip_through_a_checkpoint_gives_original_units(tmp_path):
    x = 500.0 + 80.0 * np.sin(np.arange(200) * 0.3)
    fitted = fit_series([x], test=20, buckets=[4, 8], batch_size=20, num_samples=400, seed=0,
                        checkpoint=str(tmp_path / "ck"), log_every=1000, hidden_sizes=[4, 1], window_level="none")
    center, scale = fitted.scaling.as_tuple()
    assert fitted.config.model.scaling == (center, scale)
    assert center == pytest.approx(x[:180].mean())
    loaded = Predictor.load(str(tmp_path / "ck"))
    assert loaded.scaling == (center, scale)
    windows = np.stack([x[10:18], x[50:58]])
    direct = fitted.predictor().predict(windows)
    np.testing.assert_allclose(loaded.predict(windows), direct, rtol=1e-6)
    # an independent check: the same parameters without scaling, fed scaled values, scaled back
    raw = Predictor(fitted.result.arg_params(), hidden_sizes=[4, 1], feature="value",
                    label_mode=fitted.config.model.label_mode)  # the series recipe's ('last')
    np.testing.assert_allclose(direct, raw.predict((windows - center) / scale) * scale + center, rtol=1e-5)
    assert abs(direct.mean() - x.mean()) < 3 * x.std()  # in the series' units, not the model's
    forecast = loaded.forecast(x[:3], steps=5)  # a history shorter than any bucket
    assert forecast.shape == (5,) and np.isfinite(forecast).all()
    saved = json.loads((sorted((tmp_path / "ck").glob("ckpt-*"))[-1] / "config.json").read_text())
    assert saved["settings"]["model"]["scaling"] == [center, scale]


def test_fit_with_a_series_iterator_honours_the_contract():
    it = make_iter(scaling="range", num_samples=40)
    result = fit(FitConfig.from_flat(feature="value", label_mode="sequence", hidden_sizes=[3, 1], seed=0),
                 train_iter=it)
    assert result.trained_lengths == (3, 5, 8) and np.isfinite(result.losses).all()


# --- metrics ----------------------------------------------------------------------------------------
def test_metrics_against_hand_computed_values():
    y, f = np.array([1.0, 2.0, 4.0, 0.0]), np.array([2.0, 2.0, 1.0, 0.0])
    assert mae(y, f) == 1.0  # (1 + 0 + 3 + 0) / 4
    assert rmse(y, f) == pytest.approx(np.sqrt(10 / 4))
    assert smape(y, f) == pytest.approx((200 / 3 + 0 + 200 * 3 / 5 + 0) / 4)  # 0/0 counts as 0
    assert naive_scale(np.array([1.0, 3.0, 2.0, 2.0])) == pytest.approx(1.0)  # (2 + 1 + 0) / 3


def test_baselines_forecast_last_value_and_last_season():
    h = [np.array([1.0, 2.0, 3.0, 4.0, 5.0])]
    np.testing.assert_array_equal(naive_forecaster(0, h, 3), [[5.0, 5.0, 5.0]])
    np.testing.assert_array_equal(seasonal_naive_forecaster(2)(0, h, 5), [[4.0, 5.0, 4.0, 5.0, 4.0]])
    with pytest.raises(ValueError, match=r"seasonal naive needs at least one season \(7\) of history"):
        seasonal_naive_forecaster(7)(0, h, 1)


def test_rolling_origin_evaluation_by_hand():
    x = np.array([0.0, 2.0, 1.0, 3.0, 2.0, 6.0, 4.0])
    split = TimeSplit([x], train_end=(5,), test_start=(5,))
    ev = rolling_origin_evaluation(split, {}, horizon=2, season=2)
    scale = np.mean(np.abs(np.diff(x[:5])))  # (2 + 1 + 2 + 1) / 4 = 1.5
    # h=1: targets x5=6 from x4=2, x6=4 from x5=6; h=2: x5 from x3=3, x6 from x4=2
    assert ev.metrics["naive"]["mae"] == [pytest.approx(3.0), pytest.approx(2.5)]
    assert ev.metrics["naive"]["mase"] == [pytest.approx(3.0 / scale), pytest.approx(2.5 / scale)]
    assert ev.metrics["naive"]["rmse"] == [pytest.approx(np.sqrt((16 + 4) / 2)), pytest.approx(np.sqrt(6.5))]
    # seasonal naive, m=2: h=1 x5 <- x3=3, x6 <- x4=2; h=2 x5 <- x3, x6 <- x4 (same values)
    assert ev.metrics["seasonal_naive"]["mae"] == [pytest.approx(2.5), pytest.approx(2.5)]
    assert ev.metrics["naive"]["smape"][0] == pytest.approx((200 * 4 / 8 + 200 * 2 / 10) / 2)
    assert ev.count == [2, 2]
    payload = ev.to_json()
    assert payload["horizon"] == [1, 2] and payload["naive_mae"] == ev.metrics["naive"]["mae"]
    assert "seasonal_naive_mae" in payload


def test_model_forecaster_batches_histories_and_matches_predictor_forecast():
    x = np.sin(np.arange(120) * 0.4)
    fitted = fit_series([x], test=10, buckets=[3, 6], batch_size=10, num_samples=200, seed=0, log_every=1000,
                        hidden_sizes=[4, 1], label_mode="last")
    p = fitted.predictor()
    histories = [x[:50], x[:2], x[:80]]
    got = model_forecaster(p)(0, histories, 3)
    for h, row in zip(histories, got):
        np.testing.assert_allclose(row, p.forecast(h, 3), rtol=1e-5)


# --- the demo ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sunspots_demo_beats_naive_at_horizon_one(tmp_path):
    pytest.importorskip("statsmodels", reason="the sunspots data come with statsmodels: pip install '.[data]'")
    from sinlstm_sym.cli.series import main
    from sinlstm_sym.series.sunspots import write_sunspots_csv
    csv_path = write_sunspots_csv(tmp_path / "sunspots.csv")
    out = tmp_path / "m.json"
    assert main(["--csv", str(csv_path), "--column", "SUNACTIVITY", "--season", "11", "--horizon", "11",
                 "--references", "off", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["horizon"] == list(range(1, 12))
    assert metrics["mase"][0] < metrics["naive_mase"][0]


@pytest.mark.parametrize("flags, message", [
    (["--column", "nope"], "argument --csv/--column: column 'nope' is not a column of"),
    (["--column", "v", "--test", "1.5"], "argument --test: expected a number of points (int >= 0) or a fraction"),
    (["--column", "v", "--buckets", "90"], "argument --buckets: no series has at least 91 points"),
    (["--column", "v", "--json", "out.txt"], "argument --json: the file must be a file name ending in .json"),
    (["--column", "v", "--horizon", "60"], "argument --horizon/--season/--test: no series has a test part with"),
])
def test_own_series_refuses_bad_flags_before_training(tmp_path, capsys, flags, message):
    from sinlstm_sym.cli.series import main
    path = tmp_path / "d.csv"
    path.write_text("t,v\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(100)))
    with pytest.raises(SystemExit) as stop:
        main(["--csv", str(path), *flags])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "training fused" not in err


# --- hostile or large input -------------------------------------------------------------------------
def test_a_csv_cell_over_the_field_limit_is_refused_naming_file_and_line(tmp_path, capsys):
    import csv
    path = tmp_path / "d.csv"
    path.write_text("t,v\n0,1.5\n1," + "7" * (csv.field_size_limit() + 1) + "\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 3: not a CSV file of values (field larger than "
                                                   f"field limit ({csv.field_size_limit()})")):
        read_csv_series(path, "v")
    from sinlstm_sym.cli.series import main
    with pytest.raises(SystemExit) as stop:
        main(["--csv", str(path), "--column", "v"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert "argument --csv/--column:" in err and f"{path}, line 3" in err


def test_values_that_overflow_the_scaling_are_refused_naming_the_column(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"scaling 'standard' of the training values overflows float64 \(the "
                       r"largest magnitude is 1e\+300\)"):
        Scaling.fit([np.array([1e300, -1e300, 5e299])])
    path = tmp_path / "d.csv"
    path.write_text("t,v\n" + "".join(f"{i},{(-1) ** i * 1e300}\n" for i in range(100)))
    from sinlstm_sym.cli.series import main
    with pytest.raises(SystemExit) as stop:
        main(["--csv", str(path), "--column", "v"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert f"argument --column: {path}, column 'v': scaling 'standard'" in err and "--buckets" not in err


def test_references_forecast_from_the_latest_points_and_log_progress(caplog):
    from sinlstm_sym.constants import REFERENCE_FORECAST_HISTORY
    from sinlstm_sym.series.reference import forecast_all
    seen = []
    histories = [np.arange(float(REFERENCE_FORECAST_HISTORY + 100 + i)) for i in range(2500)]
    with caplog.at_level(logging.INFO, logger="sinlstm_sym.series.reference"):
        out = forecast_all("X", 3, histories, lambda h: seen.append(len(h)) or h[-2:])
    assert out.shape == (2500, 2) and out[-1].tolist() == [histories[-1][-2], histories[-1][-1]]
    assert set(seen) == {REFERENCE_FORECAST_HISTORY}
    assert [r.getMessage() for r in caplog.records] == ["X: series 3, 1000 of 2500 forecast origins",
                                                        "X: series 3, 2000 of 2500 forecast origins"]


def test_references_are_skipped_with_a_warning_beyond_the_origin_bound(monkeypatch, caplog):
    import argparse
    import sinlstm_sym.cli.series as series_cli
    monkeypatch.setattr(series_cli, "statsmodels_available", lambda: True)
    monkeypatch.setattr(series_cli, "REFERENCE_MAX_ORIGINS", 50)
    split = split_by_time([np.sin(np.arange(500) / 5)], test=60)
    with caplog.at_level(logging.WARNING):
        assert series_cli._references(split, argparse.Namespace(horizon=3, season=None)) == {}
    assert "ARIMA/ETS references skipped: the test parts hold 62 forecast origins, more than 50" in caplog.text


@pytest.mark.slow
def test_arima_on_a_long_series_fits_on_the_latest_points_and_forecasts_like_the_whole_history(caplog):
    pytest.importorskip("statsmodels")
    from sinlstm_sym.constants import REFERENCE_MAX_HISTORY
    from sinlstm_sym.series.reference import arima_forecaster
    rng = np.random.default_rng(0)
    x = np.zeros(3 * REFERENCE_MAX_HISTORY)
    for t in range(1, len(x)):
        x[t] = 0.7 * x[t - 1] + rng.normal()
    split = split_by_time([x], test=20)
    with caplog.at_level(logging.INFO, logger="sinlstm_sym.series.reference"):
        forecast = arima_forecaster(split, max_ar=2)
    assert f"ARIMA: choosing the AR order of series 0 ({REFERENCE_MAX_HISTORY} points, orders 0..2)" in caplog.text
    histories = [x[:len(x) - 20 + k] for k in range(3)]
    got = forecast(0, histories, 4)
    from statsmodels.tsa.arima.model import ARIMA
    end = len(x) - 20  # the training part
    res = ARIMA(x[end - REFERENCE_MAX_HISTORY:end], order=forecast.order[0], trend="c").fit()
    whole = np.stack([res.apply(h).forecast(4) for h in histories])
    np.testing.assert_allclose(got, whole, rtol=1e-6, atol=1e-9)  # an AR forecast needs only the last p points


# --- encodings and headers --------------------------------------------------------------------------
def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfvalue,x\n1.5,2\n2.5,3\n")
    series, _ = read_csv_series(path, "value")
    np.testing.assert_array_equal(series[0], [1.5, 2.5])


@pytest.mark.parametrize("content, line, hint", [
    ("value\n1.5\n2.5\n".encode("utf-16"), 1, "UTF-16 text (it starts with a UTF-16 byte-order mark)"),
    (b"value,x\n1.5,2\n2.5,caf\xe9\n", 3, "not UTF-8 (byte 0xe9 at column 8; latin-1"),
])
def test_other_encodings_are_refused_naming_file_line_and_flag(tmp_path, capsys, content, line, hint):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"{path}, line {line}: {hint}")) as info:
        read_csv_series(path, "value")
    assert "must be UTF-8 text (with or without a byte-order mark)" in str(info.value)
    assert info.value.settings == ("csv",)
    from sinlstm_sym.cli.series import main
    with pytest.raises(SystemExit) as stop:
        main(["--csv", str(path), "--column", "value"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1
    assert f"argument --csv: {path}, line {line}: " in err and "UTF-8" in err


def test_a_column_named_twice_is_refused_naming_it(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("value,value,id\n1,2,a\n3,4,a\n")
    with pytest.raises(ValueError, match=re.escape("column 'value' names 2 columns of")):
        read_csv_series(path, "value")
    path.write_text("value,id,id\n1,a,b\n")
    with pytest.raises(ValueError, match=re.escape("group 'id' names 2 columns of")):
        read_csv_series(path, "value", group="id")
    path.write_text("value,x,x\n1,a,b\n")  # a repeated column that is not read is harmless
    assert read_csv_series(path, "value")[0][0].tolist() == [1.0]
