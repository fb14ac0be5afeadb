"""Stopping runs on purpose: a log handler that signals this process at a given message, the command line run
until a marker appears on its stderr, and the small run both use."""
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RUN = dict(buckets=[1, 2, 3], batch_size=50, num_samples=50 * 60, seed=5, log_every=10)


SCRIPT = Path(sys.executable).parent / "sinlstm-train"
# a run of 1000 batches (long enough to be stopped), logging every 20; add --checkpoint DIR
CLI_RUN = ["--buckets", "1-3", "--num-samples", "100000", "--batch-size", "100", "--num-epoch", "1",
           "--log-every", "20", "--eval-lengths", "1-3", "--eval-samples", "10", "--progress", "off"]


class InterruptAt(logging.Handler):
    """Send this process ``signum`` (SIGINT: as a user's Ctrl-C would) when a log message contains ``text``."""

    def __init__(self, text, signum=signal.SIGINT):
        super().__init__()
        self.text, self.signum = text, signum

    def emit(self, record):
        if self.text in record.getMessage():
            os.kill(os.getpid(), self.signum)


def signal_cli_at(argv, marker, signum):
    """Run ``sinlstm-train argv``, send it ``signum`` once a line on its stderr contains ``marker`` (or after
    120 s); its (exit code, stderr)."""
    proc = subprocess.Popen([str(SCRIPT), *argv], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if marker in line or time.monotonic() > deadline:
            proc.send_signal(signum)
            break
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err
