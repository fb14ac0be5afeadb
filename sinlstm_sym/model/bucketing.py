"""``SafeBucketingModule``: MXNet's ``BucketingModule``, refusing what stock MXNet gets wrong.

MXNet 1.9.1's ``BucketingModule`` aborts deep in C++ or trains silently wrong on several mistakes
(MXNet issues 8663 and 11384): a bucket whose ``sym_gen`` has a parameter the default bucket lacks
(``_Map_base::at``) or a parameter of another shape, a new bucket's training batch without labels
(a ``UserWarning``, then training on stale labels) or a bucket bound without labels (they are
never loaded), a batch whose inputs are named or ordered unlike what its bucket was bound with, a
dtype other than the default bucket's, outputs of the previous bucket after a failed switch. Each
is refused here in Python, before MXNet sees the batch, with a ``TypeError``/``ValueError`` naming
the batch, the input and the fix.

What stock MXNet does correctly is let through unchanged: a bucket with fewer (or other) inputs than
the default bucket, or fewer parameters; a batch larger than the default bucket's (MXNet re-allocates:
one :class:`BucketReallocationWarning` per input); keys of any hashable kind ``sym_gen`` takes. A key
is checked against an input's length only where the user declared it (``key_lengths``). A batch that
passes runs through the stock code unchanged, and every bucket is bound with the very symbol the
checks looked at (``sym_gen`` runs once per bucket). See docs/safe-bucketing.md for the measured table.
"""
import logging
import math
import numbers
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Hashable, List, Mapping, Optional, Sequence, Set, Tuple

import mxnet as mx
import numpy as np

from ..core.checks import check_condition
from ..constants import WRITES_GRADIENTS_ATTR
from ..core.outputs import AtomicOutputs

logger = logging.getLogger(__name__)

Signature = Dict[str, Tuple[Tuple[int, ...], str]]
ShapeList = Sequence[Any]  # DataDesc or (name, shape) pairs
KeyLengths = Dict[str, Optional[int]]  # input name -> element of the key giving its length (None: the key)
SymGenResult = Tuple[mx.sym.Symbol, Sequence[str], Optional[Sequence[str]]]

KEY_LENGTHS_ENV = "SINLSTM_KEY_LENGTHS"  # e.g. 'data' (int keys) or 'source=0,target=1' (tuple keys)
ALLOW_LARGER_KEYS_ENV = "SINLSTM_ALLOW_LARGER_KEYS"  # '1': no BucketReallocationWarning


class BucketReallocationWarning(UserWarning):
    """A batch holds more elements than its input was bound with for the default bucket: MXNet
    re-allocates that input's memory (correct, but it costs memory and time)."""


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


def compare_signatures(first: Signature, first_key: object, other: Signature, other_key: object,
                       subset: bool = False) -> None:
    """Raise ``ValueError`` naming the parameter and both keys if two buckets' parameters differ.

    Parameters
    ----------
    first, other : Signature
        Name -> (shape, dtype) of each bucket's parameters (:func:`parameter_signature`).
    first_key, other_key : object
        The two buckets' keys, for the message.
    subset : bool
        ``True``: ``other`` may lack parameters of ``first`` (a bucket binds with a subset of the
        default bucket's parameters, as MXNet allows); every parameter it has must be in ``first``
        with the same shape and dtype. ``False``: both must have the very same parameters.

    Raises
    ------
    ValueError
        If a parameter is in one signature only (beyond what ``subset`` allows) or differs in shape or dtype.
    """
    for name in sorted(set(first) | set(other)):
        if name not in other and subset:
            continue
        if name not in other:
            raise ValueError(f"sym_gen gives parameter {name!r} for bucket_key {first_key!r} but not for bucket_key "
                             f"{other_key!r}; every bucket must have the same parameters (MXNet issue 11384)")
        if name not in first:
            raise ValueError(f"sym_gen gives parameter {name!r} for bucket_key {other_key!r} but not for bucket_key "
                             f"{first_key!r}; "
                             + ("a bucket's parameters must be among the default bucket's, whose memory the others "
                                "share (MXNet issue 11384)" if subset else
                                "every bucket must have the same parameters (MXNet issue 11384)"))
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
    """What a bucket was bound with for one input: shape, dtype, layout, batch and time axes."""

    shape: Tuple[int, ...]
    dtype: Any
    layout: Optional[str]
    batch_axis: Optional[int]
    time_axis: Optional[int]  # the layout's 'T' axis, if it has one
    size: int


def declare(descs: Sequence[Any]) -> Dict[str, Declared]:
    """Name -> :class:`Declared` for the inputs a bucket is bound with (``DataDesc`` or ``(name, shape)``).

    Parameters
    ----------
    descs : sequence of DataDesc or (name, shape)
        ``provide_data`` or ``provide_label`` of the batch the bucket is bound for.

    Returns
    -------
    dict
        Name -> :class:`Declared`, in the order given (the order MXNet loads the arrays in).
    """
    declared: Dict[str, Declared] = {}
    for desc in descs:
        desc = as_desc(desc)
        shape, layout = tuple(desc.shape), _layout(desc)
        batch_axis = layout.find("N") if layout is not None else 0
        time_axis = layout.index("T") if layout is not None and "T" in layout else None
        declared[desc.name] = Declared(shape, np.dtype(desc.dtype), layout, batch_axis if batch_axis >= 0 else None,
                                       time_axis, math.prod(shape))
    return declared


def parse_key_lengths(value: Any, where: str = "key_lengths") -> Optional[KeyLengths]:
    """The declaration that the bucket key gives the length of some inputs, in one form.

    Parameters
    ----------
    value : None, str, sequence of str or mapping
        ``None`` or ``''``: no declaration (no input's length is checked against the key). A name or a
        sequence of names: the (int) key is the length of each. A mapping name -> ``None`` (the key
        itself) or an int ``i`` (element ``i`` of a tuple key). A string ``'source=0,target=1'`` (as
        the environment variable ``SINLSTM_KEY_LENGTHS`` takes it) or ``'data'``.
    where : str
        Where the value came from, for the message.

    Returns
    -------
    dict or None
        Input name -> key element (``None``: the key itself), or ``None`` without a declaration.

    Raises
    ------
    ValueError
        If a name is empty or an element is not an int >= 0.
    TypeError
        If ``value`` is of none of these kinds.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = dict(_parse_length_item(item.strip(), where) for item in value.split(",") if item.strip())
    elif isinstance(value, (list, tuple, set, frozenset)):
        value = {name: None for name in value}
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be a name, a list of names or a dict name -> key element (None or an int "
                        f">= 0), got {value!r} ({type(value).__name__})")
    for name, index in value.items():
        check_condition(isinstance(name, str) and bool(name), f"{where}: input names must be non-empty strings, "
                        f"got {name!r}")
        check_condition(index is None or (isinstance(index, numbers.Integral) and not isinstance(index, bool)
                                          and int(index) >= 0),
                        f"{where}: the key element of {name!r} must be None (the key itself) or an int >= 0, "
                        f"got {index!r}")
    return {name: None if index is None else int(index) for name, index in value.items()}


def _parse_length_item(item: str, where: str) -> Tuple[str, Optional[int]]:
    name, _, index = item.partition("=")
    check_condition(index.strip().isdecimal() or not index.strip(), f"{where}: {item!r} must be NAME or "
                    "NAME=INDEX (INDEX an int >= 0, the element of a tuple key)")
    return name.strip(), int(index) if index.strip() else None


def _key_part(key: Any, index: Optional[int]) -> Any:
    """The element of ``key`` that gives a length (``None``: the key), or ``None`` if it has none."""
    if index is None:
        return key if _key_kind(key)[0] == "int" else None
    return key[index] if isinstance(key, tuple) and index < len(key) else None


class SafeBucketingModule(mx.mod.BucketingModule):
    """A ``BucketingModule`` that refuses, before MXNet, only what stock MXNet 1.9.1 aborts on or gets wrong.

    A drop-in replacement: ``mx.mod.BucketingModule = SafeBucketingModule`` runs code written for
    MXNet's class unchanged, with the same numbers. Refused (``TypeError``/``ValueError``): a bucket
    with a parameter the default bucket lacks or of another shape or dtype, a training batch of a new
    bucket without its labels or of a bucket bound without labels, inputs named or ordered unlike
    their bucket's bind, a dtype other than the default bucket's, shapes the bucket's symbol cannot
    take, a ``grad_req`` the symbol's operators ignore (:func:`check_grad_req`), a batch whose
    inputs disagree on the batch size; after a failed ``forward``, ``get_outputs`` raises instead of
    returning the previous bucket's outputs. Allowed as stock allows them: buckets with
    their own inputs (a decoder's first step without cache inputs) and a subset of the parameters; a
    batch larger than the default bucket's, with one :class:`BucketReallocationWarning` per input.

    Every bucket is bound with the very symbol the checks looked at: ``sym_gen`` runs once per bucket
    (again after ``bind(force_rebind=True)``). ``load`` returns a ``SafeBucketingModule``;
    ``save_checkpoint`` writes atomically and never writes a symbol that trains wrong.

    Parameters
    ----------
    sym_gen : callable
        ``sym_gen(key) -> (symbol, data_names, label_names)``, as for MXNet's class.
    default_bucket_key : hashable
        The key of the bucket bound first, whose memory (and parameters) the other buckets share.
    *args, **kwargs
        MXNet's other arguments (``context``, ``state_names``, ...).
    allow_larger_keys : bool, optional
        ``True``: no :class:`BucketReallocationWarning` for batches larger than the default bucket's.
        Default: the class attribute of the same name if ``True``, else the environment variable
        ``SINLSTM_ALLOW_LARGER_KEYS`` (``1``, ``true`` or ``yes``), else ``False``.
    key_lengths : optional
        Declares that the bucket key gives the length (axis ``T`` of the layout an input is bound
        with) of some inputs: see :func:`parse_key_lengths`. A batch whose input holds another
        length is refused. Default: the class attribute ``key_lengths``, else the environment
        variable ``SINLSTM_KEY_LENGTHS``, else none (no length is inferred from the shapes).

    Raises
    ------
    TypeError
        If ``default_bucket_key`` is missing or not hashable, or ``key_lengths`` of no accepted kind.
    """

    allow_larger_keys: bool = False
    key_lengths: Any = None  # settable on the class, e.g. by code that installs the drop-in

    def __init__(self, sym_gen: Callable, default_bucket_key: Any = None, *args: Any,
                 allow_larger_keys: Optional[bool] = None, key_lengths: Any = None, **kwargs: Any) -> None:
        check_condition(default_bucket_key is not None, "default_bucket_key is required: the key of the largest "
                        "bucket, whose memory the other buckets share", TypeError)
        try:
            hash(default_bucket_key)
        except TypeError:
            raise TypeError(f"default_bucket_key must be hashable (an int, a tuple, a str), got "
                            f"{default_bucket_key!r} ({type(default_bucket_key).__name__})") from None
        self._user_sym_gen = sym_gen
        self._generated: Dict[Any, SymGenResult] = {}
        super().__init__(self._sym_gen_once, default_bucket_key, *args, **kwargs)
        self.default_key = default_bucket_key
        if allow_larger_keys is not None:
            self.allow_larger_keys = bool(allow_larger_keys)
        elif not type(self).allow_larger_keys:
            self.allow_larger_keys = os.environ.get(ALLOW_LARGER_KEYS_ENV, "").strip().lower() in ("1", "true", "yes")
        self._key_lengths = self._resolve_key_lengths(key_lengths)
        self._input_names = set(kwargs.get("state_names") or ())
        self._declared: Dict[Any, Dict[str, Dict[str, Declared]]] = {}  # bucket key -> field -> name -> Declared
        self._signature: Optional[Signature] = None
        self._known_keys: Set[Any] = set()
        self._warned: Set[str] = set()  # inputs already warned about re-allocation
        self._outputs_valid = False
        self._batches_seen = 0
        self._batch_number = 0  # the batch being checked: the next one in prepare, the current one in forward
        self._loaded: Optional[Tuple[Dict[str, mx.nd.NDArray], Dict[str, mx.nd.NDArray]]] = None
        self._passed: Set[Hashable] = set()  # signatures of batches that passed check_batch since the last bind
        self._grad_req_bound: Any = "null"  # the grad_req every bucket binds with ('null' when not training)

    def _resolve_key_lengths(self, given: Any) -> Optional[KeyLengths]:
        if given is not None:
            return parse_key_lengths(given)
        if type(self).key_lengths is not None:
            return parse_key_lengths(type(self).key_lengths, f"{type(self).__name__}.key_lengths")
        return parse_key_lengths(os.environ.get(KEY_LENGTHS_ENV), f"environment variable {KEY_LENGTHS_ENV}")

    def _sym_gen_once(self, bucket_key: Any) -> SymGenResult:
        """``sym_gen(bucket_key)``, called once per key until the next full bind: what is checked is bound."""
        if bucket_key not in self._generated:
            self._generated[bucket_key] = call_sym_gen(self._user_sym_gen, bucket_key)
        return self._generated[bucket_key]

    # --- what the user declared ---------------------------------------------------------------
    def input_names(self, bucket_key: Any) -> Tuple[List[str], List[str]]:
        """(data names, label names) ``sym_gen`` gives for ``bucket_key``.

        Parameters
        ----------
        bucket_key : hashable
            A bucket key ``sym_gen`` takes.

        Returns
        -------
        tuple of two lists
            The data input names and the label input names, as ``sym_gen`` lists them.
        """
        _, data_names, label_names = self._sym_gen_once(bucket_key)
        return list(data_names or ()), list(label_names or ())

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        rebinding = force_rebind or not self.binded
        if rebinding:
            self._generated = {}  # as stock, a new bind asks sym_gen again
            symbol, data_names, label_names = self._sym_gen_once(self.default_key)
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
        self._declared = {self.default_key: {"data": declare(data_descs), "label": declare(label_descs)}}
        self._check_declared_lengths(self.default_key, "bind")
        self._signature = self._signature_of(symbol, data_descs + label_descs)
        self._known_keys = {self.default_key}
        self._passed = set()
        if self._loaded is not None:
            self.set_params(*self._loaded)
            self._loaded = None

    def _check_declared_lengths(self, key: Any, where: str) -> None:
        """Each input of bucket ``key`` that ``key_lengths`` names has a layout with T, T steps = the key's."""
        for field, inputs in self._declared[key].items():
            for name, declared in inputs.items():
                if self._key_lengths is not None and name in self._key_lengths:
                    self._check_length(key, field, name, declared.shape, declared, where)

    def _check_length(self, key: Any, field: str, name: str, shape: Tuple[int, ...], declared: Declared,
                      where: str) -> None:
        assert self._key_lengths is not None
        index = self._key_lengths[name]
        steps = _key_part(key, index)
        if declared.time_axis is None or steps is None:
            raise ValueError(f"{where}: key_lengths declares that bucket_key {key!r} gives the length of {field} "
                             f"{name!r}, but " + ("it was bound without a layout holding T (bind with a DataDesc "
                             "whose layout has T, e.g. 'NT')" if declared.time_axis is None else
                             f"the key has no {'int' if index is None else f'element {index} that is an int'}"))
        if len(shape) != len(declared.shape) or shape[declared.time_axis] != steps:
            raise ValueError(f"{where}: bucket_key is {key!r} but {field} {name!r} holds "
                             f"{shape[declared.time_axis] if len(shape) > declared.time_axis else '?'} steps "
                             f"(axis T of layout {declared.layout}, shape {shape}); key_lengths declares that "
                             f"the key{'' if index is None else f'[{index}]'} gives its length")

    def _signature_of(self, symbol: mx.sym.Symbol, descs: Sequence[mx.io.DataDesc]) -> Signature:
        return parameter_signature(symbol, {d.name: tuple(d.shape) for d in descs},
                                   {d.name: np.dtype(d.dtype) for d in descs}, self._input_names)

    # --- per batch ----------------------------------------------------------------------------
    def describe_batch(self, data_batch: Any) -> str:
        """'batch N (bucket_key K)', the prefix of every error about the batch being checked.

        Parameters
        ----------
        data_batch : DataBatch
            The batch being checked.

        Returns
        -------
        str
            The prefix.
        """
        return f"batch {self._batch_number} (bucket_key {getattr(data_batch, 'bucket_key', None)!r})"

    def check_key(self, bucket_key: Any, where: str) -> None:
        """A key must be hashable (MXNet keeps its buckets in a dict).

        Parameters
        ----------
        bucket_key : object
            The key to check.
        where : str
            The prefix of the message.

        Raises
        ------
        TypeError
            If the key is not hashable.
        """
        try:
            hash(bucket_key)
        except TypeError:
            raise TypeError(f"{where}: bucket_key must be hashable like default_bucket_key {self.default_key!r}, "
                            f"got {bucket_key!r} ({type(bucket_key).__name__})") from None

    def check_batch(self, data_batch: Any, training: bool) -> None:
        """Check ``data_batch`` against what its bucket was bound with, or a new bucket against the default's.

        Parameters
        ----------
        data_batch : DataBatch
            The batch about to run.
        training : bool
            Whether it runs for training (then a new bucket's labels must be given).

        Raises
        ------
        TypeError, ValueError
            If stock MXNet would abort on the batch or run it wrong (see the class docstring).
        """
        if not isinstance(data_batch, mx.io.DataBatch):
            raise TypeError(f"{self.describe_batch(data_batch)}: expected an mx.io.DataBatch, got "
                            f"{type(data_batch).__name__}")
        key = data_batch.bucket_key
        where = self.describe_batch(data_batch)
        self.check_key(key, where)
        new = key not in self._known_keys  # a new bucket binds with the batch's own descriptions
        bound = self._declared[key] if not new else {"data": declare(data_batch.provide_data or ()),
                                                     "label": declare(data_batch.provide_label or ())}
        sizes = self._check_inputs(data_batch, key, "data", data_batch.data, data_batch.provide_data, bound)
        if bound["label"] and (training or (data_batch.label and data_batch.provide_label)):
            sizes += self._check_inputs(data_batch, key, "label", data_batch.label, data_batch.provide_label, bound)
        if len(set(size for _, size in sizes)) > 1:  # stock: AssertionError, or wrong slices on several devices
            raise ValueError(f"{where}: the inputs disagree on the batch size (along the layout's N axis): {sizes}")
        if new:
            self._check_new_bucket(key, data_batch.provide_data, data_batch.provide_label, where, training=training)
        else:
            self._check_reshape(key, data_batch, bound, where)

    def check_batch_once(self, data_batch: Any, training: bool) -> None:
        """:meth:`check_batch`, run in full only for a batch unlike every batch that passed it since ``bind``.

        Whether a batch passes depends only on its type, key, arrays' types, shapes and dtypes and
        descriptions (and on the bound module), so a batch equal in all of them to one that passed
        passes too: it costs a few attribute reads instead of the checks.

        Parameters
        ----------
        data_batch : DataBatch
            The batch about to run.
        training : bool
            Whether it runs for training.
        """
        signature = _batch_signature(data_batch, training)
        if signature is not None and signature in self._passed:
            return
        self.check_batch(data_batch, training)
        if signature is not None:
            if len(self._passed) >= _MAX_SIGNATURES:
                self._passed.clear()
            self._passed.add(signature)

    def _check_inputs(self, batch: Any, key: Any, field: str, arrays: Any, descs: Any,
                      bound: Dict[str, Dict[str, Declared]]) -> List[Tuple[str, int]]:
        """Check one field (data or label) of a batch against its bucket's bind; (name, batch size) of each input."""
        declared = bound[field]
        where = self.describe_batch(batch)
        if not descs:  # as stock MXNet, a bound bucket may take arrays of the shapes they have
            if arrays is None or len(arrays) != len(declared):
                raise ValueError(f"{where}: provide_{field} is missing; every batch must describe its own inputs "
                                 "(a DataBatch with provide_data and provide_label)")
            descs = [(name, getattr(array, "shape", ())) for name, array in zip(declared, arrays)]
        names = [d.name if isinstance(d, mx.io.DataDesc) else d[0] for d in descs]
        if names != list(declared):  # MXNet loads the arrays by position, in the order the bucket was bound with
            raise ValueError(f"{where}: provide_{field} names must be {list(declared)} (in this order, as bucket_key "
                             f"{key!r} was bound), got {names}")
        if arrays is None or len(arrays) != len(names):
            raise ValueError(f"{where}: {field} must be a list of {len(names)} array(s) for "
                             f"{names}, got {'None' if arrays is None else len(arrays)}")
        sizes = []
        for name, array, desc in zip(names, arrays, descs):
            if not isinstance(array, mx.nd.NDArray):
                raise TypeError(f"{where}: {field} {name!r} must be an mx.nd.NDArray, got {type(array).__name__}")
            shape = array.shape
            self._check_input(batch, key, field, name, shape, desc, declared[name])
            axis = declared[name].batch_axis
            if axis is not None and axis < len(shape):
                sizes.append((name, shape[axis]))
        return sizes

    def _check_input(self, batch: Any, key: Any, field: str, name: str, shape: Tuple[int, ...], desc: Any,
                     declared: Declared) -> None:
        said = tuple(desc.shape) if isinstance(desc, mx.io.DataDesc) else tuple(desc[1])
        if said != shape:
            raise ValueError(f"{self.describe_batch(batch)}: provide_{field} says shape {said} for {name!r} but the "
                             f"array has shape {shape}")
        if self._key_lengths is not None and name in self._key_lengths:
            self._check_length(key, field, name, shape, declared, self.describe_batch(batch))
        default = self._declared[self.default_key][field].get(name)
        if default is not None and math.prod(shape) > default.size:
            self._warn_reallocation(batch, key, field, name, shape, default)

    def _warn_reallocation(self, batch: Any, key: Any, field: str, name: str, shape: Tuple[int, ...],
                           default: Declared) -> None:
        """One :class:`BucketReallocationWarning` per input and module (none with ``allow_larger_keys``)."""
        if self.allow_larger_keys or name in self._warned:
            return
        self._warned.add(name)
        warnings.warn(f"{self.describe_batch(batch)}: {field} {name!r} has shape {shape}, more elements than the "
                      f"{default.shape} it was bound with for default_bucket_key {self.default_key!r}: MXNet "
                      "re-allocates its memory for this bucket (correct, but slower and larger). Bind with the "
                      "largest batch and key to avoid it, or pass allow_larger_keys=True to silence this warning "
                      "(said once per input)", BucketReallocationWarning, stacklevel=7)

    def _check_new_bucket(self, key: Any, data_shapes: Optional[ShapeList], label_shapes: Optional[ShapeList],
                          where: str, training: bool = False) -> None:
        """``sym_gen(key)`` takes these inputs and gives a subset of the default bucket's parameters."""
        symbol, data_names, label_names = self._generate(key, where)
        check_grad_req(symbol, self._grad_req_bound, where)
        descs: Dict[str, List[mx.io.DataDesc]] = {}
        for field, names, shapes in (("data", data_names, data_shapes), ("label", label_names, label_shapes)):
            descs[field] = self._new_bucket_inputs(key, field, list(names or ()), shapes, where, training)
        self._input_names |= set(data_names or ()) | set(label_names or ())
        everything = descs["data"] + descs["label"]
        self._check_signature(symbol, key, everything, where)
        self._declared[key] = {field: declare(field_descs) for field, field_descs in descs.items()}
        self._check_declared_lengths(key, where)
        self._known_keys.add(key)

    def _check_reshape(self, key: Any, batch: Any, bound: Dict[str, Dict[str, Declared]], where: str) -> None:
        """A bound bucket's batch of other shapes: MXNet binds the bucket's symbol again for them, so they must
        fit it (stock MXNet aborts in C++ shape inference otherwise)."""
        given = {"data": list(zip(bound["data"], batch.data))}
        if bound["label"] and batch.label:
            given["label"] = list(zip(bound["label"], batch.label))
        descs = [mx.io.DataDesc(name, tuple(array.shape), bound[field][name].dtype)
                 for field, pairs in given.items() for name, array in pairs]
        if all(tuple(d.shape) == bound[f][d.name].shape for f in given for d in descs if d.name in bound[f]):
            return
        was_bound = f" (bucket_key {key!r} was bound with {[(n, d.shape) for f in given for n, d in bound[f].items()]})"
        self._check_signature(self._sym_gen_once(key)[0], key, descs, where, was_bound)

    def _check_signature(self, symbol: Any, key: Any, descs: Any, where: str, note: str = "") -> None:
        """``symbol`` takes ``descs`` (MXNet's shape inference, its error turned into a ValueError naming the
        shapes) and shares the default bucket's parameters with the same shapes."""
        try:
            signature = self._signature_of(symbol, descs)
        except mx.base.MXNetError as err:
            first = next((line for line in str(err).splitlines() if line.strip()), "")
            raise ValueError(f"{where}: sym_gen({key!r}) cannot take the shapes "
                             f"{[(d.name, tuple(d.shape)) for d in descs]}{note}: {first}") from None
        if self._signature is not None:
            try:
                compare_signatures(self._signature, self.default_key, signature, key, subset=True)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None

    def _generate(self, key: Any, where: str) -> SymGenResult:
        """``sym_gen(key)``; a key of another kind than the default's that ``sym_gen`` fails on is a TypeError."""
        if _key_kind(key) == _key_kind(self.default_key):
            return self._sym_gen_once(key)
        try:
            return self._sym_gen_once(key)
        except Exception as err:  # noqa: BLE001 -- whatever sym_gen raises on a key of the wrong kind
            raise TypeError(f"{where}: bucket_key must be {_kind_name(self.default_key)} like default_bucket_key "
                            f"{self.default_key!r}, got {key!r} ({type(key).__name__}); sym_gen failed on it: "
                            f"{type(err).__name__}: {err}") from err

    def _new_bucket_inputs(self, key: Any, field: str, names: List[str], shapes: Optional[ShapeList], where: str,
                           training: bool) -> List[mx.io.DataDesc]:
        """The descriptions a new bucket binds with: the inputs ``sym_gen(key)`` names, each shared input of the
        default bucket's dtype; labels given when training (stock would train on stale labels)."""
        descs = [as_desc(d) for d in shapes or ()]
        if not descs and names and field == "label" and training is False:
            return []
        if not descs and names:
            raise ValueError(f"{where}: provide_{field} is missing; every batch must describe its own inputs "
                             f"(sym_gen({key!r}) names {field} {names}); without them MXNet "
                             + ("does not load the labels and trains on stale ones" if field == "label" else
                                "cannot bind the bucket"))
        given = [d.name for d in descs]
        if field == "label" and not names:  # labels sym_gen does not use: stock warns and ignores them
            return descs
        if sorted(given) != sorted(names):
            raise ValueError(f"{where}: sym_gen({key!r}) names {field} inputs {names} but provide_{field} names "
                             f"{given}; a bucket binds with the inputs its own sym_gen names")
        default = self._declared[self.default_key][field]
        for desc in descs:
            bound = default.get(desc.name)
            if bound is not None and np.dtype(desc.dtype) != bound.dtype:
                raise ValueError(f"{where}: {field} {desc.name!r} is declared {np.dtype(desc.dtype).name} but was "
                                 f"bound as {bound.dtype.name}; every bucket shares the default bucket's arrays")
        return descs

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
        training = self.for_training if is_train is None else is_train
        self.check_batch_once(data_batch, training)
        if training and data_batch.label and not self._declared[data_batch.bucket_key]["label"]:
            self._check_labels_bound(data_batch)
        super().forward(data_batch, is_train=is_train)
        self._outputs_valid = True

    def _check_labels_bound(self, data_batch: Any) -> None:
        """A training batch with labels, of a bucket bound without labels: MXNet loads the labels only if the
        batch's data shapes differ from the bound ones (it then binds again, with the labels); otherwise they are
        ignored. (A batch without labels trains on what the label arrays hold, as the user meant.)"""
        key = data_batch.bucket_key
        if not self._sym_gen_once(key)[2]:
            return
        self.switch_bucket(key, data_batch.provide_data, data_batch.provide_label)  # bound: nothing is bound again
        bound = [tuple(d.shape) for d in self.data_shapes]
        if not self.label_shapes and bound == [tuple(a.shape) for a in data_batch.data]:
            raise ValueError(f"{self.describe_batch(data_batch)}: bucket_key {key!r} was bound without labels "
                             "(bind or switch_bucket without label_shapes), so MXNet would not load this training "
                             "batch's labels and would train on stale ones; give label_shapes when binding or "
                             "switching to a bucket you train")

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
        """MXNet's checkpoint files, written atomically: ``prefix-EPOCH.params``, one
        ``prefix-KEY-symbol.json`` per bucket bound so far and ``prefix.buckets``.

        Each bucket's symbol is the one it was bound with, unless ``sym_gen`` offers a
        ``checkpoint_sym_gen`` (a sym_gen of the same parameters built from MXNet's own operators, as
        :func:`~sinlstm_sym.make_sym_gen` does for the native cell): then its symbols are written, so
        plain MXNet loads the files and they honour every ``grad_req``.

        Parameters
        ----------
        prefix : str
            The path prefix of the files.
        epoch : int
            The epoch number in the parameters' file name.
        remove_amp_cast : bool
            Passed to ``Symbol.save``.

        Raises
        ------
        RuntimeError
            If the module is not bound with parameters.
        TypeError
            If a bucket key is not an int or a tuple of ints (the keys are stored as an int32 array).
        ValueError
            If a symbol to write holds operators that write their gradients whatever grad_req asks
            (:func:`writing_nodes`): bound with ``grad_req='add'`` from the file, it would train wrong.
            Nothing is written then.
        """
        check_condition(self.binded and self.params_initialized, "save_checkpoint needs a bound module with "
                        "parameters", RuntimeError)
        keys = list(self._buckets)  # the buckets bound so far, as BucketingModule saves them
        kinds = {_key_kind(k) for k in keys}
        check_condition(len(kinds) == 1 and all(_key_int_parts(k) for k in keys),
                        f"save_checkpoint stores bucket keys as an int32 array: ints or tuples of ints of one "
                        f"length, got {keys!r}; save the parameters with save_params instead", TypeError)
        symbols = {key: self._checkpoint_symbol(key) for key in keys}
        with AtomicOutputs() as outputs:
            self.save_params(str(outputs.stage(f"{prefix}-{epoch:04d}.params")))
            for key, symbol in symbols.items():
                symbol.save(str(outputs.stage(f"{prefix}-{_key_text(key)}-symbol.json")),
                            remove_amp_cast=remove_amp_cast)
            mx.nd.save(str(outputs.stage(f"{prefix}.buckets")), mx.nd.array(keys, dtype=np.int32))

    def _checkpoint_symbol(self, key: Any) -> mx.sym.Symbol:
        """The symbol ``save_checkpoint`` writes for bucket ``key`` (see there)."""
        portable = getattr(self._user_sym_gen, "checkpoint_sym_gen", None)
        symbol = call_sym_gen(portable, key)[0] if portable is not None else self._sym_gen_once(key)[0]
        nodes = writing_nodes(symbol)
        check_condition(not nodes, f"save_checkpoint: the symbol of bucket_key {key!r} holds operator(s) {nodes} "
                        "that write their gradients whatever grad_req asks (built without grad_req guards): "
                        "loaded from the file and bound with grad_req='add' it would train wrong, and plain MXNet "
                        "cannot load it. Save a training run with fit(checkpoint=...) (or "
                        "sinlstm_sym.checkpoint.save_checkpoint), or build the module from make_sym_gen")
        return symbol

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


def _batch_signature(batch: Any, training: bool) -> Optional[Hashable]:
    """Everything :meth:`SafeBucketingModule.check_batch` looks at, hashable; ``None`` if it cannot be taken
    (an unusual batch: the full check runs and says what is wrong)."""
    if type(batch) is not mx.io.DataBatch:
        return None
    try:
        key = batch.bucket_key
        signature = (bool(training), type(key), key, _arrays_signature(batch.data),
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
