"""The training loop of :func:`~sinlstm_sym.train.fit.fit`: batches, loss bookkeeping, log points,
evaluation passes, checkpoints and the optional progress bar."""
import contextlib
import logging
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import mxnet as mx
import numpy as np

from ..core.callback_errors import callback_errors, raise_first
from ..constants import DIVERGENCE_FACTOR, DIVERGENCE_MIN_WINDOWS, EXPLODED_PARAMETER, STOP_SIGNALS
from .batch_losses import PendingSquareSums, batch_loss_sum
from .progress import LossRecord, Progress
from .threads import operator_threads
from .validation import StopTraining, Validator

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; parameters after that batch are not trustworthy.

    Raised by :func:`~sinlstm_sym.train.fit.fit` at the log point that sees it; the message names the
    epoch, the batch and the bucket. A ``FloatingPointError``.

    What to do: lower the learning rate (``optimizer_params={'learning_rate': ...}``), add
    ``clip_gradient``, or check the data of a ``train_iter`` for NaN or huge values, then train again.
    """


class TrainingDivergedError(FloatingPointError):
    """The loss stayed far above its starting value for two log windows: the learning rate is too high."""


class IteratorLengthError(ValueError):
    """``train_iter`` yielded more batches in an epoch than its ``len()`` says: the learning-rate schedule, the
    log points and the checkpoints' positions were planned from that length."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped training at a batch boundary.

    ``checkpoint`` is the checkpoint written at that point (``None`` without ``checkpoint=``),
    ``epoch`` and ``batch`` say where training stopped, ``signum`` which signal stopped it.
    """

    def __init__(self, epoch: int, batch: int, checkpoint: Optional[Path], signum: int = signal.SIGINT) -> None:
        where = f"at epoch {epoch}, batch {batch}"
        saved = f"; checkpoint written to {checkpoint}" if checkpoint else "; no checkpoint was asked for"
        super().__init__(f"training interrupted by {signal.Signals(signum).name} {where}{saved}")
        self.epoch, self.batch, self.checkpoint, self.signum = epoch, batch, checkpoint, signum


class StopAtOnce(KeyboardInterrupt):
    """A second Ctrl-C or SIGTERM while training stops: stop at once; ``signum`` says which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}")
        self.signum = signum


class StopRequest(threading.Event):
    """Set by the first SIGINT or SIGTERM while training; ``signum`` says which."""

    signum: int = signal.SIGINT


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[StopRequest]:
    """While active (main thread only), the first SIGINT (Ctrl-C) or SIGTERM sets the yielded event instead
    of raising; a second one raises :class:`StopAtOnce` (a ``KeyboardInterrupt``) at once."""
    stop = StopRequest()
    if not _main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise StopAtOnce(signum)
        stop.signum = signum
        stop.set()
        logger.warning("%s: stopping after this batch (press Ctrl-C again to stop at once)",
                       "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_deferred(redeliver: bool = True) -> Iterator[None]:
    """While active (main thread only), SIGINT and SIGTERM wait: a checkpoint being committed is finished
    first. On exit each signal received meanwhile goes to the handler that was in place (once per signal),
    unless ``redeliver`` is false (training is stopping anyway)."""
    if not _main_thread():
        yield
        return
    received: List[int] = []
    previous: Dict[int, Any] = {sig: signal.signal(sig, lambda signum, frame: received.append(signum))
                                for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        for signum in dict.fromkeys(received if redeliver else []):
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


def deferring_signals(write: Optional[Callable[[], Path]]) -> Optional[Callable[[], Path]]:
    """``write`` (a checkpoint writer) run with SIGINT and SIGTERM deferred until it returns."""
    if write is None:
        return None

    def deferred() -> Path:
        with signals_deferred():
            return write()
    return deferred


def _progress_bar(total: int, enabled: bool, description: str) -> Any:
    """A tqdm bar on a terminal when asked for and tqdm is installed; else ``None`` (log lines only)."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        logger.info("progress_bar=True but tqdm is not installed (pip install tqdm): logging only")
        return None
    return tqdm(total=total, desc=description, unit="batch", leave=False, dynamic_ncols=True)


class Trainer:
    """Runs epochs of ``train_iter`` through a bound ``module`` with an initialised optimizer."""

    def __init__(self, module: mx.mod.BucketingModule, train_iter: mx.io.DataIter, progress: Progress,
                 log: Any, log_every: int, save: Optional[Callable[[], Path]] = None,
                 checkpoint_every: Optional[int] = None, eval_iter: Optional[mx.io.DataIter] = None,
                 progress_bar: bool = False, learning_rate: Optional[float] = None,
                 validator: Optional[Validator] = None, contexts: Optional[List[mx.Context]] = None,
                 optimizer: Optional[mx.optimizer.Optimizer] = None, batch_size: Optional[int] = None) -> None:
        self.module, self.train_iter, self.progress, self.log = module, train_iter, progress, log
        self.log_every, self.checkpoint_every = log_every, checkpoint_every
        self.write, self.save = save, deferring_signals(save)  # the checkpoint writer, and it with signals deferred
        self.eval_iter, self.progress_bar, self.learning_rate = eval_iter, progress_bar, learning_rate
        self.stop = StopRequest()
        self.rising = 0  # consecutive log windows far above the first one
        self.validator = validator
        self.contexts = contexts if contexts is not None else [mx.cpu()]  # the module's devices
        self.mark = time.perf_counter()  # start of the training time not yet added to progress.train_seconds
        self.pending = PendingSquareSums()  # per-batch sums of squares (2x loss) not yet read from the device
        self.pending_keys: List[int] = []
        self.pending_windows: List[int] = []
        self.bar: Any = None
        self.updater_errors: List[BaseException] = []  # exceptions inside MXNet's updater callback
        self.saved: Optional[Tuple[int, Path]] = None  # (global batch, path) of the last checkpoint written
        # gradients are summed over a batch's windows: rescale_grad follows each batch's size (1 / windows)
        self.optimizer, self.batch_size = optimizer, batch_size
        self.base_rescale = optimizer.rescale_grad if optimizer is not None else 1.0
        self.rescaled_for = batch_size
        self.short_epochs = 0  # epochs that yielded fewer batches than len(train_iter)

    def run(self, num_epoch: int) -> None:
        """Train until ``num_epoch`` epochs are done; Ctrl-C stops at the next batch boundary
        (after a checkpoint, if there are checkpoints) with :class:`TrainingInterrupted`."""
        self.mark = time.perf_counter()
        with stop_on_interrupt() as self.stop, callback_errors() as self.updater_errors, \
                operator_threads(self.contexts):
            try:
                self._run(num_epoch)
            except StopTraining as stop:
                self.progress.stopped = str(stop)
                self.log.info("stopping early: %s", stop)
                self._save()
            finally:
                self._clock()

    def _clock(self) -> float:
        """Add the training time since the last mark to the progress; return the total."""
        now = time.perf_counter()
        self.progress.train_seconds += now - self.mark
        self.mark = now
        return self.progress.train_seconds

    def _validate(self) -> None:
        if self.validator is None:
            return
        p = self.progress
        self._flush()
        seconds = self._clock()
        try:
            self.validator.validate(p.epoch, p.batch, p.global_batch, seconds)
        finally:
            self.mark = time.perf_counter()  # validation time is not training time

    def _run(self, num_epoch: int) -> None:
        p = self.progress
        while p.epoch < num_epoch:
            self._start_epoch()
            self._epoch()
            p.epoch_losses.append(p.epoch_loss / p.epoch_windows if p.epoch_windows else float("nan"))
            self.log.info("epoch %d done: mean loss %.6f", p.epoch, p.epoch_losses[-1])
            if self.eval_iter is not None:
                p.eval_losses.append(self.evaluate(self.eval_iter))
                self.log.info("epoch %d eval: mean loss %.6f (MSE %.6f)", p.epoch, p.eval_losses[-1],
                              2 * p.eval_losses[-1])
            try:
                if not (p.validation and p.validation[-1].global_batch == p.global_batch):
                    self._validate()  # at every epoch end (unless validate_every just did)
            finally:  # an early stop here still ends the epoch
                p.epoch, p.batch, p.epoch_loss, p.epoch_windows = p.epoch + 1, 0, 0.0, 0
            self._save()
            if self.stop.is_set() and p.epoch < num_epoch:  # a signal during the epoch's end: stop here
                self._interrupt()

    def _start_epoch(self) -> None:
        """Position the iterator at the progress' batch (a fresh epoch, or the middle of one when resuming)."""
        p = self.progress
        if hasattr(self.train_iter, "set_epoch"):
            self.train_iter.set_epoch(p.epoch, p.batch)
        elif p.epoch > 0 or p.batch > 0:
            self.train_iter.reset()

    def _epoch(self) -> None:
        p = self.progress
        total = len(self.train_iter) if hasattr(self.train_iter, "__len__") else None
        self.bar = _progress_bar(total - p.batch if total else 0, self.progress_bar, f"epoch {p.epoch}")
        self.tic, self.tic_windows = time.perf_counter(), p.window_windows
        try:
            for batch in self.train_iter:
                self._check_length(total)
                self.module.forward_backward(batch)
                self._rescale(batch)
                self.module.update()
                raise_first(self.updater_errors, f"at epoch {p.epoch}, batch {p.batch + 1}")
                self.pending.add(self.module.get_outputs()[0], batch.label[0], batch.pad or 0)
                self.pending_keys.append(int(batch.bucket_key))
                self.pending_windows.append(batch.data[0].shape[0] - (batch.pad or 0))
                p.batch += 1
                p.global_batch += 1
                if self.bar is not None:
                    self.bar.update(1)
                if p.batch % self.log_every == 0 or p.batch == total:
                    self._log_point(total)
                if self.validator is not None and self.validator.due(p.global_batch) and p.batch != total:
                    self._validate()
                if self.checkpoint_every and p.global_batch % self.checkpoint_every == 0 and p.batch != total:
                    self._save()
                if self.stop.is_set():
                    self._interrupt()
            if self.pending or p.window_windows:
                self._log_point(total)
            if total is not None and p.batch < total:
                self._short_epoch(total)
        finally:
            if self.bar is not None:
                self.bar.close()

    def _check_length(self, total: Optional[int]) -> None:
        """Refuse a batch beyond ``len(train_iter)`` before it trains (the schedule was planned for ``total``)."""
        p = self.progress
        if total is not None and p.batch >= total:
            raise IteratorLengthError(
                f"train_iter yielded more batches in epoch {p.epoch} than len(train_iter) = {total} says: the "
                "learning-rate schedule, the log points and the checkpoints' positions are planned from that "
                f"length (past it the schedule would train at its final rate); make __len__ return the number of "
                f"batches an epoch yields. Training stopped after batch {p.batch}, no checkpoint written after it")

    def _short_epoch(self, total: int) -> None:
        """An epoch ended before ``len(train_iter)`` batches: said once (the schedule does not reach its end)."""
        self.short_epochs += 1
        if self.short_epochs == 1:
            self.log.warning("train_iter yielded %d batches in epoch %d but len(train_iter) says %d: the "
                             "learning-rate schedule, planned from that length, will not reach its end",
                             self.progress.batch, self.progress.epoch, total)

    def _rescale(self, batch: mx.io.DataBatch) -> None:
        """Gradients are sums over the batch's windows: ``rescale_grad`` is 1 / this batch's windows (the
        configured value for a batch of ``batch_size``, so a constant batch size changes nothing)."""
        windows = batch.data[0].shape[0]
        if self.optimizer is None or self.batch_size is None or windows == self.rescaled_for:
            return
        self.optimizer.rescale_grad = self.base_rescale if windows == self.batch_size \
            else self.base_rescale * self.batch_size / windows
        self.rescaled_for = windows

    def _interrupt(self) -> None:
        p = self.progress
        self._flush()
        path = self.saved[1] if self.saved is not None and self.saved[0] == p.global_batch else None
        if self.write is not None and path is None:
            with signals_deferred(redeliver=False):  # a second signal now must not cut the checkpoint short
                path = self.write()
        raise TrainingInterrupted(p.epoch, p.batch, path, self.stop.signum)

    def _flush(self) -> None:
        """Read the pending per-batch losses (one device sync), stop on a non-finite one."""
        if not self.pending:
            return
        p = self.progress
        sums = 0.5 * self.pending.read().astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(sums))
        if bad.size:
            i = int(bad[0])
            raise NonFiniteLossError(
                f"loss became {sums[i]} at epoch {p.epoch}, batch {p.batch - len(sums) + i + 1} (bucket_key "
                f"{self.pending_keys[i]}); training stopped, no checkpoint written after it. Lower the learning "
                "rate (optimizer_params) or check the data")
        windows, total = sum(self.pending_windows), float(sums.sum())
        p.window_loss += total
        p.window_windows += windows
        p.window_keys += self.pending_keys
        p.epoch_loss += total
        p.epoch_windows += windows
        p.trained_lengths = sorted(set(p.trained_lengths) | set(self.pending_keys))
        self.pending_keys, self.pending_windows = [], []

    def _log_point(self, total: Optional[int]) -> None:
        self._flush()
        p = self.progress
        if not p.window_windows:
            return
        elapsed = time.perf_counter() - self.tic
        rate = (p.window_windows - self.tic_windows) / max(elapsed, 1e-9)
        record = LossRecord(epoch=p.epoch, batch=p.batch, loss=p.window_loss / p.window_windows,
                            samples_per_sec=rate, bucket_counts=dict(sorted(Counter(p.window_keys).items())))
        self._check_divergence(record, p.window_windows)
        p.history.append(record)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{record.loss:.2e}", windows_per_s=f"{rate:.0f}")
        else:
            self.log.info("epoch %d batch %d/%s buckets %s loss %.6f %.0f samples/s", p.epoch, p.batch,
                          total if total else "?", record.bucket_counts, record.loss, record.samples_per_sec)
        p.window_loss, p.window_windows, p.window_keys = 0.0, 0, []
        self.tic, self.tic_windows = time.perf_counter(), 0

    def _check_divergence(self, record: LossRecord, windows: int) -> None:
        """Raise :class:`TrainingDivergedError` if the loss stayed far above the first log window's for two
        log windows (windows of at least ``DIVERGENCE_MIN_WINDOWS`` windows, so not noise) or a parameter
        exploded."""
        p = self.progress
        rate = f"learning_rate={self.learning_rate:g}" if self.learning_rate is not None else "the learning rate"
        where = f"at epoch {p.epoch}, batch {p.batch}; lower {rate} (optimizer_params)"
        if windows < DIVERGENCE_MIN_WINDOWS:
            self.rising = 0
        elif p.first_loss is None:
            p.first_loss = record.loss
        elif record.loss > DIVERGENCE_FACTOR * p.first_loss:
            self.rising += 1
            if self.rising >= 2:
                raise TrainingDivergedError(f"training diverged: the loss rose from {p.first_loss:.4g} (first log "
                                            f"window) to {record.loss:.4g} {where}")
        else:
            self.rising = 0
        arg_params, _ = self.module.get_params()
        largest = max(float(mx.nd.abs(v).max().asscalar()) for v in arg_params.values())
        if largest > EXPLODED_PARAMETER:
            raise TrainingDivergedError(f"training diverged: a parameter reached {largest:.3g} (every gate "
                                        f"saturated, loss {record.loss:.4g}) {where}")

    def evaluate(self, data: mx.io.DataIter) -> float:
        """Mean L2 loss of the current parameters over one pass of ``data`` (reset first)."""
        data.reset()
        sums, windows = [], 0
        for batch in data:
            self.module.forward(batch, is_train=False)
            sums.append(batch_loss_sum(self.module.get_outputs()[0], batch.label[0], batch.pad or 0).reshape((1,)))
            windows += batch.data[0].shape[0] - (batch.pad or 0)
        if not sums:
            return float("nan")
        return float(mx.nd.concat(*sums, dim=0).asnumpy().astype(np.float64).sum()) / windows

    def _save(self) -> Optional[Path]:
        if self.save is None:
            return None
        self._flush()
        self._clock()
        self.saved = (self.progress.global_batch, self.save())
        return self.saved[1]
