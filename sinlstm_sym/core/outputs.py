"""Output files and directories: checked before any work starts, written all or nothing.

``check_output_file`` / ``check_output_dir`` refuse, with a message naming the argument, a path
that cannot be written (missing or read-only parent, an existing directory where a file goes,
an unsupported suffix); they probe by creating and removing a temporary entry, so what they
accept can really be written. ``AtomicOutputs`` stages several files under temporary names
and renames them into place only when every one was written.
"""
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, List, Optional, Sequence, Tuple, Type, Union

from .checks import check_condition

PathLike = Union[str, "os.PathLike[str]"]
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _as_path(name: str, path: Any) -> Path:
    check_condition(isinstance(path, (str, os.PathLike)) and os.fspath(path) != "",
                    f"{name} must be a file path, got {path!r}", TypeError)
    return Path(os.fspath(path))


def _nearest_existing(path: Path) -> Path:
    return next((p for p in [path, *path.parents] if p.exists()), Path.cwd())


def _probe_directory(name: str, directory: Path, shown: Path) -> None:
    """Create and remove a temporary file in ``directory``: the only test that cannot be fooled."""
    check_condition(directory.is_dir(), f"{name}: {directory} is not a directory (for {str(shown)!r})")
    try:
        fd, probe = tempfile.mkstemp(prefix=".sinlstm-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{name}: cannot write in {directory} ({err.strerror}) for {str(shown)!r}") from None


def check_output_file(name: str, path: Any, suffixes: Sequence[str]) -> Path:
    """``path`` as a ``Path`` if a file with one of ``suffixes`` can be written there."""
    out = _as_path(name, path)
    check_condition(out.suffix.lower() in suffixes, f"{name} must be a file name ending in "
                    f"{', '.join(suffixes)}, got {str(out)!r}")
    check_condition(not out.is_dir(), f"{name} must be a file name, but {str(out)!r} is a directory")
    check_condition(out.parent.is_dir(), f"{name}: the directory {str(out.parent)!r} does not exist "
                    f"(for {str(out)!r})", FileNotFoundError)
    _probe_directory(name, out.parent, out)
    _check_replaceable(name, out)
    check_condition(not out.exists() or os.access(out, os.W_OK), f"{name}: {str(out)!r} exists and is read-only")
    return out


def _check_replaceable(name: str, path: Path) -> None:
    """Refuse an existing ``path`` that is not a regular file (a device such as /dev/null, a FIFO, a socket):
    writing through a rename would replace it with a regular file."""
    check_condition(not path.exists() or path.is_file(), f"{name}: {str(path)!r} exists and is not a regular "
                    "file (a device, FIFO or socket), which an output would replace; give a file name")


def check_output_dir(name: str, path: Any) -> Path:
    """``path`` as a ``Path`` if it is, or can be created as, a writable directory."""
    out = _as_path(name, path)
    check_condition(not out.exists() or out.is_dir(), f"{name} must be a directory, but {str(out)!r} is a file")
    existing = _nearest_existing(out)
    check_condition(existing.is_dir(), f"{name}: {str(existing)!r} is a file, so {str(out)!r} cannot be created")
    _probe_directory(name, existing, out)
    return out


class AtomicOutputs:
    """Stage output files under temporary names; rename them all into place on success, remove them on error.

    >>> with AtomicOutputs() as outputs:
    ...     path = outputs.stage("result.json")   # write to `path`
    """

    def __init__(self) -> None:
        self._staged: List[Tuple[Path, Path]] = []

    def stage(self, final: PathLike) -> Path:
        """A temporary path beside ``final`` with the same suffix; it becomes ``final`` on success."""
        final = Path(final)
        _check_replaceable("an output file", final)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}-", suffix=final.suffix, dir=final.parent)
        os.close(fd)
        self._staged.append((Path(tmp), final))
        return Path(tmp)

    def __enter__(self) -> "AtomicOutputs":
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        if kind is None:
            mode = 0o666 & ~_umask()  # mkstemp makes private files; outputs get the usual permissions
            for tmp, final in self._staged:
                os.chmod(tmp, mode)
                os.replace(tmp, final)
            return
        for tmp, _ in self._staged:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with AtomicOutputs() as outputs:
        outputs.stage(path).write_text(text)
    return Path(path)
