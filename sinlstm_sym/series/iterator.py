"""``SeriesBucketIter``: windows of several lengths cut from real series, for ``BucketingModule``."""
import logging
from typing import Any, Dict, List, Optional, Sequence, Union

import mxnet as mx
import numpy as np

from ..checks import check_bool, check_choice, check_condition, check_int, check_int_sequence, check_name, \
    check_weights
from ..constants import DATA_LAYOUT, DATA_NAME, DEFAULT_BATCH_SIZE, DEFAULT_LABEL_MODE, DTYPES, LABEL_MODES, \
    LABEL_NAME
from ..data import SCHEDULE_BYTES_PER_BATCH, allocate_batches, available_memory, batch_schedule, label_shape, \
    shard_positions
from .data import DEFAULT_SCALING, Scaling, check_series, series_label

logger = logging.getLogger(__name__)


class SeriesBucketIter(mx.io.DataIter):
    """Windows of the lengths in ``buckets`` cut from a list of 1-D series, one bucket per length.

    A window of length ``L`` starting at index ``s`` of a series has inputs ``x[s:s+L]`` and
    labels ``x[s+1:s+L+1]`` (``label_mode='sequence'``) or ``x[s+L]`` (``'last'``): the next
    value. A window never spans two series. Every batch holds ``batch_size`` windows of one
    length (``bucket_key == L``), data ``(B, L, 1)`` in ``NTC``, drawn uniformly with
    replacement from all windows of that length; values are scaled by ``scaling``
    (``'standard'``, ``'range'``, ``'none'`` fitted on ``series``, or a :class:`Scaling`).

    Same contract and guarantees as :class:`~sinlstm_sym.data.SinBucketIter`: one epoch has
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
                 refresh: bool = True, names: Optional[Sequence[str]] = None) -> None:
        given = check_int_sequence("buckets", buckets, minimum=1)
        self.buckets = tuple(sorted(given))
        batch_size = check_int("batch_size", batch_size, minimum=1)
        super().__init__(batch_size)
        weights = (1.0,) * len(given) if length_weights is None else check_weights(
            "length_weights", length_weights, len(given))
        by_key = dict(zip(given, weights))
        self.length_weights = tuple(by_key[k] for k in self.buckets)
        self.label_mode = check_choice("label_mode", label_mode, LABEL_MODES)
        self.shuffle = check_bool("shuffle", shuffle)
        self.data_name = check_name("data_name", data_name)
        self.label_name = check_name("label_name", label_name)
        check_condition(self.data_name != self.label_name,
                        f"data_name and label_name must differ, both are {data_name!r}")
        self.dtype = check_choice("dtype", dtype, DTYPES)
        self.num_parts = check_int("num_parts", num_parts, minimum=1)
        self.part_index = check_int("part_index", part_index, minimum=0)
        check_condition(self.part_index < self.num_parts,
                        f"part_index must be < num_parts ({self.num_parts}), got {part_index}")
        self.refresh = check_bool("refresh", refresh)

        arrays = check_series(series, names)
        kept = self._usable(arrays, names)
        if isinstance(scaling, Scaling):
            self.scaling = scaling
        else:
            check_condition(isinstance(scaling, str), f"scaling must be a Scaling or one of 'standard', 'range', "
                            f"'none', got {scaling!r}", TypeError)
            self.scaling = Scaling.fit([arrays[i] for i in kept], scaling)
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
            num_samples = max(batch_size * self.num_parts, sum(self.windows_per_bucket.values()))
        self.num_samples = check_int("num_samples", num_samples, minimum=batch_size)
        self.num_batches = self.num_samples // batch_size // self.num_parts
        check_condition(self.num_batches >= 1, f"num_samples={num_samples} gives fewer than one batch of "
                        f"{batch_size} per part for num_parts={self.num_parts}")
        needed, free = self.num_batches * self.num_parts * SCHEDULE_BYTES_PER_BATCH, available_memory()
        check_condition(needed <= free // 2, f"num_samples={num_samples} gives {self.num_batches * self.num_parts} "
                        f"batches of {batch_size} per epoch, whose schedule needs {needed / 2 ** 30:.3g} GiB; "
                        f"{free / 2 ** 30:.3g} GiB are free: use fewer windows per epoch and more epochs")
        self.batches_per_bucket: Dict[int, int] = dict(
            zip(self.buckets, allocate_batches(self.num_batches, self.length_weights)))
        self.default_bucket_key = max(self.buckets)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed = check_int("seed", seed, minimum=0)
        self.epoch = 0
        self._start_epoch()

    def _usable(self, arrays: List[np.ndarray], names: Optional[Sequence[str]]) -> List[int]:
        needed = min(self.buckets) + 1
        kept = [i for i, a in enumerate(arrays) if len(a) >= needed]
        for i in sorted(set(range(len(arrays))) - set(kept)):
            logger.warning("%s has %d points, fewer than the smallest bucket + 1 (%d): skipped",
                           series_label(i, names), len(arrays[i]), needed)
        check_condition(len(kept) > 0, f"no series has at least {needed} points (the smallest bucket, "
                        f"{min(self.buckets)}, + 1 for the label); lengths: {[len(a) for a in arrays][:20]}")
        return kept

    # --- description -------------------------------------------------------
    def data_desc(self, length: int) -> List[mx.io.DataDesc]:
        """``provide_data`` of a batch of windows of ``length``."""
        return [mx.io.DataDesc(self.data_name, (self.batch_size, length, 1), np.dtype(self.dtype), DATA_LAYOUT)]

    def label_desc(self, length: int) -> List[mx.io.DataDesc]:
        """``provide_label`` of a batch of windows of ``length``."""
        return [mx.io.DataDesc(self.label_name, label_shape(self.batch_size, length, self.label_mode),
                               np.dtype(self.dtype), "NT")]

    @property
    def provide_data(self) -> List[mx.io.DataDesc]:
        return self.data_desc(self.default_bucket_key)

    @property
    def provide_label(self) -> List[mx.io.DataDesc]:
        return self.label_desc(self.default_bucket_key)

    # --- iteration ---------------------------------------------------------
    def _rng(self, epoch: int, batch: Optional[int] = None) -> np.random.Generator:
        key = (epoch,) if batch is None else (epoch, batch)
        return np.random.default_rng(np.random.SeedSequence(entropy=self.seed, spawn_key=key))

    def _start_epoch(self) -> None:
        counts = [self.batches_per_bucket[k] * self.num_parts for k in self.buckets]
        self.global_schedule = batch_schedule(self.buckets, counts, self.shuffle, self._rng(self.epoch))
        self.batch_indices = shard_positions(self.global_schedule, self.num_parts, self.part_index)
        self.schedule = self.global_schedule[self.batch_indices]
        self.cursor = 0

    def reset(self) -> None:
        """Start the next epoch, with fresh windows (``refresh=False``: the same windows again)."""
        if self.refresh:
            self.epoch += 1
        self._start_epoch()

    def set_epoch(self, epoch: int, cursor: int = 0) -> None:
        """Position the iterator at batch ``cursor`` of ``epoch`` (for resuming a run)."""
        self.epoch = check_int("epoch", epoch, minimum=0)
        cursor = check_int("cursor", cursor, minimum=0)
        check_condition(cursor <= self.num_batches, f"cursor must be <= {self.num_batches}, got {cursor}")
        self._start_epoch()
        self.cursor = cursor

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

    def iter_next(self) -> bool:
        return self.cursor < len(self.schedule)

    def next(self) -> mx.io.DataBatch:
        if not self.iter_next():
            raise StopIteration
        length = int(self.schedule[self.cursor])
        starts = self.window_starts(int(self.batch_indices[self.cursor]), length)
        windows = self._values[starts[:, None] + np.arange(length + 1)]
        inputs = windows[:, :length, None]
        labels = windows[:, length:] if self.label_mode == "last" else windows[:, 1:]
        self.cursor += 1
        return mx.io.DataBatch(
            data=[_to_ndarray(inputs)], label=[_to_ndarray(labels)], pad=0, bucket_key=length,
            provide_data=self.data_desc(length), provide_label=self.label_desc(length))

    def __len__(self) -> int:
        return self.num_batches


def _to_ndarray(values: np.ndarray) -> mx.nd.NDArray:
    """A fresh contiguous numpy array to MXNet without a copy or an engine sync (as SinBucketIter does)."""
    return mx.nd.from_numpy(np.ascontiguousarray(values), zero_copy=True)
