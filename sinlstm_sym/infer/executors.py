"""Bound inference executors of one model, per window length and row bucket, in a bounded LRU cache.

A request of ``n`` windows of length ``L`` runs through an executor bound for ``rows`` windows, the
smallest *row bucket* that holds them: a power of two (at least ``min_rows``) up to the length's chunk
(:func:`~sinlstm_sym.config.limits.chunk_rows`), so one window computes one window (or one 16-window block of the
native operator), not a chunk of 1024. The executors of one length share their intermediate memory
(``shared_exec``) and every executor shares the parameter arrays, so a length holds at most the
activations of its buckets (less than two chunks) and one copy of the parameters. At most
``max_lengths`` lengths are kept, least recently used evicted first.

Nothing here locks: the caller (the :class:`~sinlstm_sym.infer.predictor.Predictor`) serialises calls.
"""
import logging
from collections import OrderedDict
from typing import Callable, Dict, Iterator, Mapping, Optional, Set, Tuple

import mxnet as mx
import numpy as np

from ..constants import DATA_NAME, INPUT_SIZE

logger = logging.getLogger(__name__)

SymbolFactory = Callable[[int], mx.sym.Symbol]


def row_bucket(count: int, min_rows: int, chunk: int) -> int:
    """The rows of the executor that runs ``count`` windows.

    Parameters
    ----------
    count : int
        Windows of one forward pass, ``1 <= count <= chunk``.
    min_rows : int
        The smallest bucket (16 for the native operator, whose blocks hold 16 windows; else 1).
    chunk : int
        The most windows of one pass at this length (:func:`~sinlstm_sym.config.limits.chunk_rows`).

    Returns
    -------
    int
        The smallest power of two ``>= max(count, min_rows)``, or ``chunk`` where that is larger.

    Raises
    ------
    Nothing: the caller checks the arguments.

    Examples
    --------
    >>> [row_bucket(n, 16, 1024) for n in (1, 17, 100, 1000)]
    [16, 32, 128, 1024]
    >>> row_bucket(1, 16, 2)
    2
    """
    bucket = 1 << (max(count, min_rows) - 1).bit_length()
    return min(bucket, chunk)


def request_passes(count: int, min_rows: int, chunk: int) -> Iterator[Tuple[int, int, int]]:
    """The forward passes over ``count`` windows: full chunks, then the rest in its own bucket.

    Parameters
    ----------
    count, min_rows, chunk : int
        As :func:`row_bucket`, ``count`` any positive number.

    Returns
    -------
    iterator of (int, int, int)
        ``(start, rows, bucket)`` per pass.

    Raises
    ------
    Nothing: the caller checks the arguments.

    Examples
    --------
    >>> list(request_passes(2100, 16, 1024))
    [(0, 1024, 1024), (1024, 1024, 1024), (2048, 52, 64)]
    """
    for start in range(0, count, chunk):
        rows = min(chunk, count - start)
        yield start, rows, row_bucket(rows, min_rows, chunk)


def request_buckets(count: int, min_rows: int, chunk: int) -> Set[int]:
    """The distinct row buckets :func:`request_passes` uses for ``count`` windows, in constant time.

    Parameters
    ----------
    count, min_rows, chunk : int
        As :func:`request_passes`.

    Returns
    -------
    set of int
        At most two buckets: the chunk (if a full chunk runs) and the rest's.

    Raises
    ------
    Nothing: the caller checks the arguments.

    Examples
    --------
    >>> sorted(request_buckets(2100, 16, 1024))
    [64, 1024]
    """
    full, rest = divmod(count, chunk)
    buckets = {chunk} if full else set()
    if rest:
        buckets.add(row_bucket(rest, min_rows, chunk))
    return buckets


class _Bound:
    """One executor and its input; ``run`` writes windows in, runs forward and reads the output."""

    def __init__(self, executor: mx.executor.Executor, data: mx.nd.NDArray, host: Optional[np.ndarray]) -> None:
        self.executor, self.data, self.host = executor, data, host

    def run(self, windows: np.ndarray) -> np.ndarray:
        """Outputs of ``windows`` ``(rows, L)`` (``rows`` up to the bound rows; the rest run as zeros)."""
        rows = windows.shape[0]
        if self.host is not None:
            self.host[:rows] = windows
            self.host[rows:] = 0.0
        else:
            padded = np.zeros(self.data.shape, dtype=np.float32)
            padded[:rows, :, 0] = windows
            self.data[:] = padded
        self.executor.forward(is_train=False)
        return self.executor.outputs[0].asnumpy()[:rows]


def _input(rows: int, length: int, context: mx.Context) -> Tuple[mx.nd.NDArray, Optional[np.ndarray]]:
    """The data array of an executor and, on the first CPU, a writable numpy view of its memory.

    ``mx.nd.from_numpy(zero_copy=True)`` makes the NDArray on a buffer of ours (and marks the buffer
    read-only); the view made before is how requests are written in, with no engine operation: copying
    into an NDArray (``data[:] = x``) pushes two engine operations and waits for them, which costs 10 to
    60 us, up to half of a one-window request. It is safe because the only reader of this array is the
    executor's forward pass, and a request is written only after the previous one's outputs were read
    (``asnumpy`` returns once the forward pass is done), under the predictor's lock.
    """
    if context != mx.cpu(0):  # other devices: copy each request in
        return mx.nd.zeros((rows, length, INPUT_SIZE), ctx=context, dtype=np.float32), None
    buffer = np.zeros((rows, length, INPUT_SIZE), dtype=np.float32)
    host = buffer[:, :, 0]
    return mx.nd.from_numpy(buffer, zero_copy=True), host


class ExecutorCache:
    """Executors bound on demand per ``(length, rows)``, sharing ``params``; an LRU of ``max_lengths`` lengths.

    Parameters
    ----------
    symbol_for : callable
        ``symbol_for(length)``: the inference symbol for windows of ``length`` steps (data ``'data'``, NTC).
    params : mapping of str to mx.nd.NDArray
        The parameter arrays in the symbol's layout, shared by every executor (never copied).
    context : mx.Context
        Where the executors run.
    max_lengths : int
        How many lengths keep their executors.

    Raises
    ------
    Nothing when made; ``get`` raises MXNet's errors of a symbol that does not bind.

    Examples
    --------
    >>> cache = ExecutorCache(symbol_for, params, mx.cpu(), max_lengths=16)  # doctest: +SKIP
    >>> cache.get(20, 16).run(windows)  # windows (1, 20) -> outputs (1, 20)  # doctest: +SKIP
    """

    def __init__(self, symbol_for: SymbolFactory, params: Mapping[str, mx.nd.NDArray], context: mx.Context,
                 max_lengths: int) -> None:
        self._symbol_for, self._params, self._context = symbol_for, dict(params), context
        self._max_lengths = max_lengths
        self._lengths: "OrderedDict[int, Dict[int, _Bound]]" = OrderedDict()

    @property
    def lengths(self) -> Tuple[int, ...]:
        """The lengths with bound executors, least recently used first."""
        return tuple(self._lengths)

    def rows_bound(self, length: int) -> Tuple[int, ...]:
        """The row buckets bound for ``length``, ascending (empty if none)."""
        return tuple(sorted(self._lengths.get(length, {})))

    def get(self, length: int, rows: int) -> _Bound:
        """The executor for ``rows`` windows of ``length`` steps, bound on first use."""
        buckets = self._lengths.get(length)
        if buckets is None:
            buckets = self._lengths[length] = {}
            while len(self._lengths) > self._max_lengths:
                self._lengths.popitem(last=False)
        else:
            self._lengths.move_to_end(length)
        bound = buckets.get(rows)
        if bound is None:
            shared = next(iter(buckets.values())).executor if buckets else None
            bound = buckets[rows] = self._bind(length, rows, shared)
        return bound

    def _bind(self, length: int, rows: int, shared: Optional[mx.executor.Executor]) -> _Bound:
        symbol = self._symbol_for(length)
        data, host = _input(rows, length, self._context)
        args = dict(self._params)
        args[DATA_NAME] = data
        executor = symbol.bind(self._context, args=args, grad_req="null", shared_exec=shared)
        logger.debug("bound an inference executor for %d window(s) of length %d", rows, length)
        return _Bound(executor, data, host)
