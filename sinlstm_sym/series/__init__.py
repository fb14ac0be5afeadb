"""Your own series: windows cut from real 1-D series, split by time, scaled on the training part,
trained through ``fit(train_iter=...)`` and scored per horizon against naive baselines."""
from .data import Scaling, TimeSplit, check_series, read_csv_series, split_by_time
from .evaluation import (SeriesEvaluation, mae, model_forecaster, naive_forecaster, naive_scale, rmse,
                         rolling_origin_evaluation, seasonal_naive_forecaster, smape)
from .iterator import SeriesBucketIter
from .training import SeriesFitResult, SeriesPlan, fit_planned, fit_series, plan_series

__all__ = ["SeriesBucketIter", "Scaling", "TimeSplit", "check_series", "split_by_time", "read_csv_series",
           "fit_series", "SeriesFitResult", "SeriesPlan", "plan_series", "fit_planned",
           "SeriesEvaluation", "rolling_origin_evaluation", "naive_forecaster",
           "seasonal_naive_forecaster", "model_forecaster", "mae", "rmse", "smape", "naive_scale"]
