"""Atomic, versioned, checksummed training checkpoints without pickles, that plain MXNet can read.

Layout of a run directory ``DIR`` (format version 2)::

    DIR/latest.json                 {"format", "format_version", "checkpoint": "ckpt-00001000", "checksum"}
    DIR/ckpt-00001000/model-0001.params         parameters (MXNet's array file, BucketingModule.save_checkpoint)
                      model-<key>-symbol.json   one symbol per bucket (MXNet's)
                      model.buckets             the bucket keys (MXNet's array file)
                      optimizer-state.nd        optimizer state arrays named "<param>:<slot>" (MXNet's array file)
                      optimizer-state.json      optimizer class, update counters, the state's kind per parameter
                      config.json               settings, progress, versions, manifest, checksum

``config.json``'s ``manifest`` gives the SHA-256 and size of every other file of the
checkpoint; it and ``latest.json`` carry the SHA-256 of their own bytes (``checksum``, its
hex digits read as zeros). Every load verifies them before any byte reaches MXNet and
raises ``ValueError`` naming the file on a mismatch. Files in a checkpoint directory that the manifest does not list
are never read (a warning names them). The optimizer itself is not stored: training
rebuilds it from ``config['settings']`` and :meth:`Checkpoint.restore_optimizer` gives it
back its update counters and state arrays, validated against the bound parameters. No
file of a checkpoint is ever unpickled, except format 1's when asked with
``allow_pickle=True``. The checksums detect damage, not a forger (who can rewrite the
manifest): a crafted array file still reaches MXNet's C++ reader, but no Python code runs.

Format version 1 (sinlstm-sym 0.1) had no checksums and stored its optimizer state as
pickles (``optimizer.pickle``, ``model-NNNN.states``): it loads for prediction as before;
resuming needs ``allow_pickle=True``, or convert it once with
``python -m sinlstm_sym.checkpoint convert OLD_DIR NEW_DIR --allow-pickle``.

Every checkpoint is written into a temporary directory, flushed to disk, renamed into
place, and only then named in ``latest.json`` (itself replaced atomically), so a process
killed at any moment leaves the previous checkpoint readable.
"""
import argparse
import hashlib
import json
import logging
import os
import pickle
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as np

from .checks import check_condition
from .version import __version__

logger = logging.getLogger(__name__)

FORMAT = "sinlstm-sym-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
LATEST = "latest.json"
CONFIG = "config.json"
OPTIMIZER_ARRAYS = "optimizer-state.nd"
OPTIMIZER_JSON = "optimizer-state.json"
PICKLED_OPTIMIZER = "optimizer.pickle"  # format 1 only
PREFIX = "model"
KEEP = 2  # complete checkpoints kept on disk
CHECKSUM = "checksum"

# Optimizers whose whole state is their update counters and per-parameter NDArrays (or
# tuples of them, or None); the others keep state in attributes (Nadam's m_schedule,
# LBSGD, LARS), hold None inside a tuple (DCASGD) or draw random numbers (SGLD): a resume could not
# continue exactly.
CHECKPOINTABLE_OPTIMIZERS = ("adam", "sgd", "nag", "adamax", "adagrad", "adadelta", "rmsprop", "ftrl", "signum",
                             "ftml", "lamb")

PathLike = Union[str, "os.PathLike[str]"]
_CKPT_NAME = re.compile(r"ckpt-\d{8}")


def check_checkpointable_optimizer(name: str) -> None:
    """Refuse an optimizer whose state a checkpoint cannot hold exactly (``ValueError`` naming the supported ones)."""
    check_condition(isinstance(name, str), f"optimizer must be an MXNet optimizer name such as 'adam' or 'sgd', "
                    f"got {name!r}", TypeError)
    check_condition(name.lower() in CHECKPOINTABLE_OPTIMIZERS,
                    f"optimizer {name!r} cannot be checkpointed (its state is not only per-parameter arrays and "
                    f"update counts); with checkpoint='DIR' use one of {', '.join(CHECKPOINTABLE_OPTIMIZERS)}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# The top-level checksum entry of a JSON file written with indent=1 (a newline inside a string is escaped).
_CHECKSUM_ENTRY = re.compile(rb'\n "checksum": "sha256:([0-9a-f]{64})"')


def _checksummed_json(payload: Dict[str, Any]) -> bytes:
    """``payload`` as JSON holding the SHA-256 of the file's own bytes, its 64 hex digits read as zeros."""
    body = json.dumps(dict(payload, **{CHECKSUM: "sha256:" + "0" * 64}), indent=1, sort_keys=True,
                      default=repr).encode()
    digest = _sha256(body).encode()
    return _CHECKSUM_ENTRY.sub(lambda m: m.group(0).replace(m.group(1), digest), body, count=1)


def _checksum_matches(data: bytes) -> bool:
    entries = list(_CHECKSUM_ENTRY.finditer(data))
    if len(entries) != 1:
        return False
    start, end = entries[0].span(1)
    return _sha256(data[:start] + b"0" * 64 + data[end:]) == entries[0].group(1).decode()


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_json_atomic(path: Path, payload: Dict[str, Any]) -> None:
    """Write ``payload`` (with its checksum) as JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _write_bytes(tmp, _checksummed_json(payload))
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def mxnet_epoch(config: Dict[str, Any]) -> int:
    """The epoch number in the checkpoint's MXNet file names (``model-%04d.params``)."""
    return int(config["progress"]["epoch"])


def _params_name(epoch: int) -> str:
    return f"{PREFIX}-{epoch:04d}.params"


def _param_of(key: Any, idx2name: Dict[int, str], source: str) -> str:
    """The parameter an updater key stands for: an index of ``idx2name``, or (kvstore updates) the name itself."""
    if isinstance(key, str):
        return key
    check_condition(isinstance(key, int) and key in idx2name,
                    f"{source}: optimizer state for index {key!r}, which names no parameter")
    return idx2name[key]


def _optimizer_state(optimizer: mx.optimizer.Optimizer, states: Dict[Any, Any], idx2name: Dict[int, str],
                     source: str) -> Tuple[Dict[str, Any], Dict[str, mx.nd.NDArray]]:
    """An updater's ``{key: state}`` and ``optimizer``'s counters as JSON and arrays named ``"<param>:<slot>"``.

    Keyed by parameter name, so the state fits a module whose updater keys by index (one
    device) or by name (several devices, updates on the kvstore). Of several keys for one
    parameter (a copy per device, or the unused scheme's copy left by a restore) the most
    updated one is kept; equal counts mean equal states.
    """
    # MXNet 1.9.1 keeps the per-device update counts (Adam's bias correction) only in this private attribute.
    per_device = optimizer._all_index_update_counts  # noqa: SLF001
    updates: Dict[Any, int] = {}
    for per in per_device.values():
        for key, value in per.items():
            updates[key] = max(int(value), updates.get(key, 0))
    entries: Dict[str, Dict[str, Any]] = {}
    arrays: Dict[str, mx.nd.NDArray] = {}
    chosen: Dict[str, Any] = {}
    for key in sorted(states, key=lambda k: (isinstance(k, str), k)):
        param = _param_of(key, idx2name, source)
        if param not in chosen or updates.get(key, -1) > updates.get(chosen[param], -1):
            chosen[param] = key
    for param, key in sorted(chosen.items()):
        state = states[key]
        if state is None:
            parts, kind = [], "none"
        elif isinstance(state, mx.nd.NDArray):
            parts, kind = [state], "array"
        elif isinstance(state, tuple) and all(isinstance(s, mx.nd.NDArray) for s in state):
            parts, kind = list(state), "tuple"
        else:
            raise ValueError(f"{source}: the optimizer state of parameter {param!r} is a {type(state).__name__}, "
                             "not an NDArray, a tuple of NDArrays or None; this optimizer cannot be checkpointed "
                             f"(use one of {', '.join(CHECKPOINTABLE_OPTIMIZERS)})")
        entries[param] = {"param": param, "kind": kind, "arrays": len(parts)}
        for slot, array in enumerate(parts):
            arrays[f"{param}:{slot}"] = array
    counts: Dict[Tuple[int, str], int] = {}
    for device, per in per_device.items():
        for key, value in per.items():
            where = (int(device), _param_of(key, idx2name, source))
            counts[where] = max(int(value), counts.get(where, 0))
    meta = {"optimizer": type(optimizer).__name__, "num_update": int(optimizer.num_update),
            "update_counts": [{"device": d, "param": p, "count": c} for (d, p), c in sorted(counts.items())],
            "states": [entries[p] for p in sorted(entries)]}
    return meta, arrays


def _write_optimizer_state(directory: Path, meta: Dict[str, Any], arrays: Dict[str, mx.nd.NDArray]) -> None:
    mx.nd.save(str(directory / OPTIMIZER_ARRAYS), arrays)
    _write_bytes(directory / OPTIMIZER_JSON, json.dumps(meta, indent=1).encode())


def _commit(root: Path, tmp: Path, name: str, config: Dict[str, Any]) -> Path:
    """Add the manifest and ``config.json`` to the files in ``tmp``, rename it to ``root/name``, update latest."""
    manifest = {}
    for path in sorted(tmp.iterdir()):
        data = path.read_bytes()
        manifest[path.name] = {"sha256": _sha256(data), "size": len(data)}
    full = dict(config, format=FORMAT, format_version=FORMAT_VERSION, library_version=__version__,
                mxnet_version=mx.__version__, checkpoint=name, manifest=manifest)
    _write_bytes(tmp / CONFIG, _checksummed_json(full))
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
    return final


def _fresh_tmp(root: Path, name: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-ckpt-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    tmp.mkdir()
    return tmp


def save_checkpoint(directory: PathLike, module: mx.mod.BucketingModule, optimizer: mx.optimizer.Optimizer,
                    config: Dict[str, Any], with_optimizer: bool = True,
                    symbols: Optional[Callable[[int], Any]] = None) -> Path:
    """Write one checkpoint of ``module`` and ``optimizer`` with ``config``; return its directory.

    ``config`` must hold ``settings`` (JSON; training rebuilds the optimizer from it) and
    ``progress`` (epoch, batch, global_batch, ...). Parameters that are not finite are
    refused: no NaN checkpoint. ``with_optimizer=False`` (distributed training) leaves out
    the optimizer state.
    """
    root = Path(directory)
    arg_params, aux_params = module.get_params()
    for name, value in {**arg_params, **aux_params}.items():
        check_condition(bool(np.isfinite(value.asnumpy()).all()),
                        f"parameter {name!r} is not finite; checkpoint not written, the previous one is kept",
                        FloatingPointError)
    name = f"ckpt-{int(config['progress']['global_batch']):08d}"
    tmp = _fresh_tmp(root, name)
    epoch = mxnet_epoch(config)
    module.save_checkpoint(str(tmp / PREFIX), epoch)
    if symbols is not None:  # another sym_gen with the same parameters (e.g. fused for a native-cell module)
        for path in tmp.glob(f"{PREFIX}-*-symbol.json"):
            symbols(int(path.name[len(PREFIX) + 1:-len("-symbol.json")]))[0].save(str(path))
    if with_optimizer:
        # MXNet's only way out of a module is a pickle of {index: state}; these bytes are made here, in this process.
        own = tmp / ".mxnet-states.tmp"
        module.save_optimizer_states(str(own))
        states = pickle.loads(own.read_bytes())
        own.unlink()
        _write_optimizer_state(tmp, *_optimizer_state(optimizer, states, optimizer.idx2name,
                                                       f"optimizer {type(optimizer).__name__}"))
    final = _commit(root, tmp, name, dict(config, optimizer_state=with_optimizer, mxnet_epoch=epoch))
    logger.info("checkpoint %s written (epoch %d, batch %d)", final, config["progress"]["epoch"],
                config["progress"]["batch"])
    return final


def _read_json_bytes(data: bytes, path: Path) -> Dict[str, Any]:
    try:
        payload = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON, the file is truncated, damaged or foreign ({err})") from None
    check_condition(isinstance(payload, dict), f"{path}: expected a JSON object, got {type(payload).__name__}")
    return payload


def _read_json(path: Path, what: str) -> Tuple[Dict[str, Any], bytes]:
    check_condition(path.is_file(), f"{path}: missing; {what}", FileNotFoundError)
    data = path.read_bytes()
    return _read_json_bytes(data, path), data


def _check_format(payload: Dict[str, Any], data: bytes, path: Path) -> int:
    """The file's format version, after checking its format name, version and (from version 2) checksum."""
    check_condition(payload.get("format") == FORMAT,
                    f"{path}: not a sinlstm-sym checkpoint (format {payload.get('format')!r}, expected {FORMAT!r})")
    version: Any = payload.get("format_version")
    check_condition(isinstance(version, int) and not isinstance(version, bool) and version >= 1,
                    f"{path}: format_version {version!r} is not a checkpoint format version; the file is damaged "
                    "or foreign")
    check_condition(version <= FORMAT_VERSION,
                    f"{path}: checkpoint format version {version} is newer than this library (sinlstm-sym "
                    f"{__version__}) reads (versions {READABLE_VERSIONS[0]} to {FORMAT_VERSION}); upgrade sinlstm-sym")
    if version >= 2:
        check_condition(_checksum_matches(data), f"{path}: its checksum does not match its bytes; the file is "
                        "damaged or was edited")
    return version


def _verified_bytes(path: Path, entry: Any) -> bytes:
    """The bytes of ``path`` after checking them against its manifest ``entry``."""
    check_condition(path.is_file(), f"{path}: missing, although the checkpoint's manifest lists it",
                    FileNotFoundError)
    data = path.read_bytes()
    check_condition(len(data) == entry["size"], f"{path}: {len(data)} bytes, the manifest says {entry['size']}; "
                    "the file is truncated or was replaced")
    check_condition(_sha256(data) == entry["sha256"],
                    f"{path}: SHA-256 mismatch with the manifest; the file is damaged or was replaced")
    return data


def _check_manifest(path: Path, config: Dict[str, Any], required: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    manifest: Any = config.get("manifest")
    where = path / CONFIG
    check_condition(isinstance(manifest, dict), f"{where}: lacks a manifest; the file is foreign or damaged")
    for name, entry in manifest.items():
        check_condition(isinstance(name, str) and Path(name).name == name and name not in ("", ".", "..", CONFIG),
                        f"{where}: manifest names {name!r}, not a file of the checkpoint directory")
        check_condition(isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                        and isinstance(entry.get("size"), int) and entry["size"] >= 0,
                        f"{where}: manifest entry for {name!r} is not {{'sha256': str, 'size': int}}")
    for name in required:
        check_condition(name in manifest, f"{where}: the manifest lacks {name!r}; the checkpoint is incomplete")
    return manifest


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

    def restore_optimizer(self, module: mx.mod.BaseModule, optimizer: mx.optimizer.Optimizer) -> None:
        """Give ``optimizer`` (fresh, after ``module.init_optimizer(optimizer=...)``) the saved counters and states.

        The state arrays are checked against the bound parameters (names, shapes, dtypes,
        finite) before MXNet sees them. A format-1 checkpoint's state is a pickle: refused
        unless loaded with ``allow_pickle=True``.
        """
        check_condition(isinstance(optimizer, mx.optimizer.Optimizer),
                        f"optimizer must be an mx.optimizer.Optimizer, got {type(optimizer).__name__}", TypeError)
        check_condition(self.config.get("optimizer_state", True), f"{self.path}: written by distributed training, "
                        "it holds no optimizer state and cannot be resumed (it can be loaded for prediction)")
        if self.format_version == 1:
            meta, arrays, source = self._pickled_state()
        else:
            manifest = self.config["manifest"]
            source = self.path / OPTIMIZER_ARRAYS
            meta_path = self.path / OPTIMIZER_JSON
            meta = _read_json_bytes(_verified_bytes(meta_path, manifest[OPTIMIZER_JSON]), meta_path)
            arrays = _load_arrays(_verified_bytes(source, manifest[OPTIMIZER_ARRAYS]), source)
        check_condition(meta.get("optimizer") == type(optimizer).__name__,
                        f"{source}: optimizer state of {meta.get('optimizer')!r}, but the optimizer to resume is "
                        f"{type(optimizer).__name__!r}")
        weights, _ = module.get_params()
        keys: Dict[str, List[Any]] = {name: [name] for name in weights}  # every key the updater may use for it
        for index, name in sorted(optimizer.idx2name.items()):
            if name in keys:
                keys[name].insert(-1, index)
        states = _validated_states(source, optimizer, weights, keys, meta.get("states"), arrays)
        counts = _validated_counts(source, keys, meta)
        optimizer.num_update = meta["num_update"]
        # No public setter for the update counts in MXNet 1.9.1: set the private per-device dicts directly.
        optimizer._all_index_update_counts = counts  # noqa: SLF001
        optimizer._index_update_count = counts.setdefault(0, {})  # noqa: SLF001
        with tempfile.TemporaryDirectory(prefix="sinlstm-states-") as tmp:
            blob = Path(tmp) / "states"
            # Module.load_optimizer_states reads only a pickle; this one is built here from the validated arrays.
            blob.write_bytes(pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL))
            module.load_optimizer_states(str(blob))

    def _pickled_state(self) -> Tuple[Dict[str, Any], Dict[str, mx.nd.NDArray], Path]:
        """Format 1: the optimizer state as format 2 holds it, from its two pickles (only with ``allow_pickle``)."""
        pickled = self.path / PICKLED_OPTIMIZER
        states_file = self.path / f"{PREFIX}-{self.epoch:04d}.states"
        check_condition(self.allow_pickle, f"{self.path}: checkpoint format version 1 (sinlstm-sym 0.1) keeps its "
                        f"optimizer state in pickles ({PICKLED_OPTIMIZER}, {states_file.name}); unpickling runs "
                        "whatever code the file's author put in it, so resuming is refused. If you trust this "
                        "checkpoint, pass allow_pickle=True, or convert it once with `python -m "
                        "sinlstm_sym.checkpoint convert OLD_DIR NEW_DIR --allow-pickle`")
        logger.warning("%s: unpickling the optimizer state of a format-1 checkpoint (allow_pickle=True); a pickle "
                       "can run any code, so do this only for checkpoints you trust", self.path)
        for path in (pickled, states_file):
            check_condition(path.is_file(), f"{path}: missing; the checkpoint is incomplete", FileNotFoundError)
        try:
            optimizer = pickle.loads(pickled.read_bytes())
            states = pickle.loads(states_file.read_bytes())
        except Exception as err:  # a truncated or foreign pickle raises many kinds of errors
            raise ValueError(f"{self.path}: not a readable format-1 optimizer state ({type(err).__name__}: "
                             f"{err})") from None
        check_condition(isinstance(optimizer, mx.optimizer.Optimizer),
                        f"{pickled}: holds a {type(optimizer).__name__}, not an MXNet optimizer")
        check_condition(isinstance(states, dict), f"{states_file}: holds a {type(states).__name__}, not a dict")
        return (*_optimizer_state(optimizer, states, optimizer.idx2name, str(states_file)), states_file)


def _load_arrays(data: bytes, path: Path) -> Dict[str, mx.nd.NDArray]:
    try:
        loaded = mx.nd.load_frombuffer(data)
    except mx.base.MXNetError:
        raise ValueError(f"{path}: not a readable MXNet array file") from None
    if isinstance(loaded, list) and not loaded:
        return {}  # MXNet reads an empty dict back as an empty list
    check_condition(isinstance(loaded, dict), f"{path}: holds unnamed arrays, expected named ones")
    return loaded


def _validated_states(source: Path, optimizer: mx.optimizer.Optimizer, weights: Dict[str, mx.nd.NDArray],
                      keys: Dict[str, List[Any]], entries: Any, arrays: Dict[str, mx.nd.NDArray]) -> Dict[Any, Any]:
    """``{key: state}`` for the updater, each state checked against a fresh one for the bound parameter."""
    check_condition(isinstance(entries, list), f"{source}: the list of parameter states is missing")
    expected_names = set()
    states: Dict[Any, Any] = {}
    for entry in entries:
        param: Any = entry.get("param") if isinstance(entry, dict) else None
        check_condition(param in weights and keys[param][0] not in states,
                        f"{source}: a state for {param!r}, which is no parameter of the bound module or is repeated")
        template = optimizer.create_state_multi_precision(keys[param][0], weights[param])
        kind, parts = ("none", []) if template is None else ("array", [template]) \
            if isinstance(template, mx.nd.NDArray) else ("tuple", list(template))
        check_condition(entry.get("kind") == kind and entry.get("arrays") == len(parts),
                        f"{source}: state of {param!r} is a {entry.get('kind')} of {entry.get('arrays')} array(s); "
                        f"{type(optimizer).__name__} keeps a {kind} of {len(parts)}")
        loaded = []
        for slot, like in enumerate(parts):
            name = f"{param}:{slot}"
            expected_names.add(name)
            check_condition(name in arrays, f"{source}: lacks array {name!r}")
            value = arrays[name]
            check_condition(value.shape == like.shape and value.dtype == like.dtype,
                            f"{source}: array {name!r} is {np.dtype(value.dtype).name}{value.shape}, expected "
                            f"{np.dtype(like.dtype).name}{like.shape}")
            check_condition(bool(np.isfinite(value.asnumpy()).all()), f"{source}: array {name!r} is not finite")
            loaded.append(value)
        for key in keys[param]:  # a copy each: a state shared by two keys would be updated twice
            copies = [value.copy() for value in loaded]
            states[key] = None if kind == "none" else copies[0] if kind == "array" else tuple(copies)
    unknown = sorted(set(arrays) - expected_names)
    check_condition(not unknown, f"{source}: arrays {unknown} belong to no parameter state")
    return states


def _validated_counts(source: Path, keys: Dict[str, List[Any]], meta: Dict[str, Any]) -> Dict[int, Dict[Any, int]]:
    """Per-device update counts for every key the updater may use, from the saved per-parameter counts."""
    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    num_update: Any = meta.get("num_update")
    entries: Any = meta.get("update_counts")
    check_condition(count(num_update), f"{source}: num_update {num_update!r} is not a count")
    check_condition(isinstance(entries, list), f"{source}: update_counts is not a list")
    counts: Dict[int, Dict[Any, int]] = {}
    for entry in entries:
        ok = isinstance(entry, dict) and count(entry.get("device")) and entry.get("param") in keys \
            and count(entry.get("count")) and entry["count"] <= num_update
        check_condition(ok, f"{source}: update count {entry!r} does not fit the bound module (num_update "
                        f"{num_update})")
        counts.setdefault(entry["device"], {}).update({key: entry["count"] for key in keys[entry["param"]]})
    return counts


def _checkpoint_dir(root: Path) -> Tuple[Path, int]:
    """The checkpoint directory ``root`` designates (itself, or the one its ``latest.json`` names)."""
    check_condition(root.is_dir(), f"{root}: no such checkpoint directory", FileNotFoundError)
    if _CKPT_NAME.fullmatch(root.name) and (root / CONFIG).is_file() and not (root / LATEST).exists():
        return root, 0
    latest, data = _read_json(root / LATEST, "no checkpoint has been completed in this directory")
    version = _check_format(latest, data, root / LATEST)
    name: Any = latest.get("checkpoint")
    check_condition(isinstance(name, str) and _CKPT_NAME.fullmatch(name) is not None,
                    f"{root / LATEST}: names no valid checkpoint ({name!r})")
    path = root / name
    check_condition(path.is_dir(), f"{path}: missing, although {root / LATEST} names it", FileNotFoundError)
    return path, version


def load_checkpoint(directory: PathLike, allow_pickle: bool = False) -> Checkpoint:
    """Read the latest complete checkpoint in the run directory ``directory`` (or the ``ckpt-N`` directory given).

    Every file is checked against the manifest before MXNet reads any of them. Raises
    ``FileNotFoundError`` when the directory, ``latest.json`` or a file is missing, and
    ``ValueError`` naming the file when one is damaged, truncated, foreign or of a newer
    format. ``allow_pickle=True`` lets :meth:`Checkpoint.restore_optimizer` unpickle a
    format-1 checkpoint's optimizer state; nothing else is ever unpickled.
    """
    check_condition(isinstance(allow_pickle, bool), f"allow_pickle must be True or False, got {allow_pickle!r}",
                    TypeError)
    path, latest_version = _checkpoint_dir(Path(directory))
    config, data = _read_json(path / CONFIG, "the checkpoint is incomplete")
    version = _check_format(config, data, path / CONFIG)
    check_condition(latest_version in (0, version), f"{path / CONFIG}: format version {version}, but "
                    f"{path.parent / LATEST} has version {latest_version}; the directory is damaged")
    for key in ("settings", "progress", "mxnet_epoch"):
        check_condition(key in config, f"{path / CONFIG}: lacks {key!r}; the file is foreign or damaged")
    check_condition(isinstance(config["mxnet_epoch"], int), f"{path / CONFIG}: mxnet_epoch is not an int")
    params_file = path / _params_name(config["mxnet_epoch"])
    if version == 1:
        logger.warning("%s: checkpoint format version 1 (sinlstm-sym 0.1) has no checksums; its files are not "
                       "verified", path)
        check_condition(params_file.is_file(), f"{params_file}: missing; the checkpoint is incomplete",
                        FileNotFoundError)
        params_bytes = params_file.read_bytes()
    else:
        required = [params_file.name] + ([OPTIMIZER_ARRAYS, OPTIMIZER_JSON] if config.get("optimizer_state") else [])
        manifest = _check_manifest(path, config, required)
        verified = {name: _verified_bytes(path / name, entry) for name, entry in manifest.items()}
        extra = sorted(p.name for p in path.iterdir() if p.name not in manifest and p.name != CONFIG)
        if extra:
            logger.warning("%s: files %s are not in the manifest; they are ignored", path, extra)
        params_bytes = verified[params_file.name]
    try:
        saved = mx.nd.load_frombuffer(params_bytes)
    except mx.base.MXNetError:
        raise ValueError(f"{params_file}: not a readable MXNet parameter file (truncated or foreign)") from None
    check_condition(isinstance(saved, dict) and all(k.startswith(("arg:", "aux:")) for k in saved),
                    f"{params_file}: not a module parameter file (expected 'arg:'/'aux:' names)")
    arg_params = {k[4:]: v.asnumpy() for k, v in saved.items() if k.startswith("arg:")}
    return Checkpoint(path=path, config=config, arg_params=arg_params, allow_pickle=allow_pickle)


@dataclass(frozen=True)
class CheckpointEntry:
    """One complete checkpoint of a run, as :func:`list_checkpoints` reports it."""

    name: str
    epoch: int
    batch: int
    global_batch: int
    latest: bool


def list_checkpoints(directory: PathLike) -> List[CheckpointEntry]:
    """The complete checkpoints in run directory ``directory``, oldest first."""
    root = Path(directory)
    check_condition(root.is_dir(), f"{root}: no such checkpoint directory", FileNotFoundError)
    latest = _read_json(root / LATEST, "no checkpoint has been completed in this directory")[0].get("checkpoint")
    entries = []
    for path in sorted(p for p in root.glob("ckpt-*") if (p / CONFIG).is_file()):
        progress = _read_json(path / CONFIG, "the checkpoint is incomplete")[0].get("progress", {})
        entries.append(CheckpointEntry(path.name, int(progress.get("epoch", 0)), int(progress.get("batch", 0)),
                                       int(progress.get("global_batch", 0)), path.name == latest))
    return entries


_FORMAT_KEYS = ("format", "format_version", "library_version", "mxnet_version", "checkpoint", "manifest", CHECKSUM)


def convert_checkpoint(source: PathLike, destination: PathLike, allow_pickle: bool = False) -> Path:
    """Rewrite a format-1 checkpoint (``source``: run or ``ckpt-N`` directory) as format 2 in run directory
    ``destination``; return the new checkpoint's directory. Unpickles the old optimizer state, so it needs
    ``allow_pickle=True``: convert only checkpoints you trust."""
    old = load_checkpoint(source, allow_pickle=allow_pickle)
    check_condition(old.format_version == 1, f"{old.path}: already checkpoint format version "
                    f"{old.format_version}; nothing to convert")
    root = Path(destination)
    check_condition(not (root / LATEST).exists(), f"{root}: already holds checkpoints; give a new directory")
    name = old.path.name
    files = [old.path / _params_name(old.epoch), old.path / f"{PREFIX}.buckets",
             *sorted(old.path.glob(f"{PREFIX}-*-symbol.json"))]
    for path in files:
        check_condition(path.is_file(), f"{path}: missing; the checkpoint is incomplete", FileNotFoundError)
    with_optimizer = bool(old.config.get("optimizer_state", True))
    if with_optimizer:
        meta, arrays, _ = old._pickled_state()
    tmp = _fresh_tmp(root, name)
    for path in files:
        shutil.copyfile(path, tmp / path.name)
    if with_optimizer:
        _write_optimizer_state(tmp, meta, arrays)
    config = {k: v for k, v in old.config.items() if k not in _FORMAT_KEYS}
    final = _commit(root, tmp, name, dict(config, optimizer_state=with_optimizer))
    logger.info("converted %s (format 1) to %s (format %d)", old.path, final, FORMAT_VERSION)
    return final


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m sinlstm_sym.checkpoint convert OLD_DIR NEW_DIR --allow-pickle``."""
    parser = argparse.ArgumentParser(prog="python -m sinlstm_sym.checkpoint",
                                     description="Convert a format-1 (sinlstm-sym 0.1) checkpoint to format 2.")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="rewrite OLD_DIR's latest checkpoint without pickles in NEW_DIR")
    convert.add_argument("old_dir")
    convert.add_argument("new_dir")
    convert.add_argument("--allow-pickle", action="store_true",
                         help="required: the old optimizer state is a pickle, which can run any code; "
                              "give it only for checkpoints you trust")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        final = convert_checkpoint(args.old_dir, args.new_dir, allow_pickle=args.allow_pickle)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
