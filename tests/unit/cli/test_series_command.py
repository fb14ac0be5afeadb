"""The series command (``sinlstm-series`` / ``examples/own_series.py``): forecasts past the end of the data
written as CSV/JSON and drawn, its flags refused before training, and the warning when a baseline wins."""
import csv
import json

import numpy as np
import pytest

from sinlstm_sym.cli import series as series_cli


def write_csv(path, values):
    path.write_text("value\n" + "".join(f"{v!r}\n" for v in values))
    return str(path)


def trend_season(n=240, seed=0):
    t = np.arange(n)
    return 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 2, n)


QUICK = ["--num-samples", "2000", "--num-epoch", "1", "--references", "off", "--horizon", "3", "--season", "12",
         "--buckets", "5,10"]


@pytest.mark.parametrize("extra, flag, message", [
    (["--forecast-file", "f.csv"], "--forecast-file", "needs --forecast N"),
    (["--forecast-plot", "f.png"], "--forecast-plot", "needs --forecast N"),
    (["--forecast", "3", "--forecast-file", "f.txt"], "--forecast-file", "must be a file name ending in .csv, .json"),
    (["--forecast", "0"], "--forecast", "expected an int >= 1 and <= 100000, got '0'"),
    (["--forecast", "1000000000"], "--forecast", "expected an int >= 1 and <= 100000, got '1000000000'"),
    (["--window-level", "mean"], "--window-level", "invalid choice"),
])
def test_forecast_flags_are_refused_before_training(tmp_path, monkeypatch, capsys, extra, flag, message):
    monkeypatch.chdir(tmp_path)
    csv_path = write_csv(tmp_path / "s.csv", trend_season())
    with pytest.raises(SystemExit) as stop:
        series_cli.main(["--csv", csv_path, "--column", "value", *QUICK, *extra])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert f"argument {flag}" in err and message in err
    assert not list(tmp_path.glob("f.*"))


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_forecast_past_the_end_is_printed_written_and_drawn(tmp_path, capsys, suffix):
    pytest.importorskip("matplotlib")
    x = trend_season()
    out, picture = tmp_path / f"future{suffix}", tmp_path / "future.png"
    code = series_cli.main(["--csv", write_csv(tmp_path / "s.csv", x), "--column", "value", *QUICK,
                            "--forecast", "4", "--forecast-file", str(out), "--forecast-plot", str(picture)])
    assert code == 0
    assert "forecast past the end of the data (4 steps" in capsys.readouterr().out
    if suffix == ".csv":
        rows = list(csv.DictReader(out.open()))
        assert [(r["series"], r["step"]) for r in rows] == [("0", str(k)) for k in range(1, 5)]
        values = np.array([float(r["forecast"]) for r in rows])
    else:
        payload = json.loads(out.read_text())
        assert payload["steps"] == 4 and [s["name"] for s in payload["series"]] == ["0"]
        values = np.array(payload["series"][0]["forecast"])
    # the next values of a series that ends near 220 and moves by at most ~15 per step
    assert np.isfinite(values).all() and np.all(np.abs(values - x[-1]) < 60)
    assert picture.stat().st_size > 1000


@pytest.mark.slow
def test_a_model_that_loses_to_a_baseline_says_so_with_the_numbers(tmp_path, caplog):
    # a model of fixed level, barely trained, on a trending series: the naive forecast is far better
    code = series_cli.main(["--csv", write_csv(tmp_path / "s.csv", trend_season()), "--column", "value",
                            *QUICK, "--num-samples", "200", "--window-level", "none"])
    assert code == 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("naive (h=1: " in m and "better than the model on the held-out part (MASE" in m for m in warned), \
        warned
