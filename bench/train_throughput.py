#!/usr/bin/env python
"""Training throughput of ``sinlstm_sym.fit`` against the Gluon reference and PyTorch.

Rows (``--rows`` takes numbers or names, comma-separated; default all):

  1 fit-fused-fixed     library ``fit``, cell='fused',    buckets=[9],    label_mode='last'
  2 fit-unrolled-fixed  library ``fit``, cell='unrolled', buckets=[9],    label_mode='last'
  3 fit-fused-mixed     library ``fit``, cell='fused',    buckets=1..9,   label_mode='sequence'
  4 fit-unrolled-mixed  library ``fit``, cell='unrolled', buckets=1..9,   label_mode='sequence'
  5 gluon-ref-fixed     ``train_gluon_reference`` (non-hybridized LSTMCells, L2Loss on the last step)
  6 torch-fixed         three ``torch.nn.LSTM`` (10, 20, 1), L=9, last-step 0.5*MSE, Adam lr 1e-3
  7 torch-mixed         the same on lengths 1..9, 0.5*MSE over every step
  8 fit-native-fixed    library ``fit``, cell='native', buckets=[9],    label_mode='last'
  9 fit-native-mixed    library ``fit``, cell='native', buckets=1..9,   label_mode='sequence'
 10 e2e-fixed           ``fit`` as a user calls it: ``fit(buckets=[9], label_mode='last', batch_size=B,
                        num_samples=N, num_epoch=1, seed=S)``, every other setting the library's default
                        (cell 'auto', its own windows generated live), MXNet choosing its own threads
                        (no OMP_NUM_THREADS / MXNET_* thread variable in the child's environment)
 11 e2e-mixed           the same with ``buckets=range(1, 10)`` (label_mode 'sequence', the default)
 12 e2e-mixed-omp1      row 11 with OMP_NUM_THREADS=1
 13 e2e-mixed-omp2      row 11 with OMP_NUM_THREADS=2 (what many users set on a 2-core box)
 14 torch-fixed-2t      row 6 with torch.set_num_threads(2) (and OMP_NUM_THREADS=2)
 15 torch-mixed-2t      row 7 with 2 threads

"x PyTorch" compares a row with the fastest torch row of its task in the run (rows 6/14 or
7/15: PyTorch's best thread count), medians over the rounds; "paired by round" divides each
round's rate by the fastest torch row of the same task in that round and takes the median over
rounds (rows run interleaved, so drift of a shared box hits both sides of each ratio).
The end-to-end rows (10-13) ignore ``--data`` and ``--threads``: their windows are generated
inside ``fit`` on the clock, from the library's default start times (so their losses are not
comparable with the other rows'), and their ``bind`` of each bucket falls into the warm-up as
for the other fit rows.

The native rows need the C++ operator (``python -m sinlstm_sym.native --build`` is run
once before the rounds, so no row pays the compile); without a compiler they are skipped
with a note. Their children check that the operator really ran (no silent fallback).

How it measures (read this before quoting a number):

* One subprocess per (row, round), rows interleaved within each round (round 1: 1 2 3 ...,
  round 2: 1 2 3 ...), so slow drift of the machine hits every row alike. The parent
  imports neither MXNet nor torch nor numpy: on Linux a child's ``ru_maxrss`` starts at
  the parent's RSS (the kernel carries the high-water mark across exec), so a fat parent
  would inflate every row. Each child reports ``VmHWM`` from /proc/self/status (peak RSS
  of its own address space; the number in the table) and ``ru_maxrss`` (JSON only).
* Every row sees the same windows (SinBucketIter, the same ``--seed``, batch size
  ``--batch-size``) and starts from the same initial weights (``params.init_params``;
  torch's nn.LSTM has the same gate order i, f, g, o and is loaded with them), so the
  final losses are directly comparable within the fixed and within the mixed task.
* ``--data pregen`` (default): data generation is excluded from EVERY row. The windows of
  the whole run are generated before the clock starts: for the MXNet rows by a
  SinBucketIter subclass (``fit``'s ``train_iter``; patched into ``reference.gluon``) that
  builds every DataBatch (numpy windows + ``mx.nd.array`` copies) in its constructor and
  replays them; for the torch rows by a separate data child that writes the same windows
  to an .npz (checked by checksum), turned into tensors before the clock starts.
  ``--data live``: data generation is included in EVERY row: the library builds its own
  SinBucketIter, the torch rows iterate a SinBucketIter and convert each batch with
  ``torch.from_numpy(batch.data[0].asnumpy())`` inside the timed loop (so they import
  MXNet, which also raises their peak RSS).
* Timing. ``fit`` / ``train_gluon_reference`` are run for ``warmup + batches`` batches
  (one epoch) with ``log_every = gcd(warmup, batches)``; each LossRecord carries the
  samples/s of the batches since the previous record, so the records up to batch
  ``warmup`` are the warm-up and the measured rate is ``measured windows / sum of the
  measured records' elapsed times``. The record's ``asscalar`` is the only device sync,
  so at most one batch of asynchronous work spills across the warm-up boundary. The torch
  loop is timed the same way (loss summed on the device, ``.item()`` every
  ``log_every`` batches). Mixed rows pay their per-bucket ``bind`` the first time each
  length appears; most of that falls into the warm-up.
* Final loss = the mean L2 loss over the last ``log_every`` measured batches
  (``0.5*(pred-label)^2``, averaged over windows, and over steps in the mixed task).
* Threads: ``--threads`` (default 1) goes into OMP/MKL/OpenBLAS/MXNET_OMP_MAX_THREADS of
  every child and into ``torch.set_num_threads``; MXNET_CPU_WORKER_NTHREADS is
  ``--mx-workers`` (default 1, MXNet's default). 1 is also MXNet's own choice on a 2-core
  x86 box (it uses half the cores unless OMP_NUM_THREADS is set); torch's is 2. With 2
  OpenMP threads the MXNet rows are no faster on an idle box (slower, before the library
  stopped syncing per batch: the spinning OpenMP thread competed with the Python thread)
  and up to 10x slower when any other process takes a core (OpenMP barriers wait for a
  descheduled thread).
* Shared machine: the parent samples /proc/stat around every child and reports the cores
  OTHER processes kept busy ("other load"). Before each measurement it waits (up to
  ``--quiet-wait`` s) for the box to be quiet, and repeats a measurement whose other load
  exceeded ``--max-other-load`` (up to ``--retries`` times; rows that stay noisy are
  flagged in the table). ``--max-other-load inf`` turns this off.

Smallest run (seconds): ``--rounds 1 --rows 1,11 --batches 10 --warmup 10 --batch-size 50
--max-other-load inf``.
"""
import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

import benchkit


class Row(NamedTuple):
    name: str
    kind: str  # fit, gluon, torch or e2e
    cell: Optional[str]
    task: str  # fixed or mixed
    description: str


ROWS = [
    Row("fit-fused-fixed", "fit", "fused", "fixed", "fit, fused, L=9, last"),
    Row("fit-unrolled-fixed", "fit", "unrolled", "fixed", "fit, unrolled, L=9, last"),
    Row("fit-fused-mixed", "fit", "fused", "mixed", "fit, fused, L=1..9, sequence"),
    Row("fit-unrolled-mixed", "fit", "unrolled", "mixed", "fit, unrolled, L=1..9, sequence"),
    Row("gluon-ref-fixed", "gluon", None, "fixed", "Gluon reference, L=9, last"),
    Row("torch-fixed", "torch", None, "fixed", "PyTorch nn.LSTM, L=9, last"),
    Row("torch-mixed", "torch", None, "mixed", "PyTorch nn.LSTM, L=1..9, sequence"),
    Row("fit-native-fixed", "fit", "native", "fixed", "fit, native, L=9, last"),
    Row("fit-native-mixed", "fit", "native", "mixed", "fit, native, L=1..9, sequence"),
    Row("e2e-fixed", "e2e", "auto", "fixed", "fit as a user calls it, L=9, last, live windows, default threads"),
    Row("e2e-mixed", "e2e", "auto", "mixed", "fit as a user calls it, L=1..9, live windows, default threads"),
    Row("e2e-mixed-omp1", "e2e", "auto", "mixed", "fit as a user calls it, L=1..9, OMP_NUM_THREADS=1"),
    Row("e2e-mixed-omp2", "e2e", "auto", "mixed", "fit as a user calls it, L=1..9, OMP_NUM_THREADS=2"),
    Row("torch-fixed-2t", "torch", None, "fixed", "PyTorch nn.LSTM, L=9, last, 2 threads"),
    Row("torch-mixed-2t", "torch", None, "mixed", "PyTorch nn.LSTM, L=1..9, sequence, 2 threads"),
]
Threads = Union[int, str]  # a count, or "default": no thread variable at all (MXNet and torch choose)
# Rows whose threads are not --threads.
ROW_THREADS: Dict[str, Threads] = {"e2e-fixed": "default", "e2e-mixed": "default", "e2e-mixed-omp1": 1,
                                   "e2e-mixed-omp2": 2, "torch-fixed-2t": 2, "torch-mixed-2t": 2}
ROW_BY_NAME = {r.name: r for r in ROWS}
TASKS: Dict[str, Dict[str, Any]] = {
    "fixed": dict(buckets=[9], label_mode="last"),
    "mixed": dict(buckets=list(range(1, 10)), label_mode="sequence"),
}
T_LOW, T_HIGH = 0.0, 1.0  # every row trains on the original's windows, t0 ~ U[0, 1)
HIDDEN = (10, 20, 1)
Spec = Dict[str, Any]
Record = Dict[str, Any]


# ----------------------------------------------------------------------------------------
# helpers shared by parent and children (stdlib only)
# ----------------------------------------------------------------------------------------
def thread_env(threads: Threads, mx_workers: int) -> Dict[str, str]:
    """The thread variables every child gets, identical for every row."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MXNET_OMP_MAX_THREADS": str(threads),
        "MXNET_CPU_WORKER_NTHREADS": str(mx_workers),
        "MXNET_SUBGRAPH_VERBOSE": "0",
    }


def row_env(base: Dict[str, str], name: str, threads: int, mx_workers: int) -> Tuple[Dict[str, str], Threads]:
    """The environment of row ``name``'s child: ``base`` with the row's thread settings."""
    env = dict(base)
    chosen = ROW_THREADS.get(name, threads)
    for key in thread_env(0, 0):
        env.pop(key, None)
    if chosen == "default":
        env["MXNET_SUBGRAPH_VERBOSE"] = "0"
    else:
        env.update(thread_env(chosen, mx_workers))
    return env, chosen


def measured_from_records(records: List[Record], warmup: int,
                          batch_size: int) -> Tuple[List[Record], int, float, Dict[int, int]]:
    """Aggregate LossRecord-like dicts (batch, loss, samples_per_sec) after batch ``warmup``: the measured
    records, their windows, their seconds and their batches per length."""
    prev = 0
    windows = 0
    elapsed = 0.0
    buckets: Dict[int, int] = {}
    measured = []
    for r in records:
        n = (r["batch"] - prev) * batch_size
        prev = r["batch"]
        if r["batch"] <= warmup:
            continue
        measured.append(r)
        windows += n
        elapsed += n / r["samples_per_sec"]
        for k, v in (r.get("bucket_counts") or {}).items():
            buckets[int(k)] = buckets.get(int(k), 0) + v
    return measured, windows, elapsed, buckets


# ----------------------------------------------------------------------------------------
# child: data generation for the torch rows
# ----------------------------------------------------------------------------------------
def _windows_checksum(pairs: Iterable[Tuple[Any, Any]]) -> str:
    import hashlib
    h = hashlib.sha1()
    for data, label in pairs:
        h.update(str(data.shape).encode())
        h.update(data.tobytes())
        h.update(label.tobytes())
    return h.hexdigest()


def _initial_params(seed: int) -> Dict[str, Any]:
    from sinlstm_sym.constants import ORIGINAL_FORGET_BIAS, ORIGINAL_INIT
    from sinlstm_sym.recurrence.params import init_params
    return init_params(HIDDEN, seed, forget_bias=ORIGINAL_FORGET_BIAS, init=ORIGINAL_INIT)


def _task_iter(spec: Spec) -> Any:
    from sinlstm_sym import SinBucketIter
    task = TASKS[spec["task"]]
    return SinBucketIter(task["buckets"], batch_size=spec["batch_size"], num_samples=spec["num_samples"],
                         label_mode=task["label_mode"], seed=spec["seed"], t_low=T_LOW, t_high=T_HIGH)


def child_datagen(spec: Spec) -> Dict[str, Any]:
    import numpy as np
    pairs = [(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in _task_iter(spec)]
    arrays = {}
    for i, (d, lab) in enumerate(pairs):
        arrays[f"data_{i}"] = d
        arrays[f"label_{i}"] = lab
    for k, v in _initial_params(spec["seed"]).items():
        arrays[f"param_{k}"] = v
    np.savez(spec["out"], **arrays)
    return {"checksum": _windows_checksum(pairs), "num_batches": len(pairs)}


# ----------------------------------------------------------------------------------------
# child: MXNet rows (fit and the Gluon reference)
# ----------------------------------------------------------------------------------------
def _install_pregen_iter(patch_gluon_reference: bool) -> Any:
    """A replaying SinBucketIter class; ``fit`` takes one as ``train_iter``, the Gluon reference (which
    builds its own iterator) gets the class patched in."""
    import sinlstm_sym.reference.gluon as gref
    from sinlstm_sym import SinBucketIter

    class PregenIter(SinBucketIter):  # type: ignore[misc, valid-type]
        """SinBucketIter that builds every DataBatch of an epoch up front and replays them.

        The batches come from a plain SinBucketIter built with the same arguments (and the
        drawn seed), positioned with the public ``set_epoch``; so the windows are exactly
        the library's, and ``set_epoch``/``reset`` keep working.
        """

        instances: List["PregenIter"] = []

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._batches: List[Any] = []
            self._replay, self.replayed = 0, 0
            self._pregen_epoch: Optional[int] = None
            super().__init__(*args, **kwargs)
            self._source_args = (args, dict(kwargs, seed=self.seed))
            self._generate(self.epoch)
            PregenIter.instances.append(self)

        def _generate(self, epoch: int) -> None:
            args, kwargs = self._source_args
            source = SinBucketIter(*args, **kwargs)
            if epoch:
                source.set_epoch(epoch)
            self._batches, self._pregen_epoch, self._replay = list(source), epoch, 0

        def set_epoch(self, epoch: int, cursor: int = 0) -> None:
            super().set_epoch(epoch, cursor)
            if getattr(self, "_source_args", None) is not None:
                if epoch != self._pregen_epoch:
                    self._generate(epoch)
                self._replay = cursor

        def reset(self) -> None:
            super().reset()
            self._generate(self.epoch)

        def iter_next(self) -> bool:
            return self._replay < len(self._batches)

        def next(self) -> Any:
            if not self.iter_next():
                raise StopIteration
            batch = self._batches[self._replay]
            self._replay += 1
            self.replayed += 1
            return batch

        def checksum(self) -> str:
            return _windows_checksum([(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in self._batches])

    if patch_gluon_reference:
        if getattr(gref, "SinBucketIter", None) is not SinBucketIter:
            raise RuntimeError("sinlstm_sym.reference.gluon no longer uses sinlstm_sym.SinBucketIter under that "
                               "name; the --data pregen patch cannot be applied (use --data live)")
        gref.SinBucketIter = PregenIter  # type: ignore[misc]
    return PregenIter


def _run_mxnet_row(spec: Spec, pregen: Any) -> Any:
    """Train the row ``spec`` describes; returns fit's (or the Gluon reference's) result."""
    from sinlstm_sym import FitConfig, fit
    from sinlstm_sym.reference.gluon import train_gluon_reference
    task = TASKS[spec["task"]]
    if spec["kind"] == "e2e":  # as a user calls it: the library's defaults, its own live windows
        return fit(buckets=task["buckets"], label_mode=task["label_mode"], batch_size=spec["batch_size"],
                   num_samples=spec["num_samples"], num_epoch=1, seed=spec["seed"], log_every=spec["log_every"])
    common = dict(buckets=task["buckets"], label_mode=task["label_mode"], hidden_sizes=HIDDEN,
                  batch_size=spec["batch_size"], num_samples=spec["num_samples"], num_epoch=1,
                  seed=spec["seed"], log_every=spec["log_every"])
    if spec["kind"] == "fit":  # like for like with the other rows: the original's settings, these windows
        data = None if pregen is None else pregen(task["buckets"], batch_size=spec["batch_size"],
                                                  num_samples=spec["num_samples"], label_mode=task["label_mode"],
                                                  seed=spec["seed"], t_low=T_LOW, t_high=T_HIGH)
        return fit(FitConfig.original(cell=spec["cell"], **common), train_iter=data)
    return train_gluon_reference(**common)


def child_mxnet(spec: Spec) -> Dict[str, Any]:
    import mxnet as mx

    import sinlstm_sym
    pregen = _install_pregen_iter(spec["kind"] != "fit") if spec["data"] == "pregen" else None
    if spec.get("cell") == "native":
        from sinlstm_sym.native import native_available
        if not native_available():
            raise RuntimeError("the native operator did not load in this child: the row would measure 'fused'")
    t0 = time.perf_counter()
    res = _run_mxnet_row(spec, pregen)
    wall = time.perf_counter() - t0
    records = [dict(batch=r.batch, loss=r.loss, samples_per_sec=r.samples_per_sec,
                    bucket_counts={str(k): v for k, v in (r.bucket_counts or {}).items()})
               for r in res.loss_history]
    out = {"records": records, "wall_in_call": wall, "versions": {"mxnet": mx.__version__,
                                                                  "sinlstm_sym": sinlstm_sym.__version__}}
    if spec["kind"] == "e2e":
        out["cell"] = res.config.model.cell
    if pregen is not None:  # fit may build extra iterators (e.g. to validate arguments); one must do the training
        used = [i for i in pregen.instances if i.replayed]
        if len(used) != 1 or used[0].replayed != spec["total_batches"]:
            raise RuntimeError(f"pregen iterator not used as expected: batches replayed per instance "
                               f"{[i.replayed for i in pregen.instances]}, expected one instance replaying "
                               f"{spec['total_batches']}")
        out["checksum"] = used[0].checksum()
    return out


# ----------------------------------------------------------------------------------------
# child: PyTorch rows
# ----------------------------------------------------------------------------------------
def _torch_batches(spec: Spec) -> Tuple[Iterable[Tuple[Any, Any]], Dict[str, Any], Optional[str]]:
    """(the batches as tensors, the initial weights, the windows' checksum or None when generated live)."""
    import numpy as np
    import torch
    if spec["data"] == "pregen":
        npz = np.load(spec["npz"])
        pairs = [(npz[f"data_{i}"], npz[f"label_{i}"]) for i in range(spec["total_batches"])]
        params = {k[len("param_"):]: npz[k] for k in npz.files if k.startswith("param_")}
        return ([(torch.from_numpy(d), torch.from_numpy(lab)) for d, lab in pairs], params,
                _windows_checksum(pairs))
    live = ((torch.from_numpy(b.data[0].asnumpy()), torch.from_numpy(b.label[0].asnumpy())) for b in _task_iter(spec))
    return live, _initial_params(spec["seed"]), None


def child_torch(spec: Spec) -> Dict[str, Any]:
    import torch
    if spec["threads"] != "default":
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    last = TASKS[spec["task"]]["label_mode"] == "last"
    source, params, checksum = _torch_batches(spec)
    layers = benchkit.torch_lstm_layers(params, HIDDEN)  # the library's seeded initial weights
    opt = torch.optim.Adam(layers.parameters(), lr=1e-3)
    log_every, total = spec["log_every"], spec["total_batches"]
    records = []
    window_sum, windows = None, 0
    mix: Dict[int, int] = {}
    t0 = tic = time.perf_counter()
    for nbatch, (x, y) in enumerate(source, start=1):
        out = x  # (B, L, 1)
        for layer in layers:
            out, _ = layer(out)
        pred = out[:, -1, :] if last else out[:, :, 0]
        per_window = 0.5 * (pred - y).pow(2).mean(dim=1)
        loss = per_window.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        s = per_window.detach().sum()
        window_sum = s if window_sum is None else window_sum + s
        windows += x.shape[0]
        mix[x.shape[1]] = mix.get(x.shape[1], 0) + 1
        if nbatch % log_every == 0 or nbatch == total:
            value = float(window_sum.item()) / windows
            elapsed = time.perf_counter() - tic
            records.append(dict(batch=nbatch, loss=value, samples_per_sec=windows / max(elapsed, 1e-9),
                                bucket_counts={str(k): v for k, v in sorted(mix.items())}))
            window_sum, windows, mix = None, 0, {}
            tic = time.perf_counter()
    wall = time.perf_counter() - t0
    return {"records": records, "wall_in_call": wall, "checksum": checksum,
            "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "versions": {"torch": torch.__version__}}


def child_main(spec: Spec) -> None:
    if spec["kind"] == "datagen":
        out = child_datagen(spec)
    elif spec["kind"] == "torch":
        out = child_torch(spec)
    else:  # fit, e2e, gluon
        out = child_mxnet(spec)
    out["peak_rss_mib"], out["ru_maxrss_mib"] = benchkit.peak_rss_mib()
    out["env"] = {k: os.environ.get(k) for k in thread_env(0, 0)}
    benchkit.emit_result(out)


# ----------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------
def git_state() -> str:
    """The commit of the library this process imports (found without importing it, so PYTHONPATH may point
    at another checkout) and whether its sinlstm_sym/ has uncommitted changes."""
    spec = importlib.util.find_spec("sinlstm_sym")
    package = os.path.dirname(spec.origin) if spec is not None and spec.origin else None
    root = os.path.dirname(package) if package else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sinlstm_sym"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head or 'unknown'}{' + uncommitted changes in sinlstm_sym/' if dirty else ''}"


def run_child(spec: Spec, env: Dict[str, str], timeout: float) -> Dict[str, Any]:
    """One measurement child of this script (see :func:`benchkit.run_child` for the load it reports)."""
    return benchkit.run_child([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)], env, timeout)


def parse_rows(text: Optional[str]) -> List[str]:
    if text is None:
        return [r.name for r in ROWS]
    names = []
    for item in (i.strip() for i in text.split(",")):
        if item.isdigit() and 1 <= int(item) <= len(ROWS):
            names.append(ROWS[int(item) - 1].name)
        elif item in ROW_BY_NAME:
            names.append(item)
        elif item:
            raise SystemExit(f"--rows: unknown row {item!r}; use 1..{len(ROWS)} or {', '.join(ROW_BY_NAME)}")
    return list(dict.fromkeys(names))


def fmt_rate(x: Optional[float]) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:,.0f}"


def fmt_ratio(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _paired(median: Optional[float], per_round: List[float]) -> str:
    """The paired ratio cell: median over rounds (min..max), or n/a."""
    if median is None:
        return "n/a"
    return f"{fmt_ratio(median)} ({min(per_round):.2f}..{max(per_round):.2f})"


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--rounds", type=benchkit.positive_int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--batches", type=benchkit.positive_int, default=300,
                    help="measured batches per measurement (default 300)")
    ap.add_argument("--warmup", type=int, default=30, help="warm-up batches excluded (default 30)")
    ap.add_argument("--batch-size", type=benchkit.positive_int, default=300, help="windows per batch (default 300)")
    ap.add_argument("--threads", type=benchkit.positive_int, default=1,
                    help="OMP/MKL/OpenBLAS/MXNET_OMP_MAX_THREADS and torch.set_num_threads for every row (default 1: "
                         "what MXNet picks by itself on a 2-core x86 box, as it halves the core count when "
                         "OMP_NUM_THREADS is unset; torch would pick 2. On this tiny model 2 threads are no faster "
                         "on an idle box and collapse up to 10x when another process takes a core)")
    ap.add_argument("--mx-workers", type=benchkit.positive_int, default=1,
                    help="MXNET_CPU_WORKER_NTHREADS, operators MXNet may run concurrently (default 1, MXNet's "
                         "default)")
    ap.add_argument("--data", choices=("pregen", "live"), default="pregen",
                    help="pregen: data generation excluded from every row; live: included in every row")
    ap.add_argument("--seed", type=int, default=0, help="seed of windows and initial weights (default 0)")
    ap.add_argument("--rows", help="comma-separated rows, numbers or names (default: all)")
    ap.add_argument("--json", help="write all measurements and the summary to this file")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per child (default 600)")
    benchkit.add_load_options(ap)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.warmup < 0:
        ap.error(f"--warmup must be >= 0, got {args.warmup}")
    args.log_every = math.gcd(args.warmup, args.batches)
    if args.log_every < min(10, args.batches):
        ap.error(f"gcd(--warmup {args.warmup}, --batches {args.batches}) = {args.log_every}: the loss is logged (and "
                 "the device synced) every gcd batches, so pick values with a gcd >= 10, e.g. 30 and 300")
    args.total_batches = args.warmup + args.batches
    args.num_samples = args.total_batches * args.batch_size
    return args


def available_rows(rows: List[str], env: Dict[str, str], timeout: float) -> Tuple[List[str], List[str], Optional[str]]:
    """(the rows this machine can run, notes on those it cannot, torch's version). Builds the native operator
    once before the rounds, so that no row pays the compile."""
    notes = []
    torch_version = None
    if any(ROW_BY_NAME[r].kind == "torch" for r in rows):
        torch_version, error = benchkit.torch_version(env)
        if torch_version is None:
            notes.append(f"torch rows skipped: torch is not importable ({error})")
            rows = [r for r in rows if ROW_BY_NAME[r].kind != "torch"]
    if any(ROW_BY_NAME[r].cell in ("native", "auto") for r in rows):  # 'auto' (e2e rows) uses it when it builds
        build = subprocess.run([sys.executable, "-m", "sinlstm_sym.native", "--build"], env=env, capture_output=True,
                               text=True, timeout=timeout)
        if build.returncode != 0:
            notes.append(f"native rows skipped: the operator did not build ({build.stderr.strip()[-300:]})")
            rows = [r for r in rows if ROW_BY_NAME[r].cell != "native"]
        else:
            print(f"# native operator: {build.stdout.strip()}")
    return rows, notes, torch_version


def pregenerate(args: argparse.Namespace, rows: List[str], env: Dict[str, str],
                scratch: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """The windows of each task, written to an .npz for the torch rows: ({task: path}, {task: checksum})."""
    npz, checksums = {}, {}
    if args.data == "pregen":
        for task in sorted({ROW_BY_NAME[r].task for r in rows if ROW_BY_NAME[r].kind != "e2e"}):
            path = os.path.join(scratch, f"{task}.npz")
            spec = dict(kind="datagen", task=task, batch_size=args.batch_size, num_samples=args.num_samples,
                        seed=args.seed, out=path)
            npz[task], checksums[task] = path, run_child(spec, env, args.timeout)["checksum"]
    return npz, checksums


def measure(args: argparse.Namespace, name: str, rnd: int, env: Dict[str, str], npz: Dict[str, str],
            checksums: Dict[str, str]) -> Dict[str, Any]:
    """One measurement of row ``name`` in round ``rnd``, repeated while other processes were too busy."""
    row = ROW_BY_NAME[name]
    child_env, threads = row_env(env, name, args.threads, args.mx_workers)
    data = "live" if row.kind == "e2e" else args.data
    spec = dict(kind=row.kind, row=name, cell=row.cell, task=row.task, batch_size=args.batch_size,
                num_samples=args.num_samples, total_batches=args.total_batches, log_every=args.log_every,
                seed=args.seed, data=data, threads=threads, npz=npz.get(row.task))
    attempts = []
    while True:
        waited = benchkit.wait_for_quiet(args.max_other_load, args.quiet_wait)
        res = run_child(spec, child_env, args.timeout)
        attempts.append(dict(foreign_load=res["foreign_load"], waited=waited))
        noisy = (benchkit.load_checked(args) and res["foreign_load"] is not None
                 and res["foreign_load"] > args.max_other_load)
        if not noisy or len(attempts) > args.retries:
            break
        print(f"# round {rnd} {name:20s} discarded: other processes used {res['foreign_load']:.2f} cores "
              f"(> --max-other-load {args.max_other_load}); retrying", file=sys.stderr, flush=True)
    measured, windows, elapsed, buckets = measured_from_records(res["records"], args.warmup, args.batch_size)
    if windows != args.batches * args.batch_size:
        raise RuntimeError(f"{name}: measured {windows} windows, expected {args.batches * args.batch_size}; "
                           f"records at batches {[r['batch'] for r in res['records']]}")
    if data == "pregen" and res.get("checksum") != checksums[row.task]:
        raise RuntimeError(f"{name}: its windows differ from the {row.task} reference windows")
    nb = sum(buckets.values())
    m = dict(round=rnd, samples_per_sec=windows / elapsed, measured_seconds=elapsed,
             final_loss=measured[-1]["loss"],
             tail_batches=measured[-1]["batch"] - (measured[-2]["batch"] if len(measured) > 1 else args.warmup),
             mean_length=(sum(k * v for k, v in buckets.items()) / nb) if nb else 9.0, bucket_counts=buckets,
             attempts=attempts, noisy=noisy, **{k: res.get(k) for k in (
                 "peak_rss_mib", "ru_maxrss_mib", "child_wall", "child_cpu_seconds", "foreign_load", "records", "env",
                 "versions", "torch_threads", "cell", "wall_in_call")})
    load = m["foreign_load"] if m["foreign_load"] is not None else float("nan")
    print(f"# round {rnd} {name:20s} {m['samples_per_sec']:>10,.0f} samples/s  loss {m['final_loss']:.3e}  "
          f"peak {m['peak_rss_mib']:.0f} MiB  (child {m['child_wall']:.1f} s, other load {load:.2f} cores)",
          file=sys.stderr, flush=True)
    return m


def summarize(rows: List[str], results: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """Per row: medians and ranges over the rounds, and the ratios to the Gluon and the fastest torch row."""
    summary: Dict[str, Dict[str, Any]] = {}
    for name in rows:
        ms = results[name]
        rates = [m["samples_per_sec"] for m in ms]
        losses = [m["final_loss"] for m in ms]
        loads = [m["foreign_load"] for m in ms]
        summary[name] = dict(
            description=ROW_BY_NAME[name].description, task=ROW_BY_NAME[name].task,
            median=statistics.median(rates), min=min(rates), max=max(rates),
            final_loss_median=statistics.median(losses), final_loss_min=min(losses), final_loss_max=max(losses),
            peak_rss_mib_median=statistics.median(m["peak_rss_mib"] for m in ms),
            peak_rss_mib_max=max(m["peak_rss_mib"] for m in ms),
            ru_maxrss_mib_max=max(m["ru_maxrss_mib"] for m in ms),
            mean_length=statistics.median(m["mean_length"] for m in ms),
            noisy_rounds=sum(1 for m in ms if m["noisy"]), retries=sum(len(m["attempts"]) - 1 for m in ms),
            foreign_load_median=statistics.median(loads) if None not in loads else None)
    gluon = summary.get("gluon-ref-fixed", {}).get("median")
    torch_rows = [n for n in rows if ROW_BY_NAME[n].kind == "torch"]
    for name, s in summary.items():
        s["steps_per_sec_median"] = s["median"] * s["mean_length"]
        s["ratio_to_gluon"] = s["median"] / gluon if gluon else None
        same_task = [n for n in torch_rows if ROW_BY_NAME[n].task == s["task"]]
        torch_best = max((summary[n]["median"] for n in same_task), default=None)  # PyTorch's best thread count
        s["ratio_to_torch"] = s["median"] / torch_best if torch_best else None
        # paired: each round against the fastest torch row of the same round and task
        per_round = [m["samples_per_sec"] / max(results[n][rnd]["samples_per_sec"] for n in same_task)
                     for rnd, m in enumerate(results[name])] if same_task else []
        s["ratio_to_torch_per_round"] = per_round
        s["ratio_to_torch_paired"] = statistics.median(per_round) if per_round else None
    return summary


def table(rows: List[str], summary: Dict[str, Dict[str, Any]], tail: int) -> List[str]:
    lines = [
        f"| # | row | median samples/s | min | max | x Gluon ref | x PyTorch best (same task) | "
        f"x PyTorch, paired by round (min..max) | mean L | peak RSS MiB | final loss (last {tail} batches) | "
        f"other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in rows:
        s = summary[name]
        loss = f"{s['final_loss_median']:.3e}"
        if s["final_loss_max"] - s["final_loss_min"] > 1e-3 * abs(s["final_loss_median"]):
            loss += f" ({s['final_loss_min']:.3e}..{s['final_loss_max']:.3e})"
        load = "n/a" if s["foreign_load_median"] is None else f"{s['foreign_load_median']:.2f}"
        if s["noisy_rounds"]:
            load += f" ({s['noisy_rounds']} noisy)"
        lines.append(f"| {ROWS.index(ROW_BY_NAME[name]) + 1} | {s['description']} | {fmt_rate(s['median'])} | "
                     f"{fmt_rate(s['min'])} | {fmt_rate(s['max'])} | {fmt_ratio(s['ratio_to_gluon'])} | "
                     f"{fmt_ratio(s['ratio_to_torch'])} | "
                     f"{_paired(s['ratio_to_torch_paired'], s['ratio_to_torch_per_round'])} | "
                     f"{s['mean_length']:.2f} | {s['peak_rss_mib_max']:.0f} | {loss} | {load} |")
    return lines


def print_notes(args: argparse.Namespace, rows: List[str], results: Dict[str, List[Dict[str, Any]]],
                notes: List[str], total_wall: float) -> None:
    print(f"# samples/s = windows per second over the {args.batches} measured batches (after {args.warmup} warm-up); "
          f"{args.rounds} round(s); data generation {'excluded from' if args.data == 'pregen' else 'included in'} "
          f"every row but the end-to-end ones (10-13), which generate their own. Peak RSS = max over rounds of the "
          f"child's VmHWM. Fixed rows (L=9, last-step loss) and mixed rows (L=1..9, loss over every step) have "
          f"different losses and window lengths: compare losses within a task; 'x PyTorch best' compares with the "
          f"fastest torch row of the same task (its best thread count), medians over the run; 'paired by round' "
          f"divides each round's rate by the fastest torch row of the same task in the same round (slow drift of "
          f"the shared box cancels) and gives the median over rounds. 'other load' = median cores kept busy by "
          f"OTHER processes while the row's child ran (should be ~0 for quotable figures); 'noisy' rounds stayed "
          f"above --max-other-load after {args.retries} retries. Total {total_wall:.0f} s.")
    loads = [m["foreign_load"] for ms in results.values() for m in ms if m["foreign_load"] is not None]
    if loads and max(loads) > 0.25:
        print(f"# WARNING: other processes used up to {max(loads):.2f} of {os.cpu_count()} cores during some "
              f"measurements (median {statistics.median(loads):.2f}); compare min/max and rerun when the box is quiet.")
    for note in notes:
        print(f"# NOTE: {note}")
    cells = {name: sorted({m["cell"] for m in results[name]}) for name in rows if ROW_BY_NAME[name].kind == "e2e"}
    if cells:
        print(f"# end-to-end rows: cell 'auto' chose {cells}; wall time of the whole fit call (bind and warm-up "
              f"included), median: " + ", ".join(f"{n} {statistics.median(m['wall_in_call'] for m in results[n]):.2f} s"
                                                 for n in cells))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0
    rows = parse_rows(args.rows)
    env = dict(os.environ)
    env.update(thread_env(args.threads, args.mx_workers))
    print(f"# threads: {', '.join(f'{k}={v}' for k, v in thread_env(args.threads, args.mx_workers).items())}, "
          f"torch.set_num_threads({args.threads})")
    print(f"# {args.rounds} round(s), batch size {args.batch_size}, {args.warmup} warm-up + {args.batches} measured "
          f"batches per measurement, log/sync every {args.log_every} batches, data {args.data}, seed {args.seed}, "
          f"one subprocess per (row, round); python {platform.python_version()}, {os.cpu_count()} CPU(s); "
          f"library at {git_state()}; load average {benchkit.load_average():.2f}")
    rows, notes, torch_version = available_rows(rows, env, args.timeout)
    for note in notes:
        print(f"# NOTE: {note}")
    if not rows:
        raise SystemExit("no row can run on this machine (see the notes above)")
    results: Dict[str, List[Dict[str, Any]]] = {r: [] for r in rows}
    with tempfile.TemporaryDirectory(prefix="sinlstm_bench_") as scratch:
        npz, checksums = pregenerate(args, rows, env, scratch)
        t_all = time.perf_counter()
        for rnd in range(1, args.rounds + 1):
            for name in rows:
                results[name].append(measure(args, name, rnd, env, npz, checksums))
        total_wall = time.perf_counter() - t_all
    summary = summarize(rows, results)
    lines = table(rows, summary, results[rows[0]][0]["tail_batches"])
    print("\n" + "\n".join(lines) + "\n")
    print_notes(args, rows, results, notes, total_wall)
    if args.json:
        settings = dict(vars(args), thread_env=thread_env(args.threads, args.mx_workers),
                        python=platform.python_version(), cpus=os.cpu_count(), torch=torch_version,
                        data_checksums=checksums, library=git_state())
        settings.pop("child", None)
        benchkit.write_json(args.json, dict(settings=settings, notes=notes, summary=summary, measurements=results,
                                            table="\n".join(lines), total_seconds=total_wall))
        print(f"# wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
