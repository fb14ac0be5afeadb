"""Signals for tests that send them: a child process started the way a terminal starts its foreground job.

A shell starts a background job (``pytest ... &``) with SIGINT ignored, and an ignored or blocked signal is
inherited by every process it starts: Ctrl-C sent to such a child does nothing. The children of these tests
restore both signals first, so they behave as the command run in a terminal does; a test that cannot
deliver its signal (the child finished before it was sent) skips, saying so, instead of failing.
"""
import signal
import subprocess
from typing import Any, List

import pytest

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def foreground_signals() -> None:
    """A ``preexec_fn``: SIGINT and SIGTERM at their defaults and unblocked in the child."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def popen(argv: List[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv)`` whose child receives SIGINT and SIGTERM as a terminal's foreground job does."""
    return subprocess.Popen(argv, preexec_fn=foreground_signals, **kwargs)


def skip_unless_signalled_in_time(finished_output: bool, what: str) -> None:
    """Skip when the child had finished ``what`` (its output shows it) before the signal was sent."""
    if finished_output:
        pytest.skip(f"{what} finished before the signal was sent (a fast machine): nothing to test")
