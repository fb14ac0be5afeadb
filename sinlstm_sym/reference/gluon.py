"""The original fixed 9-step Gluon setup, re-implemented beside the symbolic path.

A ``gluon.rnn.SequentialRNNCell`` of ``gluon.rnn.LSTMCell``s (hidden sizes 10, 20, 1),
unrolled over the window, ``gluon.loss.L2Loss`` on the last output, ``Trainer`` with
Adam or SGD, mean loss logged every ``log_every`` batches. It trains on the same
:class:`SinBucketIter` (``buckets=[9], label_mode='last'``) and can exchange weights
with a trained ``BucketingModule`` (canonical layout of :mod:`sinlstm_sym.recurrence.params`), so
both paths can be compared on the same data and the same weights.
"""
import logging
import time
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..core.checks import check_choice, check_condition, check_int
from ..core.context import ContextSpec, resolve_contexts
from ..constants import (DEFAULT_HIDDEN_SIZES, GLUON_REFERENCE_OPTIMIZERS, LABEL_MODES, NOTE_LOG_EVERY,
                        ORIGINAL_BATCH_SIZE, ORIGINAL_BUCKETS, ORIGINAL_FORGET_BIAS, ORIGINAL_INIT,
                        ORIGINAL_NUM_SAMPLES, ORIGINAL_T_RANGE)
from ..data.windows import SinBucketIter
from ..core.heartbeat import Heartbeat
from ..recurrence.params import ParamDict, check_hidden_sizes, init_params, unpacked_shapes
from ..train.loop import LossRecord

logger = logging.getLogger(__name__)

_PARTS = ("i2h_weight", "i2h_bias", "h2h_weight", "h2h_bias")


def build_gluon_model(hidden_sizes: Sequence[int] = DEFAULT_HIDDEN_SIZES) -> gluon.rnn.SequentialRNNCell:
    """The original's model: one ``gluon.rnn.LSTMCell`` per hidden size in a ``SequentialRNNCell``."""
    hidden_sizes = check_hidden_sizes(hidden_sizes)
    net = gluon.rnn.SequentialRNNCell()
    n_in = 1
    with net.name_scope():
        for h in hidden_sizes:
            net.add(gluon.rnn.LSTMCell(h, input_size=n_in))
            n_in = h
    return net


def _cells(net: gluon.rnn.SequentialRNNCell) -> List[gluon.rnn.LSTMCell]:
    return [net[i] for i in range(len(net))]


def copy_params_to_gluon(params: Mapping[str, np.ndarray], net: gluon.rnn.SequentialRNNCell,
                         ctx: ContextSpec = None) -> None:
    """Load canonical-layout ``params`` (e.g. ``FitResult.arg_params()``) into ``net`` on ``ctx``."""
    cells = _cells(net)
    hidden_sizes = tuple(c.h2h_weight.shape[1] for c in cells)
    expected = unpacked_shapes(hidden_sizes)
    missing = sorted(set(expected) - set(params))
    check_condition(not missing, f"params lacks {missing} for a Gluon model with hidden sizes {list(hidden_sizes)}")
    contexts = resolve_contexts(ctx)
    for i, cell in enumerate(cells):
        for part in _PARTS:
            value = np.asarray(params[f"lstm{i}_{part}"], dtype=np.float32)
            check_condition(value.shape == expected[f"lstm{i}_{part}"],
                            f"params['lstm{i}_{part}'] has shape {value.shape}, expected {expected[f'lstm{i}_{part}']}")
            getattr(cell, part).initialize(init=mx.init.Constant(value), ctx=contexts, force_reinit=True)


def params_from_gluon(net: gluon.rnn.SequentialRNNCell) -> ParamDict:
    """``net``'s weights in the canonical layout, loadable into the symbolic path."""
    return {f"lstm{i}_{part}": getattr(cell, part).data().asnumpy()
            for i, cell in enumerate(_cells(net)) for part in _PARTS}


def gluon_predict(net: gluon.rnn.SequentialRNNCell, windows: np.ndarray, ctx: ContextSpec = None) -> np.ndarray:
    """Outputs of ``net`` at every step, ``(N, L)``, for inputs ``(N, L)`` or ``(N, L, 1)``."""
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    context = resolve_contexts(ctx)[0]
    out, _ = net.unroll(x.shape[1], mx.nd.array(x, ctx=context), layout="NTC", merge_outputs=True)
    return out.asnumpy()[:, :, 0]


@dataclass
class GluonFitResult:
    """The trained Gluon model and its loss at each log point."""

    net: gluon.rnn.SequentialRNNCell
    loss_history: List[LossRecord]

    @property
    def losses(self) -> List[float]:
        return [r.loss for r in self.loss_history]


def check_reference_settings(optimizer: str, ctx: ContextSpec) -> List[mx.Context]:
    """The one device the reference trains on; ``ValueError`` naming what it does not support."""
    check_condition(isinstance(optimizer, str) and optimizer.lower() in GLUON_REFERENCE_OPTIMIZERS,
                    f"the Gluon reference trains with optimizer {' or '.join(GLUON_REFERENCE_OPTIMIZERS)}, "
                    f"got {optimizer!r}")
    contexts = resolve_contexts(ctx)
    check_condition(len(contexts) == 1, f"the Gluon reference trains on one device (ctx), got "
                    f"{[str(c) for c in contexts]}")
    return contexts


def _train_batch(net: gluon.rnn.SequentialRNNCell, trainer: gluon.Trainer, loss_fn: gluon.loss.Loss,
                 batch: mx.io.DataBatch, context: mx.Context, label_mode: str) -> mx.nd.NDArray:
    """One update of ``net`` on ``batch``; returns the loss per window."""
    data = batch.data[0].as_in_context(context)
    label = batch.label[0].as_in_context(context)
    with autograd.record():
        out, _ = net.unroll(batch.bucket_key, data, layout="NTC", merge_outputs=True)
        pred = out[:, -1, :] if label_mode == "last" else out.reshape((0, -1))
        loss = loss_fn(pred, label)
    loss.backward()
    trainer.step(batch.data[0].shape[0])
    return loss


def train_gluon_reference(buckets: Sequence[int] = ORIGINAL_BUCKETS,
                          hidden_sizes: Sequence[int] = DEFAULT_HIDDEN_SIZES, batch_size: int = ORIGINAL_BATCH_SIZE,
                          num_samples: int = ORIGINAL_NUM_SAMPLES, num_epoch: int = 1,
                          label_mode: str = "last", optimizer: str = "adam",
                          optimizer_params: Optional[Mapping[str, Any]] = None, ctx: ContextSpec = None,
                          seed: Optional[int] = None, log_every: int = NOTE_LOG_EVERY,
                          logger: Optional[logging.Logger] = None,
                          forget_bias: float = ORIGINAL_FORGET_BIAS, init: str = ORIGINAL_INIT) -> GluonFitResult:
    """Train the original Gluon model on :class:`SinBucketIter` windows (default: fixed 9 steps, last label,
    t0 ~ U[0, 1), Gluon's default initial weights).

    With the same ``seed`` it sees the same batches and starts from the same weights (``init``,
    ``forget_bias``: :func:`~sinlstm_sym.recurrence.params.init_params`) as :func:`sinlstm_sym.fit` on
    :meth:`FitConfig.original` settings (constant rate, no step weights), so the two loss traces can be
    set side by side.
    """
    log = logger if logger is not None else globals()["logger"]
    hidden_sizes = check_hidden_sizes(hidden_sizes)
    num_epoch = check_int("num_epoch", num_epoch, minimum=1)
    log_every = check_int("log_every", log_every, minimum=1)
    label_mode = check_choice("label_mode", label_mode, LABEL_MODES)
    check_choice("optimizer", optimizer, GLUON_REFERENCE_OPTIMIZERS)
    context = check_reference_settings(optimizer, ctx)[0]
    train_iter = SinBucketIter(buckets, batch_size=batch_size, num_samples=num_samples, label_mode=label_mode,
                               t_low=ORIGINAL_T_RANGE[0], t_high=ORIGINAL_T_RANGE[1], seed=seed)
    net = build_gluon_model(hidden_sizes)
    initial = init_params(hidden_sizes, train_iter.seed, forget_bias=forget_bias, init=init)
    copy_params_to_gluon(initial, net, ctx=context)
    trainer = gluon.Trainer(net.collect_params(), optimizer, dict(optimizer_params or {}))
    loss_fn = gluon.loss.L2Loss()
    history: List[LossRecord] = []
    log.info("gluon reference: %d epoch(s) of %d batches of %d, log every %d", num_epoch, train_iter.num_batches,
             batch_size, log_every)
    heartbeat = Heartbeat(log)
    for epoch in range(num_epoch):
        if epoch > 0:
            train_iter.reset()
        total, windows, tic = None, 0, time.perf_counter()
        for nbatch, batch in enumerate(train_iter, start=1):
            loss = _train_batch(net, trainer, loss_fn, batch, context, label_mode)
            total = loss.sum() if total is None else total + loss.sum()
            windows += batch.data[0].shape[0]
            if nbatch % log_every == 0 or nbatch == train_iter.num_batches:
                value = float(total.asscalar()) / windows
                rate = windows / max(time.perf_counter() - tic, 1e-9)
                history.append(LossRecord(epoch=epoch, batch=nbatch, loss=value, samples_per_sec=rate))
                log.info("gluon reference: epoch %d batch %d loss %.6f %.0f samples/s", epoch, nbatch, value, rate)
                total, windows, tic = None, 0, time.perf_counter()
            else:
                heartbeat.beat("gluon reference: epoch %d batch %d/%d", epoch, nbatch, train_iter.num_batches)
    return GluonFitResult(net=net, loss_history=history)
