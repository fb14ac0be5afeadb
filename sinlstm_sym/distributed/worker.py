"""What a parameter-server worker needs: exit hooks, a checked kvstore, rank-prefixed logging, the final pull.

Why the exit hooks: a worker holding a ``dist_*`` kvstore enters ps-lite's shutdown barrier when that kvstore
is freed (the C++ destructor), which happens while Python unwinds or shuts down; the barrier waits for every
other worker, and they may be waiting for this one. So under the launcher a failing worker must end with
``os._exit`` before any kvstore is freed:

- an uncaught exception in the main thread (``sys.excepthook``) or in any ``threading`` thread
  (``threading.excepthook``): traceback, flush, ``os._exit(1)``;
- ``sys.exit(n)`` with a non-zero exit status, in the main thread: it raises ``SystemExit`` as usual (``finally``
  blocks and ``except SystemExit`` work), and once Python drops that exception at top level -- before it
  frees the frames, hence the kvstores -- the process ends with ``os._exit(n)``. A ``SystemExit`` that is
  caught and dropped inside the program changes nothing.

``sys.exit(0)`` and a normal end go through MXNet's barrier as usual, as they must: the other workers wait for
this one there. Not covered (Python 3.11 exposes their status to no hook before the barrier): a bare
``raise SystemExit(n)`` or ``exit(n)``, and a ``SystemExit`` that the program keeps alive in a reference cycle.
"""
import logging
import os
import sys
import threading
from typing import Any, Dict, MutableMapping, Optional, Tuple

import mxnet as mx

from ..core.checks import check_choice, check_condition, parse_env_int
from ..constants import KVSTORES
from .launcher import LAUNCHED_ENV

logger = logging.getLogger(__name__)

# The variables a ps-lite worker reads at kvstore creation; the launcher sets all of them.
_WORKER_ENV = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER")
_LAUNCH_HINT = "python -m sinlstm_sym.launch -n WORKERS -s SERVERS -- python train.py"

_installed = False


# --- exit hooks ------------------------------------------------------------------------------------------

def _flush_and_exit(code: int, why: str) -> None:
    try:
        sys.stderr.write(f"{LAUNCHED_ENV}=1: {why}; exiting with code {code} without waiting in MXNet's "
                         "shutdown barrier\n")
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    finally:
        os._exit(code)


def _exit_status(exc: SystemExit) -> int:
    """The process exit status Python gives for an uncaught ``exc`` (0, the int's low byte, or 1)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    return 1


class _ExitGuard:
    """Lives in a ``SystemExit``'s ``__dict__``; ends the process when Python drops that exception at top level.

    Python drops an uncaught ``SystemExit`` as soon as it has read its ``code``, and frees the traceback's
    frames only later, so this runs before any kvstore in those frames is freed -- and before Python prints
    a non-int code, so ``message`` is printed here. Dropped with a Python caller (caught and discarded), in
    another thread or while the interpreter finalizes, it does nothing.
    """

    def __init__(self, status: int, message: Optional[str]) -> None:
        self.status, self.message = status, message

    def __del__(self) -> None:
        dropped_at_top_level = sys._getframe().f_back is None  # no Python code between us and the interpreter
        if dropped_at_top_level and threading.current_thread() is threading.main_thread() \
                and not sys.is_finalizing():
            if self.message is not None and sys.stderr is not None:
                sys.stderr.write(self.message + "\n")
            _flush_and_exit(self.status, f"sys.exit() with exit status {self.status}")


def _system_exit(status: Any) -> SystemExit:
    # Built here, not in _sys_exit: a local naming the exception in a frame of its own traceback would be a
    # reference cycle, and the exception would then outlive the point where Python drops it.
    exc = SystemExit() if status is None else SystemExit(*status) if isinstance(status, tuple) \
        else SystemExit(status)
    code = _exit_status(exc)
    if code != 0 and threading.current_thread() is threading.main_thread():
        message = None if isinstance(exc.code, int) else str(exc.code)
        exc._sinlstm_exit_guard = _ExitGuard(code, message)  # type: ignore[attr-defined]
    return exc


def _sys_exit(status: Any = None) -> None:
    """``sys.exit`` under the launcher: the same ``SystemExit``, carrying an :class:`_ExitGuard` if non-zero."""
    raise _system_exit(status)


def install_exit_hooks() -> bool:
    """Under the launcher (``SINLSTM_LAUNCHED=1``), make a failing worker end at once instead of hanging.

    Installs ``sys.excepthook`` and ``threading.excepthook`` (traceback, flush, ``os._exit(1)``) and wraps
    ``sys.exit`` (non-zero status: ``os._exit(status)`` once the ``SystemExit`` reaches top level); see the
    module docstring. The launcher's worker bootstrap calls it when a worker's Python starts, and
    :func:`create_kvstore` when it creates a ``dist_*`` kvstore; importing the package does not. Returns
    whether the hooks are installed; outside the launcher it installs nothing and returns False.
    """
    global _installed
    if os.environ.get(LAUNCHED_ENV) != "1":
        return False
    if _installed:
        return True
    previous_hook, previous_thread_hook = sys.excepthook, threading.excepthook

    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            previous_hook(exc_type, exc, tb)
        finally:
            _flush_and_exit(1, f"uncaught {exc_type.__name__}")

    def thread_excepthook(args: Any) -> None:
        previous_thread_hook(args)  # prints the traceback; ignores SystemExit, which ends only that thread
        if not issubclass(args.exc_type, SystemExit):
            name = args.thread.name if args.thread is not None else "a thread"
            _flush_and_exit(1, f"uncaught {args.exc_type.__name__} in thread {name!r}")

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
    sys.exit = _sys_exit  # type: ignore[assignment]
    _installed = True
    return True


# --- kvstore, logging, final pull --------------------------------------------------------------------------

def _check_worker_env(name: str) -> None:
    env = {key: os.environ.get(key, "").strip() for key in _WORKER_ENV}
    missing = [key for key, value in env.items() if not value]
    start = (f"kvstore={name!r} runs under MXNet's parameter server: start every worker with `{_LAUNCH_HINT}`, "
             f"which sets {', '.join(_WORKER_ENV)} (or set them by hand, see sinlstm_sym.distributed.launcher)")
    check_condition(not missing, f"{start}; missing here: {', '.join(missing)}")
    check_condition(env["DMLC_ROLE"] == "worker", f"{start}; DMLC_ROLE must be 'worker', got {env['DMLC_ROLE']!r}")
    for key, low, high in (("DMLC_PS_ROOT_PORT", 1, 65535), ("DMLC_NUM_SERVER", 1, None),
                           ("DMLC_NUM_WORKER", 1, None)):
        try:
            parse_env_int(key, env[key], minimum=low, maximum=high)
        except ValueError as err:
            raise ValueError(f"{start}; {err}") from None


def create_kvstore(name: str) -> mx.kv.KVStore:
    """``mx.kv.create(name)`` for ``name`` in :data:`KVSTORES`, checked first.

    A ``dist_*`` kvstore needs the ps-lite variables of a worker (``DMLC_ROLE=worker``,
    ``DMLC_PS_ROOT_URI``, ``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER``), which
    ``python -m sinlstm_sym.launch`` sets; without them this raises ``ValueError`` naming the launcher
    instead of MXNet's ``Check notnull`` error.
    """
    name = check_choice("kvstore", name, KVSTORES)
    if name.startswith("dist"):
        _check_worker_env(name)
        install_exit_hooks()  # the bootstrap's, unless the worker's command replaced PYTHONPATH
    return mx.kv.create(name)


class RankLogAdapter(logging.LoggerAdapter):
    """A logger whose messages start with ``[worker RANK/NUM_WORKERS]``."""

    def __init__(self, logger: logging.Logger, rank: int, num_workers: int) -> None:
        super().__init__(logger, {"rank": rank, "num_workers": num_workers})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> Tuple[Any, MutableMapping[str, Any]]:
        extra: Dict[str, Any] = dict(self.extra or {})
        return f"[worker {extra['rank']}/{extra['num_workers']}] {msg}", kwargs


def pull_final_params(module: mx.mod.BaseModule, kv: mx.kv.KVStore) -> None:
    """After ``dist_async`` training: wait for every worker's last push, then pull the servers' weights."""
    mx.nd.waitall()  # this worker's pushes are acknowledged (applied by the servers) before it enters the barrier
    kv._barrier()  # noqa: SLF001 - MXNet 1.9.1 has no public barrier
    arg_params, aux_params = module.get_params()
    for name, value in arg_params.items():
        kv.pull(name, out=value)
    module.set_params(arg_params, aux_params)


__all__ = ["install_exit_hooks", "create_kvstore", "RankLogAdapter", "pull_final_params"]
