"""What a run is told: the typed, frozen configuration of ``fit`` and the checks behind it.

:mod:`~sinlstm_sym.config.fit_config` holds ``FitConfig`` and its sections; the settings' declarations
(:mod:`~sinlstm_sym.config.settings`), optimizer arguments (:mod:`~sinlstm_sym.config.optimizer_args`),
learning-rate schedules (:mod:`~sinlstm_sym.config.schedules`) and memory bounds
(:mod:`~sinlstm_sym.config.limits`) are checked from it before anything is bound or trained.
"""
from .fit_config import DataConfig, FitConfig, ModelConfig, OptimizerConfig, RunConfig

__all__ = ["FitConfig", "ModelConfig", "DataConfig", "OptimizerConfig", "RunConfig"]
