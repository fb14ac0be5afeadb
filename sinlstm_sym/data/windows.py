"""Bucketed sine windows: pure schedule/window functions and the ``SinBucketIter``.

A window of length ``L`` starts at ``t0 ~ U[t_low, t_high)`` and has time stamps
``t_k = t0 + step * k`` for ``k = 0 .. L-1``. Its labels are values of ``target``
one step ahead: ``target(t0 + step * L)`` for the last step only, or
``target(t_{k+1})`` at every step.
"""
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..core.checks import (check_bool, check_choice, check_condition, check_float, check_int, check_int_sequence,
                     check_name, check_weights)
from ..constants import (DATA_LAYOUT, DATA_NAME, DEFAULT_BATCH_SIZE, DEFAULT_BUCKETS, DEFAULT_FEATURE,
                        DEFAULT_LABEL_MODE, DEFAULT_NUM_SAMPLES, DEFAULT_STEP, DEFAULT_T_RANGE, DTYPES, FEATURES,
                        LABEL_MODES, LABEL_NAME, WINDOW_CHUNK_BATCHES)
from ..config.limits import available_memory

if TYPE_CHECKING:
    from ..config.fit_config import DataConfig, ModelConfig


def half_sine(t: np.ndarray) -> np.ndarray:
    """The original's target: ``sin(t) / 2``."""
    return np.sin(t) / 2.0


def allocate_batches(num_batches: int, weights: Sequence[float]) -> List[int]:
    """Share ``num_batches`` among buckets (in ascending length order) in proportion to ``weights``.

    Largest-remainder rule, in exact rational arithmetic: bucket ``i`` first gets
    ``floor(num_batches * w_i / sum(w))``; the batches left over go one each to the
    buckets with the largest fractional parts, ties going to the shorter bucket. The
    counts always sum to ``num_batches``.
    """
    exact = [Fraction(w) for w in weights]
    total = sum(exact)
    quotas = [num_batches * w / total for w in exact]
    counts = [int(q) for q in quotas]
    left = num_batches - sum(counts)
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def batch_schedule(buckets: Sequence[int], counts: Sequence[int], shuffle: bool,
                   rng: np.random.Generator) -> np.ndarray:
    """The bucket key of every batch of one epoch (an int array): ascending, or shuffled with ``rng``."""
    pairs = sorted(zip(buckets, counts))
    keys = np.repeat(np.array([k for k, _ in pairs], dtype=np.int64), [n for _, n in pairs])
    return keys[rng.permutation(len(keys))] if shuffle else keys


def shard_positions(schedule: np.ndarray, num_parts: int, part_index: int) -> np.ndarray:
    """Positions in ``schedule`` that belong to part ``part_index``: the k-th batch of each key goes to
    part ``k % num_parts``, so the parts are disjoint, cover the schedule and share each key evenly."""
    if num_parts == 1:
        return np.arange(len(schedule))
    order = np.argsort(schedule, kind="stable")
    ordered = schedule[order]
    occurrence = np.empty(len(schedule), dtype=np.int64)
    occurrence[order] = np.arange(len(schedule)) - np.searchsorted(ordered, ordered, side="left")
    return np.flatnonzero(occurrence % num_parts == part_index)


# Bytes an epoch's schedule needs per batch while it is built (keys, permutation, sharding arrays).
SCHEDULE_BYTES_PER_BATCH = 48


def make_windows(t0: np.ndarray, length: int, step: float, label_mode: str, feature: str,
                 target: Callable[[np.ndarray], np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Inputs ``(N, length, 1)`` and labels (``(N, 1)`` or ``(N, length)``) for start times ``t0``."""
    t = np.asarray(t0, dtype=np.float64)[:, None] + step * np.arange(length + 1)
    values = target(t)
    inputs = t[:, :length] if feature == "time" else values[:, :length]
    labels = values[:, length:] if label_mode == "last" else values[:, 1:]
    return inputs[:, :, None], labels


def _to_ndarray(values: np.ndarray, dtype: str) -> mx.nd.NDArray:
    """Hand a fresh numpy array to MXNet without a copy or an engine sync (``mx.nd.array`` waits
    for every operation queued before it, which serialises data preparation with training)."""
    return mx.nd.from_numpy(np.ascontiguousarray(values, dtype=dtype), zero_copy=True)


def label_shape(batch_size: int, length: int, label_mode: str) -> Tuple[int, int]:
    """Shape of the label array of a batch."""
    return (batch_size, 1) if label_mode == "last" else (batch_size, length)


def _check_target(target: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    check_condition(callable(target), f"target must be a callable numpy function of t, got {target!r}", TypeError)
    probe = np.linspace(0.0, 1.0, 6).reshape(2, 3)
    try:
        out = np.asarray(target(probe), dtype=np.float64)
    except Exception as err:  # the user's function: report what it raised, as ours
        raise ValueError(f"target must map a float array to an array of the same shape; "
                         f"target(array of shape (2, 3)) raised {type(err).__name__}: {err}") from err
    check_condition(out.shape == probe.shape,
                    f"target must return an array of the input's shape (2, 3), got shape {out.shape}")
    return target


class BucketWindowIter(mx.io.DataIter):
    """The bucketing contract and its guarantees, shared by the library's iterators.

    Every batch holds ``batch_size`` windows of one length ``L`` (``bucket_key == L``): data
    ``(batch_size, L, 1)`` in layout ``NTC``, labels ``(batch_size, 1)`` (``label_mode='last'``)
    or ``(batch_size, L)`` (``'sequence'``). One epoch has ``num_samples // batch_size`` full
    batches, shared among the buckets by :func:`allocate_batches` in proportion to
    ``length_weights``; batch order from a generator seeded by ``(seed, epoch)``, each batch's
    windows by ``(seed, epoch, batch)``; ``num_parts``/``part_index`` shard one global epoch
    (:func:`shard_positions`); ``set_epoch`` positions it for a resume; ``refresh=False`` makes
    ``reset()`` replay the same epoch. A subclass calls :meth:`_setup_buckets` first and
    :meth:`_setup_epochs` last in its ``__init__``, and implements :meth:`window_arrays`.
    """

    def _setup_buckets(self, buckets: Sequence[int], batch_size: int, length_weights: Optional[Sequence[float]],
                       label_mode: str, shuffle: bool, seed: Optional[int], data_name: str, label_name: str,
                       dtype: str, num_parts: int, part_index: int, refresh: bool) -> None:
        given = check_int_sequence("buckets", buckets, minimum=1)
        self.buckets = tuple(sorted(given))
        super().__init__(check_int("batch_size", batch_size, minimum=1))
        weights = (1.0,) * len(given) if length_weights is None else check_weights(
            "length_weights", length_weights, len(given))
        by_key = dict(zip(given, weights))
        self.length_weights = tuple(by_key[k] for k in self.buckets)
        self.label_mode = check_choice("label_mode", label_mode, LABEL_MODES)
        self.shuffle = check_bool("shuffle", shuffle)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        self.seed = check_int("seed", seed, minimum=0)
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

    def _setup_epochs(self, num_samples: int) -> None:
        batch_size = self.batch_size
        self.num_samples = check_int("num_samples", num_samples, minimum=batch_size)
        self.num_batches = self.num_samples // batch_size // self.num_parts
        check_condition(self.num_batches >= 1, f"num_samples={num_samples} gives fewer than one batch of "
                        f"{batch_size} per part for num_parts={self.num_parts}", settings=("num_samples", "batch_size"))
        needed, free = self.num_batches * self.num_parts * SCHEDULE_BYTES_PER_BATCH, available_memory()
        check_condition(needed <= free // 2, f"num_samples={num_samples} gives {self.num_batches * self.num_parts} "
                        f"batches of {batch_size} per epoch, whose schedule needs {needed / 2 ** 30:.3g} GiB; "
                        f"{free / 2 ** 30:.3g} GiB are free: use fewer windows per epoch and more epochs",
                        settings=("num_samples", "batch_size"))
        self.batches_per_bucket: Dict[int, int] = dict(
            zip(self.buckets, allocate_batches(self.num_batches, self.length_weights)))
        self.default_bucket_key = max(self.buckets)
        self.epoch = 0
        self._start_epoch()

    def window_arrays(self, position: int, length: int) -> Tuple[np.ndarray, np.ndarray]:
        """Inputs ``(B, length, 1)`` and labels of batch ``position`` of the current epoch's global schedule."""
        raise NotImplementedError

    def group_arrays(self, positions: Sequence[int], length: int) -> Tuple[np.ndarray, np.ndarray]:
        """The :meth:`window_arrays` of several batches of one ``length``, stacked along the batch axis
        (a subclass may generate them in one vectorised call; the windows must be the same)."""
        groups = [self.window_arrays(p, length) for p in positions]
        return np.concatenate([g[0] for g in groups]), np.concatenate([g[1] for g in groups])

    def _prepare_chunk(self) -> None:
        """Generate the next ``WINDOW_CHUNK_BATCHES`` batches, one call and one MXNet array per length:
        each batch is then a view of its length's array."""
        cursors = np.arange(self.cursor, min(self.cursor + WINDOW_CHUNK_BATCHES, len(self.schedule)))
        lengths = self.schedule[cursors]
        batch = self.batch_size
        for length in np.unique(lengths):
            chosen = cursors[lengths == length]
            inputs, labels = self.group_arrays([int(p) for p in self.batch_indices[chosen]], int(length))
            data, label = _to_ndarray(inputs, self.dtype), _to_ndarray(labels, self.dtype)
            for i, cursor in enumerate(chosen):
                self._ready[int(cursor)] = (data[i * batch:(i + 1) * batch], label[i * batch:(i + 1) * batch])

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
        self._ready: Dict[int, Tuple[mx.nd.NDArray, mx.nd.NDArray]] = {}  # cursor -> generated (data, label)

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
        self._ready = {}

    def iter_next(self) -> bool:
        return self.cursor < len(self.schedule)

    def next(self) -> mx.io.DataBatch:
        if not self.iter_next():
            raise StopIteration
        length = int(self.schedule[self.cursor])
        if self.cursor not in self._ready:
            self._prepare_chunk()
        data, label = self._ready.pop(self.cursor)
        self.cursor += 1
        return mx.io.DataBatch(data=[data], label=[label], pad=0, bucket_key=length,
                               provide_data=self.data_desc(length), provide_label=self.label_desc(length))

    def __len__(self) -> int:
        return self.num_batches


class SinBucketIter(BucketWindowIter):
    """Sine windows of several lengths, one bucket per unroll length, for ``BucketingModule``.

    Every batch holds ``batch_size`` windows of one length ``L`` (``bucket_key == L``):
    data ``(batch_size, L, 1)`` in layout ``NTC``; labels ``(batch_size, 1)`` for
    ``label_mode='last'`` or ``(batch_size, L)`` for ``'sequence'`` (the default). One epoch has
    ``num_samples // batch_size`` full batches (never a padded one), shared among the
    buckets by :func:`allocate_batches` (largest remainder) in proportion to
    ``length_weights``. ``provide_data``/``provide_label`` and ``default_bucket_key``
    describe the largest bucket; each batch carries its own descriptions. Window ``i`` starts at
    ``t0 ~ U[t_low, t_high)``. The defaults are :func:`~sinlstm_sym.train.fit.fit`'s (its
    ``DataConfig``'s), so ``fit(train_iter=SinBucketIter(**a))`` trains as ``fit(**a)`` does;
    :meth:`from_config` builds the iterator of a configuration.

    Randomness comes only from private generators seeded by ``(seed, epoch)`` (the batch
    order) and ``(seed, epoch, batch)`` (each batch's windows): the same ``seed`` yields
    the same batches, epoch after epoch, and numpy's and MXNet's global generators are
    never used. With ``seed=None`` a seed is drawn once and kept in :attr:`seed`, so a
    run can be repeated after the fact. ``refresh=False`` makes ``reset()`` replay the same
    epoch, as a fixed held-out set should.

    Sharding for data-parallel workers: ``num_parts`` iterators with ``part_index`` 0 ..
    ``num_parts - 1`` and the same seed split one global epoch of ``num_parts *
    num_batches`` batches. The k-th batch of each bucket in the global order goes to part
    ``k % num_parts``, so the parts are disjoint, cover the epoch, and each has exactly
    ``num_batches`` batches with the same bucket mix (every worker runs the same number
    of updates, as ``dist_sync`` requires).

    Parameters
    ----------
    buckets : sequence of int, default (1, ..., 9, 12, 16, 20)
        Window lengths, one bucket each.
    batch_size : int, default 100
        Windows per batch.
    num_samples : int, default 100000
        Windows per epoch (``num_samples // batch_size`` full batches).
    length_weights : sequence of float, optional
        Relative frequency of each bucket (default: equal).
    label_mode : {'sequence', 'last'}
        Labels at every step, or after the last step only.
    feature : {'time', 'value'}
        Input at each step: the time stamp, or the value ``sin(t)/2``.
    step : float, default 0.01
        Time between two steps.
    t_low, t_high : float, default -0.1, 1.12
        Windows start at ``t0 ~ U[t_low, t_high)``.
    target : callable, optional
        The function the labels are values of (default ``sin(t) / 2``).
    shuffle : bool, default True
        Shuffle the order of the batches in each epoch.
    seed : int, optional
        Seed of the batch order and the windows (``None``: drawn, kept in :attr:`seed`).
    data_name, label_name : str
        Names of the data and label inputs.
    dtype : str, default 'float32'
        Data type of the arrays.
    num_parts, part_index : int, default 1, 0
        This iterator's share of the epoch among ``num_parts`` workers.
    refresh : bool, default True
        ``False``: every ``reset()`` replays the same windows (a fixed held-out set).

    Raises
    ------
    ValueError, TypeError
        An argument out of range or of the wrong kind, naming it and what is accepted.

    Examples
    --------
    >>> from sinlstm_sym import SinBucketIter
    >>> it = SinBucketIter(buckets=[3, 5], batch_size=4, num_samples=40, seed=0)
    >>> batch = next(iter(it))
    >>> batch.data[0].shape[1] == batch.bucket_key, len(it)
    (True, 10)
    """

    def __init__(self, buckets: Sequence[int] = DEFAULT_BUCKETS, batch_size: int = DEFAULT_BATCH_SIZE,
                 num_samples: int = DEFAULT_NUM_SAMPLES, length_weights: Optional[Sequence[float]] = None,
                 label_mode: str = DEFAULT_LABEL_MODE, feature: str = DEFAULT_FEATURE, step: float = DEFAULT_STEP,
                 t_low: float = DEFAULT_T_RANGE[0], t_high: float = DEFAULT_T_RANGE[1],
                 target: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 shuffle: bool = True, seed: Optional[int] = None, data_name: str = DATA_NAME,
                 label_name: str = LABEL_NAME,
                 dtype: str = "float32", num_parts: int = 1, part_index: int = 0, refresh: bool = True) -> None:
        self._setup_buckets(buckets, batch_size, length_weights, label_mode, shuffle, seed, data_name, label_name,
                            dtype, num_parts, part_index, refresh)
        self.feature = check_choice("feature", feature, FEATURES)
        self.step = check_float("step", step, minimum=0.0, strict_minimum=True)
        self.t_low = check_float("t_low", t_low)
        self.t_high = check_float("t_high", t_high)
        check_condition(self.t_high > self.t_low, f"t_high must be > t_low, got t_low={t_low!r}, t_high={t_high!r}")
        check_condition(np.isfinite(self.t_high - self.t_low + self.step * (max(self.buckets) + 1)),
                        f"t_high - t_low must be a finite range, got t_low={t_low!r}, t_high={t_high!r}")
        largest = float(np.finfo(self.dtype).max)
        check_condition(max(abs(self.t_low), abs(self.t_high) + self.step * (max(self.buckets) + 1)) < largest,
                        f"t_low and t_high must keep every time stamp within {self.dtype} (|t| < {largest:.3g}), "
                        f"got t_low={t_low!r}, t_high={t_high!r}")
        self.target = half_sine if target is None else _check_target(target)
        self._setup_epochs(num_samples)

    @classmethod
    def from_config(cls, data: "DataConfig", model: Optional["ModelConfig"] = None, **kwargs: Any) -> "SinBucketIter":
        """The windows :func:`~sinlstm_sym.train.fit.fit` trains on for these sections: ``data``'s lengths,
        batch size, windows per epoch, length weights and start times, ``model``'s label mode and feature
        (without ``model``: the defaults); ``kwargs`` are the other arguments (``seed``, ``num_parts``, ...)."""
        from ..config.fit_config import DataConfig, ModelConfig
        check_condition(isinstance(data, DataConfig), f"data must be a DataConfig, got {type(data).__name__}",
                        TypeError)
        model = ModelConfig() if model is None else model
        check_condition(isinstance(model, ModelConfig), f"model must be a ModelConfig or None, got "
                        f"{type(model).__name__}", TypeError)
        return cls(data.buckets, batch_size=data.batch_size, num_samples=data.num_samples,
                   length_weights=data.length_weights, label_mode=model.label_mode, feature=model.feature,
                   t_low=data.t_low, t_high=data.t_high, **kwargs)

    def start_times(self, position: int) -> np.ndarray:
        """Start times of the windows of batch ``position`` of the current epoch's global schedule."""
        return np.asarray(self._rng(self.epoch, position).uniform(self.t_low, self.t_high, size=self.batch_size))

    def window_arrays(self, position: int, length: int) -> Tuple[np.ndarray, np.ndarray]:
        return make_windows(self.start_times(position), length, self.step, self.label_mode, self.feature,
                            self.target)

    def group_arrays(self, positions: Sequence[int], length: int) -> Tuple[np.ndarray, np.ndarray]:
        """Every window of the batches at ``positions`` in one call: each row is computed as
        :meth:`window_arrays` computes it (same start time, time stamps and ``target`` row)."""
        t0 = np.concatenate([self.start_times(p) for p in positions])
        return make_windows(t0, length, self.step, self.label_mode, self.feature, self.target)
