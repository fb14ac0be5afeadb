"""Compile the native operator into a per-user cache, once per source, MXNet, compiler and CPU.

The library is built from ``lstm_stack.cc`` (in this package) and MXNet's own
``lib_api.cc`` (shipped in the wheel) into ``cache_dir()/sinlstm_native-<key>.so``, where
``<key>`` hashes the sources, the MXNet version, the compiler and its version, the flags
and the CPU's features (``-march=native`` code only runs on the CPU it was built for).
A build writes to a temporary name in the same directory and is renamed into place, so a
half-built library never has the final name; a per-key file lock makes concurrent
builds in several processes wait for one another instead of compiling twice.

Beside each library a small sidecar, ``sinlstm_native-<key>.json``, records its size and
SHA-256 (written atomically after the library). A cached library is used only when it
matches its sidecar: a truncated, damaged or foreign file (loading one can kill the process
with SIGBUS) is compiled again instead.

Nothing in the cache is followed out of it: the library, its sidecar and the lock are used only
when they are regular files (a symbolic link, FIFO or device there is never opened through,
waited on or truncated; the library and sidecar are rebuilt over it, the lock is replaced), the
sidecar is read only up to a few kilobytes, and the library is hashed only when its size matches
the sidecar's.
"""
import errno
import hashlib
import json
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..core.outputs import write_text_atomic

try:  # POSIX only; elsewhere concurrent builds still never load a partial file (atomic rename)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# The operators' sources, compiled into one library (lstm_stack.cc holds its initialize()).
SOURCES = (Path(__file__).with_name("lstm_stack.cc"), Path(__file__).with_name("adam_update.cc"))
OP_NAME = "sinlstm_stack"
ADAM_OP_NAME = "sinlstm_adam_update"
BUILD_TIMEOUT_S = 600
MAX_SIDECAR_BYTES = 4096  # {"size": ..., "sha256": ...}
_OPEN_FLAGS = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_BUILD_FORMAT = "1"  # bump when the way the library is built changes


class BuildError(RuntimeError):
    """The native library could not be built (no compiler, compile error, unwritable cache)."""


@dataclass(frozen=True)
class BuildResult:
    """Where the library is, whether this call compiled it, and how long that took."""

    path: Path
    built: bool
    seconds: float
    command: List[str]


def cache_dir() -> Path:
    """``$SINLSTM_NATIVE_CACHE``, else ``$XDG_CACHE_HOME/sinlstm_sym``, else ``~/.cache/sinlstm_sym``."""
    explicit = os.environ.get("SINLSTM_NATIVE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sinlstm_sym"


def find_compiler() -> str:
    """``$CXX`` if set (it must exist), else ``g++`` or ``c++`` on ``PATH``."""
    explicit = os.environ.get("CXX")
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise BuildError(f"CXX={explicit!r} is not an executable compiler")
        return found
    for name in ("g++", "c++"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise BuildError("no C++ compiler found: neither g++ nor c++ is on PATH and CXX is not set")


def _compiler_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as err:
        raise BuildError(f"the compiler {cxx} does not run ({err})") from None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else cxx


def _cpu_features() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}"


def _mxnet_files() -> Dict[str, Path]:
    import mxnet as mx
    root = Path(mx.__file__).resolve().parent
    files = {"include": root / "include", "header": root / "include" / "mxnet" / "lib_api.h",
             "lib_api": root / "src" / "lib_api.cc"}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise BuildError(f"this MXNet ({mx.__version__}) lacks the external-operator API files {missing}")
    return files


def compile_flags() -> List[str]:
    """Flags of the build (``-march=native`` on x86: the cache key includes the CPU's features)."""
    flags = ["-shared", "-fPIC", "-std=c++11", "-O3", "-fno-math-errno", "-Wno-psabi"]
    if platform.machine().lower() in ("x86_64", "amd64", "i686", "i386"):
        flags.append("-march=native")
    return flags


def build_key(cxx: str, flags: List[str]) -> str:
    """Hash of everything the built library depends on."""
    import mxnet as mx
    files = _mxnet_files()
    digest = hashlib.sha256()
    for part in (_BUILD_FORMAT, mx.__version__, cxx, _compiler_version(cxx), " ".join(flags), _cpu_features()):
        digest.update(part.encode() + b"\0")
    for path in (*SOURCES, files["header"], files["lib_api"]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def _open_regular(path: Path, flags: int = os.O_RDONLY, mode: int = 0o600) -> int:
    """A descriptor of ``path`` if it is a regular file, opened without following a symbolic link or waiting
    on a FIFO; ``OSError`` otherwise (``ELOOP`` for a link, ``EINVAL`` for another kind of file)."""
    fd = os.open(path, flags | _OPEN_FLAGS, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    return fd


def _file_digest(path: Path) -> Dict[str, object]:
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(_open_regular(path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


def sidecar_path(library: Path) -> Path:
    """Where the size and SHA-256 of ``library`` are recorded."""
    return library.with_suffix(".json")


def _read_sidecar(path: Path) -> Dict[str, object]:
    """The size and SHA-256 a sidecar records (a regular file of at most :data:`MAX_SIDECAR_BYTES`)."""
    with os.fdopen(_open_regular(path), "rb") as handle:
        data = handle.read(MAX_SIDECAR_BYTES + 1)
    if len(data) > MAX_SIDECAR_BYTES:
        raise ValueError(f"more than {MAX_SIDECAR_BYTES} bytes")
    recorded = json.loads(data.decode("utf-8"))
    return {"size": int(recorded["size"]), "sha256": str(recorded["sha256"])}


def _library_problem(library: Path) -> Optional[str]:
    """Why ``library`` is no file to load (missing, a symbolic link, FIFO or other non-regular file)."""
    try:
        mode = os.lstat(library).st_mode
    except FileNotFoundError:
        return "it does not exist"
    except OSError as err:
        return f"it cannot be read ({err})"
    return None if stat.S_ISREG(mode) else "it is not a regular file (a symbolic link, FIFO or device)"


def verify_library(library: Path) -> Optional[str]:
    """None if ``library`` matches the size and SHA-256 recorded at its build, else why not."""
    problem = _library_problem(library)
    if problem is not None:
        return problem
    try:
        expected = _read_sidecar(sidecar_path(library))
    except FileNotFoundError:
        return f"its record {sidecar_path(library).name} is missing"
    except (OSError, ValueError, TypeError, KeyError) as err:
        return f"its record {sidecar_path(library).name} is unreadable ({err})"
    if os.lstat(library).st_size != expected["size"]:
        return f"its size is {os.lstat(library).st_size} bytes, {expected['size']} were built"
    try:
        actual = _file_digest(library)
    except OSError as err:
        return f"it cannot be read ({err})"
    if actual["size"] != expected["size"]:
        return f"its size is {actual['size']} bytes, {expected['size']} were built"
    if actual["sha256"] != expected["sha256"]:
        return "its SHA-256 differs from the one recorded at its build"
    return None


def _cached(target: Path, force: bool) -> bool:
    """Whether ``target`` can be used as it is; logs why a cached file is rebuilt."""
    if force:
        return False
    problem = verify_library(target)
    if problem is not None and problem != "it does not exist":
        logger.warning("the cached native library %s is damaged or foreign (%s): compiling it again", target, problem)
    return problem is None


def build_library(force: bool = False) -> BuildResult:
    """Return the cached library for this setup, compiling it first if needed.

    A cached library is returned only if it matches the size and SHA-256 recorded when it
    was built; otherwise it is compiled again. Raises :class:`BuildError` when there is no
    compiler, the compile fails or the cache directory cannot be written.
    """
    cxx = find_compiler()
    flags = compile_flags()
    files = _mxnet_files()
    key = build_key(cxx, flags)
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise BuildError(f"cannot create the cache directory {directory} ({err})") from None
    target = directory / f"sinlstm_native-{key}.so"
    command = [cxx, *flags, "-I", str(files["include"]), *map(str, SOURCES), str(files["lib_api"]), "-o"]
    if verify_library(target) is None and not force:
        return BuildResult(target, False, 0.0, command + [str(target)])
    with _open_lock(directory / f"sinlstm_native-{key}.lock") as lock:
        if fcntl is not None:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
        if _cached(target, force):  # another process built (or repaired) it while we waited
            return BuildResult(target, False, 0.0, command + [str(target)])
        fd, tmp_name = tempfile.mkstemp(prefix=f".sinlstm_native-{key}.", suffix=".tmp", dir=directory)
        os.close(fd)
        tmp = Path(tmp_name)
        full = command + [str(tmp)]
        logger.info("compiling the native LSTM operator: %s", " ".join(full))
        start = time.perf_counter()
        try:
            try:
                proc = subprocess.run(full, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
            except (OSError, subprocess.SubprocessError) as err:
                raise BuildError(f"running {cxx} failed ({err})") from None
            if proc.returncode != 0:
                tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
                raise BuildError(f"{cxx} exited with {proc.returncode}:\n{tail}")
            record = json.dumps(_file_digest(tmp))
            os.replace(tmp, target)
            sidecar = sidecar_path(target)
            if sidecar.is_symlink() or (sidecar.exists() and not sidecar.is_file()):
                sidecar.unlink()  # the cache is ours: a link, FIFO or device in the sidecar's place is replaced
            write_text_atomic(sidecar, record + "\n")
        finally:
            if tmp.exists():
                tmp.unlink()
        seconds = time.perf_counter() - start
        logger.info("built %s in %.1f s", target, seconds)
        return BuildResult(target, True, seconds, full[:-1] + [str(target)])


def _open_lock(path: Path) -> Any:
    """The build lock ``path`` opened for ``flock`` (never truncated, never through a symbolic link); a link,
    FIFO or other non-regular file in its place is replaced by a new lock file."""
    try:
        return os.fdopen(_open_regular(path, os.O_RDWR | os.O_CREAT), "rb")
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.EINVAL):
            raise BuildError(f"cannot write to the cache directory {path.parent} ({err})") from None
    logger.warning("%s: not a regular file (a symbolic link, FIFO or device); replacing it with a new lock", path)
    try:
        path.unlink()
        return os.fdopen(_open_regular(path, os.O_RDWR | os.O_CREAT | os.O_EXCL), "rb")
    except OSError as err:
        raise BuildError(f"cannot replace {path}, which is not a regular file, by a lock ({err}); remove it") \
            from None


def describe(result: Optional[BuildResult]) -> str:
    """One line for the command-line report."""
    if result is None:
        return "not built"
    if result.built:
        return f"built {result.path} in {result.seconds:.1f} s"
    return f"up to date: {result.path} (cached)"
