"""Checkpoint format version 1 (sinlstm-sym 0.1) and its conversion to format 2.

Format 1 had no checksums and stored its optimizer state as pickles (``optimizer.pickle``,
``model-NNNN.states``): it loads for prediction as before; resuming needs
``allow_pickle=True``, or convert it once with
``python -m sinlstm_sym.checkpoint convert OLD_DIR NEW_DIR --allow-pickle``.
"""
import logging
import os
import shutil
from pathlib import Path
from typing import Union

from ..core.checks import check_condition
from .optimizer_state import read_pickled_state, write_optimizer_state
from .run_directory import RunDirectory, new_run_id, step_of
from .schema import FORMAT_KEYS, FORMAT_VERSION, PREFIX, RUN_ID, finish_checkpoint, params_name
from .store import load_checkpoint

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def convert_checkpoint(source: PathLike, destination: PathLike, allow_pickle: bool = False) -> Path:
    """Rewrite a format-1 checkpoint (``source``: run or ``ckpt-N`` directory) as format 2 in run directory
    ``destination``; return the new checkpoint's directory. Unpickles the old optimizer state, so it needs
    ``allow_pickle=True``: convert only checkpoints you trust."""
    old = load_checkpoint(source, allow_pickle=allow_pickle)
    check_condition(old.format_version == 1, f"{old.path}: already checkpoint format version "
                    f"{old.format_version}; nothing to convert")
    run = RunDirectory(destination)
    check_condition(not run.latest_file.exists(), f"{run.root}: already holds checkpoints; give a new directory")
    files = [old.path / params_name(old.epoch), old.path / f"{PREFIX}.buckets",
             *sorted(old.path.glob(f"{PREFIX}-*-symbol.json"))]
    for path in files:
        check_condition(path.is_file(), f"{path}: missing; the checkpoint is incomplete", FileNotFoundError)
    with_optimizer = bool(old.config.get("optimizer_state", True))
    if with_optimizer:
        meta, arrays, _ = read_pickled_state(old.path, old.epoch, old.allow_pickle)
    run_id = new_run_id()
    config = {k: v for k, v in old.config.items() if k not in FORMAT_KEYS}

    def fill(tmp: Path, name: str) -> None:
        for path in files:
            shutil.copyfile(path, tmp / path.name)
        if with_optimizer:
            write_optimizer_state(tmp, meta, arrays)
        finish_checkpoint(tmp, name, dict(config, optimizer_state=with_optimizer, **{RUN_ID: run_id}))

    step = step_of(old.path.name)
    check_condition(step is not None, f"{old.path}: not named ckpt-N; cannot tell its update count")
    with run.open(run_id, new_run=True) as writer:
        final = writer.write(step or 0, fill)
    logger.info("converted %s (format 1) to %s (format %d)", old.path, final, FORMAT_VERSION)
    return final
