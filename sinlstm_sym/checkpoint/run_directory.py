"""The run directory: the one place that knows its layout and the rules of writing into it.

Layout of ``DIR``::

    DIR/latest.json          names the latest complete checkpoint (checksummed)
    DIR/ckpt-00001000/       one checkpoint, named by its update count (8 or more digits)
    DIR/best/                the best checkpoint by validation, itself laid out like DIR
    DIR/.lock                the writing process (pid, host, start time, run id) while a training runs
    DIR/.tmp-ckpt-*          a checkpoint being written (removed on error and at the next start)
    DIR/.old-ckpt-*          an older checkpoint of the same name, set aside while a new one is renamed in

Rules (see README, "Checkpoints"): a new run refuses a directory holding another run's
checkpoints unless asked to overwrite them (they go once the new run's first checkpoint is
complete); one writer at a time (a lock left by a dead process on this host is recovered);
rotation removes only checkpoints of this run (the run id in their ``config.json``), by step
number, never the one ``latest.json`` names and never other files; ``latest.json`` moves
forward before anything older is removed, and no rename removes the only complete copy.
Nothing is followed out of the directory: a symbolic link in place of ``best/`` is removed when
a writer opens the directory (never written through), a ``ckpt-N`` that is a link is no
checkpoint, and every write checks first that the writer still holds the lock.
"""
import errno
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Tuple, Type, Union

import mxnet as mx

from ..core.checks import check_condition
from .files import (MAX_SMALL_JSON_BYTES, checksummed_json, disk_full_error, fsync_dir, is_disk_full, is_real_dir,
                    read_json, staged_json_name, write_bytes, write_json_atomic)
from .lock import RunLock, RunLockError
from .schema import CONFIG, FORMAT, FORMAT_VERSION, check_format, run_id_of

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
LATEST = "latest.json"
BEST = "best"
KEEP = 2  # complete checkpoints of a run kept on disk
LOCK = ".lock"
TMP_PREFIX = ".tmp-"
ASIDE_PREFIX = ".old-"
MIN_FREE_BYTES = 1 << 20  # an MXNet write error with less free space than this is a full disk
_CKPT_NAME = re.compile(r"ckpt-(\d{8,})")


def after_step(step: str, directory: Path) -> None:
    """Called after each step of a checkpoint commit ("written", "set aside", "latest staged", "renamed",
    "latest", "cleaned"); does nothing. Tests replace it to stop the commit there, as a kill would."""


def new_run_id() -> str:
    """A fresh run id (32 hex digits)."""
    return uuid.uuid4().hex


def step_of(name: str) -> Optional[int]:
    """The update count in a checkpoint's name (``ckpt-00001000`` -> 1000), ``None`` for any other name."""
    match = _CKPT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def checkpoint_name(step: int) -> str:
    """The directory name of the checkpoint after ``step`` updates."""
    return f"ckpt-{step:08d}"


def _latest_payload(name: str) -> Dict[str, Any]:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "checkpoint": name}


class CheckpointWriteError(PermissionError):
    """A checkpoint could not be written for lack of permission (or a read-only file system); the message
    names the directory and the cause, and the previous checkpoint is intact."""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


class RunDirectory:
    """A run directory ``root`` (see the module's docstring): reading its checkpoints, and opening it for a writer."""

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)

    @property
    def latest_file(self) -> Path:
        return self.root / LATEST

    @property
    def best(self) -> "RunDirectory":
        """The run's best checkpoint by validation, a run directory of its own (``DIR/best``)."""
        return RunDirectory(self.root / BEST)

    def is_checkpoint(self) -> bool:
        """True when ``root`` is itself one checkpoint (``DIR/ckpt-N``) rather than a run directory."""
        return step_of(self.root.name) is not None and (self.root / CONFIG).is_file() and \
            not self.latest_file.exists()

    def checkpoints(self) -> List[Tuple[int, Path]]:
        """``(step, path)`` of every ``ckpt-N`` directory, by step (other names are never checkpoints)."""
        if not self.root.is_dir():
            return []
        found = [(step_of(p.name), p) for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()]
        return sorted((step, p) for step, p in found if step is not None)

    def holdings(self) -> List[str]:
        """What of a run's checkpoints ``root`` holds (``latest.json``, ``ckpt-N``, ``best/...``); empty if none."""
        found = [LATEST] if self.latest_file.exists() else []
        found += [p.name for _, p in self.checkpoints()]
        if self.root.name != BEST and is_real_dir(self.best.root):
            found += [f"{BEST}/{name}" for name in self.best.holdings()]
        return found

    def latest_name(self) -> Tuple[str, int]:
        """The checkpoint ``latest.json`` names and the file's format version (errors name the file)."""
        latest, data = read_json(self.latest_file, "no checkpoint has been completed in this directory",
                                 MAX_SMALL_JSON_BYTES)
        version = check_format(latest, data, self.latest_file)
        name: Any = latest.get("checkpoint")
        check_condition(isinstance(name, str) and step_of(name) is not None,
                        f"{self.latest_file}: names no valid checkpoint ({name!r})")
        return name, version

    def resolve(self, verify: Callable[[Path], Any]) -> Tuple[Path, int]:
        """The checkpoint to load: ``root`` itself (a ``ckpt-N``), or the one ``latest.json`` names.

        When ``latest.json`` names a missing directory, or is missing because a write was
        interrupted (its staged copy is there), the newest ``ckpt-N`` that ``verify`` accepts
        is loaded instead, with a warning. Returns the path and ``latest.json``'s format
        version (0 when it was not read)."""
        check_condition(self.root.is_dir(), f"{self.root}: no such checkpoint directory", FileNotFoundError)
        if self.is_checkpoint():
            return self.root, 0
        if not self.latest_file.exists():
            interrupted = any(self.root.glob(f".{LATEST}.*.tmp"))  # a kill while it was first written
            found = self._newest_verified(verify) if interrupted else None
            if found is not None:
                logger.warning("%s: missing (its write was interrupted); loading %s, the newest complete checkpoint",
                               self.latest_file, found)
                return found, 0
            names = [p.name for _, p in self.checkpoints()]
            hint = f"; {names[-1]} is there: give its path ({self.root / names[-1]}) to load it" if names else ""
            raise FileNotFoundError(f"{self.latest_file}: missing; no checkpoint has been completed in this "
                                    f"directory{hint}")
        name, version = self.latest_name()
        path = self.root / name
        if path.is_dir():
            return path, version
        found = self._newest_verified(verify)
        check_condition(found is not None, f"{path}: missing, although {self.latest_file} names it",
                        FileNotFoundError)
        logger.warning("%s names %s, which is missing (a write was interrupted); loading %s, the newest complete "
                       "checkpoint", self.latest_file, name, found)
        return found, 0  # type: ignore[return-value]

    def _newest_verified(self, verify: Callable[[Path], Any]) -> Optional[Path]:
        for _, path in reversed(self.checkpoints()):
            try:
                verify(path)
                return path
            except (ValueError, FileNotFoundError) as err:
                logger.warning("%s: not a complete checkpoint (%s)", path, err)
        return None

    def run_id(self, path: Path) -> Optional[str]:
        """The run id recorded in checkpoint ``path``'s ``config.json`` (``None`` if absent or unreadable)."""
        try:
            config, data = read_json(path / CONFIG, "not a checkpoint")
            check_format(config, data, path / CONFIG)
        except (ValueError, FileNotFoundError, OSError):
            return None
        return run_id_of(config)

    def best_for(self, checkpoint: Optional[Path] = None) -> Optional[Path]:
        """``DIR/best`` when it holds a best checkpoint of the same run as ``checkpoint`` (default: the one
        ``latest.json`` names), else ``None``: a best checkpoint of another run is never used."""
        best = self.best
        if not is_real_dir(best.root):
            if best.root.is_symlink():
                logger.warning("%s: a symbolic link, not this run's own directory; it is ignored", best.root)
            return None
        if not best.latest_file.is_file():
            return None
        try:
            if checkpoint is None:
                checkpoint = self.root / self.latest_name()[0]
            theirs = self.run_id(best.root / best.latest_name()[0])
        except (ValueError, FileNotFoundError):
            return best.root  # loading it names what is wrong
        mine = self.run_id(checkpoint)
        if mine is not None and theirs is not None and mine != theirs:
            logger.warning("%s: written by another run than %s; it is ignored", best.root, checkpoint)
            return None
        return best.root

    def check_new_run(self, overwrite: bool) -> None:
        """Refuse (``ValueError``) to start a new run here when the directory holds another run's
        checkpoints, unless ``overwrite``."""
        held = self.holdings()
        if held and not overwrite:
            shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
            raise ValueError(f"checkpoint directory {self.root} holds the checkpoints of another run ({shown}); "
                             "continue that run with resume=True (--resume), write this one to a fresh directory, "
                             "or pass overwrite=True (--overwrite) to replace them (they are removed once this "
                             "run's first checkpoint is complete)")

    def open(self, run_id: Optional[str], new_run: bool, overwrite: bool = False,
             previous: Optional[Path] = None) -> "RunWriter":
        """Lock the directory for run ``run_id`` and return its writer (close it, or use ``with``). A new run
        is refused where another run's checkpoints are (unless ``overwrite``); a set-aside checkpoint is put
        back and leftovers of interrupted writes are removed. A resumed run may lock first, with
        ``run_id=None``, and name its run with :meth:`RunWriter.continue_run` once it has read its checkpoint."""
        check_condition(not new_run or run_id is not None, "a new run needs its run id")
        if new_run:
            check_condition(self.root.parent.is_dir(), f"{self.root}: its directory {self.root.parent} does not "
                            "exist", FileNotFoundError)
            self.root.mkdir(exist_ok=True)
        check_condition(self.root.is_dir(), f"{self.root}: no such checkpoint directory", FileNotFoundError)
        lock = RunLock(self.root / LOCK)
        lock.acquire()
        try:
            if new_run:
                self.check_new_run(overwrite)
            self._own_best()
            for directory in (self, self.best):
                directory.recover()
        except BaseException:
            lock.release()
            raise
        return RunWriter(self, run_id, lock, previous=previous, replace_others=new_run and overwrite)

    def _own_best(self) -> None:
        """Remove a symbolic link in place of ``best/`` (it is never written through); refuse another file
        there (only call with the lock held)."""
        best = self.best.root
        if best.is_symlink():
            logger.warning("%s: a symbolic link (to %s), not a directory of this run; the link is removed (what "
                           "it points to is left alone)", best, os.readlink(best))
            best.unlink()
        check_condition(not best.exists() or is_real_dir(best), f"{best}: not a directory; a run keeps its best "
                        "checkpoint there: move that file away")

    def recover(self) -> None:
        """Put back a checkpoint set aside by an interrupted replacement, and remove the leftovers of
        interrupted writes (only call with the lock held)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob(f"{ASIDE_PREFIX}ckpt-*")):
            name = path.name[len(ASIDE_PREFIX):].rsplit("-", 1)[0]
            if step_of(name) is not None and not (self.root / name).exists() and path.is_dir():
                logger.warning("%s: restoring %s, set aside by an interrupted write", self.root, name)
                os.rename(path, self.root / name)
            else:
                _remove(path)
        staged = sorted(self.root.glob(f".{LATEST}.*.tmp"))
        if staged and not self.latest_file.exists() and self._names_a_checkpoint(staged[-1]):
            logger.warning("%s: completing the latest.json whose write was interrupted", self.root)
            os.replace(staged[-1], self.latest_file)
        for pattern in (f"{TMP_PREFIX}ckpt-*", f".{LATEST}.*.tmp", f"{LOCK}.*.tmp"):
            for path in self.root.glob(pattern):
                logger.info("%s: removing %s, left by an interrupted write", self.root, path.name)
                _remove(path)

    def _names_a_checkpoint(self, staged: Path) -> bool:
        try:
            payload, data = read_json(staged, "", MAX_SMALL_JSON_BYTES)
            check_format(payload, data, staged)
        except (ValueError, OSError):
            return False
        name = payload.get("checkpoint")
        return isinstance(name, str) and step_of(name) is not None and (self.root / name / CONFIG).is_file()


class RunWriter:
    """Writes one run's checkpoints into a locked run directory (made by :meth:`RunDirectory.open`)."""

    def __init__(self, directory: RunDirectory, run_id: Optional[str], lock: Optional[RunLock],
                 previous: Optional[Path] = None,
                 replace_others: bool = False, owner: Optional["RunWriter"] = None) -> None:
        self.directory, self.run_id, self.lock = directory, run_id, lock
        self.owner = owner  # the writer holding the lock (best/'s writer writes under its run's lock)
        self.previous = previous  # a complete checkpoint of this run: latest may point there meanwhile
        self.replace_others = replace_others
        self._best: Optional[RunWriter] = None
        self._renamed = False  # the checkpoint being written was renamed into place

    @property
    def root(self) -> Path:
        return self.directory.root

    @property
    def best(self) -> "RunWriter":
        """The writer of ``DIR/best`` (same run, same lock)."""
        if self._best is None:
            self._best = RunWriter(self.directory.best, self.run_id, None, owner=self)
        return self._best

    def continue_run(self, run_id: Optional[str], previous: Path) -> None:
        """Write as run ``run_id`` (a fresh id if ``None``: a checkpoint from before run ids), resumed from
        checkpoint ``previous``."""
        self.run_id, self.previous = run_id or new_run_id(), previous
        self._best = None

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 trace: Optional[TracebackType]) -> None:
        self.close()

    def close(self) -> None:
        """Release the lock; the writer writes no more."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def check_locked(self) -> None:
        """Raise :class:`~sinlstm_sym.checkpoint.lock.RunLockError` unless this writer (or the run writer it
        belongs to) still holds the run directory's lock."""
        holder = self.owner if self.owner is not None else self
        if holder.lock is None:
            raise RunLockError(f"{self.root}: this writer was closed and released the run directory's lock; "
                               "nothing is written there without holding it")
        holder.lock.check_held()

    def drop_best(self, reason: str) -> None:
        """Remove ``DIR/best`` (its best checkpoint no longer applies: ``reason``), with a warning."""
        self.check_locked()
        best = self.directory.best.root
        if is_real_dir(best):
            logger.warning("%s: %s; it is removed and the best checkpoint is chosen again from this run's "
                           "validations", best, reason)
            shutil.rmtree(best)

    def write(self, step: int, fill: Callable[[Path, str], None]) -> Path:
        """Write the checkpoint after ``step`` updates: ``fill(tmp, name)`` writes its files into a temporary
        directory, which is then renamed into place and named in ``latest.json``. On any error nothing of it
        is left and the previous checkpoint stays the latest; a full disk is a :class:`DiskFullError`."""
        name = checkpoint_name(step)
        check_condition(self.run_id is not None, "the run id is not known yet (RunWriter.continue_run)")
        self.check_locked()
        refused: Optional[CheckpointWriteError] = None
        try:
            self.root.mkdir(exist_ok=True)
        except PermissionError as err:
            refused = self._permission_error(err, name)
        if refused is not None:
            raise refused  # outside the handler: one error, not a chain ending in a cleanup's
        check_condition(is_real_dir(self.root), f"{self.root}: not a directory of this run (a symbolic link or "
                        "a file); nothing was written there")
        tmp = self.root / f"{TMP_PREFIX}{name}-{os.getpid()}"
        aside = self.root / f"{ASIDE_PREFIX}{name}-{os.getpid()}"
        self._renamed = False
        try:
            _remove(tmp)
            tmp.mkdir()
            fill(tmp, name)
            after_step("written", self.root)
            final = self._commit(tmp, aside, name)
        except BaseException as err:
            self._undo(tmp, aside, name)
            if is_disk_full(err) or (isinstance(err, mx.base.MXNetError) and self._nearly_full()):
                raise disk_full_error(self.root, f"checkpoint {name}") from None
            if not (isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS)):
                raise
            refused = self._permission_error(err, name)
        if refused is not None:
            raise refused  # outside the handler: one error, naming the directory and the cause
        self.previous = final
        self._clean_up(aside)
        return final

    def _commit(self, tmp: Path, aside: Path, name: str) -> Path:
        final, latest = self.root / name, self.directory.latest_file
        if final.exists():  # a checkpoint of this name (an older branch of the run): set aside, never removed first
            if self.previous is not None and self.previous.name != name and self.previous.is_dir() \
                    and self._latest_is(name):
                self._write_latest(self.previous.name)  # latest never names the folder being replaced
            os.rename(final, aside)
            after_step("set aside", self.root)
        staged = staged_json_name(latest)
        write_bytes(staged, checksummed_json(_latest_payload(name)))
        after_step("latest staged", self.root)
        os.rename(tmp, final)
        self._renamed = True
        fsync_dir(self.root)
        after_step("renamed", self.root)
        os.replace(staged, latest)
        fsync_dir(self.root)
        after_step("latest", self.root)
        return final

    def _latest_is(self, name: str) -> bool:
        try:
            return self.directory.latest_name()[0] == name
        except (ValueError, FileNotFoundError):
            return False

    def _write_latest(self, name: str) -> None:
        write_json_atomic(self.directory.latest_file, _latest_payload(name))

    def _undo(self, tmp: Path, aside: Path, name: str) -> None:
        """After a failed write: no temporary files, a checkpoint set aside back in its place, and a checkpoint
        already renamed into place named in ``latest.json`` (it is complete)."""
        staged = staged_json_name(self.directory.latest_file)
        if self._renamed and staged.exists():
            try:
                os.replace(staged, self.directory.latest_file)
            except OSError as err:
                logger.warning("%s: could not name %s in %s (%s)", self.root, name, LATEST, err)
        for path in (tmp, staged):
            try:
                _remove(path)
            except OSError as err:
                logger.warning("%s: could not remove %s (%s)", self.root, path, err)
        if aside.exists():
            try:
                if (self.root / name).exists():
                    _remove(aside)
                else:
                    os.rename(aside, self.root / name)
            except OSError as err:
                logger.warning("%s: %s stays set aside as %s (%s); the next start restores it", self.root, name,
                               aside.name, err)

    def _permission_error(self, err: OSError, name: str) -> CheckpointWriteError:
        error = CheckpointWriteError(f"{self.root}: cannot write checkpoint {name}: {err.strerror or err} "
                                     f"({err.filename or self.root}); the previous checkpoint is intact: make the "
                                     "directory writable again and resume")
        error.errno = err.errno
        return error

    def _nearly_full(self) -> bool:
        try:
            return shutil.disk_usage(self.root).free < MIN_FREE_BYTES
        except OSError:
            return False

    def _clean_up(self, aside: Path) -> None:
        """After ``latest.json`` moved forward: the set-aside copy, older checkpoints of this run beyond
        :data:`KEEP`, and (overwrite) the other run's checkpoints."""
        _remove(aside)
        latest = self.directory.latest_name()[0]
        own = [(step, path) for step, path in self.directory.checkpoints()
               if self.directory.run_id(path) == self.run_id]
        keep = {path.name for _, path in own[-KEEP:]} | {latest}
        for _, path in own:
            if path.name not in keep:
                _remove(path)
        if self.replace_others:
            self._remove_other_runs()
        after_step("cleaned", self.root)

    def _remove_other_runs(self) -> None:
        """Overwrite: now that this run has a complete checkpoint, the previous run's go (here and in best/)."""
        self.replace_others = False
        for directory in (self.directory, self.directory.best):
            for _, path in directory.checkpoints():
                if directory.run_id(path) != self.run_id:
                    logger.info("%s: removing %s of the run it replaces (overwrite=True)", directory.root, path.name)
                    _remove(path)
            if directory.latest_file.exists() and not any(
                    p.name == self._named(directory) for _, p in directory.checkpoints()):
                directory.latest_file.unlink()
            if directory is not self.directory and directory.root.is_dir() and not any(directory.root.iterdir()):
                directory.root.rmdir()

    @staticmethod
    def _named(directory: RunDirectory) -> Optional[str]:
        try:
            return directory.latest_name()[0]
        except (ValueError, FileNotFoundError):
            return None
