"""``SeriesBucketIter``: windows of several lengths cut from real series, for ``BucketingModule``."""
import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..core.checks import check_condition
from ..constants import (DATA_NAME, DEFAULT_BATCH_SIZE, DEFAULT_LABEL_MODE, DEFAULT_WINDOW_LEVEL, LABEL_NAME,
                         WINDOW_LEVELS)
from ..data.windows import BucketWindowIter
from .data import DEFAULT_SCALING, Scaling, check_series, series_label

logger = logging.getLogger(__name__)


class SeriesBucketIter(BucketWindowIter):
    """Windows of the lengths in ``buckets`` cut from a list of 1-D series, one bucket per length.

    A window of length ``L`` starting at index ``s`` of a series has inputs ``x[s:s+L]`` and
    labels ``x[s+1:s+L+1]`` (``label_mode='sequence'``) or ``x[s+L]`` (``'last'``): the next
    value. A window never spans two series. Every batch holds ``batch_size`` windows of one
    length (``bucket_key == L``), data ``(B, L, 1)`` in ``NTC``, drawn uniformly with
    replacement from all windows of that length; values are scaled by ``scaling``
    (``'standard'``, ``'range'``, ``'none'`` fitted on ``series``, or a :class:`Scaling`). With
    ``window_level='last'`` (``label_mode='last'`` only) every window and its label are taken relative to
    the window's last value, ``(x - x_last) / scale``, and a fitted scaling is fitted on one-step changes.

    Same contract and guarantees as :class:`~sinlstm_sym.data.windows.SinBucketIter`: one epoch has
    ``num_samples // batch_size`` full batches (default ``num_samples``: every window once on
    average), shared among the buckets by largest remainder in proportion to
    ``length_weights``; batch order from a generator seeded by ``(seed, epoch)``, each batch's
    windows by ``(seed, epoch, batch)``; ``num_parts``/``part_index`` split one global epoch
    into disjoint parts with equal batch counts; ``set_epoch`` for resuming; ``refresh=False``
    replays the same epoch. Series shorter than the smallest bucket + 1 are skipped with a
    warning (refused if none remain); a bucket longer than every series is refused.

    Memory: the series are held once, concatenated (``dtype``), with one start index per
    usable position (int32 below 2**31 points), whatever the number of series or buckets.
    """

    def __init__(self, series: Any, buckets: Sequence[int], batch_size: int = DEFAULT_BATCH_SIZE,
                 num_samples: Optional[int] = None, length_weights: Optional[Sequence[float]] = None,
                 label_mode: str = DEFAULT_LABEL_MODE, scaling: Union[str, Scaling] = DEFAULT_SCALING,
                 shuffle: bool = True, seed: Optional[int] = None, data_name: str = DATA_NAME,
                 label_name: str = LABEL_NAME, dtype: str = "float32", num_parts: int = 1, part_index: int = 0,
                 refresh: bool = True, names: Optional[Sequence[str]] = None,
                 window_level: str = DEFAULT_WINDOW_LEVEL) -> None:
        self._setup_buckets(buckets, batch_size, length_weights, label_mode, shuffle, seed, data_name, label_name,
                            dtype, num_parts, part_index, refresh)
        check_condition(window_level in WINDOW_LEVELS, f"window_level must be one of {list(WINDOW_LEVELS)}, "
                        f"got {window_level!r}")
        check_condition(window_level == "none" or self.label_mode == "last", f"window_level={window_level!r} "
                        f"needs label_mode='last', got label_mode={self.label_mode!r}")
        self.window_level = window_level
        arrays = check_series(series, names)
        kept = self._usable(arrays, names)
        if isinstance(scaling, Scaling):
            self.scaling = scaling
        else:
            check_condition(isinstance(scaling, str), f"scaling must be a Scaling or one of 'standard', 'range', "
                            f"'none', got {scaling!r}", TypeError)
            self.scaling = Scaling.fit([arrays[i] for i in kept], scaling, window_level)
        self.series_indices = tuple(kept)  # positions in the given list of the series used
        lengths = np.array([len(arrays[i]) for i in kept], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        total = int(self.offsets[-1])
        index_dtype = np.int32 if total < 2 ** 31 else np.int64
        self._values = np.empty(total, dtype=self.dtype)
        for j, i in enumerate(kept):
            self._values[self.offsets[j]:self.offsets[j + 1]] = self.scaling.transform(arrays[i])
        # room[p]: values after p in its own series; a window of length L may start at p iff room[p] >= L.
        room = np.repeat(self.offsets[1:], lengths) - 1 - np.arange(total)
        self._starts = np.argsort(-room, kind="stable").astype(index_dtype)  # most room first
        self.windows_per_bucket: Dict[int, int] = {
            k: int(np.count_nonzero(room >= k)) for k in self.buckets}
        del room
        longest = int(lengths.max())
        for k in self.buckets:
            check_condition(self.windows_per_bucket[k] > 0, f"bucket {k} is longer than every series (the longest "
                            f"has {longest} points, so windows up to {longest - 1} steps): drop it from buckets")

        if num_samples is None:
            num_samples = max(self.batch_size * self.num_parts, sum(self.windows_per_bucket.values()))
        self._setup_epochs(num_samples)

    def _usable(self, arrays: List[np.ndarray], names: Optional[Sequence[str]]) -> List[int]:
        needed = min(self.buckets) + 1
        kept = [i for i, a in enumerate(arrays) if len(a) >= needed]
        for i in sorted(set(range(len(arrays))) - set(kept)):
            logger.warning("%s has %d points, fewer than the smallest bucket + 1 (%d): skipped",
                           series_label(i, names), len(arrays[i]), needed)
        check_condition(len(kept) > 0, f"no series has at least {needed} points (the smallest bucket, "
                        f"{min(self.buckets)}, + 1 for the label); lengths: {[len(a) for a in arrays][:20]}")
        return kept

    def window_starts(self, position: int, length: int) -> np.ndarray:
        """Start indices (into the concatenated series) of the windows of batch ``position`` of the
        current epoch's global schedule, whose windows have ``length`` steps."""
        picks = self._rng(self.epoch, position).integers(0, self.windows_per_bucket[length], size=self.batch_size)
        return self._starts[picks].astype(np.int64)

    def locate(self, starts: np.ndarray) -> np.ndarray:
        """``(series index in the given list, index within that series)`` of concatenated positions: ``(N, 2)``."""
        starts = np.asarray(starts, dtype=np.int64)
        j = np.searchsorted(self.offsets, starts, side="right") - 1
        return np.stack([np.asarray(self.series_indices)[j], starts - self.offsets[j]], axis=1)

    def window_arrays(self, position: int, length: int) -> Tuple[np.ndarray, np.ndarray]:
        windows = self._values[self.window_starts(position, length)[:, None] + np.arange(length + 1)]
        if self.window_level == "last":
            windows = windows - windows[:, length - 1:length]
        labels = windows[:, length:] if self.label_mode == "last" else windows[:, 1:]
        return windows[:, :length, None], labels
