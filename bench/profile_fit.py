#!/usr/bin/env python
"""Where does the time of one ``sinlstm_sym.fit`` batch go?

Profiles ``fit`` (default: cell='fused', buckets 1..9, label_mode='sequence', batch size
300) in five passes, each a separate ``fit`` call in this process after one untimed
warm-up ``fit`` (imports, first binds, OpenMP pool start):

1. plain     ``fit`` with no instrumentation: the reference ms/batch.
2. data      the library's data path alone, engine idle: ``SinBucketIter`` batches
             (``make_windows`` + two ``mx.nd.array`` copies), and ``make_windows`` alone.
3. phases    ``fit`` with perf_counter wrappers around ``SinBucketIter.next`` and
             ``BucketingModule.forward/backward/update/get_outputs`` (and ``switch_bucket``,
             nested in ``forward``): the Python thread's wall time per phase. MXNet is
             asynchronous, so a phase's time is its dispatch cost PLUS any time it blocks
             waiting for the engine (``mx.nd.array`` -> ``SyncCopyFromCPU`` -> ``WaitToWrite``
             queues behind the engine's pending work). ``--sync-phases`` adds a second pass that
             calls ``mx.nd.waitall()`` after every phase, which charges each phase its own
             operator time (and removes all overlap, so its total is an upper bound).
4. cProfile  top functions by cumulative and by total (own) time.
5. mx.profiler  MXNet's aggregate statistics: C-API calls and operators by total time, and the
             operator time per batch vs the wall time per batch.

Usage: ``python bench/profile_fit.py [--batches 300] [--cell fused|unrolled|native] [--fixed]
[--threads 1] [--top 25] [--sync-phases] [--no-mx-profiler] [--trace out.json]``.
"""
import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections import defaultdict


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=300, help="batches per profiled fit (default 300)")
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--cell", choices=("fused", "unrolled", "native"), default="fused")
    ap.add_argument("--fixed", action="store_true", help="buckets=[9], label_mode='last' instead of 1..9 sequence")
    ap.add_argument("--recipe", action="store_true",
                    help="fit's default recipe (FitConfig(): its buckets, batch size, step weights, schedule), "
                         "one epoch of --batches batches; --batch-size and --fixed are ignored")
    ap.add_argument("--threads", type=int, default=1,
                    help="OMP_NUM_THREADS / MXNET_OMP_MAX_THREADS, set before MXNet is imported (default 1, as "
                         "bench/train_throughput.py: 2 threads are no faster here and collapse under foreign load)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=25, help="rows per cProfile / mx.profiler listing")
    ap.add_argument("--sync-phases", action="store_true", help="also time phases with waitall after each")
    ap.add_argument("--no-mx-profiler", action="store_true")
    ap.add_argument("--trace", help="also write MXNet's chrome://tracing JSON here")
    ap.add_argument("--pstats", help="dump the cProfile stats here (for snakeviz etc.)")
    return ap.parse_args(argv)


ARGS = parse_args()
if ARGS.recipe:
    from sinlstm_sym.config import FitConfig  # noqa: E402  (no MXNet thread setting happens on import)
    ARGS.batch_size, RECIPE_BUCKETS = FitConfig().data.batch_size, FitConfig().data.buckets
for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MXNET_OMP_MAX_THREADS"):
    os.environ[_k] = str(ARGS.threads)
os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", "1")
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

import sinlstm_sym.data.windows as data_mod  # noqa: E402
from train_throughput import git_state  # noqa: E402  (same folder; its import is side-effect free)
try:  # the validation layer (present since the SafeBucketingModule commit)
    import sinlstm_sym.model.bucketing as bucket_checks  # noqa: E402
except ImportError:  # pragma: no cover
    bucket_checks = None
try:  # fit's module since the general SafeBucketingModule (issue 19): the sine contract + the general checks
    from sinlstm_sym.model.batches import SineBucketingModule  # noqa: E402
except ImportError:  # pragma: no cover
    SineBucketingModule = None
from sinlstm_sym.train.fit import fit  # noqa: E402


def fit_kwargs(batches):
    """One epoch of ``batches`` batches (fit's default is two epochs: the per-batch figures count one)."""
    if ARGS.recipe:  # the library's default recipe (buckets 1..9, 12, 16, 20, step weights, cosine schedule)
        return dict(cell=ARGS.cell, num_samples=batches * ARGS.batch_size, seed=ARGS.seed, num_epoch=1,
                    log_every=max(1, min(100, batches)))
    task = dict(buckets=[9], label_mode="last") if ARGS.fixed else dict(buckets=range(1, 10), label_mode="sequence")
    return dict(cell=ARGS.cell, batch_size=ARGS.batch_size, num_samples=batches * ARGS.batch_size, seed=ARGS.seed,
                num_epoch=1,
                log_every=max(1, min(100, batches)), **task)


def header(text):
    print(f"\n=== {text} " + "=" * max(0, 88 - len(text)))


# ----------------------------------------------------------------------------------------
def run_plain():
    kw = fit_kwargs(ARGS.batches)
    t0 = time.perf_counter()
    res = fit(**kw)
    wall = time.perf_counter() - t0
    prev, loop = 0, 0.0
    for r in res.loss_history:
        loop += (r.batch - prev) * ARGS.batch_size / r.samples_per_sec
        prev = r.batch
    return wall, loop, res


def run_data():
    kw = fit_kwargs(ARGS.batches)
    buckets, label_mode = (kw["buckets"], kw["label_mode"]) if "buckets" in kw else (RECIPE_BUCKETS, "sequence")
    it = data_mod.SinBucketIter(buckets, batch_size=ARGS.batch_size, num_samples=kw["num_samples"],
                                label_mode=label_mode, seed=ARGS.seed)
    mx.nd.waitall()
    t0 = time.perf_counter()
    n = 0
    for _ in it:
        n += 1
    t_iter = (time.perf_counter() - t0) / n
    rng = np.random.default_rng(0)
    lengths = list(it.schedule)
    t0 = time.perf_counter()
    arrays = []
    for L in lengths:
        arrays.append(data_mod.make_windows(rng.uniform(0, 1, ARGS.batch_size), L, 0.01, label_mode, "time",
                                            data_mod.half_sine))
    t_windows = (time.perf_counter() - t0) / len(lengths)
    t0 = time.perf_counter()
    for x, y in arrays:
        mx.nd.array(x, dtype="float32")
        mx.nd.array(y, dtype="float32")
    t_copy = (time.perf_counter() - t0) / len(arrays)
    mx.nd.waitall()
    return t_iter, t_windows, t_copy


DATA_LABEL = "data: SinBucketIter.next"


class PhaseTimer:
    """Wrap methods on classes with wall-clock accumulators (optionally syncing the engine after each)."""

    def __init__(self, sync):
        self.sync = sync
        self.total = defaultdict(float)
        self.count = defaultdict(int)
        self.first_next = None
        self.depth = defaultdict(int)
        self.labels = []  # in wrap order: a phase, then what is nested in it
        self._restore = []

    def wrap(self, owner, name, label):
        """Time ``owner.name`` (if ``owner`` defines it itself); nested calls of one label count once."""
        if name not in owner.__dict__:
            return
        if label not in self.labels:
            self.labels.append(label)
        orig = owner.__dict__[name]
        timer = self

        def wrapper(*args, **kwargs):
            if timer.depth[label]:  # e.g. SafeBucketingModule.forward -> BucketingModule.forward
                return orig(*args, **kwargs)
            timer.depth[label] += 1
            t0 = time.perf_counter()
            if label == DATA_LABEL and timer.first_next is None:
                timer.first_next = t0
            try:
                out = orig(*args, **kwargs)
                if timer.sync:
                    mx.nd.waitall()
            finally:
                timer.depth[label] -= 1
                timer.total[label] += time.perf_counter() - t0
                timer.count[label] += 1
            return out

        setattr(owner, name, wrapper)
        self._restore.append((owner, name, orig))

    def wrap_module_class(self, base, name, label):
        """Wrap ``name`` on ``base`` and on every subclass that overrides it (the library's own module class)."""
        seen, todo = set(), [base]
        while todo:
            cls = todo.pop()
            if cls in seen:
                continue
            seen.add(cls)
            self.wrap(cls, name, label)
            todo.extend(cls.__subclasses__())

    def restore(self):
        for owner, name, orig in reversed(self._restore):
            setattr(owner, name, orig)
        self._restore.clear()


def run_phases(sync):
    timer = PhaseTimer(sync)
    bm = mx.mod.BucketingModule
    timer.wrap_module_class(data_mod.SinBucketIter, "next", DATA_LABEL)
    timer.wrap_module_class(bm, "forward", "forward")
    if SineBucketingModule is not None:  # the library's per-batch validation, if any
        timer.wrap_module_class(SineBucketingModule, "check_batch", "  of which check_batch")
    elif "check_batch" in getattr(bucket_checks, "__dict__", {}):
        timer.wrap(bucket_checks, "check_batch", "  of which bucket_checks.check_batch")
    timer.wrap_module_class(bm, "switch_bucket", "  of which switch_bucket")
    timer.wrap_module_class(bm, "backward", "backward")
    timer.wrap_module_class(bm, "update", "update")
    timer.wrap_module_class(bm, "get_outputs", "get_outputs")
    try:
        t0 = time.perf_counter()
        res = fit(**fit_kwargs(ARGS.batches))
        t_end = time.perf_counter()
    finally:
        timer.restore()
    setup = (timer.first_next or t0) - t0
    loop = t_end - (timer.first_next or t0)
    return timer, setup, loop, res


def print_phases(timer, setup, loop, batches, title):
    header(title)
    print(f"fit setup before the first batch (iterator, bind default bucket, init params/optimizer): "
          f"{setup * 1e3:.1f} ms")
    print(f"training loop: {loop:.3f} s = {loop / batches * 1e3:.3f} ms/batch\n")
    print(f"{'phase':34s} {'calls':>6s} {'ms/batch':>9s} {'% loop':>7s}")
    accounted = 0.0
    for label in timer.labels:
        tot = timer.total.get(label, 0.0)
        if not label.startswith("  "):
            accounted += tot
        print(f"{label:34s} {timer.count[label]:6d} {tot / batches * 1e3:9.3f} {100 * tot / loop:6.1f}%")
    rest = loop - accounted
    print(f"{'rest (loss sum, logging, loop)':34s} {'':6s} {rest / batches * 1e3:9.3f} {100 * rest / loop:6.1f}%")


def run_cprofile():
    prof = cProfile.Profile()
    kw = fit_kwargs(ARGS.batches)
    t0 = time.perf_counter()
    prof.enable()
    fit(**kw)
    mx.nd.waitall()
    prof.disable()
    wall = time.perf_counter() - t0
    if ARGS.pstats:
        prof.dump_stats(ARGS.pstats)
    for key in ("cumulative", "tottime"):
        header(f"cProfile: top {ARGS.top} by {key} ({ARGS.batches} batches, {wall:.2f} s under the profiler)")
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.strip_dirs().sort_stats(key).print_stats(ARGS.top)
        text = buf.getvalue()
        start = text.find("   ncalls")
        print(text[start:].rstrip() if start >= 0 else text.rstrip())


def run_mx_profiler():
    kw = fit_kwargs(ARGS.batches)
    cfg = dict(profile_symbolic=True, profile_imperative=True, profile_memory=False, profile_api=True,
               aggregate_stats=True, filename=ARGS.trace or os.devnull)
    mx.profiler.set_config(**cfg)
    mx.profiler.dumps(reset=True)
    mx.profiler.set_state("run")
    t0 = time.perf_counter()
    fit(**kw)
    mx.nd.waitall()
    wall = time.perf_counter() - t0
    mx.profiler.set_state("stop")
    stats = json.loads(mx.profiler.dumps(reset=True, format="json"))
    if ARGS.trace:
        mx.profiler.dump()
    header(f"mx.profiler aggregate ({ARGS.batches} batches, {wall:.2f} s wall under the profiler; times in ms)")
    op_total = 0.0
    for domain, entries in stats.get("Time", {}).items():
        rows = sorted(((k, v) for k, v in entries.items() if isinstance(v, dict) and "Total" in v),
                      key=lambda kv: -kv[1]["Total"])
        if domain == "MXNET_C_API":
            rows = [kv for kv in rows if kv[0] != "MXNet C API Calls"]
        dom_total = sum(v["Total"] for _, v in rows)
        if domain.startswith("operator"):
            op_total += dom_total
        print(f"\n[{domain}] total {dom_total:.1f} ms = {dom_total / ARGS.batches:.3f} ms/batch")
        print(f"  {'name':42s} {'count':>7s} {'total ms':>9s} {'avg ms':>8s} {'ms/batch':>9s}")
        for name, v in rows[:ARGS.top]:
            print(f"  {name[:42]:42s} {v['Count']:7d} {v['Total']:9.2f} {v['Avg']:8.4f} "
                  f"{v['Total'] / ARGS.batches:9.3f}")
    print(f"\noperator time (all operator domains) {op_total / ARGS.batches:.3f} ms/batch vs wall "
          f"{wall / ARGS.batches * 1e3:.3f} ms/batch under the profiler")
    return op_total


def main():
    task = "the default recipe" if ARGS.recipe else ("buckets=[9], label_mode=last" if ARGS.fixed
                                                     else "buckets=1..9, sequence")
    print(f"# fit(cell={ARGS.cell!r}, {task}, "
          f"batch_size={ARGS.batch_size}) x {ARGS.batches} batches; threads {ARGS.threads} "
          f"(OMP/MKL/OpenBLAS/MXNET_OMP_MAX_THREADS), MXNET_CPU_WORKER_NTHREADS="
          f"{os.environ['MXNET_CPU_WORKER_NTHREADS']}; mxnet {mx.__version__}, numpy {np.__version__}; "
          f"library at {git_state()}; load average before: {os.getloadavg()[0]:.2f}")
    fit(**fit_kwargs(min(30, ARGS.batches)))  # warm-up: imports, OpenMP pool, first binds
    mx.nd.waitall()

    wall, loop, res = run_plain()
    header("1. plain fit (no instrumentation)")
    print(f"fit call {wall:.3f} s; training loop (sum of LossRecord intervals) {loop:.3f} s = "
          f"{loop / ARGS.batches * 1e3:.3f} ms/batch = {ARGS.batches * ARGS.batch_size / loop:,.0f} samples/s; "
          f"setup/teardown {1e3 * (wall - loop):.1f} ms; final loss {res.losses[-1]:.3e}")

    t_iter, t_windows, t_copy = run_data()
    header("2. data path alone (engine idle)")
    print(f"SinBucketIter.next          {t_iter * 1e3:7.3f} ms/batch  ({100 * t_iter / (loop / ARGS.batches):.0f}% "
          f"of a plain fit batch)")
    print(f"  make_windows (numpy)      {t_windows * 1e3:7.3f} ms/batch")
    print(f"  2x mx.nd.array, idle      {t_copy * 1e3:7.3f} ms/batch")

    timer, setup, ploop, _ = run_phases(sync=False)
    print_phases(timer, setup, ploop, ARGS.batches, "3. phases, asynchronous (what the Python thread waits on)")
    if ARGS.sync_phases:
        timer, setup, sloop, _ = run_phases(sync=True)
        print_phases(timer, setup, sloop, ARGS.batches,
                     "3b. phases with mx.nd.waitall() after each (operator time charged to its phase)")

    run_cprofile()
    if not ARGS.no_mx_profiler:
        run_mx_profiler()
    return 0


if __name__ == "__main__":
    sys.exit(main())
