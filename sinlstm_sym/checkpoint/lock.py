"""The lock of a run directory: ``DIR/.lock`` names the one process writing there (pid, host, start time).

A second writer is refused with a message naming the holder. A lock whose process is gone
(same host, its pid no longer running, or a pid no process can have) is recovered with a warning;
a lock of another host is never taken (its process cannot be checked from here). The lock file
is created as a new file (never through a symbolic link), read only when it is a small regular
file, and a writer checks that it still holds the lock before each write
(:meth:`RunLock.check_held`).
"""
import json
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Optional, Set, Tuple

from .files import MAX_SMALL_JSON_BYTES, read_bounded, read_json_bytes, write_bytes

logger = logging.getLogger(__name__)

MAX_PID = 2 ** 31 - 1  # os.kill takes a C int: a lock naming a larger pid names no process
_HELD: Set[str] = set()  # the sessions of the locks this process holds


class RunLockError(RuntimeError):
    """A write into a run directory whose lock this process does not hold (it was released, removed, or
    taken by another training); nothing was written."""


class RunLock:
    """``DIR/.lock``: pid, host, start time and run id of the one process writing into ``DIR``."""

    def __init__(self, path: Path) -> None:
        self.path, self.session, self.released = path, uuid.uuid4().hex, False
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "session": self.session,
                     "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def acquire(self) -> None:
        """Take the lock, recovering one left by a dead process on this host; ``ValueError`` naming the
        holder when another process holds it."""
        for _ in range(3):
            if self._create():
                _HELD.add(self.session)
                return
            holder = self._holder()
            if holder is None or not self._stale(holder):
                raise ValueError(self._busy_message(holder))
            gone = "names no possible process" if holder["pid"] > MAX_PID else "is no longer running" \
                if holder["pid"] != os.getpid() else "is this process, whose training there has ended"
            logger.warning("%s: removing a stale lock: pid %s on %s (started %s) %s", self.path.parent,
                           holder["pid"], holder["host"], holder.get("started"), gone)
            self._remove_if(holder)
        raise ValueError(self._busy_message(self._holder()))

    def release(self) -> None:
        """Remove the lock if it is still this process's (a lock that cannot be removed, in a directory
        made read-only, is left with a warning: it names a process that will be gone, so the next run on
        this host recovers it)."""
        self.released = True
        _HELD.discard(self.session)
        holder = self._holder()
        if holder is not None and holder.get("pid") == self.info["pid"] and holder.get("session") == self.session:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as err:
                logger.warning("%s: could not remove the lock (%s); it names this process, so the next training "
                               "on this host removes it", self.path, err.strerror or err)

    def check_held(self) -> None:
        """Raise :class:`RunLockError` unless the lock file still names this process and run (a lock that
        cannot be read for lack of permission passes: the write that follows reports that)."""
        directory = self.path.parent
        if self.released:
            raise RunLockError(f"{directory}: its lock was released when the training's block ended; nothing is "
                               "written there without holding it")
        try:
            holder: Optional[Dict[str, Any]] = read_json_bytes(read_bounded(self.path, MAX_SMALL_JSON_BYTES),
                                                               self.path)
        except PermissionError:
            return
        except (OSError, ValueError):
            holder = None
        if holder is None or holder.get("pid") != self.info["pid"] or holder.get("session") != self.session:
            who = "removed" if holder is None else f"taken by pid {holder.get('pid')} on {holder.get('host')}"
            raise RunLockError(f"{directory}: this training no longer holds the lock {self.path} ({who}); "
                               "nothing was written, another training may be writing there")

    def _create(self) -> bool:
        staged = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        write_bytes(staged, json.dumps(self.info).encode())
        try:
            os.link(staged, self.path)  # fails if the lock exists: creation and content in one step
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this file system
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(self.info).encode())
            return True
        finally:
            staged.unlink(missing_ok=True)

    def _holder(self) -> Optional[Dict[str, Any]]:
        return self._read_holder()[0]

    def _read_holder(self) -> Tuple[Optional[Dict[str, Any]], str]:
        """The lock's holder, or ``None`` and why it cannot be read."""
        try:
            holder = read_json_bytes(read_bounded(self.path, MAX_SMALL_JSON_BYTES), self.path)
        except (OSError, ValueError) as err:
            return None, str(err)
        ok = isinstance(holder.get("pid"), int) and not isinstance(holder.get("pid"), bool) and \
            isinstance(holder.get("host"), str)
        return (holder, "") if ok else (None, "it names no pid and host")

    @staticmethod
    def _stale(holder: Dict[str, Any]) -> bool:
        if holder["host"] != socket.gethostname() or holder["pid"] <= 0:
            return False
        if holder["pid"] == os.getpid():  # this process's: stale once the run that took it has let it go
            return holder.get("session") not in _HELD
        if holder["pid"] > MAX_PID:  # no process has such a pid (and os.kill cannot take it)
            return True
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, another user's
            return False
        return False

    def _remove_if(self, holder: Dict[str, Any]) -> None:
        """Remove the lock if it still is ``holder``'s (moved aside first, so a fresh lock is never removed)."""
        aside = self.path.with_name(f"{self.path.name}.{os.getpid()}.stale.tmp")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if self._holder_at(aside) != holder:  # another process took the lock meanwhile: give it back
            try:
                os.link(aside, self.path)
            except OSError:
                pass
        aside.unlink(missing_ok=True)

    def _holder_at(self, path: Path) -> Optional[Dict[str, Any]]:
        try:
            return read_json_bytes(read_bounded(path, MAX_SMALL_JSON_BYTES), path)
        except (OSError, ValueError):
            return None

    def _busy_message(self, holder: Optional[Dict[str, Any]]) -> str:
        directory = self.path.parent
        if holder is None:
            why = self._read_holder()[1]
            return (f"checkpoint directory {directory} is locked by {self.path}, which cannot be read ({why}); if "
                    "no training is writing there, remove that file")
        who = "this process" if holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() else \
            f"pid {holder['pid']} on {holder['host']}"
        return (f"checkpoint directory {directory} is being written by another training ({who}, started "
                f"{holder.get('started')}); wait for it to finish or choose another checkpoint directory (if that "
                f"process is gone, remove {self.path})")
