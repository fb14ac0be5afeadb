"""OpenMP threads of MXNet's operators while the library trains.

MXNet runs an operator's OpenMP loops with ``omp_get_max_threads()`` of the engine worker thread
that executes it; with ``OMP_NUM_THREADS=2`` set, every tiny operator of a fit batch (the
optimizer update, the loss sums, the input copies) forks two threads whose spinning competes
with the Python thread on a 2-core box (1.7x to 3.4x slower fits). :func:`operator_threads`
sets the worker threads' count for the duration of a block and restores it afterwards, by
running ``MXSetNumOMPThreads`` on the workers themselves (it sets the calling thread's count).
"""
import contextlib
import ctypes
import logging
import os
import threading
from typing import Iterator, List, Optional, Sequence

import mxnet as mx

logger = logging.getLogger(__name__)

_SYNC_FUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_BARRIER_SECONDS = 1.0


class _Context(ctypes.Structure):
    """MXNet's C++ ``Context`` (device type, device id), as ``MXEnginePushSync`` reads it."""

    _fields_ = [("dev_type", ctypes.c_int), ("dev_id", ctypes.c_int)]


def _openmp() -> Optional[ctypes.CDLL]:
    """The OpenMP runtime MXNet loaded (libgomp), to read a thread's count; ``None`` if there is none."""
    try:
        return ctypes.CDLL("libgomp.so.1")
    except OSError:
        return None


def _worker_threads() -> int:
    """Engine worker threads per CPU device (MXNET_CPU_WORKER_NTHREADS, MXNet's default 1; the naive
    engine runs operators on the calling thread)."""
    if os.environ.get("MXNET_ENGINE_TYPE", "").startswith("Naive"):
        return 1
    try:
        return max(1, int(os.environ.get("MXNET_CPU_WORKER_NTHREADS", "1")))
    except ValueError:
        return 1


def _on_workers(device_ids: Sequence[int], threads: Optional[List[int]]) -> List[int]:
    """Set the OpenMP thread count of every CPU engine worker of ``device_ids`` (``threads[i]`` for the
    i-th worker reached, or ``TRAINING_OMP_THREADS``); return the counts they had."""
    from .constants import TRAINING_OMP_THREADS
    gomp, workers = _openmp(), _worker_threads()
    previous: List[int] = []
    lock = threading.Lock()

    def run(rctx: int, param: int) -> None:
        with lock:
            index = len(previous)
            previous.append(gomp.omp_get_max_threads() if gomp is not None else 0)
        mx.base._LIB.MXSetNumOMPThreads(threads[index] if threads else TRAINING_OMP_THREADS)
        if workers > 1:  # hold this worker so that the next call lands on another one
            try:
                barrier.wait(_BARRIER_SECONDS)
            except threading.BrokenBarrierError:
                pass

    callback = _SYNC_FUNC(run)
    for device in device_ids:
        barrier = threading.Barrier(workers)
        context = _Context(1, device)  # kCPU
        for _ in range(workers):
            mx.base.check_call(mx.base._LIB.MXEnginePushSync(callback, None, None, ctypes.byref(context), None, 0,
                                                             None, 0, None, 0, b"sinlstm_omp_threads"))
        mx.nd.waitall()
    return previous


@contextlib.contextmanager
def operator_threads(contexts: Sequence[mx.Context]) -> Iterator[None]:
    """While active, MXNet's operators on the CPU ``contexts`` run with ``TRAINING_OMP_THREADS`` OpenMP
    threads whatever ``OMP_NUM_THREADS`` says; the previous counts are restored on exit."""
    devices = sorted({c.device_id for c in contexts if c.device_type == "cpu"})
    if not devices:
        yield
        return
    previous = _on_workers(devices, None)
    try:
        yield
    finally:
        if _openmp() is not None and all(previous):
            _on_workers(devices, previous)
