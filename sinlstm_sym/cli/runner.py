"""How every command line ends: one set of exit codes and one line per known failure, never a traceback for them.

- 0: done; 2: bad input, refused before any work (argparse and the flag checks exit with it themselves);
- 1: a failure while working: a full disk (``ENOSPC``, ``EDQUOT``), a permission or read-only file system
  error (``prog: error: ...``, naming the cause: the first such error in the chain of exceptions, not the
  last one raised while cleaning up); an exception in MXNet's updater, a loss that became NaN or diverged,
  an iterator that yields more batches than it says, memory exhausted (``prog: ...``, the message says what
  happened);
- 130 after Ctrl-C (SIGINT), 143 after SIGTERM (``128 + N``, as a shell reports a process a signal ended).

Anything else is a bug and keeps its traceback. ``sinlstm_console`` runs every console script and example
through :func:`run_main`; a command may also call :func:`failure_exit` on what it catches itself.
"""
import errno
import signal
import sys
from typing import Callable, Iterator, Optional

from ..core.callback_errors import UpdaterError
from ..checkpoint import DiskFullError
from ..train.loop import IteratorLengthError

INPUT_ERROR_EXIT = 2
FAILURE_EXIT = 1
INTERRUPTED_EXIT = 128 + signal.SIGINT
TERMINATED_EXIT = 128 + signal.SIGTERM

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)
# Failures of the work itself (not of the program): one line each; FloatingPointError covers a loss that
# became NaN or infinite and a diverged training.
_ONE_LINE = (UpdaterError, FloatingPointError, IteratorLengthError, MemoryError)


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from or while handling, the earliest last."""
    seen = set()
    current: Optional[BaseException] = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _describe_os_error(err: OSError) -> str:
    """``'disk full: ...'`` or ``'permission denied: ...'`` with the file, for one line (a checkpoint's
    :class:`DiskFullError` says it all already)."""
    text = " ".join(str(err).split())
    if isinstance(err, DiskFullError):
        return text
    what = "disk full" if err.errno in _DISK_FULL else "permission denied" if err.errno != errno.EROFS \
        else "read-only file system"
    named = f" ({err.filename})" if err.filename and str(err.filename) not in text else ""
    return f"{what}: {text}{named}"


def _os_cause(err: BaseException) -> Optional[OSError]:
    """The error in ``err``'s chain that says a disk is full or a permission was refused, if any: a
    checkpoint's :class:`DiskFullError` (it names the directory and the space left), else the earliest one
    (an error raised while cleaning up after it, such as a lock that cannot be removed, hides the cause)."""
    found = [item for item in _chain(err) if isinstance(item, OSError) and item.errno in _DISK_FULL + _NOT_ALLOWED]
    described = [item for item in found if isinstance(item, DiskFullError)]
    return (described or found[-1:] or [None])[0]


def interrupted_exit(prog: str, err: KeyboardInterrupt) -> int:
    """Say that ``prog`` was interrupted; ``128 + N`` for the signal ``N`` that stopped it (SIGINT if unknown)."""
    signum = int(getattr(err, "signum", signal.SIGINT))
    detail = str(err) if str(err) else ""
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    print(f"{prog}: {detail or how}", file=sys.stderr)
    return 128 + signum


def failure_exit(prog: str, err: BaseException) -> int:
    """The exit code for ``err`` after printing one line for it (see the module docstring); re-raise ``err``
    when it is no known failure (a bug keeps its traceback)."""
    if isinstance(err, KeyboardInterrupt):
        return interrupted_exit(prog, err)
    cause = _os_cause(err)
    if cause is not None:
        print(f"{prog}: error: {_describe_os_error(cause)}", file=sys.stderr)
        return FAILURE_EXIT
    if isinstance(err, _ONE_LINE):
        text = " ".join(str(err).split())
        if isinstance(err, MemoryError):
            text = "error: out of memory" + (f" ({text})" if text else "")
        print(f"{prog}: {text or type(err).__name__}", file=sys.stderr)
        return FAILURE_EXIT
    raise err


def run_main(prog: str, main: Callable[[], int]) -> int:
    """``main()``'s exit code, or the one :func:`failure_exit` gives for what it raised."""
    try:
        return main()
    except (KeyboardInterrupt, Exception) as err:  # noqa: B902 - KeyboardInterrupt is what Ctrl-C raises
        return failure_exit(prog, err)


__all__ = ["FAILURE_EXIT", "INPUT_ERROR_EXIT", "INTERRUPTED_EXIT", "TERMINATED_EXIT", "failure_exit",
           "interrupted_exit", "run_main"]
