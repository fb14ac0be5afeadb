"""The sine model's own batch contract, on top of the general :class:`SafeBucketingModule`.

A sine batch holds one window length ``L``: ``bucket_key == L`` (an int), data ``(B, L, 1)``
and labels ``(B, L)`` (``label_mode='sequence'``) or ``(B, 1)`` (``'last'``), in one dtype.
``fit`` and the :class:`~sinlstm_sym.infer.predictor.Predictor` check their batches against it;
the general checks every bucketing model needs live in :mod:`sinlstm_sym.model.bucketing`.
"""
import numbers
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from .bucketing import SafeBucketingModule
from ..core.checks import check_condition
from ..data.windows import label_shape


def check_key(bucket_key: Any, where: str) -> int:
    """A sine bucket key is an int >= 1, the window length (numpy ints, as saved in checkpoints, are accepted)."""
    if not isinstance(bucket_key, numbers.Integral) or isinstance(bucket_key, bool):
        raise TypeError(f"{where}: bucket_key must be an int (the window length), got {bucket_key!r} "
                        f"({type(bucket_key).__name__})")
    if bucket_key < 1:
        raise ValueError(f"{where}: bucket_key must be >= 1, got {bucket_key!r}")
    return int(bucket_key)


@dataclass(frozen=True)
class BatchSpec:
    """What a sine batch must look like: input names, dtype, label layout, allowed keys."""

    data_name: str = "data"
    label_name: Optional[str] = "label"  # None: inference, no label expected
    label_mode: Optional[str] = None  # 'last' / 'sequence' check the label's shape; None checks names only
    dtype: str = "float32"
    max_key: Optional[int] = None  # keys above it are refused (no re-allocation)


def _name_shape(desc: Any) -> Tuple[str, Tuple[int, ...]]:
    """(name, shape) of a ``DataDesc`` or of a ``(name, shape)`` pair."""
    name, shape = (desc.name, desc.shape) if isinstance(desc, mx.io.DataDesc) else (desc[0], desc[1])
    return name, tuple(shape)


def _desc_names_shapes(descs: Optional[Sequence], where: str, field: str) -> List[Tuple[str, Tuple[int, ...]]]:
    if not descs:
        raise ValueError(f"{where}: {field} is missing; every batch must describe its own inputs "
                         "(a DataBatch with provide_data and provide_label)")
    return [_name_shape(desc) for desc in descs]


def _describe(arrays: Optional[Sequence]) -> str:
    """A short description of a batch field for an error message (never the values themselves)."""
    if arrays is None:
        return "None"
    return f"{type(arrays).__name__} of {len(arrays)} item(s)"


def _one_array(arrays: Optional[Sequence], field: str, where: str, purpose: str = "") -> mx.nd.NDArray:
    if arrays is None or len(arrays) != 1:
        raise ValueError(f"{where}: {field} must be a list of one array{purpose}, got {_describe(arrays)}")
    if not isinstance(arrays[0], mx.nd.NDArray):
        raise TypeError(f"{where}: {field}[0] must be an mx.nd.NDArray, got {type(arrays[0]).__name__}")
    return arrays[0]


def _check_names(provided: List[Tuple[str, Tuple[int, ...]]], name: str, field: str, where: str) -> None:
    if len(provided) != 1 or provided[0][0] != name:
        raise ValueError(f"{where}: {field} names must be {[name]}, got {[n for n, _ in provided]}")


def _check_data(batch: Any, spec: BatchSpec, where: str) -> Tuple[int, mx.nd.NDArray]:
    if not isinstance(batch, mx.io.DataBatch):
        raise TypeError(f"{where}: expected an mx.io.DataBatch, got {type(batch).__name__}")
    key = check_key(batch.bucket_key, where)
    if spec.max_key is not None and key > spec.max_key:
        raise ValueError(f"{where}: bucket_key {key} is larger than the default bucket {spec.max_key}; bind with "
                         "default_bucket_key = the largest length the run will see")
    data = _one_array(batch.data, "data", where)
    shape = data.shape
    if len(shape) != 3 or shape[2] != 1:
        raise ValueError(f"{where}: data must have shape (batch, {key}, 1) (layout NTC), got {shape}")
    if shape[1] != key:
        raise ValueError(f"{where}: bucket_key is {key} but the data holds {shape[1]} steps (shape {shape}); "
                         "the key must equal the window length")
    if data.dtype != np.dtype(spec.dtype):
        raise ValueError(f"{where}: data dtype must be {spec.dtype}, got {np.dtype(data.dtype).name}")
    provided = _desc_names_shapes(batch.provide_data, where, "provide_data")
    _check_names(provided, spec.data_name, "provide_data", where)
    if provided[0][1] != shape:
        raise ValueError(f"{where}: provide_data says shape {provided[0][1]} but the data has shape {shape}")
    return key, data


def check_batch(batch: Any, spec: BatchSpec, where: str) -> int:
    """Check a sine batch against ``spec`` before it reaches a module; return its bucket key.

    Messages are built only on failure: this runs on every batch."""
    key, data = _check_data(batch, spec, where)
    if spec.label_name is None:
        return key
    label = _one_array(batch.label, "label", where, " for training")
    provided = _desc_names_shapes(batch.provide_label, where, "provide_label")
    _check_names(provided, spec.label_name, "provide_label", where)
    expected = label.shape
    if spec.label_mode is not None:
        expected = label_shape(data.shape[0], key, spec.label_mode)
        if label.shape != expected:
            raise ValueError(f"{where}: label must have shape {expected} for label_mode={spec.label_mode!r}, "
                             f"got {label.shape}")
    if label.shape[0] != data.shape[0]:
        raise ValueError(f"{where}: label holds {label.shape[0]} rows but data holds {data.shape[0]}")
    if provided[0][1] != expected:
        raise ValueError(f"{where}: provide_label says shape {provided[0][1]} but the label has shape {label.shape}")
    if label.dtype != np.dtype(spec.dtype):
        raise ValueError(f"{where}: label dtype must be {spec.dtype}, got {np.dtype(label.dtype).name}")
    return key


class SineBucketingModule(SafeBucketingModule):
    """The :class:`SafeBucketingModule` ``fit`` trains with: every batch also honours the sine contract.

    The bucket key is the window length (an int); data ``(B, L, 1)``; with ``label_mode``
    ('last' / 'sequence') the label's shape is checked too. Keys above ``default_bucket_key``
    are refused unless ``allow_larger_keys=True``.
    """

    def __init__(self, sym_gen: Any, default_bucket_key: int, label_mode: Optional[str] = None,
                 allow_larger_keys: bool = False, **kwargs: Any) -> None:
        default_bucket_key = check_key(default_bucket_key, "SineBucketingModule")
        super().__init__(sym_gen, default_bucket_key=default_bucket_key, allow_larger_keys=allow_larger_keys,
                         **kwargs)
        data_names, label_names = self.input_names(default_bucket_key)
        check_condition(len(data_names) == 1, f"sym_gen must name one data input, got {list(data_names)!r}")
        check_condition(len(label_names) <= 1, f"sym_gen must name at most one label, got {list(label_names)!r}")
        self._sine_specs = {training: BatchSpec(data_name=data_names[0],
                                                label_name=label_names[0] if label_names and training else None,
                                                label_mode=label_mode,
                                                max_key=None if allow_larger_keys else default_bucket_key)
                            for training in (True, False)}

    def check_batch(self, data_batch: Any, training: bool) -> None:
        """The sine contract first (its messages name the window length), then the general checks."""
        check_batch(data_batch, self._sine_specs[bool(training)], self.describe_batch(data_batch))
        super().check_batch(data_batch, training)
