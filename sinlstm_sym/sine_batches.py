"""The sine model's own batch contract, on top of the general :class:`SafeBucketingModule`.

A sine batch holds one window length ``L``: ``bucket_key == L`` (an int), data ``(B, L, 1)``
and labels ``(B, L)`` (``label_mode='sequence'``) or ``(B, 1)`` (``'last'``), in one dtype.
``fit`` and the :class:`~sinlstm_sym.predictor.Predictor` check their batches against it;
the general checks every bucketing model needs live in :mod:`sinlstm_sym.bucket_checks`.
"""
import numbers
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from .bucket_checks import SafeBucketingModule
from .checks import check_condition
from .data import label_shape


def check_key(bucket_key: Any, where: str) -> int:
    """A sine bucket key is an int >= 1, the window length (numpy ints, as saved in checkpoints, are accepted)."""
    check_condition(isinstance(bucket_key, numbers.Integral) and not isinstance(bucket_key, bool),
                    f"{where}: bucket_key must be an int (the window length), got {bucket_key!r} "
                    f"({type(bucket_key).__name__})", TypeError)
    check_condition(bucket_key >= 1, f"{where}: bucket_key must be >= 1, got {bucket_key!r}")
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
    check_condition(descs is not None and len(descs) > 0,
                    f"{where}: {field} is missing; every batch must describe its own inputs "
                    "(a DataBatch with provide_data and provide_label)")
    return [_name_shape(desc) for desc in descs or ()]


def _describe(arrays: Optional[Sequence]) -> str:
    """A short description of a batch field for an error message (never the values themselves)."""
    if arrays is None:
        return "None"
    return f"{type(arrays).__name__} of {len(arrays)} item(s)"


def _check_data(batch: Any, spec: BatchSpec, where: str) -> Tuple[int, mx.nd.NDArray]:
    check_condition(isinstance(batch, mx.io.DataBatch), f"{where}: expected an mx.io.DataBatch, got "
                    f"{type(batch).__name__}", TypeError)
    key = check_key(batch.bucket_key, where)
    if spec.max_key is not None and key > spec.max_key:
        raise ValueError(f"{where}: bucket_key {key} is larger than the default bucket {spec.max_key}; bind with "
                         "default_bucket_key = the largest length the run will see")
    if batch.data is None or len(batch.data) != 1:
        raise ValueError(f"{where}: data must be a list of one array, got {_describe(batch.data)}")
    data = batch.data[0]
    check_condition(isinstance(data, mx.nd.NDArray), f"{where}: data[0] must be an mx.nd.NDArray, got "
                    f"{type(data).__name__}", TypeError)
    shape = data.shape
    if len(shape) != 3 or shape[2] != 1:
        raise ValueError(f"{where}: data must have shape (batch, {key}, 1) (layout NTC), got {shape}")
    if shape[1] != key:
        raise ValueError(f"{where}: bucket_key is {key} but the data holds {shape[1]} steps (shape {shape}); "
                         "the key must equal the window length")
    if np.dtype(data.dtype) != np.dtype(spec.dtype):
        raise ValueError(f"{where}: data dtype must be {spec.dtype}, got {np.dtype(data.dtype).name}")
    provided = _desc_names_shapes(batch.provide_data, where, "provide_data")
    check_condition([n for n, _ in provided] == [spec.data_name],
                    f"{where}: provide_data names must be {[spec.data_name]}, got {[n for n, _ in provided]}")
    check_condition(provided[0][1] == shape,
                    f"{where}: provide_data says shape {provided[0][1]} but the data has shape {shape}")
    return key, data


def check_batch(batch: Any, spec: BatchSpec, where: str) -> int:
    """Check a sine batch against ``spec`` before it reaches a module; return its bucket key."""
    key, data = _check_data(batch, spec, where)
    if spec.label_name is None:
        return key
    if batch.label is None or len(batch.label) != 1:
        raise ValueError(f"{where}: label must be a list of one array for training, got {_describe(batch.label)}")
    label = batch.label[0]
    check_condition(isinstance(label, mx.nd.NDArray), f"{where}: label[0] must be an mx.nd.NDArray, got "
                    f"{type(label).__name__}", TypeError)
    provided = _desc_names_shapes(batch.provide_label, where, "provide_label")
    check_condition([n for n, _ in provided] == [spec.label_name],
                    f"{where}: provide_label names must be {[spec.label_name]}, got {[n for n, _ in provided]}")
    expected = label.shape
    if spec.label_mode is not None:
        expected = label_shape(data.shape[0], key, spec.label_mode)
        check_condition(label.shape == expected, f"{where}: label must have shape {expected} for "
                        f"label_mode={spec.label_mode!r}, got {label.shape}")
    check_condition(label.shape[0] == data.shape[0],
                    f"{where}: label holds {label.shape[0]} rows but data holds {data.shape[0]}")
    check_condition(provided[0][1] == expected,
                    f"{where}: provide_label says shape {provided[0][1]} but the label has shape {label.shape}")
    check_condition(np.dtype(label.dtype) == np.dtype(spec.dtype),
                    f"{where}: label dtype must be {spec.dtype}, got {np.dtype(label.dtype).name}")
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

    def batch_spec(self, for_training: bool) -> BatchSpec:
        """The sine :class:`BatchSpec` batches are checked against."""
        return self._sine_specs[bool(for_training)]

    def check_batch(self, data_batch: Any, training: bool) -> None:
        """The sine contract first (its messages name the window length), then the general checks."""
        check_batch(data_batch, self._sine_specs[bool(training)], self.describe_batch(data_batch))
        super().check_batch(data_batch, training)
