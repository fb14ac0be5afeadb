"""``cell='native'``: the whole LSTM stack as one C++ MXNet operator, built on first use.

The operator (``lstm_stack.cc``, MXNet's external-operator API) takes the data
``(B, L, n_in)`` and one flat parameter vector per layer in exactly the layout of
``cell='fused'`` (``lstm{i}_parameters``), and returns the last layer's hidden state at
every step, ``(B, L)``. Checkpoints, the Predictor and the Gluon weight exchange therefore
work across the two cells unchanged.

The library is compiled once per machine setup into a per-user cache (see
:mod:`sinlstm_sym.native.build`) and loaded once per process. Without a compiler, or
when the build fails, :func:`native_available` logs one warning and returns ``False``,
and :func:`~sinlstm_sym.model.cells.resolve_cell` chooses ``'fused'``.
"""
import logging
import os
import threading
from typing import Optional, Sequence, Tuple, Union

import mxnet as mx

from ..core.checks import check_condition, check_int, parse_env_int
from ..constants import INPUT_SIZE, NATIVE_THREADS_ENV, WRITES_GRADIENTS_ATTR
from ..recurrence.params import check_hidden_sizes, fused_shapes
from .build import OP_NAME, BuildError, BuildResult, build_library

logger = logging.getLogger(__name__)

__all__ = ["native_available", "load_native", "lstm_stack", "unchecked_lstm_stack", "NativeUnavailableError"]

_LOCK = threading.Lock()
_LOADED: Optional[Union[BuildResult, str]] = None  # BuildResult once loaded, the reason once failed


class NativeUnavailableError(RuntimeError):
    """The native operator cannot be used in this process (see the logged warning)."""


def load_native() -> BuildResult:
    """Build (if needed) and load the operator library; once per process.

    Raises :class:`NativeUnavailableError` with the reason when it cannot; the first
    failure is logged as one warning, later calls only raise.
    """
    global _LOADED
    with _LOCK:
        if _LOADED is None:
            try:
                result = build_library()
                mx.library.load(str(result.path), verbose=False)
                _LOADED = result
                _check_threads_setting()
            except (BuildError, OSError, mx.base.MXNetError) as err:
                _LOADED = f"{type(err).__name__}: {err}"
                logger.warning("native LSTM operator unavailable, using cell='fused' instead: %s", _LOADED)
        loaded = _LOADED
    if isinstance(loaded, str):
        raise NativeUnavailableError(loaded)
    return loaded


def _check_threads_setting() -> None:
    """Warn once when $SINLSTM_NATIVE_THREADS is set but not a positive integer (the operator then uses its
    default, min(2, hardware threads))."""
    value = os.environ.get(NATIVE_THREADS_ENV, "")
    if not value:
        return
    try:
        parse_env_int(NATIVE_THREADS_ENV, value, minimum=1)
    except ValueError:
        logger.warning("%s=%r is not a positive integer written with the digits 0-9: the native operator uses its "
                       "default thread count", NATIVE_THREADS_ENV, value)


def native_available() -> bool:
    """Whether the native operator is loaded (tries to build and load it the first time)."""
    try:
        load_native()
    except NativeUnavailableError:
        return False
    return True


def _declared_shape(symbol: mx.sym.Symbol) -> Optional[Tuple[int, ...]]:
    """The ``shape=`` a variable was declared with, None for a variable without one or an expression."""
    if symbol.get_children() is not None:
        return None
    text = symbol.attr("__shape__")
    return tuple(int(d) for d in text.strip("()[] ").split(",") if d.strip()) if text else None


def lstm_stack(data: mx.sym.Symbol, params: Sequence[mx.sym.Symbol], hidden_sizes: Sequence[int],
               input_size: int = INPUT_SIZE, name: str = "lstm_stack") -> mx.sym.Symbol:
    """The stacked LSTM over NTC ``data`` ``(B, L, input_size)``: the last layer's hidden state, ``(B, L)``.

    ``params``: one symbol per layer holding the fused layout (``lstm{i}_parameters``).
    Variables must be declared with their shape (``data``: at least its number of
    dimensions, ``mx.sym.var('data', shape=(0, L, 1))``; parameters: ``fused_shapes``),
    because MXNet 1.9 corrupts memory when an external operator's input has an unknown
    number of dimensions during shape inference. ``hidden_sizes`` must end with 1. Gradients honour every ``grad_req``
    (``write``, ``add``, ``null``). Raises :class:`NativeUnavailableError` if the
    operator cannot load (resolve the cell first, :func:`~sinlstm_sym.model.cells.resolve_cell`, to fall
    back instead).
    """
    hidden_sizes = check_hidden_sizes(hidden_sizes)
    input_size = check_int("input_size", input_size, minimum=1)
    check_condition(hidden_sizes[-1] == 1, f"hidden_sizes must end with 1, got {hidden_sizes!r}")
    check_condition(isinstance(data, mx.sym.Symbol), f"data must be an mx.sym.Symbol, got {type(data).__name__}",
                    TypeError)
    if data.get_children() is None:
        declared = _declared_shape(data)
        check_condition(declared is not None and len(declared) == 3 and declared[2] in (0, input_size),
                        f"data ({data.name!r}) must be declared with its shape, e.g. "
                        f"mx.sym.var({data.name!r}, shape=(0, length, {input_size})) (0 = any size), got {declared}")
    params = list(params)
    check_condition(len(params) == len(hidden_sizes),
                    f"params must hold one symbol per layer ({len(hidden_sizes)}), got {len(params)}")
    check_condition(all(isinstance(p, mx.sym.Symbol) for p in params), "params must be mx.sym.Symbol objects",
                    TypeError)
    expected = list(fused_shapes(hidden_sizes, input_size).values())
    for i, (param, shape) in enumerate(zip(params, expected)):
        if param.get_children() is None:  # a variable: its shape must be declared and right
            declared = _declared_shape(param)
            check_condition(declared == shape, f"params[{i}] ({param.name!r}) must be declared with "
                            f"shape={shape} (mx.sym.var(name, shape=...)), got {declared}")
    load_native()
    return unchecked_lstm_stack(data, params, hidden_sizes, name)


def unchecked_lstm_stack(data: mx.sym.Symbol, params: Sequence[mx.sym.Symbol], hidden_sizes: Sequence[int],
                         name: str = "lstm_stack", step_weights: Optional[Sequence[float]] = None,
                         writes_only: bool = False, last_step: bool = False) -> mx.sym.Symbol:
    """:func:`lstm_stack` without its checks, for arguments already checked (a
    :class:`~sinlstm_sym.model.spec.ModelSpec` whose cell resolved to ``'native'``, so the operator is loaded).

    ``step_weights`` (float32 values, one per step of the data's length): the output's gradient is weighed
    per step inside the operator, with the arithmetic of ``BlockGrad(pred * (1 - w)) + pred * w`` in MXNet's
    graph (the output is that sum, the prediction's gradient ``ograd * w``), in no extra graph operator.
    ``writes_only``: no identity guard in front of the inputs (they apply grad_req), so the symbol honours grad_req
    ``'write'`` and ``'null'`` only; the operator node is marked with ``WRITES_GRADIENTS_ATTR``, which
    :class:`~sinlstm_sym.model.bucketing.SafeBucketingModule` checks before binding. ``last_step``: the output
    is the last step only, ``(B, 1)``, the numbers of ``slice_axis`` on the full output."""
    op = getattr(mx.sym, OP_NAME, None)
    if op is None:
        raise NativeUnavailableError("the native operator is not loaded: resolve the cell first "
                                     "(ModelSpec.from_model, sinlstm_sym.model.cells.resolve_cell)")
    inputs = [data, *params]
    attrs = {"hidden_sizes": ",".join(str(h) for h in hidden_sizes)}
    if step_weights is not None:  # repr of a float32 value read back as a double: that value exactly
        attrs["step_weights"] = ",".join(repr(float(w)) for w in step_weights)
    if last_step:
        attrs["last_step"] = "1"
    if writes_only:
        return op(*inputs, name=name, attr={WRITES_GRADIENTS_ATTR: "1"}, **attrs)
    # The operator cannot see grad_req (MXNet's external-op API does not pass it) and always writes
    # its gradients; an identity in front of each input applies 'add' / 'null' for that input.
    inputs = [mx.sym.identity(s, name=f"{name}_in{i}") for i, s in enumerate(inputs)]
    return op(*inputs, name=name, **attrs)
