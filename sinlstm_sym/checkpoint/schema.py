"""What a checkpoint's ``config.json`` and ``latest.json`` hold, and the checks of every field read back.

A field that does not fit is a ``ValueError`` naming the file and the field, raised before the
value reaches the training loop or MXNet (never a ``KeyError`` or ``TypeError``).
"""
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import mxnet as mx

from ..core.checks import check_condition
from ..version import __version__
from .files import CHECKSUM, checksum_matches, checksummed_json, fsync_dir, fsync_file, sha256, write_bytes

FORMAT = "sinlstm-sym-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CONFIG = "config.json"
OPTIMIZER_ARRAYS = "optimizer-state.nd"
OPTIMIZER_JSON = "optimizer-state.json"
PICKLED_OPTIMIZER = "optimizer.pickle"  # format 1 only
PREFIX = "model"
RUN_ID = "run_id"  # the run that wrote the checkpoint: rotation removes only its own
FORMAT_KEYS = ("format", "format_version", "library_version", "mxnet_version", "checkpoint", "manifest", CHECKSUM)
MAX_COUNT = 2 ** 53  # epochs, batches, windows: exact in a JSON number, far beyond any run


def params_name(epoch: int) -> str:
    """The parameter file of a checkpoint (MXNet's ``model-%04d.params``)."""
    return f"{PREFIX}-{epoch:04d}.params"


def mxnet_epoch(config: Dict[str, Any]) -> int:
    """The epoch number in the checkpoint's MXNet file names (``model-%04d.params``)."""
    return int(config["progress"]["epoch"])


def check_format(payload: Dict[str, Any], data: bytes, path: Path) -> int:
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
        check_condition(checksum_matches(data), f"{path}: its checksum does not match its bytes; the file is "
                        "damaged or was edited")
    return version


def check_manifest(path: Path, config: Dict[str, Any], required: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The manifest of checkpoint directory ``path``: file name -> ``{'sha256', 'size'}``, every entry checked."""
    manifest: Any = config.get("manifest")
    where = path / CONFIG
    check_condition(isinstance(manifest, dict), f"{where}: lacks a manifest; the file is foreign or damaged")
    for name, entry in manifest.items():
        check_condition(isinstance(name, str) and Path(name).name == name and name not in ("", ".", "..", CONFIG),
                        f"{where}: manifest names {name!r}, not a file of the checkpoint directory")
        check_condition(isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                        and isinstance(entry.get("size"), int) and not isinstance(entry.get("size"), bool)
                        and entry["size"] >= 0,
                        f"{where}: manifest entry for {name!r} is not {{'sha256': str, 'size': int}}")
    for name in required:
        check_condition(name in manifest, f"{where}: the manifest lacks {name!r}; the checkpoint is incomplete")
    return manifest


def _is_count(value: Any, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value < MAX_COUNT


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Fields:
    """Checks of the fields of one JSON object, each failure naming the file and the field's path."""

    def __init__(self, where: Path, prefix: str) -> None:
        self.where, self.prefix = where, prefix

    def fail_unless(self, ok: bool, name: str, value: Any, expected: str) -> None:
        field = self.prefix + name if name else self.prefix.rstrip(".")  # "" names the object itself
        check_condition(ok, f"{self.where}: {field} is {value!r:.80}, expected {expected}; the file is damaged or "
                        "was edited")

    def count(self, payload: Dict[str, Any], name: str, minimum: int = 0) -> None:
        self.fail_unless(_is_count(payload[name], minimum), name, payload[name], f"an int >= {minimum}")

    def number(self, payload: Dict[str, Any], name: str, minimum: float = 0.0, strict: bool = False,
               optional: bool = False) -> None:
        value = payload[name]
        ok = (optional and value is None) or (_is_number(value) and (value > minimum if strict else value >= minimum))
        self.fail_unless(ok, name, value, f"a finite number {'>' if strict else '>='} {minimum:g}"
                         + (" or null" if optional else ""))

    def listing(self, payload: Dict[str, Any], name: str, check: Any, expected: str) -> List[Any]:
        value = payload[name]
        self.fail_unless(isinstance(value, list) and all(check(v) for v in value), name, value, expected)
        return list(value)

    def keys(self, payload: Any, name: str, required: Sequence[str], optional: Sequence[str] = ()) -> None:
        self.fail_unless(isinstance(payload, dict), name, payload, f"an object with {list(required)}")
        missing = [k for k in required if k not in payload]
        unknown = sorted(str(k) for k in set(payload) - set(required) - set(optional))
        self.fail_unless(not missing and not unknown, name, sorted(payload),
                         f"an object with {list(required)}" + (f" (and optionally {list(optional)})" if optional
                                                                else "")
                         + (f"; it lacks {missing}" if missing else "") + (f"; unknown: {unknown}" if unknown else ""))


_PROGRESS_REQUIRED = ("epoch", "batch", "global_batch")
_PROGRESS_COUNTS = ("window_windows", "epoch_windows")
_PROGRESS_SUMS = ("window_loss", "epoch_loss", "train_seconds")
_PROGRESS_OPTIONAL = ("history", "epoch_losses", "eval_losses", "trained_lengths", "window_keys", "first_loss",
                      "validation",
                      "stopped", *_PROGRESS_COUNTS, *_PROGRESS_SUMS)


def _is_length_map(value: Any, check: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and k.isdigit() and int(k) >= 1 and check(v)
                                           for k, v in value.items())


def _check_history(where: Path, history: List[Any]) -> None:
    for i, record in enumerate(history):
        fields = _Fields(where, f"progress.history[{i}].")
        fields.keys(record, "", ("epoch", "batch", "loss", "samples_per_sec", "bucket_counts"))
        for name in ("epoch", "batch"):
            fields.count(record, name)
        fields.number(record, "loss")
        fields.number(record, "samples_per_sec")
        fields.fail_unless(_is_length_map(record["bucket_counts"], lambda v: _is_count(v, 1)), "bucket_counts",
                           record["bucket_counts"], "an object of window length -> count")


def _check_validation(where: Path, records: List[Any]) -> None:
    def pair(value: Any) -> bool:
        return isinstance(value, list) and len(value) == 2 and all(_is_number(v) and v >= 0 for v in value)

    for i, record in enumerate(records):
        fields = _Fields(where, f"progress.validation[{i}].")
        fields.keys(record, "", ("epoch", "batch", "global_batch", "seconds", "per_length"))
        for name in ("epoch", "batch", "global_batch"):
            fields.count(record, name)
        fields.number(record, "seconds")
        fields.fail_unless(_is_length_map(record["per_length"], pair) and bool(record["per_length"]), "per_length",
                           record["per_length"], "an object of window length -> [mse, max_abs_error]")


def trained_lengths(progress: Mapping[str, Any]) -> List[int]:
    """The window lengths that had a training batch, from a checkpoint's ``progress`` (version 0.1 wrote none:
    there, every bucket with a logged batch)."""
    if "trained_lengths" in progress:
        return list(progress["trained_lengths"])
    return sorted({int(k) for record in progress["history"] for k in record["bucket_counts"]})


def check_progress(where: Path, progress: Any) -> Dict[str, Any]:
    """``progress`` (as :class:`~sinlstm_sym.train.progress.Progress` stores it) after checking every field."""
    fields = _Fields(where, "progress.")
    fields.keys(progress, "", _PROGRESS_REQUIRED, _PROGRESS_OPTIONAL)
    for name in ("epoch", "batch", "global_batch", *(n for n in _PROGRESS_COUNTS if n in progress)):
        fields.count(progress, name)
    fields.fail_unless(progress["batch"] <= progress["global_batch"], "batch", progress["batch"],
                       f"at most global_batch ({progress['global_batch']})")
    for name in (n for n in _PROGRESS_SUMS if n in progress):
        fields.number(progress, name)
    if "first_loss" in progress:
        fields.number(progress, "first_loss", strict=True, optional=True)
    for name in ("epoch_losses", "eval_losses"):  # an epoch without windows records NaN, stored as NaN
        if name in progress:
            fields.listing(progress, name, lambda v: _is_number(v) or (isinstance(v, float) and math.isnan(v)),
                           "a list of numbers")
    for name in ("trained_lengths", "window_keys"):
        if name in progress:
            fields.listing(progress, name, lambda v: _is_count(v, 1), "a list of window lengths (ints >= 1)")
    if "stopped" in progress:
        fields.fail_unless(progress["stopped"] is None or isinstance(progress["stopped"], str), "stopped",
                           progress["stopped"], "a string or null")
    if "history" in progress:
        _check_history(where, fields.listing(progress, "history", lambda v: True, "a list"))
    if "validation" in progress:
        _check_validation(where, fields.listing(progress, "validation", lambda v: True, "a list"))
    return progress


def check_config(path: Path, config: Dict[str, Any]) -> None:
    """Check the fields of checkpoint directory ``path``'s ``config.json`` that loading and resuming read."""
    where = path / CONFIG
    for key in ("settings", "progress", "mxnet_epoch"):
        check_condition(key in config, f"{where}: lacks {key!r}; the file is foreign or damaged")
    fields = _Fields(where, "")
    fields.fail_unless(isinstance(config["settings"], dict), "settings", config["settings"], "an object")
    fields.count(config, "mxnet_epoch")
    progress = check_progress(where, config["progress"])
    fields.fail_unless(config["mxnet_epoch"] == progress["epoch"], "mxnet_epoch", config["mxnet_epoch"],
                       f"progress.epoch ({progress['epoch']})")
    fields.fail_unless(isinstance(config.get("optimizer_state", True), bool), "optimizer_state",
                       config.get("optimizer_state"), "true or false")
    fields.fail_unless(config.get(RUN_ID) is None or (isinstance(config[RUN_ID], str) and config[RUN_ID].isalnum()
                                                      and len(config[RUN_ID]) <= 64),
                       RUN_ID, config.get(RUN_ID), "a run id (letters and digits)")


def finish_checkpoint(tmp: Path, name: str, config: Dict[str, Any]) -> None:
    """Add the manifest and ``config.json`` to the files written in ``tmp`` and flush them all to disk."""
    manifest = {}
    for path in sorted(tmp.iterdir()):
        data = path.read_bytes()
        manifest[path.name] = {"sha256": sha256(data), "size": len(data)}
    full = dict(config, format=FORMAT, format_version=FORMAT_VERSION, library_version=__version__,
                mxnet_version=mx.__version__, checkpoint=name, manifest=manifest)
    write_bytes(tmp / CONFIG, checksummed_json(full))
    for path in tmp.iterdir():
        fsync_file(path)
    fsync_dir(tmp)


def run_id_of(config: Optional[Dict[str, Any]]) -> Optional[str]:
    """The run id a checkpoint's configuration records (``None`` for checkpoints written before run ids)."""
    value = (config or {}).get(RUN_ID)
    return value if isinstance(value, str) else None
