"""Error per window length on fresh windows: rows, a plain-text table, CSV and JSON."""
import csv
import dataclasses
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Protocol, Sequence, Union,
                    runtime_checkable)

import numpy as np

from ..core.checks import check_int, check_int_sequence
from ..data.windows import half_sine, make_windows
from ..core.heartbeat import Heartbeat
from ..config.limits import check_evaluation
from ..core.outputs import write_text_atomic
from .predictor import Predictor

if TYPE_CHECKING:
    from ..config.fit_config import ModelConfig

logger = logging.getLogger(__name__)

Row = Dict[str, Any]


def per_length_error(predictor: Predictor, lengths: Iterable[int] = range(1, 21), num_samples: int = 3000,
                     seed: int = 0, t_low: float = 0.0, t_high: float = 1.0,
                     trained_lengths: Optional[Sequence[int]] = None) -> List[Row]:
    """For each length: MSE, max absolute error and per-step max absolute error on fresh windows.

    Windows are drawn like :class:`SinBucketIter`'s from a generator seeded by ``seed``.
    A row's ``trained`` flag says whether the length is in ``trained_lengths``
    (default: the predictor's own ``trained_lengths``). A table that would not fit in memory
    (see :mod:`sinlstm_sym.config.limits`) is refused before any window is drawn.
    """
    lengths = check_int_sequence("lengths", lengths, minimum=1)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    check_evaluation(lengths, num_samples, predictor.hidden_sizes, predictor.cell, predictor.batch_size)
    trained = set(trained_lengths if trained_lengths is not None else (predictor.trained_lengths or ()))
    rng = np.random.default_rng(seed)
    rows: List[Row] = []
    heartbeat = Heartbeat(logger)
    for done, length in enumerate(lengths):
        heartbeat.beat("error per length: %d of %d lengths scored", done, len(lengths))
        t0 = rng.uniform(t_low, t_high, size=num_samples)
        inputs, labels = make_windows(t0, length, predictor.step, predictor.label_mode, predictor.feature, half_sine)
        pred = predictor.predict(inputs).reshape(labels.shape)
        err = np.abs(pred - labels)
        rows.append({"length": length, "trained": length in trained, "mse": float(np.mean(err ** 2)),
                     "max_abs_error": float(err.max()), "per_step_max_abs_error": err.max(axis=0).tolist()})
    return rows


def format_error_table(rows: Sequence[Row]) -> str:
    """The rows of :func:`per_length_error` as an aligned plain-text table."""
    lines = [f"{'length':>6}  {'trained':>7}  {'mse':>10}  {'max|err|':>9}  {'worst step':>10}"]
    for row in rows:
        per_step = row["per_step_max_abs_error"]
        worst = str(int(np.argmax(per_step)) + 1) if len(per_step) > 1 else "-"
        lines.append(f"{row['length']:>6}  {'yes' if row['trained'] else 'no':>7}  {row['mse']:>10.3e}  "
                     f"{row['max_abs_error']:>9.4f}  {worst:>10}")
    return "\n".join(lines)


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: one row per length."""

    rows: List[Row]

    def __str__(self) -> str:
        return format_error_table(self.rows)

    def flat_rows(self) -> List[Dict[str, Any]]:
        """Rows with the per-step errors as one ';'-joined string (for CSV)."""
        return [{**row, "per_step_max_abs_error": ";".join(f"{e:.6g}" for e in row["per_step_max_abs_error"])}
                for row in self.rows]

    def to_csv(self) -> str:
        """The rows as CSV text (per-step errors ';'-joined)."""
        handle = io.StringIO(newline="")
        writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
        writer.writeheader()
        writer.writerows(self.flat_rows())
        return handle.getvalue()

    def write_json(self, path: Union[str, Path]) -> None:
        """Write the rows as JSON (atomically)."""
        write_text_atomic(path, json.dumps(self.rows, indent=1))

    def write_csv(self, path: Union[str, Path]) -> None:
        """Write the rows as CSV (atomically)."""
        write_text_atomic(path, self.to_csv())


@runtime_checkable
class TrainedModel(Protocol):
    """What :func:`evaluate` needs of a training result such as :class:`~sinlstm_sym.train.fit.FitResult`."""

    def predictor(self) -> Predictor:
        """A Predictor of the trained weights."""


def evaluate(model: Union[Predictor, str, Path, TrainedModel], lengths: Iterable[int] = range(1, 21),
             num_samples: int = 3000, seed: int = 0) -> Evaluation:
    """Error per length of a trained model on fresh windows.

    Parameters
    ----------
    model : Predictor, FitResult, str or pathlib.Path
        The model, or a checkpoint directory (``DIR`` for its latest checkpoint, or ``DIR/ckpt-N``).
    lengths : iterable of int, default range(1, 21)
        The window lengths to score.
    num_samples : int, default 3000
        Fresh windows per length, starting at ``t0 ~ U[0, 1)``.
    seed : int, default 0
        Seed of the fresh windows.

    Returns
    -------
    Evaluation
        One row per length: ``length``, ``trained`` (the length had a training batch), ``mse``,
        ``max_abs_error`` and ``per_step_max_abs_error``; ``str()`` is the printed table,
        ``write_json``/``write_csv`` save it.

    Raises
    ------
    TypeError
        ``model`` is none of the above.
    FileNotFoundError, ValueError
        The checkpoint directory is missing, empty or damaged (the file is named).

    Examples
    --------
    >>> from sinlstm_sym import evaluate, fit
    >>> result = fit(buckets=[5], num_samples=2000, num_epoch=1, seed=0)
    >>> table = evaluate(result, lengths=[1, 5], num_samples=100)
    >>> [row["length"] for row in table.rows]
    [1, 5]
    """
    if isinstance(model, (str, Path)):
        predictor = Predictor.load(str(model))
    elif isinstance(model, Predictor):
        predictor = model
    elif isinstance(model, TrainedModel):  # a FitResult
        predictor = model.predictor()
    else:
        raise TypeError(f"model must be a Predictor, a FitResult or a checkpoint directory, got "
                        f"{type(model).__name__}")
    return Evaluation(per_length_error(predictor, lengths, num_samples=num_samples, seed=seed))


def step_outputs(params: Mapping[str, np.ndarray], model: "ModelConfig", t0: float, length: int,
                 ctx: Any = None) -> np.ndarray:
    """The model's output at every step 1..``length`` of the window starting at ``t0``, ``(length,)``.

    A ``label_mode='last'`` model is read at every step too (an LSTM is causal: its output at step k
    is that of the window cut to length k), which shows what it does on other lengths.
    """
    predictor = Predictor.from_config(params, dataclasses.replace(model, label_mode="sequence"), ctx=ctx)
    return predictor.predict_function(np.array([float(t0)]), check_int("length", length, minimum=1))[0]
