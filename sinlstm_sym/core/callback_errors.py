"""Exceptions raised inside MXNet's ctypes callbacks, above all the kvstore's updater.

With a kvstore that updates the weights itself (``local``/``device`` with several devices, every ``dist_*``),
MXNet calls the Python updater (the optimizer's ``update``, the learning-rate schedule) from C through ctypes.
An exception there cannot propagate: Python prints "Exception ignored on calling ctypes callback function"
(through ``sys.unraisablehook``) and MXNet goes on, so training would continue with updates skipped and end
with exit status 0. Here such an exception fails the run:

- in the training process, :func:`callback_errors` records it while training runs and the trainer raises
  :class:`UpdaterError` (chained to it) at the next batch boundary;
- on a ps-lite server, where the ``dist_*`` kvstores run the updater, :data:`SERVER_NODE_CODE` (the code the
  launcher runs for a scheduler or server) prints it and ends the server with exit status 1, so the launcher
  stops the whole job with a non-zero status.
"""
import contextlib
import sys
from typing import Any, Iterator, List

CTYPES_CALLBACK = "ctypes callback"  # in the err_msg Python gives such an exception
SERVER_FAILURE_EXIT = 1

# Importing mxnet runs the scheduler or server and then calls sys.exit(); getting past the import is an error.
SERVER_NODE_CODE = f"""import os, sys
def _fail_on_callback_error(unraisable):
    sys.__unraisablehook__(unraisable)
    if {CTYPES_CALLBACK!r} in (unraisable.err_msg or ''):
        sys.stderr.write('sinlstm_sym.launch: an exception inside MXNet\\'s updater on this ps-lite server '
                         '(above); ending the server with exit status {SERVER_FAILURE_EXIT}\\n')
        sys.stderr.flush()
        os._exit({SERVER_FAILURE_EXIT})
sys.unraisablehook = _fail_on_callback_error
import mxnet
sys.exit('sinlstm_sym.launch: importing mxnet did not run a ps-lite node')
"""


class UpdaterError(RuntimeError):
    """An exception inside MXNet's updater callback (the kvstore's update of the weights) stopped training."""


@contextlib.contextmanager
def callback_errors() -> Iterator[List[BaseException]]:
    """While active, exceptions Python reports as ignored in a ctypes callback are appended to the yielded
    list (and still printed)."""
    caught: List[BaseException] = []
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if CTYPES_CALLBACK in (unraisable.err_msg or "") and unraisable.exc_value is not None:
            caught.append(unraisable.exc_value)
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def raise_first(caught: List[BaseException], where: str) -> None:
    """Raise :class:`UpdaterError` for the first exception in ``caught`` (nothing if it is empty)."""
    if caught:
        first = caught[0]
        raise UpdaterError(f"an exception inside MXNet's updater (called from C by the kvstore) {where}: "
                           f"{type(first).__name__}: {first}; training stopped, no checkpoint written after it") \
            from first


__all__ = ["SERVER_NODE_CODE", "UpdaterError", "callback_errors", "raise_first"]
