"""``fit``: train the stacked LSTM on bucketed sine windows with ``mx.mod.BucketingModule``."""
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import mxnet as mx
import numpy as np

from .bucket_checks import SafeBucketingModule, check_sym_gen
from .checks import check_choice, check_condition, check_int
from .context import ContextSpec, resolve_contexts
from .data import FEATURES, LABEL_MODES, SinBucketIter, label_shape
from .params import CELLS, DEFAULT_CELL, ParamDict, check_hidden_sizes, init_params, to_canonical, to_layout
from .symbol import SymGen, make_sym_gen

logger = logging.getLogger(__name__)



@dataclass
class LossRecord:
    """The mean L2 loss over the windows trained since the previous record."""

    epoch: int
    batch: int  # batches done in this epoch when the record was taken
    loss: float
    samples_per_sec: float
    bucket_counts: Dict[int, int] = field(default_factory=dict)


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained module, its loss history and the settings used."""

    module: mx.mod.BucketingModule
    sym_gen: SymGen
    loss_history: List[LossRecord]
    epoch_losses: List[float]
    settings: Dict[str, Any]

    @property
    def losses(self) -> List[float]:
        """The loss at each log point, in order."""
        return [r.loss for r in self.loss_history]

    def arg_params(self) -> ParamDict:
        """Trained parameters as numpy arrays in the canonical (per-gate-matrix) layout."""
        args, _ = self.module.get_params()
        return to_canonical({k: v.asnumpy() for k, v in args.items()}, self.settings["cell"],
                            self.settings["hidden_sizes"])

    def predictor(self, ctx: ContextSpec = None, **kwargs: Any) -> "Predictor":  # noqa: F821
        """A :class:`~sinlstm_sym.predictor.Predictor` on the trained parameters."""
        from .predictor import Predictor
        s = self.settings
        return Predictor(self.arg_params(), hidden_sizes=s["hidden_sizes"], label_mode=s["label_mode"],
                         feature=s["feature"], cell=s["cell"], ctx=ctx, **kwargs)


def create_optimizer(optimizer: str, optimizer_params: Optional[Mapping[str, Any]],
                     batch_size: int) -> mx.optimizer.Optimizer:
    """An MXNet optimizer by name, gradients rescaled by ``1 / batch_size`` (the loss is a batch mean)."""
    check_condition(isinstance(optimizer, str), f"optimizer must be an MXNet optimizer name such as 'adam' or "
                    f"'sgd', got {optimizer!r}", TypeError)
    if optimizer_params is None:
        optimizer_params = {}
    check_condition(isinstance(optimizer_params, Mapping) and all(isinstance(k, str) for k in optimizer_params),
                    f"optimizer_params must be a dict of keyword arguments, got {optimizer_params!r}", TypeError)
    check_condition("rescale_grad" not in optimizer_params,
                    "optimizer_params must not set rescale_grad: fit sets it to 1/batch_size")
    try:
        return mx.optimizer.create(optimizer.lower(), rescale_grad=1.0 / batch_size, **optimizer_params)
    except ValueError as err:
        raise ValueError(f"optimizer must be an MXNet optimizer name such as 'adam' or 'sgd', got {optimizer!r} "
                         f"({err})") from None
    except TypeError as err:
        raise TypeError(f"optimizer_params {dict(optimizer_params)!r} do not fit optimizer {optimizer!r}: {err}") \
            from None


def fit(buckets: Sequence[int] = range(1, 10), hidden_sizes: Sequence[int] = (10, 20, 1), batch_size: int = 300,
        num_samples: int = 300000, num_epoch: int = 1, label_mode: str = "sequence", feature: str = "time",
        cell: str = DEFAULT_CELL, optimizer: str = "adam", optimizer_params: Optional[Mapping[str, Any]] = None,
        ctx: ContextSpec = None, seed: Optional[int] = None, log_every: int = 100,
        logger: Optional[logging.Logger] = None, length_weights: Optional[Sequence[float]] = None) -> FitResult:
    """Train a stacked LSTM on sine windows of the lengths ``buckets`` with a ``BucketingModule``.

    Each epoch is ``num_samples // batch_size`` batches from a :class:`SinBucketIter`;
    the default bucket is the largest length, so no bucket re-allocates memory.
    ``seed`` fixes the windows and the initial weights (same seed, same loss trace);
    ``None`` draws one, kept in ``settings['seed']``. Progress is logged every
    ``log_every`` batches; the loss logged and recorded is the original's L2 loss,
    ``0.5 * (pred - label)^2`` averaged over windows (and steps in sequence mode).
    ``fit(buckets=[9], label_mode='last')`` is the original's fixed 9-step task.
    """
    log = logger if logger is not None else globals()["logger"]
    check_condition(isinstance(log, logging.Logger), f"logger must be a logging.Logger or None, got {log!r}",
                    TypeError)
    hidden_sizes = check_hidden_sizes(hidden_sizes)
    num_epoch = check_int("num_epoch", num_epoch, minimum=1)
    log_every = check_int("log_every", log_every, minimum=1)
    label_mode = check_choice("label_mode", label_mode, LABEL_MODES)
    feature = check_choice("feature", feature, FEATURES)
    cell = check_choice("cell", cell, CELLS)
    train_iter = SinBucketIter(buckets, batch_size=batch_size, num_samples=num_samples,
                               length_weights=length_weights, label_mode=label_mode, feature=feature, seed=seed)
    seed = train_iter.seed
    opt = create_optimizer(optimizer, optimizer_params, batch_size)
    contexts = resolve_contexts(ctx)
    sym_gen = make_sym_gen(hidden_sizes, label_mode=label_mode, cell=cell)
    settings = dict(buckets=train_iter.buckets, hidden_sizes=hidden_sizes, batch_size=batch_size,
                    num_samples=num_samples, num_epoch=num_epoch, label_mode=label_mode, feature=feature, cell=cell,
                    optimizer=optimizer, optimizer_params=dict(optimizer_params or {}),
                    ctx=[str(c) for c in contexts], seed=seed, log_every=log_every,
                    length_weights=train_iter.length_weights)

    check_sym_gen(sym_gen, train_iter.buckets, lambda key: {
        train_iter.data_name: (batch_size, key, 1), train_iter.label_name: label_shape(batch_size, key, label_mode)})
    module = SafeBucketingModule(sym_gen, default_bucket_key=train_iter.default_bucket_key, label_mode=label_mode,
                                 context=contexts)
    module.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label, for_training=True)
    initial = {k: mx.nd.array(v) for k, v in to_layout(init_params(hidden_sizes, seed), cell, hidden_sizes).items()}
    module.init_params(arg_params=initial, aux_params={}, allow_missing=False, force_init=True)
    module.init_optimizer(kvstore="local", optimizer=opt)

    log.info("training %s stacked LSTM %s on buckets %s (%d batches of %d per epoch, %s), %d epoch(s), seed %d",
             cell, list(hidden_sizes), list(train_iter.buckets), train_iter.num_batches, batch_size,
             label_mode, num_epoch, seed)
    history: List[LossRecord] = []
    epoch_losses: List[float] = []
    for epoch in range(num_epoch):
        if epoch > 0:
            train_iter.reset()
        epoch_loss = _train_epoch(module, train_iter, epoch, log_every, history, log)
        epoch_losses.append(epoch_loss)
        log.info("epoch %d done: mean loss %.6f", epoch, epoch_loss)
    return FitResult(module=module, sym_gen=sym_gen, loss_history=history, epoch_losses=epoch_losses,
                     settings=settings)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; parameters after that batch are not trustworthy."""


def _first_non_finite(losses: np.ndarray, keys: List[int], first_batch: int, epoch: int) -> None:
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        i = int(bad[0])
        raise NonFiniteLossError(f"loss became {losses[i]} at epoch {epoch}, batch {first_batch + i} "
                                 f"(bucket_key {keys[i]}); training stopped. Lower the learning rate "
                                 "(optimizer_params) or check the data")


def _train_epoch(module: mx.mod.BucketingModule, train_iter: SinBucketIter, epoch: int, log_every: int,
                 history: List[LossRecord], log: logging.Logger) -> float:
    """One pass over ``train_iter``; per-batch losses stay on the device until a log point."""
    total = train_iter.num_batches
    pending: List[mx.nd.NDArray] = []  # summed loss of each batch since the last log point
    keys: List[int] = []
    epoch_sum, epoch_windows, windows = 0.0, 0, 0
    tic = time.perf_counter()
    for nbatch, batch in enumerate(train_iter, start=1):
        module.forward(batch, is_train=True)
        module.backward()
        module.update()
        pending.append(module.get_outputs()[0].sum())
        keys.append(batch.bucket_key)
        windows += batch.data[0].shape[0]
        if nbatch % log_every == 0 or nbatch == total:
            losses = mx.nd.concat(*pending, dim=0).asnumpy().astype(np.float64)
            _first_non_finite(losses / batch.data[0].shape[0], keys, nbatch - len(keys) + 1, epoch)
            value = float(losses.sum()) / windows
            elapsed = time.perf_counter() - tic
            record = LossRecord(epoch=epoch, batch=nbatch, loss=value, samples_per_sec=windows / max(elapsed, 1e-9),
                                bucket_counts=dict(sorted(Counter(keys).items())))
            history.append(record)
            log.info("epoch %d batch %d/%d buckets %s loss %.6f %.0f samples/s", epoch, nbatch, total,
                     record.bucket_counts, value, record.samples_per_sec)
            epoch_sum += float(losses.sum())
            epoch_windows += windows
            pending, keys, windows = [], [], 0
            tic = time.perf_counter()
    return epoch_sum / epoch_windows if epoch_windows else float("nan")
