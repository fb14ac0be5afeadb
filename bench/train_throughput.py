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
  SinBucketIter subclass patched into ``sinlstm_sym.train.fit`` / ``reference.gluon`` that
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
  flagged in the table). ``--max-other-load -1`` turns this off.
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

ROWS = [
    # name, kind, cell, task, description
    ("fit-fused-fixed", "fit", "fused", "fixed", "fit, fused, L=9, last"),
    ("fit-unrolled-fixed", "fit", "unrolled", "fixed", "fit, unrolled, L=9, last"),
    ("fit-fused-mixed", "fit", "fused", "mixed", "fit, fused, L=1..9, sequence"),
    ("fit-unrolled-mixed", "fit", "unrolled", "mixed", "fit, unrolled, L=1..9, sequence"),
    ("gluon-ref-fixed", "gluon", None, "fixed", "Gluon reference, L=9, last"),
    ("torch-fixed", "torch", None, "fixed", "PyTorch nn.LSTM, L=9, last"),
    ("torch-mixed", "torch", None, "mixed", "PyTorch nn.LSTM, L=1..9, sequence"),
    ("fit-native-fixed", "fit", "native", "fixed", "fit, native, L=9, last"),
    ("fit-native-mixed", "fit", "native", "mixed", "fit, native, L=1..9, sequence"),
    ("e2e-fixed", "e2e", "auto", "fixed", "fit as a user calls it, L=9, last, live windows, default threads"),
    ("e2e-mixed", "e2e", "auto", "mixed", "fit as a user calls it, L=1..9, live windows, default threads"),
    ("e2e-mixed-omp1", "e2e", "auto", "mixed", "fit as a user calls it, L=1..9, OMP_NUM_THREADS=1"),
    ("e2e-mixed-omp2", "e2e", "auto", "mixed", "fit as a user calls it, L=1..9, OMP_NUM_THREADS=2"),
    ("torch-fixed-2t", "torch", None, "fixed", "PyTorch nn.LSTM, L=9, last, 2 threads"),
    ("torch-mixed-2t", "torch", None, "mixed", "PyTorch nn.LSTM, L=1..9, sequence, 2 threads"),
]
# Rows whose threads are not --threads: "default" = no thread variable at all (MXNet and torch choose), or a count.
ROW_THREADS = {"e2e-fixed": "default", "e2e-mixed": "default", "e2e-mixed-omp1": 1, "e2e-mixed-omp2": 2,
               "torch-fixed-2t": 2, "torch-mixed-2t": 2}
ROW_BY_NAME = {r[0]: r for r in ROWS}
TASKS = {
    "fixed": dict(buckets=[9], label_mode="last"),
    "mixed": dict(buckets=list(range(1, 10)), label_mode="sequence"),
}
WINDOWS = dict(t_low=0.0, t_high=1.0)  # every row trains on the original's windows, t0 ~ U[0, 1)
HIDDEN = (10, 20, 1)


# ----------------------------------------------------------------------------------------
# helpers shared by parent and children (stdlib only)
# ----------------------------------------------------------------------------------------
def thread_env(threads, mx_workers):
    """The environment every child gets, identical for every row."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MXNET_OMP_MAX_THREADS": str(threads),
        "MXNET_CPU_WORKER_NTHREADS": str(mx_workers),
        "MXNET_SUBGRAPH_VERBOSE": "0",
    }


def row_env(base, name, threads, mx_workers):
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


def peak_rss():
    """(VmHWM of this address space, ru_maxrss) in MiB."""
    import resource
    hwm = float("nan")
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024.0
    except OSError:
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ru = ru / 1024.0 if sys.platform != "darwin" else ru / 2**20
    return hwm, ru


def measured_from_records(records, warmup, batch_size):
    """Aggregate LossRecord-like dicts (batch, loss, samples_per_sec) after batch ``warmup``."""
    prev = 0
    windows = 0
    elapsed = 0.0
    buckets = {}
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
def _windows_checksum(pairs):
    import hashlib
    h = hashlib.sha1()
    for data, label in pairs:
        h.update(str(data.shape).encode())
        h.update(data.tobytes())
        h.update(label.tobytes())
    return h.hexdigest()


def child_datagen(spec):
    import numpy as np
    from sinlstm_sym.data.windows import SinBucketIter
    from sinlstm_sym.constants import ORIGINAL_FORGET_BIAS, ORIGINAL_INIT
    from sinlstm_sym.recurrence.params import init_params
    task = TASKS[spec["task"]]
    it = SinBucketIter(task["buckets"], batch_size=spec["batch_size"], num_samples=spec["num_samples"],
                       label_mode=task["label_mode"], seed=spec["seed"], **WINDOWS)
    pairs = [(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in it]
    arrays = {}
    for i, (d, lab) in enumerate(pairs):
        arrays[f"data_{i}"] = d
        arrays[f"label_{i}"] = lab
    for k, v in init_params(HIDDEN, spec["seed"], forget_bias=ORIGINAL_FORGET_BIAS, init=ORIGINAL_INIT).items():
        arrays[f"param_{k}"] = v
    np.savez(spec["out"], **arrays)
    return {"checksum": _windows_checksum(pairs), "num_batches": len(pairs)}


# ----------------------------------------------------------------------------------------
# child: MXNet rows (fit and the Gluon reference)
# ----------------------------------------------------------------------------------------
def _install_pregen_iter(patch_gluon_reference: bool):
    """A replaying SinBucketIter class; ``fit`` takes one as ``train_iter``, the Gluon reference (which
    builds its own iterator) gets the class patched in."""
    import sinlstm_sym.data.windows as data_mod
    import sinlstm_sym.reference.gluon as gref

    class PregenIter(data_mod.SinBucketIter):
        """SinBucketIter that builds every DataBatch of an epoch up front and replays them.

        The batches come from a plain SinBucketIter built with the same arguments (and the
        drawn seed), positioned with the public ``set_epoch``; so the windows are exactly
        the library's, and ``set_epoch``/``reset`` keep working.
        """

        instances = []

        def __init__(self, *args, **kwargs):
            self._batches, self._replay, self.replayed, self._pregen_epoch = [], 0, 0, None
            super().__init__(*args, **kwargs)
            kwargs = dict(kwargs, seed=self.seed)
            self._source_args = (args, kwargs)
            self._generate(self.epoch)
            PregenIter.instances.append(self)

        def _generate(self, epoch):
            args, kwargs = self._source_args
            source = data_mod.SinBucketIter(*args, **kwargs)
            if epoch:
                source.set_epoch(epoch)
            self._batches, self._pregen_epoch, self._replay = list(source), epoch, 0

        def set_epoch(self, epoch, cursor=0):
            super().set_epoch(epoch, cursor)
            if getattr(self, "_source_args", None) is not None:
                if epoch != self._pregen_epoch:
                    self._generate(epoch)
                self._replay = cursor

        def reset(self):
            super().reset()
            self._generate(self.epoch)

        def iter_next(self):
            return self._replay < len(self._batches)

        def next(self):
            if not self.iter_next():
                raise StopIteration
            batch = self._batches[self._replay]
            self._replay += 1
            self.replayed += 1
            return batch

        def checksum(self):
            return _windows_checksum([(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in self._batches])

    if patch_gluon_reference:
        if getattr(gref, "SinBucketIter", None) is not data_mod.SinBucketIter:
            raise RuntimeError("sinlstm_sym.reference.gluon no longer uses sinlstm_sym.data.windows.SinBucketIter "
                               "under that name; the --data pregen patch cannot be applied (use --data live)")
        gref.SinBucketIter = PregenIter
    return PregenIter


def child_mxnet(spec):
    import mxnet as mx
    import sinlstm_sym
    from sinlstm_sym.reference.gluon import train_gluon_reference
    from sinlstm_sym import FitConfig
    from sinlstm_sym.train.fit import fit
    task = TASKS[spec["task"]]
    pregen = _install_pregen_iter(spec["kind"] != "fit") if spec["data"] == "pregen" else None
    common = dict(buckets=task["buckets"], label_mode=task["label_mode"], hidden_sizes=HIDDEN,
                  batch_size=spec["batch_size"], num_samples=spec["num_samples"], num_epoch=1,
                  seed=spec["seed"], log_every=spec["log_every"])
    if spec.get("cell") == "native":
        from sinlstm_sym.native import native_available
        if not native_available():
            raise RuntimeError("the native operator did not load in this child: the row would measure 'fused'")
    t0 = time.perf_counter()
    if spec["kind"] == "e2e":  # as a user calls it: the library's defaults, its own live windows
        res = fit(buckets=task["buckets"], label_mode=task["label_mode"], batch_size=spec["batch_size"],
                  num_samples=spec["num_samples"], num_epoch=1, seed=spec["seed"], log_every=spec["log_every"])
    elif spec["kind"] == "fit":  # like for like with the other rows: the original's settings, these windows
        data = None if pregen is None else pregen(task["buckets"], batch_size=spec["batch_size"],
                                                  num_samples=spec["num_samples"], label_mode=task["label_mode"],
                                                  seed=spec["seed"], **WINDOWS)
        res = fit(FitConfig.original(cell=spec["cell"], **common), train_iter=data)
    else:
        res = train_gluon_reference(**common)
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
def child_torch(spec):
    import numpy as np
    import torch
    from torch import nn
    if spec["threads"] != "default":
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    last = TASKS[spec["task"]]["label_mode"] == "last"

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            sizes = (1,) + HIDDEN
            self.layers = nn.ModuleList(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True)
                                        for i in range(len(HIDDEN)))

        def forward(self, x):
            for layer in self.layers:
                x, _ = layer(x)
            return x  # (B, L, 1)

    model = Stack()
    if spec["data"] == "pregen":
        npz = np.load(spec["npz"])
        n = spec["total_batches"]
        pairs = [(npz[f"data_{i}"], npz[f"label_{i}"]) for i in range(n)]
        checksum = _windows_checksum(pairs)
        params = {k[len("param_"):]: npz[k] for k in npz.files if k.startswith("param_")}
        batches = [(torch.from_numpy(d), torch.from_numpy(lab)) for d, lab in pairs]
        source = batches
    else:
        from sinlstm_sym.data.windows import SinBucketIter
        from sinlstm_sym.constants import ORIGINAL_FORGET_BIAS, ORIGINAL_INIT
        from sinlstm_sym.recurrence.params import init_params
        task = TASKS[spec["task"]]
        params = init_params(HIDDEN, spec["seed"], forget_bias=ORIGINAL_FORGET_BIAS, init=ORIGINAL_INIT)
        checksum = None
        it = SinBucketIter(task["buckets"], batch_size=spec["batch_size"], num_samples=spec["num_samples"],
                           label_mode=task["label_mode"], seed=spec["seed"], **WINDOWS)
        source = ((torch.from_numpy(b.data[0].asnumpy()), torch.from_numpy(b.label[0].asnumpy())) for b in it)
    with torch.no_grad():  # the library's seeded initial weights; same gate order (i, f, g, o)
        for i, layer in enumerate(model.layers):
            layer.weight_ih_l0.copy_(torch.from_numpy(params[f"lstm{i}_i2h_weight"]))
            layer.weight_hh_l0.copy_(torch.from_numpy(params[f"lstm{i}_h2h_weight"]))
            layer.bias_ih_l0.copy_(torch.from_numpy(params[f"lstm{i}_i2h_bias"]))
            layer.bias_hh_l0.copy_(torch.from_numpy(params[f"lstm{i}_h2h_bias"]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    log_every, total = spec["log_every"], spec["total_batches"]
    records = []
    window_sum, windows, mix = None, 0, {}
    t0 = tic = time.perf_counter()
    for nbatch, (x, y) in enumerate(source, start=1):
        out = model(x)
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


def child_main(spec):
    t_start = time.perf_counter()
    if spec["kind"] == "datagen":
        out = child_datagen(spec)
    elif spec["kind"] == "torch":
        out = child_torch(spec)
    else:  # fit, e2e, gluon
        out = child_mxnet(spec)
    out["peak_rss_mib"], out["ru_maxrss_mib"] = peak_rss()
    out["child_wall"] = time.perf_counter() - t_start
    out["env"] = {k: os.environ.get(k) for k in thread_env(0, 0)}
    sys.stdout.write("\n@@RESULT@@" + json.dumps(out) + "\n")


# ----------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------
def _busy_cpu_seconds():
    """CPU-seconds spent by the whole machine (all processes), from /proc/stat; None if unavailable."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds():
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def git_state():
    """The commit of the library this process imports (found without importing it, so PYTHONPATH may point
    at another checkout) and whether its sinlstm_sym/ has uncommitted changes (it is edited concurrently)."""
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


def wait_for_quiet(max_load, max_wait, probe=1.0):
    """Wait (at most ``max_wait`` s) until other processes keep fewer than ``max_load`` cores busy for ``probe`` s."""
    t0 = time.perf_counter()
    while True:
        b0 = _busy_cpu_seconds()
        if b0 is None:
            return 0.0
        time.sleep(probe)
        load = (_busy_cpu_seconds() - b0) / probe
        if load <= max_load or time.perf_counter() - t0 >= max_wait:
            return time.perf_counter() - t0


def run_child(spec, env, timeout):
    """Run one measurement child; also return how busy the rest of the machine was meanwhile.

    ``foreign_load`` = (machine busy CPU-seconds - the child's CPU-seconds) / wall seconds:
    the average number of cores other processes kept busy while this child ran (other
    sessions' test runs on a shared box). Anything well above 0 means the numbers are noisy.
    """
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    busy0, kids0, t0 = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    busy1, kids1, wall = _busy_cpu_seconds(), _children_cpu_seconds(), time.perf_counter() - t0
    marker = proc.stdout.rfind("@@RESULT@@")
    if proc.returncode != 0 or marker < 0:
        raise RuntimeError(f"child {spec.get('row', spec['kind'])} failed (rc {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout[marker + len("@@RESULT@@"):].strip())
    out["foreign_load"] = (max(0.0, (busy1 - busy0) - (kids1 - kids0)) / wall) if busy0 is not None else None
    out["child_cpu_seconds"] = kids1 - kids0
    return out


def torch_available(env):
    code = "import torch, sys; sys.stdout.write(torch.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return (proc.stdout.strip() if proc.returncode == 0 else None), proc.stderr.strip().splitlines()[-1:] or [""]


def parse_rows(text):
    if text is None:
        return [r[0] for r in ROWS]
    names = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item.isdigit() and 1 <= int(item) <= len(ROWS):
            names.append(ROWS[int(item) - 1][0])
        elif item in ROW_BY_NAME:
            names.append(item)
        else:
            raise SystemExit(f"--rows: unknown row {item!r}; use 1..{len(ROWS)} or {', '.join(ROW_BY_NAME)}")
    return list(dict.fromkeys(names))


def fmt_rate(x):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def _paired(median, per_round):
    """The paired ratio cell: median over rounds (min..max), or n/a."""
    if median is None:
        return "n/a"
    return f"{fmt_ratio(median)} ({min(per_round):.2f}..{max(per_round):.2f})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--batches", type=int, default=300, help="measured batches per measurement (default 300)")
    ap.add_argument("--warmup", type=int, default=30, help="warm-up batches excluded (default 30)")
    ap.add_argument("--batch-size", type=int, default=300, help="windows per batch (default 300)")
    ap.add_argument("--threads", type=int, default=1,
                    help="OMP/MKL/OpenBLAS/MXNET_OMP_MAX_THREADS and torch.set_num_threads for every row (default 1: "
                         "what MXNet picks by itself on a 2-core x86 box, as it halves the core count when "
                         "OMP_NUM_THREADS is unset; torch would pick 2. On this tiny model 2 threads are no faster "
                         "on an idle box and collapse up to 10x when another process takes a core)")
    ap.add_argument("--mx-workers", type=int, default=1,
                    help="MXNET_CPU_WORKER_NTHREADS, operators MXNet may run concurrently (default 1, MXNet's "
                         "default)")
    ap.add_argument("--data", choices=("pregen", "live"), default="pregen",
                    help="pregen: data generation excluded from every row; live: included in every row")
    ap.add_argument("--seed", type=int, default=0, help="seed of windows and initial weights (default 0)")
    ap.add_argument("--rows", help="comma-separated rows, numbers or names (default: all)")
    ap.add_argument("--json", help="write all measurements and the summary to this file")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per child (default 600)")
    ap.add_argument("--max-other-load", type=float, default=0.3,
                    help="before each measurement wait (up to --quiet-wait s) until other processes use at most this "
                         "many cores, and repeat a measurement during which they used more (up to --retries times); "
                         "a negative value disables both (default 0.3)")
    ap.add_argument("--quiet-wait", type=float, default=20, help="max seconds to wait for quiet (default 20)")
    ap.add_argument("--retries", type=int, default=2, help="re-runs of a noisy measurement (default 2)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0

    if args.rounds < 1 or args.batches < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--rounds, --batches, --threads must be >= 1 and --warmup >= 0")
    log_every = math.gcd(args.warmup, args.batches)
    if log_every < min(10, args.batches):
        ap.error(f"gcd(--warmup {args.warmup}, --batches {args.batches}) = {log_every}: the loss is logged (and the "
                 "device synced) every gcd batches, so pick values with a gcd >= 10, e.g. 30 and 300")
    total_batches = args.warmup + args.batches
    num_samples = total_batches * args.batch_size
    rows = parse_rows(args.rows)

    env = dict(os.environ)
    env.update(thread_env(args.threads, args.mx_workers))
    print(f"# threads: {', '.join(f'{k}={v}' for k, v in thread_env(args.threads, args.mx_workers).items())}, "
          f"torch.set_num_threads({args.threads})")
    print(f"# {args.rounds} round(s), batch size {args.batch_size}, {args.warmup} warm-up + {args.batches} measured "
          f"batches per measurement, log/sync every {log_every} batches, data {args.data}, seed {args.seed}, "
          f"one subprocess per (row, round); python {platform.python_version()}, {os.cpu_count()} CPU(s); "
          f"library at {git_state()}; load average {os.getloadavg()[0]:.2f}")

    notes = []
    torch_version = None
    if any(ROW_BY_NAME[r][1] == "torch" for r in rows):
        torch_version, err = torch_available(env)
        if torch_version is None:
            notes.append(f"torch rows skipped: torch is not importable ({err[0]})")
            rows = [r for r in rows if ROW_BY_NAME[r][1] != "torch"]
    if any(ROW_BY_NAME[r][2] in ("native", "auto") for r in rows):  # 'auto' (e2e rows) uses it when it builds
        build = subprocess.run([sys.executable, "-m", "sinlstm_sym.native", "--build"], env=env, capture_output=True,
                               text=True, timeout=args.timeout)
        if build.returncode != 0:
            notes.append(f"native rows skipped: the operator did not build ({build.stderr.strip()[-300:]})")
            rows = [r for r in rows if ROW_BY_NAME[r][2] != "native"]
        else:
            print(f"# native operator: {build.stdout.strip()}")
    for note in notes:
        print(f"# NOTE: {note}")

    scratch = tempfile.mkdtemp(prefix="sinlstm_bench_")
    npz = {}
    data_checksums = {}
    if args.data == "pregen":
        for task in sorted({ROW_BY_NAME[r][3] for r in rows}):
            path = os.path.join(scratch, f"{task}.npz")
            spec = dict(kind="datagen", task=task, batch_size=args.batch_size, num_samples=num_samples,
                        seed=args.seed, out=path)
            res = run_child(spec, env, args.timeout)
            npz[task] = path
            data_checksums[task] = res["checksum"]

    results = {r: [] for r in rows}
    t_all = time.perf_counter()
    for rnd in range(1, args.rounds + 1):
        for name in rows:
            _, kind, cell, task, _ = ROW_BY_NAME[name]
            child_env, threads = row_env(env, name, args.threads, args.mx_workers)
            data = "live" if kind == "e2e" else args.data
            spec = dict(kind=kind, row=name, cell=cell, task=task, batch_size=args.batch_size,
                        num_samples=num_samples, total_batches=total_batches, log_every=log_every, seed=args.seed,
                        data=data, threads=threads, npz=npz.get(task))
            attempts = []
            while True:
                waited = wait_for_quiet(args.max_other_load, args.quiet_wait) if args.max_other_load >= 0 else 0.0
                res = run_child(spec, child_env, args.timeout)
                attempts.append(dict(foreign_load=res["foreign_load"], waited=waited))
                noisy = (args.max_other_load >= 0 and res["foreign_load"] is not None
                         and res["foreign_load"] > args.max_other_load)
                if not noisy or len(attempts) > args.retries:
                    break
                print(f"# round {rnd} {name:20s} discarded: other processes used {res['foreign_load']:.2f} cores "
                      f"(> --max-other-load {args.max_other_load}); retrying", file=sys.stderr, flush=True)
            measured, windows, elapsed, buckets = measured_from_records(res["records"], args.warmup,
                                                                        args.batch_size)
            if windows != args.batches * args.batch_size:
                raise RuntimeError(f"{name}: measured {windows} windows, expected {args.batches * args.batch_size}; "
                                   f"records at batches {[r['batch'] for r in res['records']]}")
            if data == "pregen" and res.get("checksum") != data_checksums[task]:
                raise RuntimeError(f"{name}: its windows differ from the {task} reference windows")
            nb = sum(buckets.values())
            m = dict(round=rnd, samples_per_sec=windows / elapsed, measured_seconds=elapsed,
                     final_loss=measured[-1]["loss"], tail_batches=measured[-1]["batch"] - (
                         measured[-2]["batch"] if len(measured) > 1 else args.warmup),
                     mean_length=(sum(k * v for k, v in buckets.items()) / nb) if nb else 9.0,
                     bucket_counts=buckets, peak_rss_mib=res["peak_rss_mib"], ru_maxrss_mib=res["ru_maxrss_mib"],
                     child_wall=res["child_wall"], child_cpu_seconds=res["child_cpu_seconds"],
                     foreign_load=res["foreign_load"], records=res["records"], env=res["env"],
                     versions=res.get("versions"), torch_threads=res.get("torch_threads"), cell=res.get("cell"),
                     wall_in_call=res.get("wall_in_call"),
                     attempts=attempts, noisy=noisy)
            results[name].append(m)
            print(f"# round {rnd} {name:20s} {m['samples_per_sec']:>10,.0f} samples/s  loss {m['final_loss']:.3e}  "
                  f"peak {m['peak_rss_mib']:.0f} MiB  (child {m['child_wall']:.1f} s, other load "
                  f"{m['foreign_load'] if m['foreign_load'] is not None else float('nan'):.2f} cores)",
                  file=sys.stderr, flush=True)
    total_wall = time.perf_counter() - t_all

    summary = {}
    for name in rows:
        ms = results[name]
        rates = [m["samples_per_sec"] for m in ms]
        losses = [m["final_loss"] for m in ms]
        summary[name] = dict(
            description=ROW_BY_NAME[name][4], task=ROW_BY_NAME[name][3],
            median=statistics.median(rates), min=min(rates), max=max(rates),
            final_loss_median=statistics.median(losses), final_loss_min=min(losses), final_loss_max=max(losses),
            peak_rss_mib_median=statistics.median(m["peak_rss_mib"] for m in ms),
            peak_rss_mib_max=max(m["peak_rss_mib"] for m in ms),
            ru_maxrss_mib_max=max(m["ru_maxrss_mib"] for m in ms),
            mean_length=statistics.median(m["mean_length"] for m in ms),
            noisy_rounds=sum(1 for m in ms if m["noisy"]), retries=sum(len(m["attempts"]) - 1 for m in ms),
            foreign_load_median=(statistics.median(m["foreign_load"] for m in ms)
                                 if all(m["foreign_load"] is not None for m in ms) else None))
    gluon = summary.get("gluon-ref-fixed", {}).get("median")
    for s in summary.values():
        s["steps_per_sec_median"] = s["median"] * s["mean_length"]
        s["ratio_to_gluon"] = s["median"] / gluon if gluon else None
        torch_best = max((t["median"] for n, t in summary.items() if ROW_BY_NAME[n][1] == "torch"
                          and t["task"] == s["task"]), default=None)  # PyTorch's best thread count
        s["ratio_to_torch"] = s["median"] / torch_best if torch_best else None
    for name, s in summary.items():  # paired: each round against the fastest torch row of the same round and task
        per_round = []
        for rnd, m in enumerate(results[name]):
            best = max((results[n][rnd]["samples_per_sec"] for n in rows if ROW_BY_NAME[n][1] == "torch"
                        and ROW_BY_NAME[n][3] == s["task"]), default=None)
            if best:
                per_round.append(m["samples_per_sec"] / best)
        s["ratio_to_torch_per_round"] = per_round
        s["ratio_to_torch_paired"] = statistics.median(per_round) if per_round else None

    tail = results[rows[0]][0]["tail_batches"] if rows else 0
    lines = [
        f"| # | row | median samples/s | min | max | x Gluon ref | x PyTorch best (same task) | "
        f"x PyTorch, paired by round (min..max) | mean L | peak RSS MiB | final loss (last {tail} batches) | "
        f"other load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in rows:
        s = summary[name]
        idx = [r[0] for r in ROWS].index(name) + 1
        loss = f"{s['final_loss_median']:.3e}"
        if s["final_loss_max"] - s["final_loss_min"] > 1e-3 * abs(s["final_loss_median"]):
            loss += f" ({s['final_loss_min']:.3e}..{s['final_loss_max']:.3e})"
        load = "n/a" if s["foreign_load_median"] is None else f"{s['foreign_load_median']:.2f}"
        if s["noisy_rounds"]:
            load += f" ({s['noisy_rounds']} noisy)"
        lines.append(f"| {idx} | {s['description']} | {fmt_rate(s['median'])} | {fmt_rate(s['min'])} | "
                     f"{fmt_rate(s['max'])} | {fmt_ratio(s['ratio_to_gluon'])} | {fmt_ratio(s['ratio_to_torch'])} | "
                     f"{_paired(s['ratio_to_torch_paired'], s['ratio_to_torch_per_round'])} | "
                     f"{s['mean_length']:.2f} | {s['peak_rss_mib_max']:.0f} | {loss} | "
                     f"{load} |")
    print()
    print("\n".join(lines))
    print()
    print(f"# samples/s = windows per second over the {args.batches} measured batches (after {args.warmup} warm-up); "
          f"{args.rounds} round(s); data generation {'excluded from' if args.data == 'pregen' else 'included in'} "
          f"every row but the end-to-end ones (10-13), which generate their own. Peak RSS = max over rounds of the "
          f"child's VmHWM. Fixed rows (L=9, last-step loss) and mixed rows (L=1..9, loss over every step) have "
          f"different losses and window lengths: compare losses within a task; 'x PyTorch best' compares with the "
          f"fastest torch row of the same task (its best thread count), medians over the run; 'paired by round' "
          f"divides each round's rate by the fastest torch row of the same task in the same round (slow drift of "
          f"the shared box cancels) and gives the median over rounds. 'other load' = median cores kept busy by "
          f"OTHER processes while the row's child ran (should be ~0; this box is shared); 'noisy' rounds stayed above "
          f"--max-other-load after {args.retries} retries. Total {total_wall:.0f} s.")
    loads = [m["foreign_load"] for ms in results.values() for m in ms if m["foreign_load"] is not None]
    if loads and max(loads) > 0.25:
        print(f"# WARNING: other processes used up to {max(loads):.2f} of {os.cpu_count()} cores during some "
              f"measurements (median {statistics.median(loads):.2f}); compare min/max and rerun when the box is quiet.")
    for note in notes:
        print(f"# NOTE: {note}")
    cells = {name: sorted({m["cell"] for m in results[name]}) for name in rows if ROW_BY_NAME[name][1] == "e2e"}
    if cells:
        print(f"# end-to-end rows: cell 'auto' chose {cells}; wall time of the whole fit call (bind and warm-up "
              f"included), median: " + ", ".join(f"{n} {statistics.median(m['wall_in_call'] for m in results[n]):.2f} s"
                                                 for n in cells))

    if args.json:
        doc = dict(settings=dict(vars(args), log_every=log_every, total_batches=total_batches,
                                 num_samples=num_samples, thread_env=thread_env(args.threads, args.mx_workers),
                                 python=platform.python_version(), cpus=os.cpu_count(), torch=torch_version,
                                 data_checksums=data_checksums, library=git_state()),
                   notes=notes, summary=summary, measurements=results, table="\n".join(lines),
                   total_seconds=total_wall)
        doc["settings"].pop("child", None)
        with open(args.json, "w") as fh:
            json.dump(doc, fh, indent=1)
        print(f"# wrote {args.json}")
    for path in npz.values():
        try:
            os.remove(path)
        except OSError:
            pass
    try:
        os.rmdir(scratch)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
