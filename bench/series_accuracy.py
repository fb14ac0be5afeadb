#!/usr/bin/env python
"""Own-series accuracy: the series recipe against naive, seasonal-naive, ARIMA and ETS on real series.

Series (all offline): statsmodels' bundled co2 (weekly, averaged to months), El Nino (monthly sea
temperatures), sunspots (yearly; season 11 for the seasonal-naive baseline), and three quarterly
macrodata series (real GDP, CPI, unemployment), plus a synthetic monthly series (360 points: level 100,
trend 0.5 per month, a 12-month season of amplitude 10, Gaussian noise of sd 2, seed 0).

Every series is split by time as ``sinlstm-series`` splits it (the last 10 % held out for the test,
10 % before it for validation); MASE is scored at horizons 1, 3 and 6 over every held-out point
(rolling origins). The model is ``fit_series`` with the series recipe for each window level
(``--levels``), trained once per seed (``--seeds``); the table shows the median over seeds and the
range. ARIMA and ETS are the series command's references, fitted once per series (their seconds are
printed).

    python bench/series_accuracy.py                       # the whole table (about 10 minutes on 2 cores)
    python bench/series_accuracy.py --series synthetic,co2 --seeds 0 --levels last
"""
import argparse
import logging
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import benchkit
import numpy as np

from sinlstm_sym import FitConfig
from sinlstm_sym.constants import WINDOW_LEVELS
from sinlstm_sym.series import model_forecaster, rolling_origin_evaluation, split_by_time
from sinlstm_sym.series.reference import arima_forecaster, ets_forecaster
from sinlstm_sym.series.training import fit_planned, plan_series

HORIZONS = (1, 3, 6)


def synthetic() -> np.ndarray:
    t = np.arange(360)
    return 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 2, t.size)


def _statsmodels(name: str) -> np.ndarray:
    import statsmodels.api as sm
    datasets = sm.datasets
    if name == "co2":
        return datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate().to_numpy()
    if name == "elnino":
        return datasets.elnino.load_pandas().data.iloc[:, 1:].to_numpy().ravel()
    if name == "sunspots":
        return datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
    return datasets.macrodata.load_pandas().data[name].to_numpy()


# name -> (loader, season of the seasonal-naive baseline and of ETS)
SERIES: Dict[str, Tuple[Callable[[], np.ndarray], Optional[int]]] = {
    "synthetic": (synthetic, 12),
    "co2": (lambda: _statsmodels("co2"), 12),
    "elnino": (lambda: _statsmodels("elnino"), 12),
    "sunspots": (lambda: _statsmodels("sunspots"), 11),
    "realgdp": (lambda: _statsmodels("realgdp"), 4),
    "cpi": (lambda: _statsmodels("cpi"), 4),
    "unemp": (lambda: _statsmodels("unemp"), 4),
}


def score(name: str, seeds: List[int], levels: List[str], settings: Dict[str, Any]) -> Dict[str, Any]:
    """MASE at ``HORIZONS`` of every method on one series: references once, the model per level and seed."""
    loader, season = SERIES[name]
    split = split_by_time([np.asarray(loader(), dtype=np.float64)], test=0.1, valid=0.1)
    started = time.perf_counter()
    references = {"arima": arima_forecaster(split), "ets": ets_forecaster(split, season)}
    evaluation = rolling_origin_evaluation(split, references, max(HORIZONS), season=season)
    row: Dict[str, Any] = {m: [evaluation.metrics[m]["mase"][h - 1] for h in HORIZONS] for m in evaluation.metrics}
    row["reference_seconds"] = time.perf_counter() - started
    for level in levels:
        runs = []
        for seed in seeds:
            config = FitConfig.series(seed=seed, log_every=10 ** 6, window_level=level, **settings)
            fitted = fit_planned(plan_series(split, config))
            model = rolling_origin_evaluation(split, {"model": model_forecaster(fitted.predictor())},
                                              max(HORIZONS), season=season)
            runs.append([model.metrics["model"]["mase"][h - 1] for h in HORIZONS])
        row[f"model ({level})"] = np.median(np.array(runs), axis=0).tolist()
        row[f"model ({level}) range"] = [np.min(runs, axis=0).tolist(), np.max(runs, axis=0).tolist()]
    return row


def print_table(rows: Dict[str, Dict[str, Any]], levels: List[str]) -> None:
    methods = [f"model ({level})" for level in levels] + ["naive", "seasonal_naive", "arima", "ets"]
    print("MASE at h=" + ", ".join(map(str, HORIZONS)) + " (model: median over seeds)")
    print(f"{'series':<10}" + "".join(f"{m:>22}" for m in methods) + f"{'refs (s)':>10}")
    for name, row in rows.items():
        cells = ["/".join(f"{v:.2f}" for v in row[m]) if m in row else "-" for m in methods]
        print(f"{name:<10}" + "".join(f"{c:>22}" for c in cells) + f"{row['reference_seconds']:>10.1f}")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", default=",".join(SERIES), help=f"comma-separated, of {list(SERIES)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds of the model's runs")
    parser.add_argument("--levels", default="none,last", help=f"window levels to compare, of {list(WINDOW_LEVELS)}")
    parser.add_argument("--num-epoch", type=benchkit.positive_int, default=None,
                        help="override the recipe's epochs (smoke runs)")
    parser.add_argument("--num-samples", type=benchkit.positive_int, default=None,
                        help="override the recipe's windows per epoch")
    parser.add_argument("--json", default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    args.series = args.series.split(",")
    args.levels = args.levels.split(",")
    unknown = sorted(set(args.series) - set(SERIES)) + sorted(set(args.levels) - set(WINDOW_LEVELS))
    if unknown:
        parser.error(f"unknown series or levels {unknown}; series: {list(SERIES)}, levels: {list(WINDOW_LEVELS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    settings = {k: v for k, v in (("num_epoch", args.num_epoch), ("num_samples", args.num_samples)) if v}
    logging.basicConfig(level=logging.WARNING)
    rows = {name: score(name, args.seeds, args.levels, settings) for name in args.series}
    print_table(rows, args.levels)
    if args.json:
        benchkit.write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
