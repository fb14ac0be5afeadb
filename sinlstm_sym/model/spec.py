"""``ModelSpec``: the model as the layers below the public boundary see it, checked and resolved once.

A :class:`~sinlstm_sym.config.ModelConfig` is what a user asks for (checked when it is made); a
``ModelSpec`` is that model for the devices it runs on: the cell resolved (``'auto'`` and ``'native'``
become ``'native'`` or ``'fused'``, :func:`~sinlstm_sym.native.resolve_cell`). ``fit`` and the
:class:`~sinlstm_sym.infer.predictor.Predictor` make one at their boundary; the symbol, the initializer, the
layout conversion and the native operator take it as it is and check nothing again.
"""
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..core.checks import check_condition
from ..config.fit_config import ModelConfig
from ..constants import FUSED_LAYOUT_CELLS
from ..native import choose_cell
from ..recurrence.params import ParamDict, StackInit, canonical_from, layout_for


@dataclass(frozen=True)
class ModelSpec:
    """A checked model with its cell resolved: ``'unrolled'``, ``'fused'`` or ``'native'``."""

    hidden_sizes: Tuple[int, ...]
    cell: str
    label_mode: str
    feature: str
    scaling: Optional[Tuple[float, float]]
    step_weight: float
    step_tau: float
    forget_bias: float
    init: str

    @classmethod
    def from_model(cls, model: ModelConfig, contexts: Optional[Sequence[mx.Context]] = None) -> "ModelSpec":
        """The spec of ``model`` on ``contexts`` (default: the current context); the only place a cell is
        resolved, which may build the native operator once per process."""
        check_condition(isinstance(model, ModelConfig), f"model must be a ModelConfig, got {type(model).__name__}",
                        TypeError)
        return cls(hidden_sizes=model.hidden_sizes, cell=choose_cell(model.cell, contexts),
                   label_mode=model.label_mode, feature=model.feature, scaling=model.scaling,
                   step_weight=model.step_weight, step_tau=model.step_tau, forget_bias=model.forget_bias,
                   init=model.init)

    @property
    def fused_layout(self) -> bool:
        """Whether the parameters are one flat vector per layer (``'fused'``, ``'native'``)."""
        return self.cell in FUSED_LAYOUT_CELLS

    def initializer(self, seed: int) -> StackInit:
        """The MXNet initializer of this model's parameters drawn from ``seed``."""
        return StackInit(self.hidden_sizes, seed, self.cell, self.forget_bias, self.init)

    def to_layout(self, params: Mapping[str, np.ndarray]) -> ParamDict:
        """Canonical-layout ``params`` in this cell's layout."""
        return layout_for(params, self.fused_layout, self.hidden_sizes)

    def to_canonical(self, params: Mapping[str, np.ndarray]) -> ParamDict:
        """``params`` of this cell's layout in the canonical layout."""
        return canonical_from(params, self.fused_layout, self.hidden_sizes)


__all__ = ["ModelSpec"]
