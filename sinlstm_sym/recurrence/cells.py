"""The cells, declared once: each way of building the stack (``'unrolled'``, ``'fused'``, ``'native'``) with
what the layers below the model need to know about it.

A :class:`Cell` holds data only: its parameter layout, whether its prediction applies the loss's step
weights itself, whether its symbol guards ``grad_req`` with identities that a module bound with 'write' may
drop, its memory per step and layer (:mod:`sinlstm_sym.config.limits`), the windows it computes together,
and when it may be unavailable. Its builder and availability check are attached above, in
:mod:`sinlstm_sym.model.cells`, which also resolves a requested cell for the devices of a run.

A user asks for a cell by name or for :data:`AUTO`: the available candidate of lowest ``auto_rank``
(the native operator where it loads on a CPU, else the fused one). Every candidate of :data:`AUTO` holds
the same layout, so a run's parameters fit whichever of them a machine resolves to.
"""
import threading
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..constants import NATIVE_BYTES_PER_LAYER_STEP, UNROLLED_BYTES_PER_LAYER_STEP
from ..core.checks import check_condition
from .kinds import LSTM, Recurrence
from .params import FUSED, UNPACKED, Layout, ParamDict

AUTO = "auto"  # the request for the best cell available on the run's devices


@dataclass(frozen=True)
class Cell:
    """One implementation of the stack, as the layers below the model see it.

    Parameters
    ----------
    name : str
        Its name, the value of the ``cell`` setting.
    layout : Layout
        Its parameter layout (:data:`~sinlstm_sym.recurrence.params.UNPACKED` or ``FUSED``).
    applies_step_weights : bool, default False
        Its prediction applies the loss's per-step weights itself (no extra graph operators).
    grad_req_guards : bool, default False
        Its symbol guards ``grad_req`` with identities, which a module bound with 'write' may drop.
    bytes_per_layer_step : int, default 0
        Memory per step and layer that does not depend on the number of windows (graph or operator state).
    block_rows : int, default 1
        Windows it computes together: fewer cost as much.
    cpu_only : bool, default False
        It runs on CPU contexts only.
    built_on_use : bool, default False
        Its code is built on first use and may be unavailable (the availability check is attached with
        its builder).
    auto_rank : int, optional
        Its place among the candidates of :data:`AUTO` (lowest first); ``None``: never chosen by it.
    recurrence : Recurrence, default LSTM
        The recurrence it computes.
    """

    name: str
    layout: Layout
    applies_step_weights: bool = False
    grad_req_guards: bool = False
    bytes_per_layer_step: int = 0
    block_rows: int = 1
    cpu_only: bool = False
    built_on_use: bool = False
    auto_rank: Optional[int] = None
    recurrence: Recurrence = LSTM

    def __post_init__(self) -> None:
        check_condition(isinstance(self.name, str) and self.name.isidentifier() and self.name != AUTO,
                        f"a cell's name must be an identifier other than {AUTO!r}, got {self.name!r}")
        check_condition(isinstance(self.layout, Layout), f"cell {self.name!r}: layout must be a Layout, got "
                        f"{self.layout!r}", TypeError)
        for name in ("bytes_per_layer_step", "block_rows"):
            value = getattr(self, name)
            check_condition(isinstance(value, int) and value >= (name == "block_rows"),
                            f"cell {self.name!r}: {name} must be an int >= {int(name == 'block_rows')}, got {value!r}")

    @property
    def conditional(self) -> bool:
        """Whether the machine or the devices decide if it runs (else it always does)."""
        return self.cpu_only or self.built_on_use


_LOCK = threading.Lock()
_CELLS: Dict[str, Cell] = {}


def declare_cell(cell: Cell) -> Cell:
    """Add ``cell`` to the cells a configuration may name.

    Parameters
    ----------
    cell : Cell
        The declaration.

    Returns
    -------
    Cell
        ``cell``.

    Raises
    ------
    ValueError
        A cell of that name is declared already, or a candidate of ``'auto'`` (or a conditional cell, which
        falls back to them) holds another layout than the others.
    TypeError
        ``cell`` is not a :class:`Cell`.
    """
    check_condition(isinstance(cell, Cell), f"cell must be a Cell, got {type(cell).__name__}", TypeError)
    with _LOCK:
        check_condition(cell.name not in _CELLS, f"a cell named {cell.name!r} is declared already")
        if _may_fall_back(cell):  # a run's parameters must fit whichever of them a machine resolves to
            layouts = {c.layout for c in _CELLS.values() if _may_fall_back(c)}
            check_condition(layouts <= {cell.layout}, f"cell {cell.name!r}: the candidates of {AUTO!r} and the cells "
                            f"that fall back to them must hold one layout, {sorted(x.name for x in layouts)}, got "
                            f"{cell.layout.name!r}")
        _CELLS[cell.name] = cell
    return cell


def _may_fall_back(cell: Cell) -> bool:
    """Whether a run asking for ``cell``, or for ``'auto'``, may train on ``cell`` or on another candidate."""
    return cell.auto_rank is not None or cell.conditional


def withdraw_cell(name: str) -> None:
    """Remove the cell ``name`` (a cell a test declared); unknown names are ignored."""
    with _LOCK:
        _CELLS.pop(name, None)


def cell_names() -> Tuple[str, ...]:
    """The declared cells' names, in declaration order."""
    return tuple(_CELLS)


def cell_choices() -> Tuple[str, ...]:
    """What the ``cell`` setting accepts: the declared cells' names and :data:`AUTO`."""
    return (*_CELLS, AUTO)


def cell_named(name: str) -> Cell:
    """The declared cell ``name`` (not :data:`AUTO`).

    Raises
    ------
    ValueError, TypeError
        ``name`` is not the name of a declared cell (the message lists them).
    """
    check_condition(isinstance(name, str), f"cell must be one of {list(_CELLS)}, got {name!r}", TypeError)
    check_condition(name in _CELLS, f"cell must be one of {list(_CELLS)}, got {name!r}")
    return _CELLS[name]


def auto_candidates() -> Tuple[Cell, ...]:
    """The cells :data:`AUTO` may resolve to, first choice first."""
    ranked = [c for c in _CELLS.values() if c.auto_rank is not None]
    return tuple(sorted(ranked, key=lambda c: c.auto_rank or 0))


def requested_cells(name: str) -> Tuple[Cell, ...]:
    """The cells a request for ``name`` (a cell or :data:`AUTO`) may run on: a conditional cell may fall back
    to the candidates of :data:`AUTO`."""
    if name == AUTO:
        return auto_candidates()
    cell = cell_named(name)
    return (cell, *(c for c in auto_candidates() if c != cell)) if cell.conditional else (cell,)


def requested_layout(name: str) -> Layout:
    """The parameter layout a run asking for ``name`` (a cell or :data:`AUTO`) trains, whatever it resolves to."""
    layouts = {c.layout for c in requested_cells(name)}
    check_condition(len(layouts) == 1, f"cell {name!r} may resolve to cells of several layouts "
                    f"({sorted(x.name for x in layouts)})")
    return layouts.pop()


def requested_bytes_per_layer_step(name: str) -> int:
    """The memory per step and layer of the most demanding cell a request for ``name`` may run on."""
    return max((c.bytes_per_layer_step for c in requested_cells(name)), default=0)


def to_layout(params: Mapping[str, np.ndarray], cell: str, hidden_sizes: Sequence[int]) -> ParamDict:
    """Canonical-layout ``params`` in the layout of ``cell``.

    Parameters
    ----------
    params : dict of str to numpy.ndarray
        The parameters in the canonical layout.
    cell : str
        A declared cell or ``'auto'``.
    hidden_sizes : sequence of int
        The stack's hidden sizes.

    Returns
    -------
    dict of str to numpy.ndarray
        The parameters as the cell's symbol names them.

    Raises
    ------
    ValueError, TypeError
        An unknown cell.
    """
    return _checked_layout(cell).from_canonical(params, hidden_sizes)


def to_canonical(params: Mapping[str, np.ndarray], cell: str, hidden_sizes: Sequence[int]) -> ParamDict:
    """``params`` of ``cell``'s layout in the canonical layout (the inverse of :func:`to_layout`).

    Raises
    ------
    ValueError, TypeError
        An unknown cell.
    """
    return _checked_layout(cell).to_canonical(params, hidden_sizes)


def _checked_layout(cell: Any) -> Layout:
    check_condition(isinstance(cell, str) and cell in cell_choices(), f"cell must be one of {list(cell_choices())}, "
                    f"got {cell!r}", TypeError if not isinstance(cell, str) else ValueError)
    return requested_layout(cell)


UNROLLED = declare_cell(Cell("unrolled", UNPACKED, bytes_per_layer_step=UNROLLED_BYTES_PER_LAYER_STEP))
FUSED_CELL = declare_cell(Cell("fused", FUSED, auto_rank=1))
NATIVE = declare_cell(Cell("native", FUSED, applies_step_weights=True, grad_req_guards=True,
                           bytes_per_layer_step=NATIVE_BYTES_PER_LAYER_STEP, block_rows=16, cpu_only=True,
                           built_on_use=True, auto_rank=0))
