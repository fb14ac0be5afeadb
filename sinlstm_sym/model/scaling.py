"""A series model's units: how windows in the series' own units become model inputs and back.

``scaling=(center, scale)`` and ``window_level`` of a :class:`~sinlstm_sym.config.ModelConfig` define
them; the :class:`~sinlstm_sym.infer.predictor.Predictor`, the training windows
(:class:`~sinlstm_sym.series.iterator.SeriesBucketIter`) and the ONNX export all apply this one rule:
the model sees ``(x - level) / scale`` and its output ``y`` means ``y * scale + level``, where ``level``
is ``center`` (``window_level='none'``) or each window's last value (``'last'``).
"""
from typing import Optional, Tuple, Union

import numpy as np

Levels = Union[None, float, np.ndarray]


def to_model_units(windows: np.ndarray, scaling: Optional[Tuple[float, float]],
                   window_level: str) -> Tuple[np.ndarray, Levels]:
    """``(inputs, levels)``: the model's inputs for ``windows`` ``(N, L)`` or ``(N, L, 1)`` and the level of
    each window: ``(N, 1)`` for ``window_level='last'``, the center (a float) for ``'none'``, ``None`` when the
    model works in the series' own units (no scaling and no window level)."""
    center, scale = scaling if scaling is not None else (0.0, 1.0)
    if window_level == "last":
        last = windows[:, -1:]
        return (windows - last) / scale, last.reshape(len(windows), 1)
    if scaling is None:
        return windows, None
    return (windows - center) / scale, center


def from_model_units(outputs: np.ndarray, levels: Levels, scaling: Optional[Tuple[float, float]]) -> np.ndarray:
    """Model ``outputs`` (``(N, L)`` or ``(N,)``) back in the series' units, with the ``levels`` that
    :func:`to_model_units` returned."""
    if levels is None:
        return outputs
    scale = scaling[1] if scaling is not None else 1.0
    if isinstance(levels, np.ndarray) and outputs.ndim == 1:
        levels = levels[:, 0]
    return outputs.astype(np.float64) * scale + levels
