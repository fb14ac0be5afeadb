"""Optimizer state in a checkpoint, without pickles: arrays named ``"<param>:<slot>"`` in MXNet's array file
and a JSON file of the optimizer's class, update counters and the kind of state per parameter.

Written from an updater's ``{key: state}``; read back only after every array is checked
against a fresh state for the bound parameter (names, shapes, dtypes, finite).
"""
import json
import logging
import pickle
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..core.checks import check_condition
from ..config.optimizer_args import CHECKPOINTABLE_OPTIMIZERS, check_checkpointable_optimizer  # noqa: F401 (re-exported)
from .files import write_bytes
from .schema import OPTIMIZER_ARRAYS, OPTIMIZER_JSON, PICKLED_OPTIMIZER, PREFIX

logger = logging.getLogger(__name__)


def _param_of(key: Any, idx2name: Dict[int, str], source: str) -> str:
    """The parameter an updater key stands for: an index of ``idx2name``, or (kvstore updates) the name itself."""
    if isinstance(key, str):
        return key
    check_condition(isinstance(key, int) and key in idx2name,
                    f"{source}: optimizer state for index {key!r}, which names no parameter")
    return idx2name[key]


def state_name(optimizer: mx.optimizer.Optimizer) -> str:
    """The name a checkpoint records for ``optimizer``'s state: its class's ``state_name`` where it keeps another
    optimizer's state (:class:`~sinlstm_sym.native.adam.FusedAdam` keeps Adam's), else its class name."""
    return str(getattr(type(optimizer), "state_name", type(optimizer).__name__))


def optimizer_state(optimizer: mx.optimizer.Optimizer, states: Dict[Any, Any], idx2name: Dict[int, str],
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
    meta = {"optimizer": state_name(optimizer), "num_update": int(optimizer.num_update),
            "update_counts": [{"device": d, "param": p, "count": c} for (d, p), c in sorted(counts.items())],
            "states": [entries[p] for p in sorted(entries)]}
    return meta, arrays


def write_optimizer_state(directory: Path, meta: Dict[str, Any], arrays: Dict[str, mx.nd.NDArray]) -> None:
    mx.nd.save(str(directory / OPTIMIZER_ARRAYS), arrays)
    write_bytes(directory / OPTIMIZER_JSON, json.dumps(meta, indent=1).encode())


def load_arrays(data: bytes, path: Path) -> Dict[str, mx.nd.NDArray]:
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


def _validated_counts(source: Path, keys: Dict[str, List[Any]], meta: Dict[str, Any],
                      devices: Sequence[int] = ()) -> Dict[int, Dict[Any, int]]:
    """Per-device update counts for every key the updater may use, from the saved per-parameter counts; a
    device in ``devices`` that the checkpoint has no counts for starts from the first saved device's (every
    device of a run makes the same updates, so a copy on a new device continues Adam's bias correction)."""
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
    if counts:
        first = counts[min(counts)]
        for device in devices:
            counts.setdefault(int(device), dict(first))
    return counts


def write_module_optimizer_state(directory: Path, module: mx.mod.BaseModule,
                                 optimizer: mx.optimizer.Optimizer) -> None:
    """Write ``module``'s optimizer state (its updater's states, ``optimizer``'s counters) into ``directory``."""
    # MXNet's only way out of a module is a pickle of {index: state}; these bytes are made here, in this process.
    own = directory / ".mxnet-states.tmp"
    module.save_optimizer_states(str(own))
    states = pickle.loads(own.read_bytes())
    own.unlink()
    write_optimizer_state(directory, *optimizer_state(optimizer, states, optimizer.idx2name,
                                                      f"optimizer {type(optimizer).__name__}"))


def restore_optimizer_state(module: mx.mod.BaseModule, optimizer: mx.optimizer.Optimizer, meta: Dict[str, Any],
                            arrays: Dict[str, mx.nd.NDArray], source: Path,
                            devices: Optional[Sequence[int]] = None) -> None:
    """Give ``optimizer`` (bound to ``module``) the counters and states of ``meta`` and ``arrays``, checked first;
    ``devices`` (the device ids the module updates on) each get update counts, copied from the first saved
    device where the checkpoint has none for them."""
    check_condition(meta.get("optimizer") == state_name(optimizer),
                    f"{source}: optimizer state of {meta.get('optimizer')!r}, but the optimizer to resume is "
                    f"{state_name(optimizer)!r}")
    weights, _ = module.get_params()
    keys: Dict[str, List[Any]] = {name: [name] for name in weights}  # every key the updater may use for it
    for index, name in sorted(optimizer.idx2name.items()):
        if name in keys:
            keys[name].insert(-1, index)
    states = _validated_states(source, optimizer, weights, keys, meta.get("states"), arrays)
    counts = _validated_counts(source, keys, meta, devices or ())
    optimizer.num_update = meta["num_update"]
    # No public setter for the update counts in MXNet 1.9.1: set the private per-device dicts directly.
    optimizer._all_index_update_counts = counts  # noqa: SLF001
    optimizer._index_update_count = counts.setdefault(0, {})  # noqa: SLF001
    with tempfile.TemporaryDirectory(prefix="sinlstm-states-") as tmp:
        blob = Path(tmp) / "states"
        # Module.load_optimizer_states reads only a pickle; this one is built here from the validated arrays.
        blob.write_bytes(pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL))
        module.load_optimizer_states(str(blob))


def read_pickled_state(path: Path, epoch: int, allow_pickle: bool
                       ) -> Tuple[Dict[str, Any], Dict[str, mx.nd.NDArray], Path]:
    """Format 1 (sinlstm-sym 0.1): the optimizer state of checkpoint directory ``path`` as format 2 holds it,
    from its two pickles; refused unless ``allow_pickle`` (a pickle runs whatever code its author put in it)."""
    pickled = path / PICKLED_OPTIMIZER
    states_file = path / f"{PREFIX}-{epoch:04d}.states"
    check_condition(allow_pickle, f"{path}: checkpoint format version 1 (sinlstm-sym 0.1) keeps its "
                    f"optimizer state in pickles ({PICKLED_OPTIMIZER}, {states_file.name}); unpickling runs "
                    "whatever code the file's author put in it, so resuming is refused. If you trust this "
                    "checkpoint, pass allow_pickle=True, or convert it once with `python -m "
                    "sinlstm_sym.checkpoint convert OLD_DIR NEW_DIR --allow-pickle`")
    logger.warning("%s: unpickling the optimizer state of a format-1 checkpoint (allow_pickle=True); a pickle "
                   "can run any code, so do this only for checkpoints you trust", path)
    for file in (pickled, states_file):
        check_condition(file.is_file(), f"{file}: missing; the checkpoint is incomplete", FileNotFoundError)
    try:
        optimizer = pickle.loads(pickled.read_bytes())
        states = pickle.loads(states_file.read_bytes())
    except Exception as err:  # a truncated or foreign pickle raises many kinds of errors
        raise ValueError(f"{path}: not a readable format-1 optimizer state ({type(err).__name__}: {err})") from None
    check_condition(isinstance(optimizer, mx.optimizer.Optimizer),
                    f"{pickled}: holds a {type(optimizer).__name__}, not an MXNet optimizer")
    check_condition(isinstance(states, dict), f"{states_file}: holds a {type(states).__name__}, not a dict")
    return (*optimizer_state(optimizer, states, optimizer.idx2name, str(states_file)), states_file)
