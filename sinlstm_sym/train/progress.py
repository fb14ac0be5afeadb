"""Where a training stands (:class:`Progress`, with its loss records): kept by the training loop, stored in
every checkpoint, read back by a resumed run and by :meth:`~sinlstm_sym.infer.predictor.Predictor.load`."""
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ..checkpoint.schema import trained_lengths
from .validation import ValidationRecord


@dataclass
class LossRecord:
    """The mean L2 loss over the windows trained since the previous record."""

    epoch: int
    batch: int  # batches done in this epoch when the record was taken
    loss: float
    samples_per_sec: float
    bucket_counts: Dict[int, int] = field(default_factory=dict)


@dataclass
class Progress:
    """Where training stands; a checkpoint stores it so that a resumed run continues exactly."""

    epoch: int = 0  # current epoch
    batch: int = 0  # batches done in the current epoch
    global_batch: int = 0
    history: List[LossRecord] = field(default_factory=list)
    epoch_losses: List[float] = field(default_factory=list)
    eval_losses: List[float] = field(default_factory=list)  # mean L2 loss on eval_iter after each epoch
    trained_lengths: List[int] = field(default_factory=list)  # bucket keys that had at least one batch
    window_loss: float = 0.0  # loss summed over windows since the last log point (flushed part)
    window_windows: int = 0
    window_keys: List[int] = field(default_factory=list)
    epoch_loss: float = 0.0  # loss summed over the current epoch's windows (flushed part)
    epoch_windows: int = 0
    first_loss: Optional[float] = None  # mean loss of the first log window, the reference for divergence
    validation: List[ValidationRecord] = field(default_factory=list)  # scores on the held-out set
    train_seconds: float = 0.0  # time spent training (validation passes excluded)
    stopped: Optional[str] = None  # why training stopped early

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: Dict[str, Any]) -> "Progress":
        payload = dict(payload, trained_lengths=trained_lengths(payload))
        payload["history"] = [LossRecord(**{**r, "bucket_counts": {int(k): v for k, v in r["bucket_counts"].items()}})
                              for r in payload["history"]]
        payload["validation"] = [ValidationRecord.from_json(r) for r in payload.get("validation", [])]
        return cls(**payload)


__all__ = ["LossRecord", "Progress"]
