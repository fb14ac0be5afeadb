"""A progress line at most every few seconds, for long phases that log nothing else."""
import logging
import time
from typing import Any, Union

from ..constants import HEARTBEAT_SECONDS


class Heartbeat:
    """``beat(message, *args)`` logs at INFO when ``interval`` seconds have passed since the last line
    (or since the heartbeat was made), and does nothing otherwise."""

    def __init__(self, log: Union[logging.Logger, logging.LoggerAdapter], interval: float = HEARTBEAT_SECONDS):
        self.log, self.interval = log, float(interval)
        self.last = time.perf_counter()

    def beat(self, message: str, *args: Any) -> bool:
        """Log ``message % args`` if it is time; whether it did."""
        now = time.perf_counter()
        if now - self.last < self.interval:
            return False
        self.log.info(message, *args)
        self.last = now
        return True
