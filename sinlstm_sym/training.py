"""``fit``: train the stacked LSTM on bucketed sine windows with ``mx.mod.BucketingModule``."""
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import mxnet as mx
import numpy as np

from .bucket_checks import SafeBucketingModule, check_sym_gen
from .checkpoint import check_checkpointable_optimizer, load_checkpoint, save_checkpoint
from .checks import check_bool, check_choice, check_condition, check_int
from .context import ContextSpec, resolve_contexts
from .launch import install_worker_excepthook
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


class _WorkerLog(logging.LoggerAdapter):
    """Prefix every message with the worker's rank in distributed training."""

    def process(self, msg: Any, kwargs: Any) -> Any:
        return f"[worker {self.extra['rank']}/{self.extra['num_workers']}] {msg}", kwargs


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; parameters after that batch are not trustworthy."""


@dataclass
class Progress:
    """Where training stands; a checkpoint stores it so that a resumed run continues exactly."""

    epoch: int = 0  # current epoch
    batch: int = 0  # batches done in the current epoch
    global_batch: int = 0
    history: List[LossRecord] = field(default_factory=list)
    epoch_losses: List[float] = field(default_factory=list)
    window_loss: float = 0.0  # loss summed over windows since the last log point (flushed part)
    window_windows: int = 0
    window_keys: List[int] = field(default_factory=list)
    epoch_loss: float = 0.0  # loss summed over the current epoch's windows (flushed part)
    epoch_windows: int = 0

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: Dict[str, Any]) -> "Progress":
        payload = dict(payload)
        payload["history"] = [LossRecord(**{**r, "bucket_counts": {int(k): v for k, v in r["bucket_counts"].items()}})
                              for r in payload["history"]]
        return cls(**payload)


def _json_default(value: Any) -> Any:
    if isinstance(value, mx.lr_scheduler.LRScheduler):  # its settings (and state: call before training moves it)
        return {"lr_scheduler": type(value).__name__, **vars(value)}
    return repr(value)


def _json_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads(json.dumps(settings, default=_json_default))


# Settings a resumed run may change: they do not alter the numbers of the training.
_RESUMABLE_CHANGES = ("num_epoch", "ctx", "kvstore")
KVSTORES = ("local", "device", "dist_sync", "dist_async")


def _pull_final_params(module: mx.mod.BucketingModule, kv: mx.kv.KVStore) -> None:
    """After ``dist_async`` training: wait for every worker's last push, then pull the servers' weights."""
    kv._barrier()  # noqa: SLF001 - MXNet 1.9.1 has no public barrier
    arg_params, aux_params = module.get_params()
    for name, value in arg_params.items():
        kv.pull(name, out=value)
    module.set_params(arg_params, aux_params)


class _Trainer:
    """The training loop of :func:`fit`: batches, loss bookkeeping, log points, checkpoints."""

    def __init__(self, module: SafeBucketingModule, train_iter: SinBucketIter, optimizer: mx.optimizer.Optimizer,
                 settings: Dict[str, Any], progress: Progress, log: logging.Logger,
                 checkpoint: Optional[Path], checkpoint_every: Optional[int]) -> None:
        self.module, self.train_iter, self.optimizer = module, train_iter, optimizer
        self.settings, self.progress, self.log = settings, progress, log
        self.settings_json = _json_settings(settings)  # now, before training moves the lr scheduler's state
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        self.pending: List[mx.nd.NDArray] = []  # per-batch loss sums not yet read from the device
        self.pending_keys: List[int] = []

    def run(self, num_epoch: int) -> None:
        p = self.progress
        while p.epoch < num_epoch:
            self.train_iter.set_epoch(p.epoch, p.batch)
            self._epoch()
            p.epoch_losses.append(p.epoch_loss / p.epoch_windows if p.epoch_windows else float("nan"))
            self.log.info("epoch %d done: mean loss %.6f", p.epoch, p.epoch_losses[-1])
            p.epoch, p.batch, p.epoch_loss, p.epoch_windows = p.epoch + 1, 0, 0.0, 0
            self._save()

    def _epoch(self) -> None:
        p, total = self.progress, self.train_iter.num_batches
        self.tic, self.tic_windows = time.perf_counter(), p.window_windows
        for batch in self.train_iter:
            self.module.forward(batch, is_train=True)
            self.module.backward()
            self.module.update()
            self.pending.append(self.module.get_outputs()[0].sum())
            self.pending_keys.append(batch.bucket_key)
            p.batch += 1
            p.global_batch += 1
            if p.batch % self.settings["log_every"] == 0 or p.batch == total:
                self._log_point(total)
            if self.checkpoint_every and p.global_batch % self.checkpoint_every == 0 and p.batch < total:
                self._save()

    def _flush(self) -> None:
        """Read the pending per-batch losses (one device sync), stop on a non-finite one."""
        if not self.pending:
            return
        p = self.progress
        sums = mx.nd.concat(*self.pending, dim=0).asnumpy().astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(sums))
        if bad.size:
            i = int(bad[0])
            raise NonFiniteLossError(
                f"loss became {sums[i]} at epoch {p.epoch}, batch {p.batch - len(sums) + i + 1} (bucket_key "
                f"{self.pending_keys[i]}); training stopped, no checkpoint written after it. Lower the learning "
                "rate (optimizer_params) or check the data")
        windows, total = len(sums) * self.train_iter.batch_size, float(sums.sum())
        p.window_loss += total
        p.window_windows += windows
        p.window_keys += self.pending_keys
        p.epoch_loss += total
        p.epoch_windows += windows
        self.pending, self.pending_keys = [], []

    def _log_point(self, total: int) -> None:
        self._flush()
        p = self.progress
        elapsed = time.perf_counter() - self.tic
        rate = (p.window_windows - self.tic_windows) / max(elapsed, 1e-9)
        record = LossRecord(epoch=p.epoch, batch=p.batch, loss=p.window_loss / p.window_windows,
                            samples_per_sec=rate, bucket_counts=dict(sorted(Counter(p.window_keys).items())))
        p.history.append(record)
        self.log.info("epoch %d batch %d/%d buckets %s loss %.6f %.0f samples/s", p.epoch, p.batch, total,
                      record.bucket_counts, record.loss, record.samples_per_sec)
        p.window_loss, p.window_windows, p.window_keys = 0.0, 0, []
        self.tic, self.tic_windows = time.perf_counter(), 0

    def _save(self) -> None:
        if self.checkpoint is None:
            return
        self._flush()
        save_checkpoint(self.checkpoint, self.module, self.optimizer,
                        {"settings": self.settings_json, "progress": self.progress.to_json()},
                        with_optimizer=self.settings["kvstore"] in ("local", "device"))


def fit(buckets: Sequence[int] = range(1, 10), hidden_sizes: Sequence[int] = (10, 20, 1), batch_size: int = 300,
        num_samples: int = 300000, num_epoch: int = 1, label_mode: str = "sequence", feature: str = "time",
        cell: str = DEFAULT_CELL, optimizer: str = "adam", optimizer_params: Optional[Mapping[str, Any]] = None,
        ctx: ContextSpec = None, seed: Optional[int] = None, log_every: int = 100,
        logger: Optional[logging.Logger] = None, length_weights: Optional[Sequence[float]] = None,
        checkpoint: Union[None, str, "os.PathLike[str]"] = None, checkpoint_every: Optional[int] = None,
        resume: bool = False, kvstore: str = "local", allow_pickle: bool = False) -> FitResult:
    """Train a stacked LSTM on sine windows of the lengths ``buckets`` with a ``BucketingModule``.

    Each epoch is ``num_samples // batch_size`` batches from a :class:`SinBucketIter`;
    the default bucket is the largest length, so no bucket re-allocates memory.
    ``seed`` fixes the windows and the initial weights (same seed, same loss trace);
    ``None`` draws one, kept in ``settings['seed']``. Progress is logged every
    ``log_every`` batches; the loss logged and recorded is the original's L2 loss,
    ``0.5 * (pred - label)^2`` averaged over windows (and steps in sequence mode).
    ``fit(buckets=[9], label_mode='last')`` is the original's fixed 9-step task.

    ``checkpoint='DIR'`` writes an atomic checkpoint (see :mod:`sinlstm_sym.checkpoint`)
    at the end of every epoch and every ``checkpoint_every`` batches. ``resume=True``
    continues from the latest checkpoint in ``DIR`` with the same settings (only
    ``num_epoch`` and ``ctx`` may change); the result equals an uninterrupted run. A
    NaN or infinite loss raises :class:`NonFiniteLossError` naming epoch, batch and
    bucket, and no checkpoint is written after it. Checkpoints hold no pickle; one written
    by sinlstm-sym 0.1 (pickled optimizer state) resumes only with ``allow_pickle=True``.

    Several devices: ``ctx=[...]`` splits each batch among them (data parallel);
    ``kvstore`` ('local' or 'device') aggregates their gradients. Several processes or
    machines: ``kvstore='dist_sync'`` or ``'dist_async'`` under MXNet's parameter server
    (start them with ``python -m sinlstm_sym.launch``); each worker then trains on its own
    shard (``part_index = kv.rank``), and only rank 0 writes checkpoints. Distributed
    checkpoints hold no optimizer state (it lives on the servers), so they cannot be
    resumed; ``dist_async`` ends with a barrier and a pull, so every worker returns the
    same parameters.
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
    resume = check_bool("resume", resume)
    allow_pickle = check_bool("allow_pickle", allow_pickle)
    kvstore = check_choice("kvstore", kvstore, KVSTORES)
    distributed = kvstore.startswith("dist")
    check_condition(not (resume and distributed),
                    f"resume=True is not supported with kvstore={kvstore!r}: the optimizer state lives on the servers")
    if checkpoint is not None:
        check_condition(isinstance(checkpoint, (str, os.PathLike)) and str(checkpoint) != "",
                        f"checkpoint must be a directory path or None, got {checkpoint!r}", TypeError)
        checkpoint = Path(checkpoint)
    if checkpoint_every is not None:
        checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
        check_condition(checkpoint is not None, "checkpoint_every needs checkpoint='DIR'")
    check_condition(not resume or checkpoint is not None, "resume=True needs checkpoint='DIR'")
    if checkpoint is not None and not distributed:
        check_checkpointable_optimizer(optimizer)
    saved = load_checkpoint(checkpoint, allow_pickle=allow_pickle) if resume else None
    if saved is not None and seed is None:
        seed = saved.config["settings"]["seed"]
    check_condition(not distributed or seed is not None,
                    f"kvstore={kvstore!r} needs an explicit seed: every worker must draw the same epoch to shard it")
    contexts = resolve_contexts(ctx)
    SinBucketIter(buckets, batch_size=batch_size, num_samples=num_samples, length_weights=length_weights,
                  label_mode=label_mode, feature=feature, seed=0)  # validates the data arguments before connecting
    kv = kvstore
    rank, num_workers = 0, 1
    if distributed:
        install_worker_excepthook()  # under the launcher, an uncaught error ends this worker instead of hanging
        kv = mx.kv.create(kvstore)
        rank, num_workers = kv.rank, kv.num_workers
    if num_workers > 1:
        log = _WorkerLog(log, {"rank": rank, "num_workers": num_workers})  # type: ignore[assignment]
    train_iter = SinBucketIter(buckets, batch_size=batch_size, num_samples=num_samples,
                               length_weights=length_weights, label_mode=label_mode, feature=feature, seed=seed,
                               num_parts=num_workers, part_index=rank)
    seed = train_iter.seed
    opt = create_optimizer(optimizer, optimizer_params,
                           batch_size * (num_workers if kvstore == "dist_sync" else 1))
    sym_gen = make_sym_gen(hidden_sizes, label_mode=label_mode, cell=cell)
    settings = dict(buckets=train_iter.buckets, hidden_sizes=hidden_sizes, batch_size=batch_size,
                    num_samples=num_samples, num_epoch=num_epoch, label_mode=label_mode, feature=feature, cell=cell,
                    optimizer=optimizer, optimizer_params=dict(optimizer_params or {}),
                    ctx=[str(c) for c in contexts], seed=seed, log_every=log_every,
                    length_weights=train_iter.length_weights, kvstore=kvstore, num_workers=num_workers, rank=rank)
    if saved is not None:
        _check_resumable(saved.config["settings"], settings, saved.path)

    check_sym_gen(sym_gen, train_iter.buckets, lambda key: {
        train_iter.data_name: (batch_size, key, 1), train_iter.label_name: label_shape(batch_size, key, label_mode)})
    module = SafeBucketingModule(sym_gen, default_bucket_key=train_iter.default_bucket_key, label_mode=label_mode,
                                 context=contexts)
    module.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label, for_training=True)
    if saved is None:
        params = to_layout(init_params(hidden_sizes, seed), cell, hidden_sizes)
        progress = Progress()
    else:
        params, progress = saved.arg_params, Progress.from_json(saved.config["progress"])
        log.info("resuming from %s at epoch %d, batch %d", saved.path, progress.epoch, progress.batch)
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={},
                       allow_missing=False, force_init=True)
    module.init_optimizer(kvstore=kv, optimizer=opt)
    if saved is not None:
        saved.restore_optimizer(module, opt)

    log.info("training %s stacked LSTM %s on buckets %s (%d batches of %d per epoch, %s), %d epoch(s), seed %d",
             cell, list(hidden_sizes), list(train_iter.buckets), train_iter.num_batches, batch_size,
             label_mode, num_epoch, seed)
    trainer = _Trainer(module, train_iter, opt, settings, progress, log, checkpoint if rank == 0 else None,
                       checkpoint_every)
    trainer.run(num_epoch)
    if kvstore == "dist_async":
        _pull_final_params(module, kv)
    return FitResult(module=module, sym_gen=sym_gen, loss_history=progress.history,
                     epoch_losses=progress.epoch_losses, settings=settings)


def _check_resumable(saved: Dict[str, Any], current: Dict[str, Any], path: Path) -> None:
    now = _json_settings(current)
    differ = sorted(k for k in set(saved) | set(now) if k not in _RESUMABLE_CHANGES and saved.get(k) != now.get(k))
    check_condition(not differ, f"resume=True: the checkpoint {path} was trained with other settings: " + ", ".join(
        f"{k}={saved.get(k)!r} there, {now.get(k)!r} now" for k in differ))
