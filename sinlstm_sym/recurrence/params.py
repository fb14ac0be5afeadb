"""Parameter layout of the stacked recurrence: names, shapes, seeded initialisation, fused packing.

The canonical ("unpacked") layout is the one of ``mx.rnn.LSTMCell`` and
``gluon.rnn.LSTMCell``: per layer ``i`` the arrays ``lstm{i}_i2h_weight (4h, n_in)``,
``lstm{i}_i2h_bias (4h,)``, ``lstm{i}_h2h_weight (4h, h)``, ``lstm{i}_h2h_bias (4h,)``,
gates in the order of :data:`~sinlstm_sym.recurrence.kinds.LSTM` (input, forget, cell, output). The fused
``mx.sym.RNN`` op holds the same numbers as one flat vector ``lstm{i}_parameters``: both weights, then both
biases. :data:`UNPACKED` and :data:`FUSED` are the two layouts; each cell declares its own
(:mod:`sinlstm_sym.recurrence.cells`).
"""
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..core.checks import check_choice, check_condition, check_int, check_int_sequence
from ..constants import (DEFAULT_FORGET_BIAS, DEFAULT_INIT, GLUON_UNIFORM_SCALE, INITS, INPUT_SIZE,
                        MAX_ARRAY_ELEMENTS)
from .kinds import LSTM

RECURRENCE = LSTM  # the recurrence whose parameters this module lays out
PARTS = ("i2h_weight", "h2h_weight", "i2h_bias", "h2h_bias")  # fused packing order

ParamDict = Dict[str, np.ndarray]


def layer_prefix(layer: int) -> str:
    """Name prefix of layer ``layer`` (0-based)."""
    return f"{RECURRENCE.name}{layer}_"


def _layer_count(h: int, n_in: int) -> int:
    """Parameters of one layer of ``h`` units over ``n_in`` inputs: two weights and two biases per gate."""
    return RECURRENCE.gate_count * h * (n_in + h + 2)


def check_hidden_sizes(hidden_sizes: Sequence[int]) -> Tuple[int, ...]:
    """Validate ``hidden_sizes``: a non-empty sequence of positive ints whose layers' parameter vectors each
    fit MXNet's int32 indexing (``MAX_ARRAY_ELEMENTS``)."""
    sizes = check_int_sequence("hidden_sizes", hidden_sizes, minimum=1, distinct=False)
    n_in = INPUT_SIZE
    for i, h in enumerate(sizes):
        count = _layer_count(h, n_in)  # the fused layout's vector of layer i: the largest array of the layer
        check_condition(count <= MAX_ARRAY_ELEMENTS, f"hidden_sizes {list(sizes)}: layer {i} would hold {count} "
                        f"parameters in one array, more than MXNet's int32 indexing allows ({MAX_ARRAY_ELEMENTS})")
        n_in = h
    return sizes


def parameter_count(hidden_sizes: Sequence[int], input_size: int = INPUT_SIZE) -> int:
    """Number of parameters of the stack."""
    return sum(_layer_count(h, n_in) for n_in, h in zip((input_size, *hidden_sizes[:-1]), hidden_sizes))


def unpacked_shapes(hidden_sizes: Sequence[int], input_size: int = INPUT_SIZE) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every parameter in the canonical layout."""
    shapes: Dict[str, Tuple[int, ...]] = {}
    n_in = input_size
    for i, h in enumerate(hidden_sizes):
        p = layer_prefix(i)
        rows = RECURRENCE.gate_count * h
        shapes[p + "i2h_weight"] = (rows, n_in)
        shapes[p + "h2h_weight"] = (rows, h)
        shapes[p + "i2h_bias"] = (rows,)
        shapes[p + "h2h_bias"] = (rows,)
        n_in = h
    return shapes


def fused_shapes(hidden_sizes: Sequence[int], input_size: int = INPUT_SIZE) -> Dict[str, Tuple[int, ...]]:
    """Name -> shape of every parameter of the fused layout."""
    unpacked = unpacked_shapes(hidden_sizes, input_size)
    return {layer_prefix(i) + "parameters": (sum(int(np.prod(unpacked[layer_prefix(i) + part])) for part in PARTS),)
            for i in range(len(hidden_sizes))}


def init_params(hidden_sizes: Sequence[int], seed: int, forget_bias: float = DEFAULT_FORGET_BIAS,
                input_size: int = INPUT_SIZE, init: str = DEFAULT_INIT) -> ParamDict:
    """Seeded initial parameters in the canonical layout.

    Weights: ``init='library'``: Xavier-uniform per gate block (``U[-a, a]``, ``a = sqrt(6 / (fan_in + h))``);
    ``init='gluon'``: Gluon's default ``mx.init.Uniform()``, every weight ``U[-0.07, 0.07]``. Biases zero
    except the forget gate's i2h bias, ``forget_bias`` (as ``mx.rnn.LSTMCell``; Gluon's ``LSTMCell`` has
    none: 0). Uses its own generator; the global RNGs are untouched.
    """
    return _initial_values(check_hidden_sizes(hidden_sizes), check_int("seed", seed, minimum=0), forget_bias,
                           input_size, check_choice("init", init, INITS))


def _initial_values(hidden_sizes: Sequence[int], seed: int, forget_bias: float, input_size: int,
                    init: str) -> ParamDict:
    """:func:`init_params` of arguments already checked (a :class:`~sinlstm_sym.model.spec.ModelSpec`'s)."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(0x1517,)))
    params: ParamDict = {}
    for name, shape in unpacked_shapes(hidden_sizes, input_size).items():
        if name.endswith("weight"):
            h, fan_in = shape[0] // RECURRENCE.gate_count, shape[1]
            bound = np.sqrt(6.0 / (fan_in + h)) if init == "library" else GLUON_UNIFORM_SCALE
            params[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
        else:
            bias = np.zeros(shape, dtype=np.float32)
            if "i2h" in name:
                bias[RECURRENCE.gate_rows("forget", shape[0] // RECURRENCE.gate_count)] = forget_bias
            params[name] = bias
    return params


def pack_fused(params: Mapping[str, np.ndarray], hidden_sizes: Sequence[int]) -> ParamDict:
    """Canonical layout -> fused layout (one flat vector per layer)."""
    return {layer_prefix(i) + "parameters": np.concatenate(
        [np.asarray(params[layer_prefix(i) + part]).ravel() for part in PARTS]).astype(np.float32)
        for i in range(len(hidden_sizes))}


def unpack_fused(params: Mapping[str, np.ndarray], hidden_sizes: Sequence[int],
                 input_size: int = INPUT_SIZE) -> ParamDict:
    """Fused layout -> canonical layout."""
    shapes = unpacked_shapes(hidden_sizes, input_size)
    out: ParamDict = {}
    for i in range(len(hidden_sizes)):
        flat = np.asarray(params[layer_prefix(i) + "parameters"]).ravel()
        offset = 0
        for part in PARTS:
            name = layer_prefix(i) + part
            size = int(np.prod(shapes[name]))
            out[name] = flat[offset:offset + size].reshape(shapes[name])
            offset += size
        check_condition(offset == flat.size, f"{layer_prefix(i)}parameters has {flat.size} values, expected {offset}")
    return out


@dataclass(frozen=True)
class Layout:
    """A parameter layout: the canonical one (one array per weight and bias) or the fused one (one flat
    vector per layer, ``packed``). Its methods take arguments already checked (a cell's, a spec's)."""

    name: str
    packed: bool

    def shapes(self, hidden_sizes: Sequence[int], input_size: int = INPUT_SIZE) -> Dict[str, Tuple[int, ...]]:
        """Name -> shape of every parameter in this layout."""
        return fused_shapes(hidden_sizes, input_size) if self.packed else unpacked_shapes(hidden_sizes, input_size)

    def from_canonical(self, params: Mapping[str, np.ndarray], hidden_sizes: Sequence[int]) -> ParamDict:
        """Canonical-layout ``params`` in this layout (float32 arrays)."""
        if self.packed:
            return pack_fused(params, hidden_sizes)
        return {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}

    def to_canonical(self, params: Mapping[str, np.ndarray], hidden_sizes: Sequence[int]) -> ParamDict:
        """``params`` of this layout in the canonical layout."""
        if self.packed:
            return unpack_fused(params, hidden_sizes)
        return {k: np.asarray(v) for k, v in params.items()}


UNPACKED = Layout("unpacked", packed=False)  # mx.rnn.LSTMCell's and gluon.rnn.LSTMCell's
FUSED = Layout("fused", packed=True)  # mx.sym.RNN's (and the native operator's)


@mx.init.register
class StackInit(mx.init.Initializer):
    """The library's seeded initial value of one parameter of the stack, as an MXNet initializer.

    Every parameter variable built by :func:`~sinlstm_sym.model.symbol.make_sym_gen` carries one
    (``mx.sym.var(name, init=spec.initializer(seed))``), so ``module.init_params(<any initializer>)``
    gives the LSTM parameters the values of :func:`init_params` in the layout their names belong to
    (``lstm{i}_parameters``: fused; ``lstm{i}_i2h_weight``...: canonical). Its arguments come from a checked
    :class:`~sinlstm_sym.model.spec.ModelSpec` (MXNet re-creates it from the symbol's JSON); ``cell``, the cell
    the symbol was built for, is part of that JSON and of the error messages.
    """

    def __init__(self, hidden_sizes: Sequence[int], seed: int, cell: str, forget_bias: float = DEFAULT_FORGET_BIAS,
                 init: str = DEFAULT_INIT):
        hidden_sizes = list(hidden_sizes)
        super().__init__(hidden_sizes=hidden_sizes, seed=seed, cell=cell, forget_bias=forget_bias, init=init)
        self.hidden_sizes, self.seed, self.cell, self.forget_bias = hidden_sizes, seed, cell, forget_bias
        self.init = init

    def _init_weight(self, name: Any, arr: mx.nd.NDArray) -> None:
        canonical = _initial_values(self.hidden_sizes, self.seed, self.forget_bias, INPUT_SIZE, self.init)
        values = canonical if str(name) in canonical else FUSED.from_canonical(canonical, self.hidden_sizes)
        check_condition(str(name) in values, f"StackInit knows no parameter {str(name)!r} for cell {self.cell!r} "
                        f"and hidden_sizes {self.hidden_sizes}; known: {sorted(values)}")
        value = values[str(name)]
        check_condition(tuple(arr.shape) == value.shape,
                        f"parameter {str(name)!r} has shape {tuple(arr.shape)}, StackInit gives {value.shape}")
        arr[:] = value

    def _init_bias(self, name: Any, arr: mx.nd.NDArray) -> None:
        self._init_weight(name, arr)

    _init_default = _init_weight
