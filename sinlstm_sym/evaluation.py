"""Error per window length on fresh windows, as rows and as a plain-text table."""
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from .checks import check_int, check_int_sequence
from .data import half_sine, make_windows
from .predictor import Predictor

Row = Dict[str, object]


def per_length_error(predictor: Predictor, lengths: Iterable[int] = range(1, 21), num_samples: int = 3000,
                     seed: int = 0, t_low: float = 0.0, t_high: float = 1.0,
                     trained_lengths: Optional[Sequence[int]] = None) -> List[Row]:
    """For each length: MSE, max absolute error and per-step max absolute error on fresh windows.

    Windows are drawn like :class:`SinBucketIter`'s from a generator seeded by ``seed``.
    A row's ``trained`` flag says whether the length is in ``trained_lengths``.
    """
    lengths = check_int_sequence("lengths", lengths, minimum=1)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    trained = set(trained_lengths or ())
    rng = np.random.default_rng(seed)
    rows: List[Row] = []
    for length in lengths:
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
        worst = str(int(np.argmax(per_step)) + 1) if len(per_step) > 1 else "-"  # type: ignore[arg-type]
        lines.append(f"{row['length']:>6}  {'yes' if row['trained'] else 'no':>7}  {row['mse']:>10.3e}  "
                     f"{row['max_abs_error']:>9.4f}  {worst:>10}")
    return "\n".join(lines)
