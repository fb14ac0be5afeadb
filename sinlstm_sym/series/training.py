"""``fit_series``: split real series by time, scale on the training part, train through ``fit(train_iter=...)``."""
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..core.checks import check_condition
from ..config.fit_config import FitConfig
from ..infer.predictor import Predictor
from ..train.fit import FitResult, FitSession, fit_session
from .data import DEFAULT_SCALING, Holdout, Scaling, TimeSplit, split_by_time
from .iterator import SeriesBucketIter

logger = logging.getLogger(__name__)


@dataclass
class SeriesFitResult:
    """What :func:`fit_series` returns: the training result, the split and the scaling (also in the config)."""

    result: FitResult
    split: TimeSplit
    scaling: Scaling
    train_iter: SeriesBucketIter

    @property
    def config(self) -> FitConfig:
        return self.result.config

    def predictor(self, **kwargs: Any) -> Predictor:
        """A :class:`Predictor` whose inputs and outputs are in the series' own units."""
        return self.result.predictor(**kwargs)


@dataclass
class SeriesPlan:
    """What :func:`fit_series` trains on, built once: the configuration (its scaling and seed settled), the
    split, the training iterator (whose scaling is the training part's) and the validation iterator."""

    config: FitConfig
    split: TimeSplit
    train_iter: SeriesBucketIter
    eval_iter: Optional[SeriesBucketIter]


def plan_series(split: TimeSplit, config: FitConfig, scaling: str = DEFAULT_SCALING) -> SeriesPlan:
    """The plan of a training on ``split.train`` with ``config`` (feature ``'value'``); every data check
    happens here (the windows the buckets need, the scaling), before anything is bound."""
    check_condition(isinstance(config, FitConfig) and config.model.feature == "value", "config must be a "
                    f"FitConfig with feature='value' (FitConfig.series()), got {config!r}", TypeError)
    seed = config.run.seed if config.run.seed is not None else int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    data = config.data
    train_iter = SeriesBucketIter(split.train, data.buckets, batch_size=data.batch_size, num_samples=data.num_samples,
                                  length_weights=data.length_weights, label_mode=config.model.label_mode,
                                  scaling=scaling, seed=seed, names=split.names,
                                  window_level=config.model.window_level)
    config = config.replace(scaling=train_iter.scaling.as_tuple(), seed=seed)
    return SeriesPlan(config, split, train_iter, _valid_iter(split, config, train_iter.scaling, seed))


def fit_series(series: Any, config: Optional[FitConfig] = None, *, test: Holdout = 0.2, valid: Holdout = 0.0,
               scaling: str = DEFAULT_SCALING, names: Optional[Sequence[str]] = None,
               logger: Optional[logging.Logger] = None, **settings: Any) -> SeriesFitResult:
    """Train a next-value model on ``series`` (a list of 1-D arrays, or one array).

    The last ``test`` and, before it, ``valid`` points of every series (fractions or numbers
    of points) are held out: training windows come from the rest only
    (:class:`SeriesBucketIter` on ``split.train``), and so does the ``scaling``, which is
    stored in ``config.model.scaling``. ``config`` defaults to the series recipe,
    :meth:`FitConfig.series() <sinlstm_sym.config.FitConfig.series>`; ``settings`` change it.
    ``config.data`` gives the window lengths (``buckets``), ``batch_size``, ``num_samples`` (windows
    per epoch) and ``length_weights``; the model's ``feature`` is ``'value'``. The validation part,
    when long enough, is ``fit``'s ``eval_iter``. :func:`plan_series` and :func:`fit_planned` are its two
    halves (the command line checks the plan before training it).
    """
    check_condition(config is None or isinstance(config, FitConfig),
                    f"config must be a FitConfig or None, got {type(config).__name__}", TypeError)
    config = FitConfig.series(**settings) if config is None else config.replace(feature="value", **settings)
    split = split_by_time(series, test=test, valid=valid, names=names)
    return fit_planned(plan_series(split, config, scaling), logger=logger)


def fit_planned(plan: SeriesPlan, logger: Optional[logging.Logger] = None) -> SeriesFitResult:
    """Train the plan made by :func:`plan_series`."""
    with planned_session(plan, logger=logger) as session:
        return series_result(plan, session.train())


@contextlib.contextmanager
def planned_session(plan: SeriesPlan, logger: Optional[logging.Logger] = None) -> Iterator[FitSession]:
    """The :func:`~sinlstm_sym.train.fit.fit_session` of a plan: every check of the run (the checkpoint directory,
    a resume, the number of updates) is done on entering, before anything trains; ``train()`` trains it.

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        on entering, for a setting the run refuses (:class:`~sinlstm_sym.core.checks.SettingError` names it)."""
    with fit_session(plan.config, train_iter=plan.train_iter, eval_iter=plan.eval_iter, logger=logger) as session:
        yield session


def series_result(plan: SeriesPlan, result: FitResult) -> SeriesFitResult:
    """A plan's training result with its split and scaling."""
    return SeriesFitResult(result, plan.split, plan.train_iter.scaling, plan.train_iter)


def _valid_iter(split: TimeSplit, config: FitConfig, scaling: Scaling, seed: int) -> Optional[SeriesBucketIter]:
    """Windows of the validation parts (a fixed set), or ``None`` if they are too short for every bucket."""
    parts = [v for v in split.valid if len(v) > 0]
    longest = max((len(v) for v in parts), default=0)
    buckets = [k for k in config.data.buckets if k < longest]
    if not buckets:
        if parts:
            logger.info("validation parts (longest %d points) are too short for every bucket: no eval_iter", longest)
        return None
    usable = [v for v in parts if len(v) > min(buckets)]
    return SeriesBucketIter(usable, buckets, batch_size=config.data.batch_size, label_mode=config.model.label_mode,
                            scaling=scaling, seed=seed + 1, refresh=False, window_level=config.model.window_level,
                            num_samples=max(config.data.batch_size, 2 * sum(len(v) for v in usable)))
