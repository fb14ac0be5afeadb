"""``sym_gen`` for ``BucketingModule``: a stacked LSTM unrolled to the bucket's length.

The symbol is a pure function of the bucket key and always has the same parameter
names and shapes (see :mod:`sinlstm_sym.recurrence.params`), so every bucket shares one set. Every
parameter variable carries its own initializer (:class:`~sinlstm_sym.recurrence.params.StackInit`),
so ``module.init_params(<any MXNet initializer>)`` gives the library's seeded weights.

The only output is the prediction, ``pred_output``: ``(B, L)`` (every step) or ``(B, 1)``
(last step). With a loss it comes from ``LinearRegressionOutput``, whose gradient is
``(pred - label) / num_outputs_per_window``: the gradient of the per-window L2 loss
``0.5 * mean_over_steps((pred - label)^2)`` (as ``gluon.loss.L2Loss``). So MXNet's own
``mod.fit(..., eval_metric='mse')`` works, and reports twice that loss.
"""
import functools
from dataclasses import replace
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import mxnet as mx

from ..core.checks import check_bool, check_condition, check_int, check_name
from ..config.fit_config import ModelConfig
from ..constants import (DATA_NAME, DEFAULT_CELL, DEFAULT_FORGET_BIAS, DEFAULT_HIDDEN_SIZES, DEFAULT_INIT,
                        DEFAULT_LABEL_MODE, DEFAULT_STEP_TAU, INPUT_SIZE, LABEL_NAME, PRED_NAME)
from ..native import stack_operator
from ..recurrence.params import PARTS, StackInit, fused_shapes, layer_prefix
from .batches import check_key
from .spec import ModelSpec

SymGenResult = Tuple[mx.sym.Symbol, Tuple[str, ...], Optional[Tuple[str, ...]]]
SymGen = Callable[[int], SymGenResult]


def _zero_state(like: mx.sym.Symbol, axis: int, size: int) -> mx.sym.Symbol:
    """Zeros shaped like ``like`` but with ``size`` along ``axis`` (``like`` has size 1 there)."""
    return mx.sym.broadcast_axis(mx.sym.zeros_like(like), axis=axis, size=size)


def _unrolled_stack(data: mx.sym.Symbol, length: int, hidden_sizes: Sequence[int],
                    init: StackInit) -> mx.sym.Symbol:
    """NTC data -> (B, L, h_last) through ``mx.rnn.LSTMCell``s."""
    stack = mx.rnn.SequentialRNNCell()
    for i, h in enumerate(hidden_sizes):
        params = mx.rnn.RNNParams(layer_prefix(i))
        for part in PARTS:  # created first, so the cell takes these variables (with our initializer)
            params.get(part, init=init)
        stack.add(mx.rnn.LSTMCell(num_hidden=h, prefix=layer_prefix(i), params=params))
    first = mx.sym.reshape(mx.sym.slice_axis(data, axis=1, begin=0, end=1), shape=(0, -1))  # (B, 1)
    begin = [_zero_state(first, 1, h) for h in hidden_sizes for _ in ("h", "c")]
    outputs, _ = stack.unroll(length, inputs=data, begin_state=begin, layout="NTC", merge_outputs=True)
    return outputs


def _fused_stack(data: mx.sym.Symbol, hidden_sizes: Sequence[int], init: StackInit) -> mx.sym.Symbol:
    """NTC data -> (L, B, h_last) through one fused ``mx.sym.RNN`` per layer."""
    x = mx.sym.swapaxes(data, dim1=0, dim2=1)  # TNC
    first = mx.sym.slice_axis(x, axis=0, begin=0, end=1)  # (1, B, 1)
    for i, h in enumerate(hidden_sizes):
        p = layer_prefix(i)
        x = mx.sym.RNN(data=x, parameters=mx.sym.var(p + "parameters", init=init), state=_zero_state(first, 2, h),
                       state_cell=_zero_state(first, 2, h), state_size=h, num_layers=1, mode="lstm",
                       name=p + "rnn")
    return x


def _weigh_steps(pred: mx.sym.Symbol, length: int, step_weight: float, step_tau: float) -> mx.sym.Symbol:
    """``pred`` (B, L) unchanged forward, its gradient multiplied by ``w_k`` per step:
    ``BlockGrad(pred * (1 - w)) + pred * w``."""
    w = mx.sym.reshape(_step_weights(mx.sym, length, step_weight, step_tau), shape=(1, length))
    return mx.sym.BlockGrad(mx.sym.broadcast_mul(pred, 1.0 - w)) + mx.sym.broadcast_mul(pred, w)


def _step_weights(api: Any, length: int, step_weight: float, step_tau: float) -> Any:
    """``w_k = 1 + step_weight * exp(-k / step_tau)``, ``k = 0 .. length - 1`` in float32, through ``api``
    (``mx.sym``: a constant of the bucket's graph, no new argument; ``mx.nd``: the same operators run once)."""
    k = api.arange(start=0, stop=length, dtype="float32")
    return 1.0 + step_weight * api.exp(k * (-1.0 / step_tau))


@functools.lru_cache(maxsize=256)
def native_step_weights(length: int, step_weight: float, step_tau: float) -> Tuple[float, ...]:
    """The weights of :func:`_weigh_steps` as the graph computes them (MXNet's own operators, so the same
    float32 values), for the native operator, which applies them itself."""
    with mx.cpu():
        return tuple(float(w) for w in _step_weights(mx.nd, length, step_weight, step_tau).asnumpy())


def make_sym_gen(hidden_sizes: Sequence[int] = DEFAULT_HIDDEN_SIZES, label_mode: str = DEFAULT_LABEL_MODE,
                 cell: str = DEFAULT_CELL, with_loss: bool = True, data_name: str = DATA_NAME,
                 label_name: str = LABEL_NAME, init_seed: int = 0,
                 forget_bias: float = DEFAULT_FORGET_BIAS, step_weight: float = 0.0,
                 step_tau: float = DEFAULT_STEP_TAU, init: str = DEFAULT_INIT) -> SymGen:
    """Return ``sym_gen(bucket_key) -> (symbol, data_names, label_names)`` for ``BucketingModule``.

    The only output is the prediction, ``pred_output`` (``LinearRegressionOutput``: the L2 loss's
    gradient); every bucket shares one parameter set, each with its own initializer.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (10, 20, 1)
        One LSTM layer per entry; the last layer's hidden state is the prediction, so the last
        size must be 1.
    label_mode : {'sequence', 'last'}
        ``'sequence'``: a label at every step, output ``(B, L)``; ``'last'``: output ``(B, 1)``.
    cell : {'auto', 'native', 'fused', 'unrolled'}
        ``'unrolled'``: ``mx.rnn.LSTMCell`` per step; ``'fused'``: one ``mx.sym.RNN`` per layer;
        ``'native'``: one C++ operator for the stack; ``'auto'``: native where it loads, else fused.
    with_loss : bool, default True
        ``False`` builds the inference symbol (no label input).
    data_name, label_name : str
        Names of the data and label inputs.
    init_seed : int, default 0
        Seed of the initial weights.
    forget_bias : float, default 0.0
        Initial forget-gate bias.
    step_weight : float, default 0.0
        With ``'sequence'``, step ``k``'s loss weighs ``1 + step_weight * exp(-(k - 1) / step_tau)``;
        0 (``fit``'s is 4) keeps the plain L2 gradient that MXNet's ``'mse'`` metric expects.
    step_tau : float, default 1.0
        How many steps the extra weight lasts.
    init : {'library', 'gluon'}
        Xavier per gate block, or Gluon's default ``U[-0.07, 0.07]``.

    Returns
    -------
    callable
        ``sym_gen(bucket_key)`` returning ``(symbol, (data_name,), (label_name,))``, by default
        ``('data',)`` and ``('label',)``, for any int key >= 1.

    Raises
    ------
    ValueError, TypeError
        An argument out of range or of the wrong kind, naming it.

    Examples
    --------
    >>> from sinlstm_sym import make_sym_gen
    >>> sym, data_names, label_names = make_sym_gen(cell="fused")(5)
    >>> sym.list_outputs(), data_names
    (['pred_output'], ('data',))
    """
    given: Dict[str, Any] = dict(hidden_sizes=hidden_sizes, label_mode=label_mode, cell=cell,
                                 forget_bias=forget_bias, step_weight=step_weight, step_tau=step_tau, init=init)
    model = ModelConfig(**given)  # checks them (and normalises hidden_sizes to a tuple)
    return spec_sym_gen(ModelSpec.from_model(model), with_loss=check_bool("with_loss", with_loss),
                        data_name=data_name, label_name=label_name,
                        init_seed=check_int("init_seed", init_seed, minimum=0))


def _unrolled_prediction(spec: ModelSpec, data_name: str, length: int, init: StackInit) -> mx.sym.Symbol:
    data = mx.sym.var(data_name)
    seq = _unrolled_stack(data, length, spec.hidden_sizes, init)  # (B, L, h)
    steps = seq if spec.label_mode == "sequence" else mx.sym.slice_axis(seq, axis=1, begin=length - 1, end=length)
    return mx.sym.reshape(steps, shape=(0, -1))


def _native_prediction(spec: ModelSpec, data_name: str, length: int, init: StackInit,
                       weighted: bool = False, writes_only: bool = False) -> mx.sym.Symbol:
    """``weighted``: the operator applies the loss' step weights itself (the training symbol's
    :func:`_weigh_steps`, same numbers, no extra operators). ``writes_only``: no grad_req guards (see
    :func:`~sinlstm_sym.native.stack_operator`). With ``label_mode='last'`` the operator returns the last
    step itself."""
    # external operators need their input shapes up front (see sinlstm_sym.native.lstm_stack)
    data = mx.sym.var(data_name, shape=(0, length, INPUT_SIZE))
    params = [mx.sym.var(name, shape=shape, init=init) for name, shape in fused_shapes(spec.hidden_sizes).items()]
    weights = native_step_weights(length, spec.step_weight, spec.step_tau) if weighted else None
    return stack_operator(data, params, spec.hidden_sizes, step_weights=weights, writes_only=writes_only,
                          last_step=spec.label_mode == "last")  # (B, L) or (B, 1)


def _fused_prediction(spec: ModelSpec, data_name: str, length: int, init: StackInit) -> mx.sym.Symbol:
    seq = _fused_stack(mx.sym.var(data_name), spec.hidden_sizes, init)  # (L, B, h)
    if spec.label_mode == "sequence":
        return mx.sym.reshape(mx.sym.swapaxes(seq, dim1=0, dim2=1), shape=(0, -1))
    return mx.sym.reshape(mx.sym.slice_axis(seq, axis=0, begin=length - 1, end=length), shape=(-3, -1))


def _weighs(spec: ModelSpec) -> bool:
    """Whether the loss weighs steps (``step_weight`` > 0 and a label at every step)."""
    return bool(spec.step_weight) and spec.label_mode == "sequence"


# The prediction ``(B, L)`` or ``(B, 1)`` (by label mode) of a resolved cell's stack for windows of one length.
_PREDICTIONS: Dict[str, Callable[[ModelSpec, str, int, StackInit], mx.sym.Symbol]] = {
    "unrolled": _unrolled_prediction, "native": _native_prediction, "fused": _fused_prediction}
# The cells whose prediction applies the step weights itself (``weighted=True``) and can drop its grad_req
# guards (``writes_only=True``).
_SELF_WEIGHING_CELLS = ("native",)
_GUARDED_CELLS = ("native",)


def spec_sym_gen(spec: ModelSpec, with_loss: bool = True, data_name: str = DATA_NAME, label_name: str = LABEL_NAME,
                 init_seed: int = 0, writes_only: bool = False) -> SymGen:
    """:func:`make_sym_gen` for a :class:`~sinlstm_sym.model.spec.ModelSpec` (its cell resolved): the returned
    ``sym_gen`` only builds symbols (no check but the bucket key's, no cell resolution, no build).

    ``writes_only=True``: the native cell's operator without the identity guards that apply grad_req (7
    fewer copies per batch); its symbols honour grad_req 'write' and 'null' only, and
    :class:`~sinlstm_sym.model.bucketing.SafeBucketingModule` refuses any other before binding. For
    modules bound with 'write' (as ``fit`` binds); the default keeps every grad_req honoured."""
    check_condition(isinstance(spec, ModelSpec), f"spec must be a ModelSpec, got {type(spec).__name__}", TypeError)
    data_name = check_name("data_name", data_name)
    label_name = check_name("label_name", label_name)
    check_condition(data_name != label_name, f"data_name and label_name must differ, both are {data_name!r}")
    check_condition(spec.cell in _PREDICTIONS, f"spec.cell must be a resolved cell, one of {list(_PREDICTIONS)} "
                    f"(ModelSpec.from_model resolves it), got {spec.cell!r}")
    initializer = spec.initializer(init_seed)
    weigh = _weighs(spec) and with_loss
    options: Dict[str, bool] = {}
    if weigh and spec.cell in _SELF_WEIGHING_CELLS:
        options["weighted"], weigh = True, False
    if check_bool("writes_only", writes_only) and spec.cell in _GUARDED_CELLS:
        options["writes_only"] = True
    predict = functools.partial(_PREDICTIONS[spec.cell], **options)  # the cell chosen once
    # MXNet's own operators with the same parameters: what a module's save_checkpoint writes
    portable = (spec_sym_gen(replace(spec, cell="fused"), with_loss=with_loss, data_name=data_name,
                             label_name=label_name, init_seed=init_seed) if spec.cell == "native" else None)

    def sym_gen(bucket_key: int) -> SymGenResult:
        length = check_key(bucket_key, "sym_gen")
        pred = predict(spec, data_name, length, initializer)
        if not with_loss:
            return mx.sym.identity(pred, name=PRED_NAME), (data_name,), None
        if weigh:
            pred = _weigh_steps(pred, length, spec.step_weight, spec.step_tau)
        head = mx.sym.LinearRegressionOutput(data=pred, label=mx.sym.var(label_name), name=PRED_NAME)
        return head, (data_name,), (label_name,)

    return SpecSymGen(sym_gen, portable)


class SpecSymGen:
    """A ``sym_gen`` of :func:`spec_sym_gen`: call it with a bucket key for ``(symbol, data_names, label_names)``.

    Parameters
    ----------
    build : callable
        ``build(bucket_key) -> (symbol, data_names, label_names)``.
    checkpoint_sym_gen : callable or None
        For the native cell: the sym_gen of the same model and parameters on MXNet's fused ``RNN``
        operator, whose symbols plain MXNet loads and which honour every ``grad_req``;
        :meth:`SafeBucketingModule.save_checkpoint <sinlstm_sym.model.bucketing.SafeBucketingModule.save_checkpoint>`
        writes those. ``None`` for cells built from MXNet's operators already.
    """

    def __init__(self, build: Callable[[int], SymGenResult], checkpoint_sym_gen: Optional[SymGen]) -> None:
        self._build = build
        self.checkpoint_sym_gen = checkpoint_sym_gen

    def __call__(self, bucket_key: int) -> SymGenResult:
        """The symbol of bucket ``bucket_key`` (the window length) with its data and label names.

        Parameters
        ----------
        bucket_key : int
            The window length, >= 1.

        Returns
        -------
        tuple
            ``(symbol, data_names, label_names)``; ``label_names`` is ``None`` without a loss.
        """
        return self._build(bucket_key)
