"""Writing one checkpoint of a module and reading it back, verified, for prediction or resuming."""
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np

from ..core.checks import check_condition
from .files import MAX_UNVERIFIED_BYTES, read_bounded, read_json, read_json_bytes, verified_bytes, verify_file
from .optimizer_state import (load_arrays, read_pickled_state, restore_optimizer_state,
                              write_module_optimizer_state)
from .run_directory import RunDirectory, RunWriter, new_run_id
from .schema import (CONFIG, OPTIMIZER_ARRAYS, OPTIMIZER_JSON, PREFIX, RUN_ID, check_config, check_format,
                     check_manifest, finish_checkpoint, mxnet_epoch, params_name, run_id_of)

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Checkpoint:
    """A checkpoint read back: its config, parameters (in the trained cell's layout) and files."""

    path: Path
    config: Dict[str, Any]
    arg_params: Dict[str, np.ndarray]
    allow_pickle: bool = False

    @property
    def prefix(self) -> str:
        """The prefix for ``mx.mod.BucketingModule.load(prefix, epoch, ...)``."""
        return str(self.path / PREFIX)

    @property
    def epoch(self) -> int:
        return int(self.config["mxnet_epoch"])

    @property
    def format_version(self) -> int:
        return int(self.config["format_version"])

    @property
    def run_id(self) -> Optional[str]:
        """The run that wrote this checkpoint (``None`` before run ids were recorded)."""
        return run_id_of(self.config)

    def restore_optimizer(self, module: mx.mod.BaseModule, optimizer: mx.optimizer.Optimizer,
                          devices: Optional[Sequence[int]] = None) -> None:
        """Give ``optimizer`` (fresh, after ``module.init_optimizer(optimizer=...)``) the saved counters and states.

        The state arrays are checked against the bound parameters (names, shapes, dtypes,
        finite) before MXNet sees them. A format-1 checkpoint's state is a pickle: refused
        unless loaded with ``allow_pickle=True``.

        Parameters
        ----------
        module : mx.mod.BaseModule
            The bound module, its optimizer initialised.
        optimizer : mx.optimizer.Optimizer
            The module's optimizer, fresh.
        devices : sequence of int, optional
            The device ids the module updates on: a device the checkpoint holds no update counts
            for (more or other devices than it was trained on) continues from the first saved
            device's counts, so every copy of the weights gets the same updates.

        Raises
        ------
        TypeError
            ``optimizer`` is not an MXNet optimizer.
        ValueError
            The state does not fit the bound module, is damaged, or is a refused pickle.
        """
        check_condition(isinstance(optimizer, mx.optimizer.Optimizer),
                        f"optimizer must be an mx.optimizer.Optimizer, got {type(optimizer).__name__}", TypeError)
        check_condition(self.config.get("optimizer_state", True), f"{self.path}: written by distributed training, "
                        "it holds no optimizer state and cannot be resumed (it can be loaded for prediction)")
        if self.format_version == 1:
            meta, arrays, source = read_pickled_state(self.path, self.epoch, self.allow_pickle)
        else:
            manifest = self.config["manifest"]
            source = self.path / OPTIMIZER_ARRAYS
            meta_path = self.path / OPTIMIZER_JSON
            meta = read_json_bytes(verified_bytes(meta_path, manifest[OPTIMIZER_JSON]), meta_path)
            arrays = load_arrays(verified_bytes(source, manifest[OPTIMIZER_ARRAYS]), source)
        restore_optimizer_state(module, optimizer, meta, arrays, source, devices)


def _read_config(path: Path, latest_version: int) -> Tuple[Dict[str, Any], int]:
    """Checkpoint directory ``path``'s ``config.json``, every field that loading reads checked."""
    config, data = read_json(path / CONFIG, "the checkpoint is incomplete")
    version = check_format(config, data, path / CONFIG)
    check_condition(latest_version in (0, version), f"{path / CONFIG}: format version {version}, but "
                    f"{path.parent / 'latest.json'} has version {latest_version}; the directory is damaged")
    check_config(path, config)
    return config, version


def _verify_files(path: Path, config: Dict[str, Any], version: int, keep: Optional[str] = None) -> Optional[bytes]:
    """Check every file of the checkpoint against the manifest (format 2); the bytes of file ``keep``."""
    params_file = path / params_name(config["mxnet_epoch"])
    if version == 1:
        logger.warning("%s: checkpoint format version 1 (sinlstm-sym 0.1) has no checksums; its files are not "
                       "verified", path)
        check_condition(params_file.is_file(), f"{params_file}: missing; the checkpoint is incomplete",
                        FileNotFoundError)
        return read_bounded(params_file, MAX_UNVERIFIED_BYTES) if keep else None
    required = [params_file.name] + ([OPTIMIZER_ARRAYS, OPTIMIZER_JSON] if config.get("optimizer_state") else [])
    manifest = check_manifest(path, config, required)
    for name, entry in manifest.items():
        if name != keep:
            verify_file(path / name, entry)
    extra = sorted(p.name for p in path.iterdir() if p.name not in manifest and p.name != CONFIG)
    if extra:
        logger.warning("%s: files %s are not in the manifest; they are ignored", path, extra)
    return verified_bytes(path / keep, manifest[keep]) if keep else None


def verify_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Check checkpoint directory ``path`` as loading does (format, fields, every file against the manifest)
    without handing anything to MXNet; its ``config.json``. Errors name the file."""
    path = Path(path)
    config, version = _read_config(path, 0)
    _verify_files(path, config, version)
    return config


def load_checkpoint(directory: PathLike, allow_pickle: bool = False) -> Checkpoint:
    """Read the latest complete checkpoint in the run directory ``directory`` (or the ``ckpt-N`` directory given).

    Every file is checked against the manifest before MXNet reads any of them; a file is read
    only when it is a regular file (a symbolic link is never followed, a FIFO never waited on)
    of the size the manifest records.

    Parameters
    ----------
    directory : str or os.PathLike
        A run directory (its ``latest.json`` names the checkpoint) or one ``ckpt-N`` directory.
    allow_pickle : bool, default False
        Let :meth:`Checkpoint.restore_optimizer` unpickle a format-1 checkpoint's optimizer
        state; nothing else is ever unpickled.

    Returns
    -------
    Checkpoint
        Its path, ``config.json`` and parameters (in the trained cell's layout).

    Raises
    ------
    FileNotFoundError
        The directory, ``latest.json`` or a file of the checkpoint is missing.
    ValueError
        A file is damaged, truncated, foreign, not a regular file, or of a newer format (the
        message names it).
    TypeError
        ``allow_pickle`` is not a bool.
    """
    check_condition(isinstance(allow_pickle, bool), f"allow_pickle must be True or False, got {allow_pickle!r}",
                    TypeError)
    path, latest_version = RunDirectory(directory).resolve(verify_checkpoint)
    config, version = _read_config(path, latest_version)
    params_file = path / params_name(config["mxnet_epoch"])
    params_bytes = _verify_files(path, config, version, keep=params_file.name)
    assert params_bytes is not None
    try:
        saved = mx.nd.load_frombuffer(params_bytes)
    except mx.base.MXNetError:
        raise ValueError(f"{params_file}: not a readable MXNet parameter file (truncated or foreign)") from None
    check_condition(isinstance(saved, dict) and all(k.startswith(("arg:", "aux:")) for k in saved),
                    f"{params_file}: not a module parameter file (expected 'arg:'/'aux:' names)")
    arg_params = {k[4:]: v.asnumpy() for k, v in saved.items() if k.startswith("arg:")}
    return Checkpoint(path=path, config=config, arg_params=arg_params, allow_pickle=allow_pickle)


def checkpoint_settings(directory: PathLike) -> Tuple[Path, Dict[str, Any]]:
    """The checkpoint :func:`load_checkpoint` would read in ``directory`` and the settings its ``config.json``
    records (only that file is read and checked).

    Parameters
    ----------
    directory : str or os.PathLike
        A run directory or one ``ckpt-N`` directory.

    Returns
    -------
    tuple of (pathlib.Path, dict)
        The checkpoint's directory and its ``settings`` (a :meth:`FitConfig.to_json` payload).

    Raises
    ------
    FileNotFoundError
        The directory, ``latest.json`` or ``config.json`` is missing.
    ValueError
        ``config.json`` is damaged, foreign or of a newer format.
    """
    path, latest_version = RunDirectory(directory).resolve(verify_checkpoint)
    config, _ = _read_config(path, latest_version)
    return path, config["settings"]


def save_checkpoint(directory: Union[PathLike, RunWriter], module: mx.mod.BucketingModule,
                    optimizer: mx.optimizer.Optimizer, config: Dict[str, Any], with_optimizer: bool = True,
                    symbols: Optional[Callable[[int], Any]] = None) -> Path:
    """Write one checkpoint of ``module`` and ``optimizer`` with ``config``; return its directory.

    ``config`` must hold ``settings`` (JSON; training rebuilds the optimizer from it) and
    ``progress`` (epoch, batch, global_batch, ...). Parameters that are not finite are
    refused: no NaN checkpoint. ``with_optimizer=False`` (distributed training) leaves out
    the optimizer state. ``directory`` is a run directory (locked for this one write) or the
    :class:`RunWriter` of a training that holds it.
    """
    arg_params, aux_params = module.get_params()
    for name, value in {**arg_params, **aux_params}.items():
        check_condition(bool(np.isfinite(value.asnumpy()).all()),
                        f"parameter {name!r} is not finite; checkpoint not written, the previous one is kept",
                        FloatingPointError)
    epoch = mxnet_epoch(config)

    def fill(tmp: Path, name: str) -> None:
        module.save_checkpoint(str(tmp / PREFIX), epoch)
        if symbols is not None:  # another sym_gen with the same parameters (e.g. fused for a native-cell module)
            for path in tmp.glob(f"{PREFIX}-*-symbol.json"):
                symbols(int(path.name[len(PREFIX) + 1:-len("-symbol.json")]))[0].save(str(path))
        if with_optimizer:
            write_module_optimizer_state(tmp, module, optimizer)
        finish_checkpoint(tmp, name, dict(config, optimizer_state=with_optimizer, mxnet_epoch=epoch,
                                          **{RUN_ID: writer.run_id}))

    step = int(config["progress"]["global_batch"])
    if isinstance(directory, RunWriter):
        writer = directory
        final = writer.write(step, fill)
    else:
        with RunDirectory(directory).open(run_id_of(config) or new_run_id(), new_run=False) as writer:
            final = writer.write(step, fill)
    logger.info("checkpoint %s written (epoch %d, batch %d)", final, config["progress"]["epoch"],
                config["progress"]["batch"])
    return final


@dataclass(frozen=True)
class CheckpointEntry:
    """One checkpoint of a run, as :func:`list_checkpoints` reports it; ``damaged`` says what is wrong with
    a damaged one (its epoch and batch are then -1)."""

    name: str
    epoch: int
    batch: int
    global_batch: int
    latest: bool
    damaged: Optional[str] = None


def list_checkpoints(directory: PathLike) -> List[CheckpointEntry]:
    """The checkpoints in run directory ``directory``, oldest first, each verified as loading would."""
    run = RunDirectory(directory)
    check_condition(run.root.is_dir(), f"{run.root}: no such checkpoint directory", FileNotFoundError)
    try:
        latest: Optional[str] = run.latest_name()[0]
    except FileNotFoundError:
        latest = None
    except ValueError as err:
        logger.warning("%s", err)
        latest = None
    entries = []
    for step, path in run.checkpoints():
        try:
            progress = verify_checkpoint(path)["progress"]
        except (ValueError, FileNotFoundError, OSError) as err:
            entries.append(CheckpointEntry(path.name, -1, -1, step, path.name == latest, damaged=str(err)))
            continue
        entries.append(CheckpointEntry(path.name, progress["epoch"], progress["batch"], progress["global_batch"],
                                       path.name == latest))
    check_condition(bool(entries) or latest is not None, f"{run.latest_file}: missing; no checkpoint has been "
                    "completed in this directory", FileNotFoundError)
    return entries

