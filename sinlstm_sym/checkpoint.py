"""Atomic, versioned training checkpoints that plain MXNet can read.

Layout of a checkpoint directory ``DIR``::

    DIR/latest.json                 {"format": ..., "checkpoint": "ckpt-00001000"}
    DIR/ckpt-00001000/model-0001.params, model-<key>-symbol.json (one per bucket),
                      model.buckets, model-0001.states, optimizer.pickle, config.json

Every checkpoint is written into a temporary directory, flushed to disk, renamed into
place, and only then named in ``latest.json`` (itself replaced atomically), so a process
killed at any moment leaves the previous checkpoint readable. The parameter file is
``BucketingModule.save_checkpoint``'s, so ``mx.mod.BucketingModule.load(DIR/ckpt-N/model,
epoch, sym_gen, default_bucket_key)`` reads it. ``optimizer.pickle`` and the ``.states``
file are pickles: load only checkpoints you trust.
"""
import json
import logging
import os
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import mxnet as mx
import numpy as np

from .checks import check_condition
from .version import __version__

logger = logging.getLogger(__name__)

FORMAT = "sinlstm-sym-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest.json"
CONFIG = "config.json"
OPTIMIZER = "optimizer.pickle"
PREFIX = "model"
KEEP = 2  # complete checkpoints kept on disk

PathLike = Union[str, "os.PathLike[str]"]


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, payload: Dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(payload, handle, indent=1, sort_keys=True, default=repr)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def mxnet_epoch(config: Dict[str, Any]) -> int:
    """The epoch number in the checkpoint's MXNet file names (``model-%04d.params``)."""
    return int(config["progress"]["epoch"])


def _write_portable_symbols(tmp: Path, settings: Dict[str, Any]) -> None:
    """Replace the bucket symbols by the fused cell's (same parameters), so plain MXNet, without
    the native operator's library, can load the checkpoint."""
    from .symbol import make_sym_gen
    sym_gen = make_sym_gen(settings["hidden_sizes"], label_mode=settings["label_mode"], cell="fused")
    for path in tmp.glob(f"{PREFIX}-*-symbol.json"):
        sym_gen(int(path.name[len(PREFIX) + 1:-len("-symbol.json")]))[0].save(str(path))


def save_checkpoint(directory: PathLike, module: mx.mod.BucketingModule, optimizer: mx.optimizer.Optimizer,
                    config: Dict[str, Any], with_optimizer: bool = True) -> Path:
    """Write one checkpoint of ``module`` and ``optimizer`` with ``config``; return its directory.

    ``config`` must hold ``settings`` (the fit arguments) and ``progress`` (epoch, batch,
    global_batch, ...). Parameters that are not finite are refused: no NaN checkpoint.
    ``with_optimizer=False`` (distributed training) leaves out the optimizer state.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    arg_params, aux_params = module.get_params()
    for name, value in {**arg_params, **aux_params}.items():
        check_condition(bool(np.isfinite(value.asnumpy()).all()),
                        f"parameter {name!r} is not finite; checkpoint not written, the previous one is kept",
                        FloatingPointError)
    for stale in root.glob(".tmp-ckpt-*"):
        shutil.rmtree(stale, ignore_errors=True)
    name = f"ckpt-{int(config['progress']['global_batch']):08d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    tmp.mkdir()
    epoch = mxnet_epoch(config)
    module.save_checkpoint(str(tmp / PREFIX), epoch)
    if config["settings"].get("cell") in ("native", "auto"):
        _write_portable_symbols(tmp, config["settings"])
    if with_optimizer:
        module.save_optimizer_states(str(tmp / f"{PREFIX}-{epoch:04d}.states"))
        with open(tmp / OPTIMIZER, "wb") as handle:
            pickle.dump(optimizer, handle)
    full = dict(config, optimizer_state=with_optimizer, format=FORMAT, format_version=FORMAT_VERSION, library_version=__version__,
                mxnet_version=mx.__version__, checkpoint=name, mxnet_epoch=epoch)
    with open(tmp / CONFIG, "w") as handle:
        json.dump(full, handle, indent=1, sort_keys=True, default=repr)
    for path in tmp.iterdir():
        _fsync_file(path)
    _fsync_dir(tmp)
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    write_json_atomic(root / LATEST, {"format": FORMAT, "format_version": FORMAT_VERSION, "checkpoint": name})
    for old in sorted(p for p in root.glob("ckpt-*") if p.is_dir())[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("checkpoint %s written (epoch %d, batch %d)", final, config["progress"]["epoch"],
                config["progress"]["batch"])
    return final


@dataclass
class Checkpoint:
    """A checkpoint read back: its config, parameters (in the trained cell's layout) and files."""

    path: Path
    config: Dict[str, Any]
    arg_params: Dict[str, np.ndarray]

    @property
    def prefix(self) -> str:
        """The prefix for ``mx.mod.BucketingModule.load(prefix, epoch, ...)``."""
        return str(self.path / PREFIX)

    @property
    def epoch(self) -> int:
        return int(self.config["mxnet_epoch"])

    @property
    def states_file(self) -> Path:
        return self.path / f"{PREFIX}-{self.epoch:04d}.states"

    def optimizer(self) -> mx.optimizer.Optimizer:
        """The pickled optimizer (with its update counts, which Adam's bias correction needs)."""
        path = self.path / OPTIMIZER
        check_condition(self.config.get("optimizer_state", True), f"{self.path}: written by distributed training, "
                        "it holds no optimizer state and cannot be resumed (it can be loaded for prediction)")
        check_condition(path.is_file(), f"{path}: missing; the checkpoint is incomplete", FileNotFoundError)
        try:
            with open(path, "rb") as handle:
                optimizer = pickle.load(handle)
        except Exception as err:  # a truncated or foreign pickle raises many kinds of errors
            raise ValueError(f"{path}: not a readable optimizer pickle ({type(err).__name__}: {err})") from None
        check_condition(isinstance(optimizer, mx.optimizer.Optimizer),
                        f"{path}: holds a {type(optimizer).__name__}, not an MXNet optimizer")
        return optimizer


def _read_json(path: Path, what: str) -> Dict[str, Any]:
    check_condition(path.is_file(), f"{path}: missing; {what}", FileNotFoundError)
    try:
        with open(path) as handle:
            payload = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON, the file is truncated or foreign ({err})") from None
    check_condition(isinstance(payload, dict), f"{path}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _check_format(payload: Dict[str, Any], path: Path) -> None:
    check_condition(payload.get("format") == FORMAT,
                    f"{path}: not a sinlstm-sym checkpoint (format {payload.get('format')!r}, expected {FORMAT!r})")
    check_condition(payload.get("format_version") == FORMAT_VERSION,
                    f"{path}: checkpoint format version {payload.get('format_version')!r}; this library reads "
                    f"version {FORMAT_VERSION}")


def load_checkpoint(directory: PathLike) -> Checkpoint:
    """Read the latest complete checkpoint in ``directory``.

    Raises ``FileNotFoundError`` when the directory, ``latest.json`` or a file it names is
    missing, and ``ValueError`` naming the file when one is truncated or foreign.
    """
    root = Path(directory)
    check_condition(root.is_dir(), f"{root}: no such checkpoint directory", FileNotFoundError)
    latest = _read_json(root / LATEST, "no checkpoint has been completed in this directory")
    _check_format(latest, root / LATEST)
    name = latest.get("checkpoint")
    check_condition(isinstance(name, str) and name.startswith("ckpt-") and "/" not in name,
                    f"{root / LATEST}: names no valid checkpoint ({name!r})")
    path = root / name
    check_condition(path.is_dir(), f"{path}: missing, although {root / LATEST} names it", FileNotFoundError)
    config = _read_json(path / CONFIG, "the checkpoint is incomplete")
    _check_format(config, path / CONFIG)
    for key in ("settings", "progress", "mxnet_epoch"):
        check_condition(key in config, f"{path / CONFIG}: lacks {key!r}; the file is foreign or damaged")
    params_file = path / f"{PREFIX}-{int(config['mxnet_epoch']):04d}.params"
    check_condition(params_file.is_file(), f"{params_file}: missing; the checkpoint is incomplete", FileNotFoundError)
    try:
        saved = mx.nd.load(str(params_file))
    except mx.base.MXNetError:
        raise ValueError(f"{params_file}: not a readable MXNet parameter file (truncated or foreign)") from None
    check_condition(isinstance(saved, dict) and all(k.startswith(("arg:", "aux:")) for k in saved),
                    f"{params_file}: not a module parameter file (expected 'arg:'/'aux:' names)")
    arg_params = {k[4:]: v.asnumpy() for k, v in saved.items() if k.startswith("arg:")}
    return Checkpoint(path=path, config=config, arg_params=arg_params)
