"""The files of a checkpoint: atomic writes, checksummed JSON, and reads bounded before they start.

Every JSON file is refused above ``MAX_JSON_BYTES`` (from its size on disk, before a byte is
read) or nested deeper than ``MAX_JSON_DEPTH`` (counted before the parser recurses), with a
``ValueError`` naming the file. A file listed in a manifest is compared with the manifest's
size before it is read, and read no further than that size. Files are opened without following
a symbolic link and without waiting on a FIFO, and read only when they are regular files; a
file is written as a new file (any entry of its name removed first, never truncated in place).
"""
import errno
import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from ..core.checks import check_condition

CHECKSUM = "checksum"
MAX_JSON_BYTES = 256 << 20  # config.json holds the loss history: generous, but never a 4 GB read
MAX_SMALL_JSON_BYTES = 1 << 20  # latest.json and the lock hold a few names
MAX_UNVERIFIED_BYTES = 1 << 30  # a format-1 parameter file, which has no manifest
MAX_JSON_DEPTH = 32  # this library writes depth 5 at most
HASH_CHUNK = 1 << 20
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """The disk (or the quota) filled up while a checkpoint was written; the message names the directory
    and the free space. The half-written checkpoint was removed and the previous one is intact."""


def disk_full_error(directory: Path, what: str) -> DiskFullError:
    """A :class:`DiskFullError` for writing ``what`` into ``directory``, with the space left there."""
    try:
        usage = shutil.disk_usage(directory)
        space = f"{usage.free / 2**20:.1f} MiB free of {usage.total / 2**20:.1f} MiB"
    except OSError:
        space = "free space unknown"
    error = DiskFullError(f"{directory}: disk full while writing {what} ({space}); the unfinished files were "
                          "removed and the previous checkpoint is intact: free some space and resume")
    error.errno = errno.ENOSPC
    return error


def is_disk_full(error: BaseException) -> bool:
    """True for the ``OSError`` of a full disk or an exceeded quota."""
    return isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The top-level checksum entry of a JSON file written with indent=1 (a newline inside a string is escaped).
_CHECKSUM_ENTRY = re.compile(rb'\n "checksum": "sha256:([0-9a-f]{64})"')


def checksummed_json(payload: Dict[str, Any]) -> bytes:
    """``payload`` as JSON holding the SHA-256 of the file's own bytes, its 64 hex digits read as zeros."""
    body = json.dumps(dict(payload, **{CHECKSUM: "sha256:" + "0" * 64}), indent=1, sort_keys=True,
                      default=repr).encode()
    digest = sha256(body).encode()
    return _CHECKSUM_ENTRY.sub(lambda m: m.group(0).replace(m.group(1), digest), body, count=1)


def checksum_matches(data: bytes) -> bool:
    entries = list(_CHECKSUM_ENTRY.finditer(data))
    if len(entries) != 1:
        return False
    start, end = entries[0].span(1)
    return sha256(data[:start] + b"0" * 64 + data[end:]) == entries[0].group(1).decode()


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: Path) -> Tuple[int, int]:
    """``(file descriptor, size)`` of ``path`` opened for reading, if it is a regular file: a symbolic link is
    never followed and a FIFO or device never waited on (``ValueError`` naming the file; ``FileNotFoundError``
    if it is missing)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ValueError(f"{path}: a symbolic link, which is never followed out of a run directory; remove "
                             "it") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValueError(f"{path}: not a regular file (a directory, FIFO, socket or device); the file is damaged "
                         "or foreign")
    return fd, info.st_size


def is_real_dir(path: Path) -> bool:
    """True when ``path`` is a directory itself, not a symbolic link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a new file (an entry of that name is removed first: a symbolic link or
    another file is never followed or truncated) and flush it to disk."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, _NEW_FILE_FLAGS, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def staged_json_name(path: Path) -> Path:
    """The temporary name :func:`write_json_atomic` writes ``path`` under before renaming it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_json_atomic(path: Path, payload: Dict[str, Any]) -> None:
    """Write ``payload`` (with its checksum) as JSON to ``path`` through a temporary file and a rename."""
    tmp = staged_json_name(path)
    try:
        write_bytes(tmp, checksummed_json(payload))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, counted without recursion."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)  # strings may hold brackets
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max()) if len(steps) else 0


def read_json_bytes(data: bytes, path: Path) -> Dict[str, Any]:
    """The JSON object in ``data`` (read from ``path``); ``ValueError`` naming the file if it is not one."""
    check_condition(json_depth(data) <= MAX_JSON_DEPTH, f"{path}: JSON nested deeper than {MAX_JSON_DEPTH} levels; "
                    "the file is damaged or foreign")
    try:
        payload = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f"{path}: not valid JSON, the file is truncated, damaged or foreign ({err})") from None
    check_condition(isinstance(payload, dict), f"{path}: expected a JSON object, got {type(payload).__name__}")
    return payload


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of regular file ``path`` (see :func:`open_regular`), refused (``ValueError`` naming it) when
    its size on disk exceeds ``limit``."""
    fd, size = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        check_condition(size <= limit, f"{path}: {size} bytes, more than the {limit} bytes such a file may hold; "
                        "the file is damaged or foreign")
        data = handle.read(size + 1)  # read(n) allocates n bytes up front: the size found, not the limit
    check_condition(len(data) == size, f"{path}: changed size while it was read")
    return data


def read_json(path: Path, what: str, limit: int = MAX_JSON_BYTES) -> Tuple[Dict[str, Any], bytes]:
    """The JSON object in ``path`` and its bytes; ``FileNotFoundError`` ("missing; ``what``") if absent."""
    try:
        data = read_bounded(path, limit)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{path}: missing; {what}") from None
    return read_json_bytes(data, path), data


def _open_listed(path: Path, entry: Dict[str, Any]) -> Tuple[int, int]:
    """``open_regular(path)`` after checking the size against the manifest's ``entry``."""
    try:
        fd, size = open_regular(path)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{path}: missing, although the checkpoint's manifest lists it") from None
    if size != entry["size"]:
        os.close(fd)
        raise ValueError(f"{path}: {size} bytes, the manifest says {entry['size']}; the file is truncated or was "
                         "replaced")
    return fd, size


def verified_bytes(path: Path, entry: Dict[str, Any]) -> bytes:
    """The bytes of ``path`` after checking its size (before reading) and SHA-256 against its manifest ``entry``."""
    fd, size = _open_listed(path, entry)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(size + 1)
    check_condition(len(data) == size, f"{path}: {len(data)} bytes, the manifest says {size}; the file changed "
                    "while it was read")
    check_condition(sha256(data) == entry["sha256"],
                    f"{path}: SHA-256 mismatch with the manifest; the file is damaged or was replaced")
    return data


def verify_file(path: Path, entry: Dict[str, Any]) -> None:
    """Check ``path`` against its manifest ``entry`` as :func:`verified_bytes` does, hashing it in chunks."""
    fd, size = _open_listed(path, entry)
    digest, read = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as handle:
        while read <= size:
            chunk = handle.read(HASH_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            read += len(chunk)
    check_condition(read == size, f"{path}: {read} bytes, the manifest says {size}; the file changed while it "
                    "was read")
    check_condition(digest.hexdigest() == entry["sha256"],
                    f"{path}: SHA-256 mismatch with the manifest; the file is damaged or was replaced")
