"""``sinlstm-series`` (or ``python examples/own_series.py``): train on your own series (a CSV column), score the
forecasts, and forecast past the end of the data.

The last --test points of every series are held out (and --valid before them, the validation
loss); the model trains on the rest, scaled on it. Prints MASE/MAE per horizon on the held-out
part beside the naive and seasonal-naive baselines (and statsmodels' ARIMA/ETS when installed),
and writes JSON and a plot on request. Every flag is checked before training. ``--checkpoint DIR`` writes
checkpoints there; ``--resume`` continues the run they hold, ``--overwrite`` replaces it with a new one. Ctrl-C
or SIGTERM stops at the next batch boundary (with a checkpoint under --checkpoint and the command to resume)
and exits 130 or 143.
"""
import argparse
import contextlib
import json
import logging
import sys
from typing import Any, Dict, List, Optional

from ..core.checks import settings_of
from ..config.fit_config import FitConfig
from ..constants import (MAX_FORECAST_STEPS, REFERENCE_FORECAST_HISTORY, REFERENCE_MAX_HISTORY,
                         REFERENCE_MAX_ORIGINS)
from ..series.data import SCALINGS, Scaling, TimeSplit, read_csv_series, series_label, split_by_time
from ..series.evaluation import model_forecaster, rolling_origin_evaluation
from ..series.future import forecast_past_end, plot_forecasts, write_forecasts
from ..series.reference import arima_forecaster, ets_forecaster, statsmodels_available
from ..series.training import plan_series, planned_session, series_result
from ..train.loop import TrainingInterrupted
from .args import (Parser, check_output_flags, fail, forecast_file, int_at_least, json_file, needs_matplotlib,
                   plot_file)
from .flags import add_setting_flags, flag_of, refuse_setting
from .runner import failure_exit
from .train import _interrupted as interrupted_with_resume

logger = logging.getLogger(__name__)

# The settings offered as flags (help, types, bounds and choices from FitConfig) and their values when left out:
# the series recipe (FitConfig.series()), seeded, logging every 200 batches.
SETTING_FLAGS = ("buckets", "hidden_sizes", "label_mode", "window_level", "batch_size", "num_samples", "num_epoch",
                 "optimizer", "optimizer_params", "seed", "log_every", "checkpoint", "resume", "overwrite")
DEFAULTS: Dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v
                            for k, v in dict(FitConfig.series().flat(), seed=0, log_every=200).items()}
FLAG_SETTINGS = {flag_of(setting): setting for setting in SETTING_FLAGS}
DATA_FLAGS = {"--csv": "csv", "--column": "column", "--group": "group"}  # read_csv_series's arguments


def holdout(text: str) -> Any:
    """'30' -> 30 points; '0.1' -> a fraction in [0, 1)."""
    try:
        value: Any = int(text)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number of points (int >= 0) or a fraction in [0, 1), "
                                         f"got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sinlstm-series", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--csv", required=True, metavar="FILE", help="a CSV file with a header row")
    p.add_argument("--column", required=True, metavar="NAME", help="the column of values (in time order)")
    p.add_argument("--group", metavar="NAME", default=None,
                   help="a column naming the series of each row (several series in one file)")
    p.add_argument("--season", type=int_at_least(1), default=None,
                   help="season length of the seasonal-naive baseline (e.g. 12 for monthly data)")
    p.add_argument("--horizon", type=int_at_least(1), default=10, help="forecast steps scored: 1..H")
    p.add_argument("--test", type=holdout, default=0.1, help="held-out test part of every series: points or fraction")
    p.add_argument("--valid", type=holdout, default=0.1,
                   help="validation part before the test part (its loss is logged after each epoch)")
    p.add_argument("--scaling", choices=list(SCALINGS), default="standard",
                   help="'standard': (x - mean) / (3 std) of the training part; 'range': training part to "
                        "[-0.5, 0.5]; the model's output lies in (-1, 1)")
    add_setting_flags(p, SETTING_FLAGS, shown={}, defaults=DEFAULTS)
    p.add_argument("--references", choices=["auto", "off"], default="auto",
                   help="'auto': also score statsmodels' ARIMA and ETS when statsmodels is installed (fitted on "
                        f"the latest {REFERENCE_MAX_HISTORY} training points of each series, forecasting from the "
                        f"latest {REFERENCE_FORECAST_HISTORY}; skipped beyond {REFERENCE_MAX_ORIGINS} forecast "
                        "origins)")
    p.add_argument("--plot", metavar="FILE.png", type=plot_file, default=None,
                   help="history, held-out truth and forecasts (.png, .pdf or .svg; needs matplotlib)")
    p.add_argument("--json", metavar="FILE.json", type=json_file, default=None, help="write the metrics as JSON")
    p.add_argument("--forecast", metavar="N", type=int_at_least(1, MAX_FORECAST_STEPS), default=None,
                   help="after scoring, forecast N values past the end of every series (from all its values) and "
                        "print them")
    p.add_argument("--forecast-file", metavar="FILE", type=forecast_file, default=None,
                   help="write those forecasts to FILE: .csv (series, step, forecast) or .json")
    p.add_argument("--forecast-plot", metavar="FILE.png", type=plot_file, default=None,
                   help="draw the latest values and those forecasts (.png, .pdf or .svg; needs matplotlib)")
    return p


def _settings(args: argparse.Namespace) -> Dict[str, Any]:
    return {setting: getattr(args, setting) for setting in SETTING_FLAGS}


def _given(args: argparse.Namespace) -> List[str]:
    """The settings whose flags were given (their values differ from the defaults)."""
    return [k for k, v in _settings(args).items() if v != DEFAULTS[k]]


def check_all(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Any:
    """Every flag and the data checked before training; returns the plan to train."""
    settings = _settings(args)
    try:
        config = FitConfig.series(**settings).check_memory()
    except (ValueError, TypeError) as err:
        refuse_setting(parser, err, FLAG_SETTINGS, _given(args))
    try:
        series, names = read_csv_series(args.csv, args.column, args.group)
    except (FileNotFoundError, ValueError, TypeError) as err:
        refuse_setting(parser, err, DATA_FLAGS, ("csv", "column", "group"))
    try:
        split = split_by_time(series, test=args.test, valid=args.valid, names=names)
    except (ValueError, TypeError) as err:
        fail(parser, "--test/--valid", str(err))
    try:
        Scaling.fit(split.train, args.scaling)
    except ValueError as err:
        fail(parser, "--column", f"{args.csv}, column {args.column!r}: {err}")
    try:
        plan = plan_series(split, config, args.scaling)  # the windows trained on, built once
    except (ValueError, TypeError) as err:
        if settings_of(err):  # a setting of the windows (num_samples, batch_size) names its flag
            refuse_setting(parser, err, FLAG_SETTINGS, _given(args))
        fail(parser, "--buckets", f"{err} (the training part is what is left after --test and --valid)")
    needed = args.horizon - 1 + max(args.horizon, args.season or 1)
    if not any(split.test_start[i] < len(s) and split.test_start[i] >= needed for i, s in enumerate(split.series)):
        fail(parser, "--horizon/--season/--test", f"no series has a test part with at least {needed} points before "
             f"it (horizon - 1 + max(horizon, season)) to score every horizon")
    check_output_flags(parser, args.checkpoint, args.plot)
    for flag, value in (("--forecast-file", args.forecast_file), ("--forecast-plot", args.forecast_plot)):
        if value is not None and args.forecast is None:
            fail(parser, flag, "needs --forecast N (how many values to forecast past the end)")
    if args.forecast_plot:
        needs_matplotlib(parser, "--forecast-plot")
    return plan


def _forecast_future(args: argparse.Namespace, split: TimeSplit, predictor: Any) -> None:
    """``--forecast``: print (and write, and draw) the next values of every series after its last one."""
    forecasts = forecast_past_end(predictor, split.series, args.forecast)
    print(f"\nforecast past the end of the data ({args.forecast} steps, from every value of each series):")
    for i, values in enumerate(forecasts):
        print(f"{series_label(i, split.names)}: " + " ".join(f"{v:.6g}" for v in values))
    if args.forecast_file:
        print(f"saved {write_forecasts(args.forecast_file, forecasts, split.names)}")
    if args.forecast_plot:
        print(f"saved {plot_forecasts(split.series, forecasts, args.forecast_plot, split.names)}")


def _references(split: TimeSplit, args: argparse.Namespace) -> Dict[str, Any]:
    """statsmodels' ARIMA and ETS, unless statsmodels is missing or the test parts have too many origins."""
    if not statsmodels_available():
        print("note: statsmodels is not installed (pip install 'sinlstm-sym[data]'): no ARIMA/ETS reference",
              file=sys.stderr)
        return {}
    origins = sum(len(t) + args.horizon - 1 for t in split.test if len(t))
    if origins > REFERENCE_MAX_ORIGINS:
        logger.warning("ARIMA/ETS references skipped: the test parts hold %d forecast origins, more than %d (each "
                       "runs a statsmodels filter); shorten --test to compare with them, or pass --references off",
                       origins, REFERENCE_MAX_ORIGINS)
        return {}
    logger.info("fitting the ARIMA and ETS references on %d series (%d forecast origins)", len(split.series),
                origins)
    return {"arima": arima_forecaster(split), "ets": ets_forecaster(split, args.season)}


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    plan = check_all(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        with contextlib.ExitStack() as stack:
            try:  # every check of the run (checkpoint directory, resume, updates): a refusal is exit 2
                session = stack.enter_context(planned_session(plan))
            except (FileNotFoundError, ValueError, TypeError) as err:
                refuse_setting(parser, err, FLAG_SETTINGS, _given(args))
            fitted = series_result(plan, session.train())
    except TrainingInterrupted as stop:  # where it stopped and how to resume; 130 or 143
        return interrupted_with_resume(stop, argv)
    except (KeyboardInterrupt, Exception) as err:  # a second signal, a full disk, a failed training
        return failure_exit(parser.prog, err)  # one line and its exit code; a bug keeps its traceback
    return _report(fitted, args)


def _report(fitted: Any, args: argparse.Namespace) -> int:
    """The scores of the held-out parts, the JSON and the plot."""
    split, predictor = fitted.split, fitted.predictor()
    forecasters: Dict[str, Any] = {"model": model_forecaster(predictor)}
    if args.references == "auto":
        forecasters.update(_references(split, args))
    evaluation = rolling_origin_evaluation(split, forecasters, args.horizon, season=args.season)
    held = sum(len(t) for t in split.test)
    print(f"\nheld-out test part: {held} points in {len(split.series)} series, every point forecast at horizons "
          f"1..{args.horizon} (rolling origins); MASE = MAE / in-sample naive one-step MAE of the training part")
    print(evaluation.table(("mase",)))
    print("\n" + evaluation.table(("mae",)))
    shortfall = evaluation.shortfall()
    if shortfall:
        logger.warning("%s", shortfall)
    if args.json:
        payload = {**evaluation.to_json(), "scaling": list(fitted.scaling.as_tuple()),
                   "config": fitted.config.to_json(), "test_points": held}
        from ..core.outputs import write_text_atomic
        write_text_atomic(args.json, json.dumps(payload, indent=1))
        print(f"\nsaved {args.json}")
    if args.plot:
        from ..series.plotting import plot_series_forecast
        shown = {k: v for k, v in forecasters.items() if k in ("model", "arima")}
        print(f"saved {plot_series_forecast(split, shown, args.horizon, args.plot)}")
    if args.forecast:
        _forecast_future(args, split, predictor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
