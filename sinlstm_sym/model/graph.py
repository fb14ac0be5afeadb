"""The pieces of a bucket's symbol that every cell shares: the zero start state, the loss's per-step weights
and the ``sym_gen`` object a :class:`~sinlstm_sym.model.spec.ModelSpec` returns."""
import functools
from typing import Any, Callable, Optional, Tuple

import mxnet as mx

SymGenResult = Tuple[mx.sym.Symbol, Tuple[str, ...], Optional[Tuple[str, ...]]]
SymGen = Callable[[int], SymGenResult]


def zero_state(like: mx.sym.Symbol, axis: int, size: int) -> mx.sym.Symbol:
    """Zeros shaped like ``like`` but with ``size`` along ``axis`` (``like`` has size 1 there)."""
    return mx.sym.broadcast_axis(mx.sym.zeros_like(like), axis=axis, size=size)


def weigh_steps(pred: mx.sym.Symbol, length: int, step_weight: float, step_tau: float) -> mx.sym.Symbol:
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
def step_weight_values(length: int, step_weight: float, step_tau: float) -> Tuple[float, ...]:
    """The weights of :func:`weigh_steps` as the graph computes them (MXNet's own operators, so the same
    float32 values), for a cell that applies them itself."""
    with mx.cpu():
        return tuple(float(w) for w in _step_weights(mx.nd, length, step_weight, step_tau).asnumpy())


class SpecSymGen:
    """A ``sym_gen`` of :meth:`ModelSpec.sym_gen <sinlstm_sym.model.spec.ModelSpec.sym_gen>`: call it with a
    bucket key for ``(symbol, data_names, label_names)``.

    Parameters
    ----------
    build : callable
        ``build(bucket_key) -> (symbol, data_names, label_names)``.
    checkpoint_sym_gen : callable or None
        For a cell built on an operator plain MXNet lacks (the native one): the sym_gen of the same model and
        parameters on MXNet's fused ``RNN`` operator, whose symbols plain MXNet loads and which honour every
        ``grad_req``; :meth:`SafeBucketingModule.save_checkpoint
        <sinlstm_sym.model.bucketing.SafeBucketingModule.save_checkpoint>` writes those. ``None`` for cells
        built from MXNet's operators already.
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
