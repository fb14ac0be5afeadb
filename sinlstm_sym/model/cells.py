"""The cells' builders, attached to their declarations (:mod:`sinlstm_sym.recurrence.cells`), and the one
resolution of a requested cell for a run's devices.

Each :class:`CellBuilder` joins a declared :class:`~sinlstm_sym.recurrence.cells.Cell` with the function that
builds its prediction for windows of one length, the check of whether it can run in this process, and the
cell whose symbols a checkpoint stores for it (the native operator's library is not part of plain MXNet).
:func:`resolve_cell` is the only place a request (a cell's name or ``'auto'``) becomes a cell.
"""
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Type

import mxnet as mx

from ..constants import INPUT_SIZE
from ..core.checks import check_condition
from ..native import native_available, unchecked_lstm_stack
from ..native.adam import FusedAdam
from ..recurrence.cells import FUSED_CELL, NATIVE, UNROLLED, Cell, cell_choices, cell_named, requested_cells
from ..recurrence.params import PARTS, StackInit, layer_prefix
from .graph import step_weight_values, zero_state

logger = logging.getLogger(__name__)


class BuildSpec(Protocol):
    """What a builder reads of the model it builds: a :class:`~sinlstm_sym.model.spec.ModelSpec` has it."""

    hidden_sizes: Tuple[int, ...]
    label_mode: str
    step_weight: float
    step_tau: float


# build(spec, data_name, length, initializer, weighted, writes_only) -> the prediction (B, L) or (B, 1)
Build = Callable[["BuildSpec", str, int, StackInit, bool, bool], mx.sym.Symbol]


@dataclass(frozen=True)
class CellBuilder:
    """A declared cell with what builds and runs it.

    Parameters
    ----------
    cell : Cell
        The declaration (layout, step weights, guards, memory, block rows, conditions).
    build : callable
        ``build(spec, data_name, length, initializer, weighted, writes_only)``: the prediction of windows of
        ``length`` steps, ``(B, L)`` or ``(B, 1)`` by the spec's label mode. ``weighted`` is only ever true for
        a cell that applies the step weights itself, ``writes_only`` only for one with grad_req guards.
    available : callable, optional
        ``available() -> bool``: whether it can run in this process (may build it); ``None``: always.
    checkpoint_cell : str, optional
        The cell whose symbols (same parameters) a checkpoint stores for this one; ``None``: its own.
    optimizers : dict of str to type, optional
        Optimizers (by MXNet name) that its loaded code runs in fewer calls, each a subclass of MXNet's with the
        same updates: ``fit`` uses them where the updates run in its process.
    """

    cell: Cell
    build: Build
    available: Optional[Callable[[], bool]] = None
    checkpoint_cell: Optional[str] = None
    optimizers: Mapping[str, Type[mx.optimizer.Optimizer]] = field(default_factory=dict)


_LOCK = threading.Lock()
_BUILDERS: Dict[str, CellBuilder] = {}


def attach_builder(builder: CellBuilder) -> CellBuilder:
    """Attach ``builder`` to its declared cell (one builder per cell).

    Parameters
    ----------
    builder : CellBuilder
        The builder, its cell as declared.

    Returns
    -------
    CellBuilder
        ``builder``.

    Raises
    ------
    ValueError
        Its cell is not declared (or declared otherwise), has a builder already, or its ``checkpoint_cell``
        holds another layout.
    TypeError
        ``builder`` is not a :class:`CellBuilder`.
    """
    check_condition(isinstance(builder, CellBuilder), f"builder must be a CellBuilder, got {builder!r}", TypeError)
    check_condition(cell_named(builder.cell.name) == builder.cell, f"cell {builder.cell.name!r} is declared "
                    "otherwise; attach a builder to the declared cell")
    if builder.checkpoint_cell is not None:  # a checkpoint's parameters must fit the symbols it stores
        check_condition(cell_named(builder.checkpoint_cell).layout == builder.cell.layout,
                        f"cell {builder.cell.name!r}: its checkpoint_cell {builder.checkpoint_cell!r} holds another "
                        "layout")
    with _LOCK:
        check_condition(builder.cell.name not in _BUILDERS, f"cell {builder.cell.name!r} has a builder already")
        _BUILDERS[builder.cell.name] = builder
    return builder


def detach_builder(name: str) -> None:
    """Remove the builder of cell ``name`` (one a test attached); unknown names are ignored."""
    with _LOCK:
        _BUILDERS.pop(name, None)


def builder_of(name: str) -> CellBuilder:
    """The builder of the resolved cell ``name`` (a :class:`~sinlstm_sym.model.spec.ModelSpec`'s)."""
    return _BUILDERS[name]


def _why_not(builder: CellBuilder, devices: Sequence[mx.Context]) -> Optional[str]:
    """Why the cell cannot run on ``devices`` in this process (``None``: it can; the check may build it)."""
    if builder.cell.cpu_only and not all(c.device_type.startswith("cpu") for c in devices):
        return f"cell {builder.cell.name!r} runs on CPU only"
    if builder.available is not None and not builder.available():
        return f"cell {builder.cell.name!r} is unavailable (see the warning above)"
    return None


def resolve_cell(cell: str, contexts: Optional[Sequence[mx.Context]] = None) -> str:
    """The cell to build for the request ``cell`` on ``contexts`` (default: the current context).

    ``'auto'`` is the first candidate that runs there (``'native'`` where its operator loads and every
    context is a CPU, else ``'fused'``); a conditional cell that cannot run (``'native'`` on a GPU, or without
    its operator) falls back to ``'auto'``'s choice. Other cells are returned unchanged. The choice is logged.

    Parameters
    ----------
    cell : str
        A declared cell's name or ``'auto'``.
    contexts : sequence of mxnet.Context, optional
        The devices of the run.

    Returns
    -------
    str
        The name of a declared cell with a builder.

    Raises
    ------
    ValueError, TypeError
        An unknown cell, contexts that are not ``mx.Context`` objects, or no candidate runs here.
    """
    check_condition(isinstance(cell, str) and cell in cell_choices(), f"cell must be one of {list(cell_choices())}, "
                    f"got {cell!r}", ValueError if isinstance(cell, str) else TypeError)
    devices = list(contexts) if contexts is not None else [mx.current_context()]
    check_condition(all(isinstance(c, mx.Context) for c in devices),
                    f"contexts must be mx.Context objects, got {devices!r}", TypeError)
    candidates = requested_cells(cell)
    missing = [c.name for c in candidates if c.name not in _BUILDERS]
    check_condition(not missing, f"cell {cell!r}: no builder is attached to {missing}")
    reasons: List[str] = []
    for candidate in candidates:
        reason = _why_not(_BUILDERS[candidate.name], devices)
        if reason is None:
            if cell != candidate.name or candidate.conditional:
                why = f" ({'; '.join(reasons)})" if reasons else ""
                logger.log(logging.DEBUG if cell == candidate.name else logging.INFO, "cell=%r on %s: using cell=%r%s",
                           cell, [str(c) for c in devices], candidate.name, why)
            return candidate.name
        reasons.append(reason)
    raise ValueError(f"cell={cell!r}: none of {[c.name for c in candidates]} runs on {[str(c) for c in devices]}: "
                     + "; ".join(reasons))


def _unrolled(spec: "BuildSpec", data_name: str, length: int, init: StackInit, weighted: bool,
              writes_only: bool) -> mx.sym.Symbol:
    """One ``mx.rnn.LSTMCell`` per step and layer."""
    stack = mx.rnn.SequentialRNNCell()
    for i, h in enumerate(spec.hidden_sizes):
        params = mx.rnn.RNNParams(layer_prefix(i))
        for part in PARTS:  # created first, so the cell takes these variables (with our initializer)
            params.get(part, init=init)
        stack.add(mx.rnn.LSTMCell(num_hidden=h, prefix=layer_prefix(i), params=params))
    data = mx.sym.var(data_name)
    first = mx.sym.reshape(mx.sym.slice_axis(data, axis=1, begin=0, end=1), shape=(0, -1))  # (B, 1)
    begin = [zero_state(first, 1, h) for h in spec.hidden_sizes for _ in ("h", "c")]
    seq, _ = stack.unroll(length, inputs=data, begin_state=begin, layout="NTC", merge_outputs=True)  # (B, L, h)
    steps = seq if spec.label_mode == "sequence" else mx.sym.slice_axis(seq, axis=1, begin=length - 1, end=length)
    return mx.sym.reshape(steps, shape=(0, -1))


def _fused(spec: "BuildSpec", data_name: str, length: int, init: StackInit, weighted: bool,
           writes_only: bool) -> mx.sym.Symbol:
    """One fused ``mx.sym.RNN`` per layer."""
    x = mx.sym.swapaxes(mx.sym.var(data_name), dim1=0, dim2=1)  # TNC
    first = mx.sym.slice_axis(x, axis=0, begin=0, end=1)  # (1, B, 1)
    for i, h in enumerate(spec.hidden_sizes):
        p = layer_prefix(i)
        x = mx.sym.RNN(data=x, parameters=mx.sym.var(p + "parameters", init=init), state=zero_state(first, 2, h),
                       state_cell=zero_state(first, 2, h), state_size=h, num_layers=1,
                       mode=FUSED_CELL.recurrence.rnn_mode, name=p + "rnn")
    if spec.label_mode == "sequence":  # x: (L, B, h)
        return mx.sym.reshape(mx.sym.swapaxes(x, dim1=0, dim2=1), shape=(0, -1))
    return mx.sym.reshape(mx.sym.slice_axis(x, axis=0, begin=length - 1, end=length), shape=(-3, -1))


def _native(spec: "BuildSpec", data_name: str, length: int, init: StackInit, weighted: bool,
            writes_only: bool) -> mx.sym.Symbol:
    """One C++ operator for the stack. ``weighted``: it applies the loss' step weights itself (the numbers of
    :func:`~sinlstm_sym.model.graph.weigh_steps`, no extra operators). ``writes_only``: no grad_req guards
    (see :func:`~sinlstm_sym.native.unchecked_lstm_stack`). With ``label_mode='last'`` it returns the last
    step itself."""
    # external operators need their input shapes up front (see sinlstm_sym.native.lstm_stack)
    data = mx.sym.var(data_name, shape=(0, length, INPUT_SIZE))
    params = [mx.sym.var(name, shape=shape, init=init)
              for name, shape in NATIVE.layout.shapes(spec.hidden_sizes).items()]
    weights = step_weight_values(length, spec.step_weight, spec.step_tau) if weighted else None
    return unchecked_lstm_stack(data, params, spec.hidden_sizes, step_weights=weights, writes_only=writes_only,
                                last_step=spec.label_mode == "last")  # (B, L) or (B, 1)


BUILDERS: Tuple[CellBuilder, ...] = (
    attach_builder(CellBuilder(UNROLLED, _unrolled)),
    attach_builder(CellBuilder(FUSED_CELL, _fused)),
    attach_builder(CellBuilder(NATIVE, _native, available=native_available, checkpoint_cell=FUSED_CELL.name,
                               optimizers={"adam": FusedAdam})),  # the operator's library holds the fused Adam
)
