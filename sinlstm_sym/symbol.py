"""``sym_gen`` for ``BucketingModule``: a stacked LSTM unrolled to the bucket's length.

The symbol is a pure function of the bucket key and always has the same parameter
names and shapes (see :mod:`sinlstm_sym.params`), so every bucket shares one set.
Outputs, with loss: ``[loss (B,), pred]`` where ``loss`` is the per-window L2 loss
``0.5 * mean_over_steps((pred - label)^2)`` (as ``gluon.loss.L2Loss``) and ``pred``
is ``(B, 1)`` (last step) or ``(B, L)`` (every step). Without loss: ``pred`` only.
"""
from typing import Callable, Optional, Sequence, Tuple

import mxnet as mx

from .bucket_checks import check_key
from .checks import check_bool, check_choice, check_condition, check_name
from .data import LABEL_MODES
from .native import lstm_stack, resolve_cell
from .params import CELLS, DEFAULT_CELL, INPUT_SIZE, check_hidden_sizes, fused_shapes, layer_prefix

SymGenResult = Tuple[mx.sym.Symbol, Tuple[str, ...], Optional[Tuple[str, ...]]]
SymGen = Callable[[int], SymGenResult]


def _zero_state(like: mx.sym.Symbol, axis: int, size: int) -> mx.sym.Symbol:
    """Zeros shaped like ``like`` but with ``size`` along ``axis`` (``like`` has size 1 there)."""
    return mx.sym.broadcast_axis(mx.sym.zeros_like(like), axis=axis, size=size)


def _unrolled_stack(data: mx.sym.Symbol, length: int, hidden_sizes: Sequence[int]) -> mx.sym.Symbol:
    """NTC data -> (B, L, h_last) through ``mx.rnn.LSTMCell``s."""
    stack = mx.rnn.SequentialRNNCell()
    for i, h in enumerate(hidden_sizes):
        stack.add(mx.rnn.LSTMCell(num_hidden=h, prefix=layer_prefix(i)))
    first = mx.sym.reshape(mx.sym.slice_axis(data, axis=1, begin=0, end=1), shape=(0, -1))  # (B, 1)
    begin = [_zero_state(first, 1, h) for h in hidden_sizes for _ in ("h", "c")]
    outputs, _ = stack.unroll(length, inputs=data, begin_state=begin, layout="NTC", merge_outputs=True)
    return outputs


def _fused_stack(data: mx.sym.Symbol, hidden_sizes: Sequence[int]) -> mx.sym.Symbol:
    """NTC data -> (L, B, h_last) through one fused ``mx.sym.RNN`` per layer."""
    x = mx.sym.swapaxes(data, dim1=0, dim2=1)  # TNC
    first = mx.sym.slice_axis(x, axis=0, begin=0, end=1)  # (1, B, 1)
    for i, h in enumerate(hidden_sizes):
        p = layer_prefix(i)
        x = mx.sym.RNN(data=x, parameters=mx.sym.var(p + "parameters"), state=_zero_state(first, 2, h),
                       state_cell=_zero_state(first, 2, h), state_size=h, num_layers=1, mode="lstm",
                       name=p + "rnn")
    return x


def make_sym_gen(hidden_sizes: Sequence[int] = (10, 20, 1), label_mode: str = "last", cell: str = DEFAULT_CELL,
                 with_loss: bool = True, data_name: str = "data", label_name: str = "label") -> SymGen:
    """Return ``sym_gen(bucket_key) -> (symbol, data_names, label_names)`` for ``BucketingModule``.

    ``hidden_sizes``: one LSTM layer per entry; the last layer's hidden state is the
    prediction, so the last size must be 1. ``cell``: ``'unrolled'``
    (``mx.rnn.LSTMCell`` per step), ``'fused'`` (one ``mx.sym.RNN`` per layer),
    ``'native'`` (one C++ operator for the stack, :mod:`sinlstm_sym.native`; ``'fused'``
    where it cannot load) or ``'auto'`` (``'native'`` where it loads, else ``'fused'``).
    ``with_loss=False`` builds the inference symbol (``pred`` only, no label).
    """
    hidden_sizes = check_hidden_sizes(hidden_sizes)
    label_mode = check_choice("label_mode", label_mode, LABEL_MODES)
    cell = check_choice("cell", cell, CELLS)
    with_loss = check_bool("with_loss", with_loss)
    data_name = check_name("data_name", data_name)
    label_name = check_name("label_name", label_name)
    check_condition(data_name != label_name, f"data_name and label_name must differ, both are {data_name!r}")
    check_condition(hidden_sizes[-1] == 1, "hidden_sizes must end with 1: the last layer's hidden state is the "
                    f"prediction of one value per step, got {hidden_sizes!r}")
    cell = resolve_cell(cell)  # 'native' / 'auto' -> 'native' or 'fused' (same parameters)

    def sym_gen(bucket_key: int) -> SymGenResult:
        length = check_key(bucket_key, "sym_gen")
        data = mx.sym.var(data_name)
        if cell == "unrolled":
            seq = _unrolled_stack(data, length, hidden_sizes)  # (B, L, h)
            steps = seq if label_mode == "sequence" else mx.sym.slice_axis(seq, axis=1, begin=length - 1, end=length)
            pred = mx.sym.reshape(steps, shape=(0, -1))
        elif cell == "native":
            # external operators need their input shapes up front (see sinlstm_sym.native.lstm_stack)
            data = mx.sym.var(data_name, shape=(0, length, INPUT_SIZE))
            params = [mx.sym.var(name, shape=shape) for name, shape in fused_shapes(hidden_sizes).items()]
            seq = lstm_stack(data, params, hidden_sizes)  # (B, L)
            pred = seq if label_mode == "sequence" else mx.sym.slice_axis(seq, axis=1, begin=length - 1, end=length)
        else:
            seq = _fused_stack(data, hidden_sizes)  # (L, B, h)
            if label_mode == "sequence":
                pred = mx.sym.reshape(mx.sym.swapaxes(seq, dim1=0, dim2=1), shape=(0, -1))
            else:
                pred = mx.sym.reshape(mx.sym.slice_axis(seq, axis=0, begin=length - 1, end=length), shape=(-3, -1))
        if not with_loss:
            return mx.sym.identity(pred, name="pred"), (data_name,), None
        label = mx.sym.var(label_name)
        per_window = 0.5 * mx.sym.mean(mx.sym.square(pred - label), axis=1)
        loss = mx.sym.MakeLoss(per_window, name="loss")
        return mx.sym.Group([loss, mx.sym.BlockGrad(pred, name="pred")]), (data_name,), (label_name,)

    return sym_gen
