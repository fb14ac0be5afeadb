"""``SafeBucketingModule``: MXNet's ``BucketingModule`` with the checks issue 8663 and its relatives need.

MXNet 1.9.1's ``BucketingModule`` accepts several mistakes silently or fails deep in C++
(MXNet issues 8663 and 11384): a ``sym_gen`` whose parameters differ between keys
(``RuntimeError ... _Map_base::at`` or an abort), a new bucket's batch without labels (a
``UserWarning``, then training on stale labels), input names, layouts or dtypes that differ
from what was bound, a key that does not match the batch, a key larger than the default
bucket (re-allocation), outputs of the previous bucket after a failed switch.

Every check here is derived from what the user declared: the shapes given to ``bind``
(``provide_data``/``provide_label``, with their names, layouts and dtypes), the default
bucket key and ``sym_gen`` itself. Any number of data and label inputs and any hashable key
(ints, tuples such as ``(source_len, target_len)``, strings) work. Each check runs in Python
before MXNet sees the batch and raises ``TypeError``/``ValueError`` naming the batch, the
input and the fix; a batch that passes runs through the stock code unchanged.
"""
import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Set, Tuple

import mxnet as mx
import numpy as np

from ..checks import check_condition
from ..constants import WRITES_GRADIENTS_ATTR
from ..outputs import AtomicOutputs

logger = logging.getLogger(__name__)

Signature = Dict[str, Tuple[Tuple[int, ...], str]]
ShapeList = Sequence[Any]  # DataDesc or (name, shape) pairs


def parameter_signature(symbol: mx.sym.Symbol, input_shapes: Dict[str, Tuple[int, ...]],
                        input_types: Optional[Dict[str, Any]] = None,
                        inputs: Optional[Set[str]] = None) -> Signature:
    """Name -> (shape, dtype) of every parameter and auxiliary state of ``symbol``.

    ``inputs`` names the symbol's inputs (data, labels, states); they are not parameters even
    when no shape is given for them (an unbound label). It defaults to ``input_shapes``' names.
    """
    inputs = set(input_shapes) if inputs is None else inputs | set(input_shapes)
    known = symbol.list_arguments()
    arg_shapes, _, aux_shapes = symbol.infer_shape_partial(**{n: s for n, s in input_shapes.items() if n in known})
    types = input_types or {n: np.float32 for n in input_shapes}
    arg_types, _, aux_types = symbol.infer_type_partial(**{n: t for n, t in types.items() if n in known})
    signature: Signature = {}
    for names, shapes, dtypes in ((known, arg_shapes, arg_types),
                                  (symbol.list_auxiliary_states(), aux_shapes, aux_types)):
        for name, shape, typ in zip(names, shapes, dtypes):
            if name not in inputs:
                signature[name] = (tuple(shape or ()), np.dtype(typ).name if typ is not None else "unknown")
    return signature


def compare_signatures(first: Signature, first_key: object, other: Signature, other_key: object) -> None:
    """Raise ``ValueError`` naming the parameter and both keys if two buckets' parameters differ."""
    for name in sorted(set(first) | set(other)):
        if name not in other:
            raise ValueError(f"sym_gen gives parameter {name!r} for bucket_key {first_key!r} but not for bucket_key "
                             f"{other_key!r}; every bucket must have the same parameters (MXNet issue 11384)")
        if name not in first:
            raise ValueError(f"sym_gen gives parameter {name!r} for bucket_key {other_key!r} but not for bucket_key "
                             f"{first_key!r}; every bucket must have the same parameters (MXNet issue 11384)")
        if first[name] != other[name]:
            (s1, t1), (s2, t2) = first[name], other[name]
            raise ValueError(f"sym_gen gives parameter {name!r} shape {s1} dtype {t1} for bucket_key {first_key!r} "
                             f"but shape {s2} dtype {t2} for bucket_key {other_key!r}; every bucket must share "
                             "one parameter set")


def call_sym_gen(sym_gen: Callable, key: Any) -> Tuple[mx.sym.Symbol, Sequence[str], Sequence[str]]:
    """``sym_gen(key)`` under a fresh ``NameManager``, as ``BucketingModule`` calls it: auto-named layers
    (``embedding0``) get the same names at every call."""
    with mx.name.NameManager():
        return sym_gen(key)


def check_sym_gen(sym_gen: Callable, keys: Sequence[Any],
                  input_shapes: Callable[[Any], Dict[str, Tuple[int, ...]]]) -> Signature:
    """Check that every key in ``keys`` yields the same parameters; return that signature."""
    reference: Optional[Signature] = None
    first_key = None
    for key in keys:
        symbol, data_names, label_names = call_sym_gen(sym_gen, key)
        signature = parameter_signature(symbol, input_shapes(key), inputs=set(data_names) | set(label_names or ()))
        if reference is None:
            reference, first_key = signature, key
        else:
            compare_signatures(reference, first_key, signature, key)
    return reference or {}


GRAD_REQS_OF_WRITING_OPS = ("write", "null")  # what a symbol with an operator marked WRITES_GRADIENTS_ATTR honours


def writing_nodes(symbol: mx.sym.Symbol) -> List[str]:
    """Names of the operator nodes of ``symbol`` that write their input gradients whatever grad_req asks
    (marked with ``WRITES_GRADIENTS_ATTR``, e.g. the native LSTM operator built without grad_req guards)."""
    return sorted(node for node, attrs in symbol.attr_dict().items() if attrs.get(WRITES_GRADIENTS_ATTR) == "1")


def check_grad_req(symbol: mx.sym.Symbol, grad_req: Any, where: str) -> None:
    """Refuse (``ValueError``) a ``grad_req`` other than 'write' or 'null' (str, list or dict, as MXNet takes
    it) for a symbol holding operators that write their gradients: MXNet would silently overwrite what
    'add' should accumulate."""
    nodes = writing_nodes(symbol)
    if not nodes:
        return
    if isinstance(grad_req, (list, tuple)):
        grad_req = dict(zip(symbol.list_arguments(), grad_req))
    asked = grad_req if isinstance(grad_req, dict) else {None: grad_req}
    wrong = {name: req for name, req in asked.items() if req not in GRAD_REQS_OF_WRITING_OPS}
    check_condition(not wrong, f"{where}: grad_req must be one of {list(GRAD_REQS_OF_WRITING_OPS)} for this symbol, "
                    f"got {wrong.get(None, wrong)!r}: its operator(s) {nodes} write their gradients (built without "
                    "grad_req guards); for 'add' build the symbols with make_sym_gen, which honours every grad_req")


def as_desc(item: Any) -> mx.io.DataDesc:
    """A ``DataDesc`` from a ``DataDesc`` or a ``(name, shape)`` pair (a list too, as MXNet accepts)."""
    return item if isinstance(item, mx.io.DataDesc) else mx.io.DataDesc(*item)


def _layout(desc: Any) -> Optional[str]:
    """The layout a desc declares, or ``None`` (a pair, or MXNet's default 'NCHW' on data of another rank)."""
    layout = getattr(desc, "layout", None)
    return layout if isinstance(layout, str) and len(layout) == len(desc.shape) else None


def _key_kind(key: Any) -> Tuple[Any, ...]:
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        return ("int",)
    if isinstance(key, tuple):
        return ("tuple", len(key))
    return (type(key),)


def _kind_name(key: Any) -> str:
    kind = _key_kind(key)
    if kind[0] == "int":
        return "an int"
    if kind[0] == "tuple":
        return f"a tuple of {kind[1]}"
    return f"a {type(key).__name__}"


@dataclass(frozen=True)
class Declared:
    """What ``bind`` declared for one input: the default bucket's shape, dtype, layout, and how the key shows."""

    shape: Tuple[int, ...]
    dtype: Any
    layout: Optional[str]
    batch_axis: Optional[int]
    time_axis: Optional[int]  # the layout's 'T' axis when its extent followed the default key
    key_index: Optional[int]  # None: the (int) key itself; i: element i of a tuple key
    size: int


def _key_index(default_key: Any, extent: int) -> Tuple[bool, Optional[int]]:
    """(does the extent follow the key, which element of a tuple key) from the default bucket."""
    kind = _key_kind(default_key)
    if kind[0] == "int":
        return default_key == extent, None
    if kind[0] == "tuple":
        hits = [i for i, part in enumerate(default_key) if _key_kind(part)[0] == "int" and part == extent]
        return len(hits) == 1, hits[0] if len(hits) == 1 else None
    return False, None


def declare(descs: Sequence[Any], default_key: Any) -> Dict[str, Declared]:
    """Name -> :class:`Declared` for the inputs given to ``bind``."""
    declared: Dict[str, Declared] = {}
    for desc in descs:
        desc = as_desc(desc)
        shape, layout = tuple(desc.shape), _layout(desc)
        batch_axis = layout.find("N") if layout is not None else 0
        time_axis, key_index = None, None
        if layout is not None and "T" in layout:
            follows, key_index = _key_index(default_key, shape[layout.index("T")])
            time_axis = layout.index("T") if follows else None
        declared[desc.name] = Declared(shape, np.dtype(desc.dtype), layout, batch_axis if batch_axis >= 0 else None,
                                       time_axis, key_index, math.prod(shape))
    return declared


class SafeBucketingModule(mx.mod.BucketingModule):
    """A ``BucketingModule`` that checks every batch and every new bucket in Python first.

    A drop-in replacement (``mx.mod.BucketingModule = SafeBucketingModule`` runs MXNet's own
    bucketing tests and examples unchanged, with the same numbers): same arguments, plus
    ``allow_larger_keys``. A batch whose inputs hold more elements than the default bucket's
    is refused (``ValueError``) unless ``allow_larger_keys=True``, in which case MXNet
    re-allocates the shared memory for it. After a failed ``forward``, ``get_outputs``
    raises instead of returning the previous bucket's outputs. ``load`` returns a
    ``SafeBucketingModule``; ``save_checkpoint`` writes atomically. A symbol holding an operator that
    writes its gradients (``WRITES_GRADIENTS_ATTR``) is refused any grad_req but 'write' and 'null'
    (:func:`check_grad_req`) when bound for training and for every new bucket.
    """

    def __init__(self, sym_gen: Callable, default_bucket_key: Any = None, *args: Any,
                 allow_larger_keys: bool = False, **kwargs: Any) -> None:
        check_condition(default_bucket_key is not None, "default_bucket_key is required: the key of the largest "
                        "bucket, whose memory the other buckets share", TypeError)
        try:
            hash(default_bucket_key)
        except TypeError:
            raise TypeError(f"default_bucket_key must be hashable (an int, a tuple, a str), got "
                            f"{default_bucket_key!r} ({type(default_bucket_key).__name__})") from None
        super().__init__(sym_gen, default_bucket_key, *args, **kwargs)
        self.default_key = default_bucket_key
        self.allow_larger_keys = allow_larger_keys
        self._input_names = set(kwargs.get("state_names") or ())
        self._declared: Dict[str, Dict[str, Declared]] = {"data": {}, "label": {}}
        self._signature: Optional[Signature] = None
        self._known_keys: Set[Any] = set()
        self._outputs_valid = False
        self._batches_seen = 0
        self._batch_number = 0  # the batch being checked: the next one in prepare, the current one in forward
        self._loaded: Optional[Tuple[Dict[str, mx.nd.NDArray], Dict[str, mx.nd.NDArray]]] = None
        self._passed: Set[Hashable] = set()  # signatures of batches that passed check_batch since the last bind
        self._grad_req_bound: Any = "null"  # the grad_req every bucket binds with ('null' when not training)

    # --- what the user declared ---------------------------------------------------------------
    def input_names(self, bucket_key: Any) -> Tuple[List[str], List[str]]:
        """(data names, label names) ``sym_gen`` gives for ``bucket_key``."""
        _, data_names, label_names = call_sym_gen(self._sym_gen, bucket_key)
        return list(data_names or ()), list(label_names or ())

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        rebinding = force_rebind or not self.binded
        if rebinding:
            symbol, data_names, label_names = call_sym_gen(self._sym_gen, self.default_key)
            if for_training:
                check_grad_req(symbol, grad_req, "bind")
        super().bind(data_shapes, label_shapes, for_training, inputs_need_grad, force_rebind, shared_module,
                     grad_req)
        if not rebinding:
            return
        self._grad_req_bound = grad_req if for_training else "null"
        data_descs = [as_desc(d) for d in data_shapes]
        label_descs = [as_desc(d) for d in label_shapes or ()]
        self._input_names |= set(data_names or ()) | set(label_names or ())
        self._declared = {"data": declare(data_descs, self.default_key),
                          "label": declare(label_descs, self.default_key)}
        self._signature = self._signature_of(symbol, data_descs + label_descs)
        self._known_keys = {self.default_key}
        self._passed = set()
        if self._loaded is not None:
            self.set_params(*self._loaded)
            self._loaded = None

    def _signature_of(self, symbol: mx.sym.Symbol, descs: Sequence[mx.io.DataDesc]) -> Signature:
        return parameter_signature(symbol, {d.name: tuple(d.shape) for d in descs},
                                   {d.name: np.dtype(d.dtype) for d in descs}, self._input_names)

    # --- per batch ----------------------------------------------------------------------------
    def describe_batch(self, data_batch: Any) -> str:
        """'batch N (bucket_key K)', the prefix of every error about the batch being checked."""
        return f"batch {self._batch_number} (bucket_key {getattr(data_batch, 'bucket_key', None)!r})"

    def check_key(self, bucket_key: Any, where: str) -> None:
        """A key must be hashable and of the default key's kind (an int, a tuple of the same length, ...)."""
        try:
            known = bucket_key in self._known_keys
        except TypeError:
            raise TypeError(f"{where}: bucket_key must be hashable like default_bucket_key {self.default_key!r}, "
                            f"got {bucket_key!r} ({type(bucket_key).__name__})") from None
        if not known and _key_kind(bucket_key) != _key_kind(self.default_key):
            raise TypeError(f"{where}: bucket_key must be {_kind_name(self.default_key)} like default_bucket_key "
                            f"{self.default_key!r}, got {bucket_key!r} ({type(bucket_key).__name__})")

    def check_batch(self, data_batch: Any, training: bool) -> None:
        """Check ``data_batch`` against what ``bind`` declared; a new key's ``sym_gen`` against the default's."""
        if not isinstance(data_batch, mx.io.DataBatch):
            raise TypeError(f"{self.describe_batch(data_batch)}: expected an mx.io.DataBatch, got "
                            f"{type(data_batch).__name__}")
        key = data_batch.bucket_key
        self.check_key(key, self.describe_batch(data_batch))
        sizes = self._check_inputs(data_batch, key, "data", data_batch.data, data_batch.provide_data)
        if self._declared["label"] and (training or (data_batch.label and data_batch.provide_label)):
            sizes += self._check_inputs(data_batch, key, "label", data_batch.label, data_batch.provide_label)
        if len(set(size for _, size in sizes)) > 1:
            raise ValueError(f"{self.describe_batch(data_batch)}: the inputs disagree on the batch size (along "
                             f"the layout's N axis): {sizes}")
        if key not in self._known_keys:
            self._check_new_bucket(key, data_batch.provide_data, data_batch.provide_label,
                                   self.describe_batch(data_batch))

    def check_batch_once(self, data_batch: Any, training: bool) -> None:
        """:meth:`check_batch`, run in full only for a batch unlike every batch that passed it since ``bind``.

        Whether a batch passes depends only on its type, key, arrays' types, shapes and dtypes and
        descriptions (and on the bound module), so a batch equal in all of them to one that passed
        passes too: it costs a few attribute reads instead of the checks."""
        signature = _batch_signature(data_batch, training, self.allow_larger_keys)
        if signature is not None and signature in self._passed:
            return
        self.check_batch(data_batch, training)
        if signature is not None:
            if len(self._passed) >= _MAX_SIGNATURES:
                self._passed.clear()
            self._passed.add(signature)

    def _check_inputs(self, batch: Any, key: Any, field: str, arrays: Any, descs: Any) -> List[Tuple[str, int]]:
        """Check one field (data or label) of a batch; (name, batch size) of each input."""
        declared = self._declared[field]
        if not descs:  # as stock MXNet, a bucket already bound may take arrays of the shapes they have
            if key not in self._known_keys or arrays is None or len(arrays) != len(declared):
                raise ValueError(f"{self.describe_batch(batch)}: provide_{field} is missing; every batch must "
                                 "describe its own inputs (a DataBatch with provide_data and provide_label)")
            descs = [(name, getattr(array, "shape", ())) for name, array in zip(declared, arrays)]
        names = [d.name if isinstance(d, mx.io.DataDesc) else d[0] for d in descs]
        if names != list(declared):
            raise ValueError(f"{self.describe_batch(batch)}: provide_{field} names must be {list(declared)}, "
                             f"got {names}")
        if arrays is None or len(arrays) != len(names):
            raise ValueError(f"{self.describe_batch(batch)}: {field} must be a list of {len(names)} array(s) for "
                             f"{names}, got {'None' if arrays is None else len(arrays)}")
        sizes = []
        for name, array, desc in zip(names, arrays, descs):
            if not isinstance(array, mx.nd.NDArray):
                raise TypeError(f"{self.describe_batch(batch)}: {field} {name!r} must be an mx.nd.NDArray, got "
                                f"{type(array).__name__}")
            shape = array.shape
            self._check_input(batch, key, field, name, shape, desc, declared[name])
            axis = declared[name].batch_axis
            if axis is not None and axis < len(shape):
                sizes.append((name, shape[axis]))
        return sizes

    def _check_input(self, batch: Any, key: Any, field: str, name: str, shape: Tuple[int, ...], desc: Any,
                     declared: Declared) -> None:
        where = self.describe_batch
        said = tuple(desc.shape) if isinstance(desc, mx.io.DataDesc) else tuple(desc[1])
        if said != shape:
            raise ValueError(f"{where(batch)}: provide_{field} says shape {said} for {name!r} but the array has "
                             f"shape {shape}")
        if isinstance(desc, mx.io.DataDesc) and key not in self._known_keys:  # a bound bucket ignores them
            layout = _layout(desc)
            if declared.layout is not None and layout is not None and layout != declared.layout:
                raise ValueError(f"{where(batch)}: {field} {name!r} has layout {layout} but was bound with "
                                 f"{declared.layout}; one module needs one layout (bind again for another)")
            if desc.dtype != declared.dtype:
                raise ValueError(f"{where(batch)}: {field} {name!r} is declared {np.dtype(desc.dtype).name} but was "
                                 f"bound as {declared.dtype.name}; every bucket shares the default bucket's arrays")
        if declared.time_axis is not None:
            if len(shape) != len(declared.shape):
                raise ValueError(f"{where(batch)}: {field} {name!r} has shape {shape} but was bound with "
                                 f"{len(declared.shape)} axes (layout {declared.layout})")
            steps = key if declared.key_index is None else key[declared.key_index]
            if shape[declared.time_axis] != steps:
                raise ValueError(f"{where(batch)}: bucket_key is {key!r} but {field} {name!r} holds "
                                 f"{shape[declared.time_axis]} steps (axis T of layout {declared.layout}, shape "
                                 f"{shape}); the key must give the length, as default_bucket_key "
                                 f"{self.default_key!r} did at bind")
        if not self.allow_larger_keys and math.prod(shape) > declared.size:
            raise ValueError(f"{where(batch)}: bucket_key {key!r} is larger than the default bucket "
                             f"{self.default_key!r}: {field} {name!r} has shape {shape}, bound as {declared.shape} "
                             "for the default bucket; bind with default_bucket_key = the largest bucket (or pass "
                             "allow_larger_keys=True to let MXNet re-allocate)")

    def _check_new_bucket(self, key: Any, data_shapes: Optional[ShapeList], label_shapes: Optional[ShapeList],
                          where: str) -> None:
        """``sym_gen(key)`` takes the default's inputs and gives the default's parameters."""
        symbol, data_names, label_names = call_sym_gen(self._sym_gen, key)
        check_grad_req(symbol, self._grad_req_bound, where)
        for field, names in (("data", data_names), ("label", label_names)):
            declared = list(self._declared[field])
            if declared and sorted(names or ()) != sorted(declared):
                raise ValueError(f"{where}: sym_gen({key!r}) names {field} inputs {list(names or ())} but the "
                                 f"module was bound with {declared}; every bucket must take the same inputs")
        descs = [as_desc(d) for d in list(data_shapes or ()) + list(label_shapes or ())]
        try:
            signature = self._signature_of(symbol, descs)
        except mx.base.MXNetError as err:
            first = next((line for line in str(err).splitlines() if line.strip()), "")
            raise ValueError(f"{where}: sym_gen({key!r}) cannot take the shapes "
                             f"{[(d.name, tuple(d.shape)) for d in descs]}: {first}") from None
        if self._signature is not None:
            compare_signatures(self._signature, self.default_key, signature, key)
        self._known_keys.add(key)

    def switch_bucket(self, bucket_key, data_shapes, label_shapes=None):
        check_condition(self.binded, "call bind before switch_bucket", RuntimeError)
        where = f"switch to bucket_key {bucket_key!r}"
        self.check_key(bucket_key, where)
        if bucket_key not in self._known_keys:
            self._check_new_bucket(bucket_key, data_shapes, label_shapes, where)
        super().switch_bucket(bucket_key, data_shapes, label_shapes)

    def prepare(self, data_batch, sparse_row_id_fn=None):
        if self._is_new_bucket(data_batch):  # mod.fit prepares the next batch before its forward
            self._batch_number = self._batches_seen + 1
            self.check_batch_once(data_batch, self.for_training)
        super().prepare(data_batch, sparse_row_id_fn=sparse_row_id_fn)

    def _is_new_bucket(self, data_batch: Any) -> bool:
        try:
            return getattr(data_batch, "bucket_key", None) not in self._known_keys
        except TypeError:  # unhashable: check_batch says so
            return True

    def forward(self, data_batch, is_train=None):
        self._outputs_valid = False
        self._batches_seen += 1
        self._batch_number = self._batches_seen
        self.check_batch_once(data_batch, self.for_training if is_train is None else is_train)
        super().forward(data_batch, is_train=is_train)
        self._outputs_valid = True

    def get_outputs(self, merge_multi_context=True):
        check_condition(self._outputs_valid, "no outputs: the last forward() failed or none ran, so the outputs "
                        "would be those of another batch", RuntimeError)
        return super().get_outputs(merge_multi_context=merge_multi_context)

    # --- optimizer state and files ------------------------------------------------------------
    def save_optimizer_states(self, fname: str) -> None:
        """Save the optimizer state (shared by every bucket) through the current bucket's module."""
        check_condition(self.optimizer_initialized, "save_optimizer_states needs init_optimizer first", RuntimeError)
        self._curr_module.save_optimizer_states(fname)  # BucketingModule offers no public call for this

    def load_optimizer_states(self, fname: str) -> None:
        """Load the optimizer state saved by :meth:`save_optimizer_states`."""
        check_condition(self.optimizer_initialized, "load_optimizer_states needs init_optimizer first", RuntimeError)
        self._curr_module.load_optimizer_states(fname)

    def save_checkpoint(self, prefix: str, epoch: int, remove_amp_cast: bool = False) -> None:
        """MXNet's checkpoint files (``prefix-EPOCH.params``, one ``prefix-KEY-symbol.json`` per bucket,
        ``prefix.buckets``), written atomically, each symbol from ``sym_gen`` under a fresh ``NameManager``."""
        check_condition(self.binded and self.params_initialized, "save_checkpoint needs a bound module with "
                        "parameters", RuntimeError)
        keys = list(self._buckets)  # the buckets bound so far, as BucketingModule saves them
        kinds = {_key_kind(k) for k in keys}
        check_condition(len(kinds) == 1 and all(_key_int_parts(k) for k in keys),
                        f"save_checkpoint stores bucket keys as an int32 array: ints or tuples of ints of one "
                        f"length, got {keys!r}; save the parameters with save_params instead", TypeError)
        with AtomicOutputs() as outputs:
            self.save_params(str(outputs.stage(f"{prefix}-{epoch:04d}.params")))
            for key in keys:
                symbol, _, _ = call_sym_gen(self._sym_gen, key)
                symbol.save(str(outputs.stage(f"{prefix}-{_key_text(key)}-symbol.json")),
                            remove_amp_cast=remove_amp_cast)
            mx.nd.save(str(outputs.stage(f"{prefix}.buckets")), mx.nd.array(keys, dtype=np.int32))

    @classmethod
    def load(cls, prefix: str, epoch: int, sym_gen: Optional[Callable] = None, default_bucket_key: Any = None,
             **kwargs: Any) -> "SafeBucketingModule":
        """A ``SafeBucketingModule`` with the parameters of a checkpoint written by ``save_checkpoint`` (this
        class's or MXNet's); they are set when the module is bound."""
        if sym_gen is None:
            raise TypeError("load needs sym_gen, the one the checkpoint was trained with")
        module = cls(sym_gen, default_bucket_key=default_bucket_key, **kwargs)
        module._loaded = mx.model.load_params(prefix, epoch)
        return module

    def get_params(self):
        if not self.binded and self._loaded is not None:  # loaded, not bound yet: the checkpoint's values
            return self._loaded
        return super().get_params()


_MAX_SIGNATURES = 4096  # batch signatures remembered by check_batch_once (then forgotten and relearnt)


def _arrays_signature(arrays: Any) -> Optional[Tuple[Any, ...]]:
    if arrays is None:
        return None
    if not isinstance(arrays, (list, tuple)):
        raise TypeError("not a list of arrays")
    return tuple((type(a), a.shape, a.dtype) if isinstance(a, mx.nd.NDArray) else (type(a),) for a in arrays)


def _descs_signature(descs: Any) -> Optional[Tuple[Any, ...]]:
    if descs is None:
        return None
    if not isinstance(descs, (list, tuple)):
        raise TypeError("not a list of descriptions")
    return tuple((type(d), d.name, tuple(d.shape), d.dtype, d.layout) if isinstance(d, mx.io.DataDesc)
                 else (type(d), d[0], tuple(d[1]), len(d)) for d in descs)


def _batch_signature(batch: Any, training: bool, allow_larger_keys: bool) -> Optional[Hashable]:
    """Everything :meth:`SafeBucketingModule.check_batch` looks at, hashable; ``None`` if it cannot be taken
    (an unusual batch: the full check runs and says what is wrong)."""
    if type(batch) is not mx.io.DataBatch:
        return None
    try:
        key = batch.bucket_key
        signature = (bool(training), allow_larger_keys, type(key), key, _arrays_signature(batch.data),
                     _descs_signature(batch.provide_data), _arrays_signature(batch.label),
                     _descs_signature(batch.provide_label))
        hash(signature)
    except Exception:  # noqa: BLE001 -- any oddity: no signature, the full check reports it
        return None
    return signature


def _key_int_parts(key: Any) -> bool:
    parts = key if isinstance(key, tuple) else (key,)
    return len(parts) > 0 and all(_key_kind(p)[0] == "int" for p in parts)


def _key_text(key: Any) -> str:
    """A key as MXNet's checkpoint file names spell it (``%s``): 10, or (10, 5) for a tuple."""
    return "%s" % (key,)
