"""The validation layer between data and ``BucketingModule``, and a module that applies it.

MXNet 1.9.1's ``BucketingModule`` accepts several mistakes silently or fails deep in
C++ (MXNet issues 8663 and 11384): a ``sym_gen`` whose parameters differ between
keys (``RuntimeError ... _Map_base::at``), a new bucket's batch without labels
(a ``UserWarning``, then training on stale labels), names that differ from the
symbol's, a key that is not the data's length, a key that is not an int, a key
larger than the default bucket (re-allocation), outputs of the previous bucket
after a failed switch. Every check here runs in Python before MXNet sees the batch
and raises ``TypeError``/``ValueError`` naming the batch, the field and the
expected value.
"""
import logging
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import mxnet as mx
import numpy as np

from .checks import check_condition
from .data import label_shape

logger = logging.getLogger(__name__)

Signature = Dict[str, Tuple[Tuple[int, ...], str]]
ShapeList = Sequence[Tuple[str, Tuple[int, ...]]]


def check_key(bucket_key: Any, where: str) -> int:
    """A bucket key is an int >= 1 (numpy ints, as saved in checkpoints, are accepted)."""
    check_condition(isinstance(bucket_key, numbers.Integral) and not isinstance(bucket_key, bool),
                    f"{where}: bucket_key must be an int (the window length), got {bucket_key!r} "
                    f"({type(bucket_key).__name__})", TypeError)
    check_condition(bucket_key >= 1, f"{where}: bucket_key must be >= 1, got {bucket_key!r}")
    return int(bucket_key)


@dataclass(frozen=True)
class BatchSpec:
    """What a batch must look like: input names, dtype, label layout, allowed keys."""

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


def check_batch(batch: Any, spec: BatchSpec, where: str) -> int:
    """Check ``batch`` against ``spec`` before it reaches a module; return its bucket key."""
    check_condition(isinstance(batch, mx.io.DataBatch), f"{where}: expected an mx.io.DataBatch, got "
                    f"{type(batch).__name__}", TypeError)
    key = check_key(batch.bucket_key, where)
    if spec.max_key is not None:
        check_condition(key <= spec.max_key, f"{where}: bucket_key {key} is larger than the default bucket "
                        f"{spec.max_key}; bind with default_bucket_key = the largest length the run will see")
    if batch.data is None or len(batch.data) != 1:
        raise ValueError(f"{where}: data must be a list of one array, got {_describe(batch.data)}")
    data = batch.data[0]
    check_condition(isinstance(data, mx.nd.NDArray), f"{where}: data[0] must be an mx.nd.NDArray, got "
                    f"{type(data).__name__}", TypeError)
    check_condition(len(data.shape) == 3 and data.shape[2] == 1,
                    f"{where}: data must have shape (batch, {key}, 1) (layout NTC), got {data.shape}")
    check_condition(data.shape[1] == key, f"{where}: bucket_key is {key} but the data holds {data.shape[1]} steps "
                    f"(shape {data.shape}); the key must equal the window length")
    check_condition(np.dtype(data.dtype) == np.dtype(spec.dtype),
                    f"{where}: data dtype must be {spec.dtype}, got {np.dtype(data.dtype).name}")
    provided = _desc_names_shapes(batch.provide_data, where, "provide_data")
    check_condition([n for n, _ in provided] == [spec.data_name],
                    f"{where}: provide_data names must be {[spec.data_name]}, got {[n for n, _ in provided]}")
    check_condition(provided[0][1] == data.shape,
                    f"{where}: provide_data says shape {provided[0][1]} but the data has shape {data.shape}")
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


def parameter_signature(symbol: mx.sym.Symbol, input_shapes: Dict[str, Tuple[int, ...]],
                        dtype: str = "float32") -> Signature:
    """Name -> (shape, dtype) of every parameter and auxiliary state of ``symbol``."""
    arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**input_shapes)
    arg_types, _, aux_types = symbol.infer_type_partial(**{n: np.dtype(dtype) for n in input_shapes})
    signature: Signature = {}
    for names, shapes, types in ((symbol.list_arguments(), arg_shapes, arg_types),
                                 (symbol.list_auxiliary_states(), aux_shapes, aux_types)):
        for name, shape, typ in zip(names, shapes, types):
            if name not in input_shapes:
                signature[name] = (tuple(shape or ()), np.dtype(typ).name if typ is not None else "unknown")
    return signature


def compare_signatures(first: Signature, first_key: object, other: Signature, other_key: object) -> None:
    """Raise ``ValueError`` naming the parameter and both keys if two buckets' parameters differ."""
    for name in sorted(set(first) | set(other)):
        if name not in other:
            raise ValueError(f"sym_gen gives parameter {name!r} for bucket_key {first_key} but not for bucket_key "
                             f"{other_key}; every bucket must have the same parameters (MXNet issue 11384)")
        if name not in first:
            raise ValueError(f"sym_gen gives parameter {name!r} for bucket_key {other_key} but not for bucket_key "
                             f"{first_key}; every bucket must have the same parameters (MXNet issue 11384)")
        if first[name] != other[name]:
            (s1, t1), (s2, t2) = first[name], other[name]
            raise ValueError(f"sym_gen gives parameter {name!r} shape {s1} dtype {t1} for bucket_key {first_key} "
                             f"but shape {s2} dtype {t2} for bucket_key {other_key}; every bucket must share "
                             "one parameter set")


def check_sym_gen(sym_gen: Callable, keys: Sequence[int],
                  input_shapes: Callable[[int], Dict[str, Tuple[int, ...]]]) -> Signature:
    """Check that every key in ``keys`` yields the same parameters; return that signature."""
    reference: Optional[Signature] = None
    first_key = None
    for key in keys:
        symbol, _, _ = sym_gen(key)
        signature = parameter_signature(symbol, input_shapes(key))
        if reference is None:
            reference, first_key = signature, key
        else:
            compare_signatures(reference, first_key, signature, key)
    return reference or {}


def _shape_dict(*shape_lists: Optional[ShapeList]) -> Dict[str, Tuple[int, ...]]:
    return dict(_name_shape(desc) for descs in shape_lists for desc in descs or ())


class SafeBucketingModule(mx.mod.BucketingModule):
    """A ``BucketingModule`` that runs :func:`check_batch` on every batch and checks each new bucket.

    The bucket key is the window length. Keys above ``default_bucket_key`` are refused
    (``ValueError``) unless ``allow_larger_keys=True``, in which case MXNet re-allocates
    the shared memory for them (and logs it). ``label_mode`` ('last' / 'sequence')
    enables the label shape check. After a failed ``forward``, ``get_outputs`` raises
    instead of returning the previous bucket's outputs.
    """

    def __init__(self, sym_gen: Callable, default_bucket_key: int, label_mode: Optional[str] = None,
                 allow_larger_keys: bool = False, **kwargs) -> None:
        default_bucket_key = check_key(default_bucket_key, "SafeBucketingModule")
        super().__init__(sym_gen, default_bucket_key=default_bucket_key, **kwargs)
        _, data_names, label_names = sym_gen(default_bucket_key)
        check_condition(data_names is not None and len(data_names) == 1,
                        f"sym_gen must name one data input, got {data_names!r}")
        label_names = list(label_names or [])
        check_condition(len(label_names) <= 1, f"sym_gen must name at most one label, got {label_names!r}")
        self.default_key = default_bucket_key
        self.allow_larger_keys = allow_larger_keys
        self._spec_args = dict(data_name=data_names[0], label_name=label_names[0] if label_names else None,
                               label_mode=label_mode, max_key=None if allow_larger_keys else default_bucket_key)
        self._signature: Optional[Signature] = None
        self._checked_keys: Set[int] = set()
        self._outputs_valid = False
        self._batches_seen = 0

    def batch_spec(self, for_training: bool) -> BatchSpec:
        """The :class:`BatchSpec` batches are checked against."""
        args = dict(self._spec_args)
        if not for_training:
            args["label_name"] = None
        return BatchSpec(**args)

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        symbol, _, _ = self._sym_gen(self.default_key)
        self._signature = parameter_signature(symbol, _shape_dict(data_shapes, label_shapes))
        self._checked_keys = {self.default_key}
        super().bind(data_shapes, label_shapes, for_training, inputs_need_grad, force_rebind, shared_module,
                     grad_req)

    def switch_bucket(self, bucket_key, data_shapes, label_shapes=None):
        where = f"switch to bucket_key {bucket_key!r}"
        key = check_key(bucket_key, where)
        if key not in self._checked_keys and self._signature is not None:
            if key > self.default_key:
                check_condition(self.allow_larger_keys, f"{where}: larger than default_bucket_key "
                                f"{self.default_key}; bind with the largest length as default_bucket_key "
                                "(or pass allow_larger_keys=True to let MXNet re-allocate)")
                logger.info("bucket_key %d > default_bucket_key %d: MXNet re-allocates the shared memory",
                            key, self.default_key)
            symbol, _, _ = self._sym_gen(key)
            compare_signatures(self._signature, self.default_key,
                               parameter_signature(symbol, _shape_dict(data_shapes, label_shapes)), key)
            self._checked_keys.add(key)
        super().switch_bucket(key, data_shapes, label_shapes)

    def forward(self, data_batch, is_train=None):
        self._outputs_valid = False
        self._batches_seen += 1
        training = self.for_training if is_train is None else is_train
        check_batch(data_batch, self.batch_spec(training),
                    f"batch {self._batches_seen} (bucket_key {getattr(data_batch, 'bucket_key', None)!r})")
        super().forward(data_batch, is_train=is_train)
        self._outputs_valid = True

    def save_optimizer_states(self, fname: str) -> None:
        """Save the optimizer state (shared by every bucket) through the current bucket's module."""
        check_condition(self.optimizer_initialized, "save_optimizer_states needs init_optimizer first", RuntimeError)
        self._curr_module.save_optimizer_states(fname)  # BucketingModule offers no public call for this

    def load_optimizer_states(self, fname: str) -> None:
        """Load the optimizer state saved by :meth:`save_optimizer_states`."""
        check_condition(self.optimizer_initialized, "load_optimizer_states needs init_optimizer first", RuntimeError)
        self._curr_module.load_optimizer_states(fname)

    def get_outputs(self, merge_multi_context=True):
        check_condition(self._outputs_valid, "no outputs: the last forward() failed or none ran, so the outputs "
                        "would be those of another batch", RuntimeError)
        return super().get_outputs(merge_multi_context=merge_multi_context)
