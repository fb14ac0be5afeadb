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
from typing import Callable, Iterator, List, Optional, Sequence

import mxnet as mx

from ..constants import TRAINING_OMP_THREADS

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


def on_cpu_workers(device_id: int, task: Callable[[int], None]) -> None:
    """Run ``task(i)`` on each engine worker thread of ``cpu(device_id)`` (``i`` counts the workers reached)
    and wait for all of them. With several workers each task holds its worker (up to a second) so that
    the next lands on another one."""
    workers, lock, reached = _worker_threads(), threading.Lock(), [0]
    barrier = threading.Barrier(workers)

    def run(rctx: int, param: int) -> None:
        with lock:
            index, reached[0] = reached[0], reached[0] + 1
        task(index)
        if workers > 1:
            try:
                barrier.wait(_BARRIER_SECONDS)
            except threading.BrokenBarrierError:
                pass

    callback = _SYNC_FUNC(run)  # kept alive until waitall returns
    context = _Context(1, device_id)  # kCPU
    for _ in range(workers):
        mx.base.check_call(mx.base._LIB.MXEnginePushSync(callback, None, None, ctypes.byref(context), None, 0, None,
                                                         0, None, 0, b"sinlstm_omp_threads"))
    mx.nd.waitall()


def worker_omp_threads(device_id: int = 0) -> List[int]:
    """``omp_get_max_threads()`` of each engine worker of ``cpu(device_id)`` (empty without libgomp)."""
    gomp = _openmp()
    counts: List[int] = []
    if gomp is None:
        logger.debug("no libgomp.so.1 in this process: the workers' OpenMP thread counts cannot be read or restored")
    else:
        on_cpu_workers(device_id, lambda index: counts.append(gomp.omp_get_max_threads()))
    return counts


def _set_worker_threads(device_id: int, counts: Sequence[int]) -> None:
    def task(index: int) -> None:
        mx.base._LIB.MXSetNumOMPThreads(counts[min(index, len(counts) - 1)])
    on_cpu_workers(device_id, task)


@contextlib.contextmanager
def operator_threads(contexts: Sequence[mx.Context], threads: int = TRAINING_OMP_THREADS) -> Iterator[None]:
    """While active, MXNet's operators on the CPU ``contexts`` run with ``threads`` OpenMP threads whatever
    ``OMP_NUM_THREADS`` says; the previous counts are restored on exit (when they can be read)."""
    devices = sorted({c.device_id for c in contexts if c.device_type == "cpu"})
    previous = {device: worker_omp_threads(device) for device in devices}
    for device in devices:
        _set_worker_threads(device, [threads])
    try:
        yield
    finally:
        for device, counts in previous.items():
            if counts:
                _set_worker_threads(device, counts)
