#!/usr/bin/env python
"""End-to-end ``fit`` throughput of several checkouts of this library, interleaved in one run.

Each checkout runs in its own directory (the child imports the library from there) with its own
virtualenv's interpreter (``DIR/.venv/bin/python``; without one, this interpreter), one subprocess per
(checkout, round), checkouts alternating within each round so that drift of a shared box hits all of
them alike. Each child calls ``fit`` as a user does (live windows, the library's defaults, default
threads) and reports the median windows/s of its log intervals after the first; the table gives each
checkout's median over rounds and its ratio to the first checkout. Before each child the script waits
(up to ``--quiet-wait`` s) for other processes to use at most ``--max-other-load`` cores, and prints
the load they caused meanwhile.

    python bench/compare_checkouts.py --rounds 5 --task fixed before=/path/a after=/path/b
    python bench/compare_checkouts.py --rounds 1 --num-samples 10000 --batch-size 100 --max-other-load inf a=. b=.

(``--task fixed``: ``buckets=[9], label_mode='last'``; ``mixed``: ``buckets=range(1, 10)``.)
"""
import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import benchkit

LOG_EVERY = 50
CHILD = r"""
import json, sys
from sinlstm_sym import fit
task, batch_size, num_samples, log_every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
kwargs = dict(buckets=[9], label_mode="last") if task == "fixed" else dict(buckets=list(range(1, 10)))
result = fit(batch_size=batch_size, num_samples=num_samples, num_epoch=1, seed=0, log_every=log_every, **kwargs)
rates = [r.samples_per_sec for r in result.loss_history[1:]]
print("\n" + sys.argv[5] + json.dumps({"rates": rates, "cell": result.config.model.cell}))
"""


def parse_checkouts(items: List[str]) -> List[Tuple[str, Path]]:
    """``NAME=DIR`` pairs; each DIR must hold the library (``DIR/sinlstm_sym``)."""
    checkouts = []
    for item in items:
        name, sep, directory = item.partition("=")
        path = Path(directory).expanduser().resolve()
        if not sep or not name or not (path / "sinlstm_sym" / "__init__.py").exists():
            raise SystemExit(f"checkout {item!r}: expected NAME=DIR with DIR/sinlstm_sym")
        checkouts.append((name, path))
    if len({name for name, _ in checkouts}) != len(checkouts):
        raise SystemExit("checkout names must differ")
    return checkouts


def run_child(path: Path, args: argparse.Namespace) -> Dict[str, Any]:
    """One ``fit`` in checkout ``path`` with its own interpreter and default threads."""
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0")
    for key in [k for k in env if k.startswith(("OMP_", "MXNET_CPU_", "SINLSTM_NATIVE_THREADS"))]:
        del env[key]  # default threads, as a user runs it
    env.pop("PYTHONPATH", None)
    own = path / ".venv" / "bin" / "python"
    argv = [str(own) if own.exists() else sys.executable, "-c", CHILD, args.task, str(args.batch_size),
            str(args.num_samples), str(LOG_EVERY), benchkit.RESULT_MARK]
    return benchkit.run_child(argv, env, timeout=1800, cwd=str(path))


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkouts", nargs="+", help="NAME=DIR, the first is the reference")
    ap.add_argument("--rounds", type=benchkit.positive_int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--task", choices=("fixed", "mixed"), default="fixed", help="the buckets trained (default fixed)")
    ap.add_argument("--batch-size", type=benchkit.positive_int, default=300, help="windows per batch (default 300)")
    ap.add_argument("--num-samples", type=benchkit.positive_int, default=150000,
                    help=f"windows of the one epoch (default 150000; at least {2 * LOG_EVERY} batches)")
    ap.add_argument("--json", help="write every round's rate and load here")
    benchkit.add_load_options(ap, retries=False)
    args = ap.parse_args(argv)
    if args.num_samples // args.batch_size < 2 * LOG_EVERY:
        ap.error(f"--num-samples / --batch-size gives {args.num_samples // args.batch_size} batches; at least "
                 f"{2 * LOG_EVERY} are needed (the first {LOG_EVERY}, with the binds, are not timed)")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    checkouts = parse_checkouts(args.checkouts)
    rates: Dict[str, List[float]] = {name: [] for name, _ in checkouts}
    loads: Dict[str, List[Optional[float]]] = {name: [] for name, _ in checkouts}
    for rnd in range(1, args.rounds + 1):
        for name, path in checkouts:
            benchkit.wait_for_quiet(args.max_other_load, args.quiet_wait)
            child = run_child(path, args)
            rates[name].append(statistics.median(child["rates"]))
            loads[name].append(child["foreign_load"])
        print(f"# round {rnd} (load average {benchkit.load_average():.2f}): "
              + ", ".join(f"{n} {rates[n][-1]:,.0f} (other load {loads[n][-1] or 0:.2f})" for n in rates),
              file=sys.stderr, flush=True)
    reference = statistics.median(rates[checkouts[0][0]])
    print(f"| checkout | median windows/s | x {checkouts[0][0]} | rounds |")
    print("|---|---:|---:|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / reference:.3f}x | {', '.join(f'{v:,.0f}' for v in values)} |")
    print(f"# fit(task={args.task}, batch_size={args.batch_size}, num_samples={args.num_samples}, num_epoch=1, "
          f"seed=0, log_every={LOG_EVERY}), live windows, default threads; {args.rounds} interleaved round(s)")
    if args.json:
        benchkit.write_json(args.json, {"settings": {k: v for k, v in vars(args).items()}, "rates": rates,
                                        "other_load": loads})
    return 0


if __name__ == "__main__":
    sys.exit(main())
