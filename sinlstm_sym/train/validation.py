"""Validation while training: a fixed, seeded held-out set of windows per length, scored through the
training module, and the records that early stopping and the choice of the best parameters read.

The held-out windows come from their own random stream, ``(seed, VALIDATION_STREAM)``: the
training iterator draws from ``(seed, epoch)`` and ``(seed, epoch, batch)``, so no held-out window
is ever a training window (and the set is the same at every evaluation).
"""
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..core.checks import check_int, check_int_sequence
from ..constants import DATA_NAME, DEFAULT_STEP, LABEL_NAME
from ..data.windows import half_sine, label_shape, make_windows

VALIDATION_STREAM = (0x7A11D, 0, 0)  # three entries: never a training stream, which has one or two


@dataclass
class ValidationRecord:
    """Scores of one evaluation: per length ``[mse, max_abs_error]``, and the worst over lengths."""

    epoch: int
    batch: int
    global_batch: int
    seconds: float  # training time since the run started (evaluations excluded)
    per_length: Dict[int, Tuple[float, float]] = field(default_factory=dict)

    @property
    def max_abs_error(self) -> float:
        """The largest absolute error at any step of any length: what "best" means."""
        return max(err for _, err in self.per_length.values())

    @property
    def mse(self) -> float:
        """The mean over lengths of the per-length MSE."""
        return float(np.mean([mse for mse, _ in self.per_length.values()]))

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: Dict[str, Any]) -> "ValidationRecord":
        payload = dict(payload)
        payload["per_length"] = {int(k): (float(v[0]), float(v[1])) for k, v in payload["per_length"].items()}
        return cls(**payload)


class ValidationSet:
    """``num_per_length`` held-out windows of every length in ``lengths``, drawn once from ``seed``."""

    def __init__(self, lengths: Sequence[int], num_per_length: int, seed: int, label_mode: str, feature: str,
                 step: float = DEFAULT_STEP, t_low: float = 0.0, t_high: float = 1.0,
                 target: Callable[[np.ndarray], np.ndarray] = half_sine) -> None:
        self.lengths = tuple(sorted(check_int_sequence("validation_lengths", lengths, minimum=1)))
        self.num_per_length = check_int("validation_samples", num_per_length, minimum=1)
        self.label_mode = label_mode
        rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=VALIDATION_STREAM))
        self.start_times: Dict[int, np.ndarray] = {}
        self.windows: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        for length in self.lengths:
            t0 = rng.uniform(t_low, t_high, size=self.num_per_length)
            inputs, labels = make_windows(t0, length, step, label_mode, feature, target)
            self.start_times[length] = t0
            self.windows[length] = (inputs.astype(np.float32), labels.astype(np.float32))

    def score(self, module: mx.mod.BaseModule, batch_size: int, data_name: str = DATA_NAME,
              label_name: str = LABEL_NAME) -> Dict[int, Tuple[float, float]]:
        """Per length ``(mse, max_abs_error)`` of ``module``'s predictions (forward in inference mode, in
        batches of the module's ``batch_size``; the last one padded)."""
        scores: Dict[int, Tuple[float, float]] = {}
        for length, (inputs, labels) in self.windows.items():
            squared, worst = 0.0, 0.0
            for start in range(0, len(inputs), batch_size):
                x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
                rows = len(x)
                if rows < batch_size:
                    x = np.concatenate([x, np.zeros((batch_size - rows,) + x.shape[1:], np.float32)])
                    y = np.concatenate([y, np.zeros((batch_size - rows,) + y.shape[1:], np.float32)])
                batch = mx.io.DataBatch(
                    [mx.nd.array(x)], [mx.nd.array(y)], pad=batch_size - rows, bucket_key=length,
                    provide_data=[mx.io.DataDesc(data_name, x.shape)],
                    provide_label=[mx.io.DataDesc(label_name, label_shape(batch_size, length, self.label_mode))])
                module.forward(batch, is_train=False)
                err = np.abs(module.get_outputs()[0].asnumpy()[:rows] - y[:rows])
                squared += float(np.sum(err.astype(np.float64) ** 2))
                worst = max(worst, float(err.max()))
            scores[length] = (squared / labels.size, worst)
        return scores


def best_record(history: List[ValidationRecord]) -> Optional[ValidationRecord]:
    """The record with the smallest max absolute error (the earliest on ties)."""
    return min(history, key=lambda r: r.max_abs_error) if history else None


class StopTraining(Exception):
    """Early stopping: raised by :meth:`Validator.validate` with the reason."""


class Validator:
    """Scores the held-out set every ``every`` batches and at each epoch end, keeps the best parameters
    (smallest max absolute error) and stops training when ``target_max_error`` is reached or after
    ``patience`` evaluations without improvement."""

    def __init__(self, validation_set: ValidationSet, module: mx.mod.BaseModule, batch_size: int, log: Any,
                 history: List[ValidationRecord], every: Optional[int] = None,
                 target_max_error: Optional[float] = None, patience: Optional[int] = None,
                 save_best: Optional[Callable[[], Any]] = None, data_name: str = DATA_NAME,
                 label_name: str = LABEL_NAME) -> None:
        self.set, self.module, self.batch_size, self.log, self.history = validation_set, module, batch_size, log, \
            history
        self.every, self.target, self.patience, self.save_best = every, target_max_error, patience, save_best
        self.names = (data_name, label_name)
        self.best = best_record(history)
        self.best_params: Optional[Dict[str, np.ndarray]] = None

    def due(self, global_batch: int) -> bool:
        return self.every is not None and global_batch % self.every == 0

    def validate(self, epoch: int, batch: int, global_batch: int, seconds: float) -> ValidationRecord:
        """Score now; record, log, keep the best; raise :class:`StopTraining` when it is time to stop."""
        record = ValidationRecord(epoch, batch, global_batch, seconds,
                                  self.set.score(self.module, self.batch_size, *self.names))
        self.history.append(record)
        improved = self.best is None or record.max_abs_error < self.best.max_abs_error
        self.log.info("validation at epoch %d batch %d: max abs error %.5f (length %d), mean MSE %.3e%s", epoch,
                      batch, record.max_abs_error, max(record.per_length, key=lambda k: record.per_length[k][1]),
                      record.mse, " (best so far)" if improved else "")
        if improved:
            self.best = record
            args, _ = self.module.get_params()
            self.best_params = {k: v.asnumpy() for k, v in args.items()}
            if self.save_best is not None:
                self.save_best()
        if self.target is not None and record.max_abs_error <= self.target:
            raise StopTraining(f"max abs error {record.max_abs_error:.5f} <= target_max_error {self.target:g}")
        since = len(self.history) - 1 - self.history.index(self.best) if self.best is not None else 0
        if self.patience is not None and since >= self.patience:
            best: Any = self.best
            raise StopTraining(f"no improvement in {since} validations (patience {self.patience}); best max abs "
                               f"error {best.max_abs_error:.5f} at epoch {best.epoch} batch {best.batch}")
        return record
