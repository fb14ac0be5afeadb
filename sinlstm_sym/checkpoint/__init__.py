"""Atomic, versioned, checksummed training checkpoints without pickles, that plain MXNet can read.

Layout of a run directory ``DIR`` (format version 2; :class:`RunDirectory` alone knows it)::

    DIR/latest.json                 {"format", "format_version", "checkpoint": "ckpt-00001000", "checksum"}
    DIR/best/                       the best checkpoint by validation, laid out like DIR
    DIR/ckpt-00001000/model-0001.params         parameters (MXNet's array file, BucketingModule.save_checkpoint)
                      model-<key>-symbol.json   one symbol per bucket (MXNet's)
                      model.buckets             the bucket keys (MXNet's array file)
                      optimizer-state.nd        optimizer state arrays named "<param>:<slot>" (MXNet's array file)
                      optimizer-state.json      optimizer class, update counters, the state's kind per parameter
                      config.json               settings, progress, run id, versions, manifest, checksum

``config.json``'s ``manifest`` gives the SHA-256 and size of every other file of the
checkpoint; it and ``latest.json`` carry the SHA-256 of their own bytes (``checksum``, its
hex digits read as zeros). Every load verifies them before any byte reaches MXNet and
raises ``ValueError`` naming the file on a mismatch; each file's size is compared with the
manifest before it is read, and JSON is bounded in size and depth. Files in a checkpoint
directory that the manifest does not list are never read (a warning names them). The
optimizer itself is not stored: training rebuilds it from ``config['settings']`` and
:meth:`Checkpoint.restore_optimizer` gives it back its update counters and state arrays,
validated against the bound parameters. No file of a checkpoint is ever unpickled, except
format 1's when asked with ``allow_pickle=True`` (:mod:`.legacy`). The checksums detect
damage, not a forger (who can rewrite the manifest): a crafted array file still reaches
MXNet's C++ reader, but no Python code runs.

Every checkpoint is written into a temporary directory, flushed to disk, renamed into
place, and only then named in ``latest.json`` (itself replaced atomically), so a process
killed at any moment leaves the previous checkpoint readable (:mod:`.run_directory`).

Modules: :mod:`.files` (atomic writes, checksummed and bounded JSON), :mod:`.schema` (the
fields of ``config.json`` and their checks), :mod:`.run_directory` (layout, rotation, the rules of
writing) with :mod:`.lock` (one writer at a time),
:mod:`.optimizer_state`, :mod:`.store` (save and load one checkpoint), :mod:`.legacy`
(format 1 and ``python -m sinlstm_sym.checkpoint convert``).
"""
from .files import CHECKSUM, MAX_JSON_BYTES, MAX_JSON_DEPTH, DiskFullError, write_json_atomic
from .legacy import convert_checkpoint
from .optimizer_state import CHECKPOINTABLE_OPTIMIZERS, check_checkpointable_optimizer
from .lock import RunLockError
from .run_directory import BEST, KEEP, LATEST, CheckpointWriteError, RunDirectory, RunWriter, new_run_id
from .schema import (CONFIG, FORMAT, FORMAT_VERSION, OPTIMIZER_ARRAYS, OPTIMIZER_JSON, PICKLED_OPTIMIZER, PREFIX,
                     READABLE_VERSIONS, mxnet_epoch)
from .store import Checkpoint, CheckpointEntry, list_checkpoints, load_checkpoint, save_checkpoint, verify_checkpoint

__all__ = ["load_checkpoint", "save_checkpoint", "list_checkpoints", "verify_checkpoint", "convert_checkpoint",
           "check_checkpointable_optimizer", "Checkpoint", "CheckpointEntry", "RunDirectory", "RunWriter",
           "DiskFullError", "CheckpointWriteError",
           "RunLockError", "new_run_id", "write_json_atomic", "mxnet_epoch", "FORMAT", "FORMAT_VERSION",
           "READABLE_VERSIONS", "LATEST", "BEST", "CONFIG", "OPTIMIZER_ARRAYS", "OPTIMIZER_JSON", "PICKLED_OPTIMIZER",
           "PREFIX", "KEEP", "CHECKSUM", "CHECKPOINTABLE_OPTIMIZERS", "MAX_JSON_BYTES", "MAX_JSON_DEPTH"]
