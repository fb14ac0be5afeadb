"""The native stack's forward pass called directly, without MXNet's engine: serving one request in one call.

The library built for the native operator (:func:`~sinlstm_sym.native.load_native`) also exports a plain C
interface (``sinlstm_direct_*`` in ``lstm_stack.cc``): a model made once from the parameter vectors in the
operator's layout, then a forward pass on numpy buffers of the caller. It computes every block of 16 windows
with the operator's own code, so its outputs are bit-identical to an inference executor's, and it skips what a
request through MXNet costs besides: the hand-over to the engine's worker thread and back, and the copies in
and out of NDArrays. ctypes releases the GIL during the call.

:func:`load_direct` opens the library once per process; when it cannot (an older library without the
interface, or ctypes failing), it logs one warning and returns ``None``, and the
:class:`~sinlstm_sym.infer.predictor.Predictor` serves through its executors instead.
"""
import ctypes
import logging
import threading
import weakref
from typing import Optional, Sequence, Union

import numpy as np

from ..core.checks import check_condition
from ..recurrence.params import fused_shapes
from . import NativeUnavailableError, load_native

logger = logging.getLogger(__name__)

__all__ = ["DirectStack", "load_direct", "DIRECT_VERSION"]

DIRECT_VERSION = 1  # the interface version this module speaks (sinlstm_direct_version() in lstm_stack.cc)
_ERROR_BYTES = 512

_LOCK = threading.Lock()
_LIBRARY: Union[None, ctypes.CDLL, str] = None  # the library once opened, the reason once that failed


def _declare(library: ctypes.CDLL) -> ctypes.CDLL:
    """``library`` with the argument and result types of its direct interface; ``AttributeError`` when a
    function is missing, ``OSError`` when its version is not :data:`DIRECT_VERSION`."""
    library.sinlstm_direct_version.argtypes, library.sinlstm_direct_version.restype = [], ctypes.c_int
    version = library.sinlstm_direct_version()
    if version != DIRECT_VERSION:
        raise OSError(f"its direct interface has version {version}, this package speaks {DIRECT_VERSION}")
    create = library.sinlstm_direct_create
    create.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int), ctypes.c_int, ctypes.c_int,
                       ctypes.c_char_p, ctypes.c_size_t]
    create.restype = ctypes.c_void_p
    forward = library.sinlstm_direct_forward
    forward.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int,
                        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    forward.restype = ctypes.c_int
    library.sinlstm_direct_free.argtypes, library.sinlstm_direct_free.restype = [ctypes.c_void_p], None
    return library


def _open() -> ctypes.CDLL:
    """The built library (the one MXNet loaded) opened with ctypes and declared."""
    return _declare(ctypes.CDLL(str(load_native().path)))


def load_direct() -> Optional[ctypes.CDLL]:
    """The native library's direct interface, opened once per process; ``None`` when it cannot be used.

    Returns
    -------
    ctypes.CDLL or None
        The library with its ``sinlstm_direct_*`` functions declared, or ``None`` (the first failure is logged
        as one warning naming the reason; later calls return ``None`` silently).

    Raises
    ------
    Nothing: every failure is reported by the warning.
    """
    global _LIBRARY
    with _LOCK:
        if _LIBRARY is None:
            try:
                _LIBRARY = _open()
            except (NativeUnavailableError, OSError, AttributeError) as err:
                _LIBRARY = f"{type(err).__name__}: {err}"
                logger.warning("the native operator's direct interface is unavailable, predictions run through "
                               "MXNet's executors instead: %s", _LIBRARY)
        library = _LIBRARY
    return None if isinstance(library, str) else library


class DirectStack:
    """One model of the native stack, called directly: its parameters prepared once, then any number of
    forward passes, from any number of threads at once.

    Parameters
    ----------
    library : ctypes.CDLL
        What :func:`load_direct` returned.
    params : sequence of numpy.ndarray
        One flat parameter vector per layer, first layer first, in the operator's layout (``lstm{i}_parameters``
        of :func:`~sinlstm_sym.recurrence.params.fused_shapes`); the library keeps its own copy.
    hidden_sizes : sequence of int
        The hidden size of each layer, the last one 1.
    input_size : int, default 1
        Features per step.

    Raises
    ------
    ValueError
        If ``params`` do not have the shapes of ``hidden_sizes``, or the library refuses the model (its message).
    """

    def __init__(self, library: ctypes.CDLL, params: Sequence[np.ndarray], hidden_sizes: Sequence[int],
                 input_size: int = 1) -> None:
        expected = fused_shapes(hidden_sizes, input_size).values()
        vectors = [np.ascontiguousarray(v, dtype=np.float32) for v in params]
        check_condition([v.shape for v in vectors] == list(expected), f"params must be one vector per layer of "
                        f"shapes {list(expected)}, got {[v.shape for v in vectors]}")
        pointers = (ctypes.c_void_p * len(vectors))(*(v.ctypes.data for v in vectors))
        sizes = (ctypes.c_int * len(hidden_sizes))(*hidden_sizes)
        error = ctypes.create_string_buffer(_ERROR_BYTES)
        handle = library.sinlstm_direct_create(pointers, sizes, len(hidden_sizes), input_size, error, _ERROR_BYTES)
        if not handle:
            raise ValueError(error.value.decode(errors="replace"))
        self._library, self._handle, self.input_size = library, handle, input_size
        self._release = weakref.finalize(self, library.sinlstm_direct_free, handle)

    def forward(self, windows: np.ndarray, last_step: bool) -> np.ndarray:
        """The last layer's hidden state for ``windows``.

        Parameters
        ----------
        windows : numpy.ndarray
            ``(N, L)`` (one feature per step) or ``(N, L, input_size)``, any real dtype (computed in float32).
        last_step : bool
            Return the last step only.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, L)``, or ``(N, 1)`` with ``last_step``.

        Raises
        ------
        ValueError
            If ``windows`` has another shape.
        MemoryError
            If the library cannot allocate its scratch memory.
        """
        x = np.ascontiguousarray(windows, dtype=np.float32)
        shaped = x.ndim == 3 and x.shape[2] == self.input_size or x.ndim == 2 and self.input_size == 1
        if not shaped or 0 in x.shape:
            raise ValueError(f"windows must have shape (N, L, {self.input_size}) with N, L >= 1"
                             f"{' or (N, L)' if self.input_size == 1 else ''}, got {np.shape(windows)}")
        rows, length = x.shape[0], x.shape[1]
        out = np.empty((rows, 1 if last_step else length), dtype=np.float32)
        error = ctypes.create_string_buffer(_ERROR_BYTES)
        if self._library.sinlstm_direct_forward(self._handle, x.ctypes.data, rows, length, int(last_step),
                                                out.ctypes.data, error, _ERROR_BYTES):
            raise MemoryError(error.value.decode(errors="replace"))
        return out
