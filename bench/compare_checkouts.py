#!/usr/bin/env python
"""End-to-end ``fit`` throughput of several checkouts of this library, interleaved in one run.

Each checkout runs in its own directory (the child imports the library from there) with its own
virtualenv's interpreter (``DIR/.venv/bin/python``; without one, this interpreter), one subprocess per
(checkout, round), checkouts alternating within each
round so that drift of a shared box hits all of them alike. Each child calls ``fit`` as a user
does (live windows, the library's defaults, default threads) and reports the median windows/s of
its log intervals after the first; the table gives each checkout's median over rounds and its
ratio to the first checkout.

Usage: ``python bench/compare_checkouts.py --rounds 5 --task fixed before=/path/a after=/path/b``
(``--task fixed``: ``buckets=[9], label_mode='last'``; ``mixed``: ``buckets=range(1, 10)``).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

CHILD = r"""
import json, sys
from sinlstm_sym.train.fit import fit
task, batch_size, num_samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kwargs = dict(buckets=[9], label_mode="last") if task == "fixed" else dict(buckets=list(range(1, 10)))
result = fit(batch_size=batch_size, num_samples=num_samples, num_epoch=1, seed=0, log_every=50, **kwargs)
print(json.dumps({"rates": [r.samples_per_sec for r in result.loss_history[1:]], "cell": result.config.model.cell}))
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


def run_child(path: Path, task: str, batch_size: int, num_samples: int) -> Dict[str, Any]:
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0")
    for key in [k for k in env if k.startswith(("OMP_", "MXNET_CPU_", "SINLSTM_NATIVE_THREADS"))]:
        del env[key]  # default threads, as a user runs it
    env.pop("PYTHONPATH", None)
    own = path / ".venv" / "bin" / "python"
    proc = subprocess.run([str(own) if own.exists() else sys.executable, "-c", CHILD, task, str(batch_size),
                           str(num_samples)], cwd=path, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{path}: child failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkouts", nargs="+", help="NAME=DIR, the first is the reference")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--task", choices=("fixed", "mixed"), default="fixed")
    ap.add_argument("--batch-size", type=int, default=300)
    ap.add_argument("--num-samples", type=int, default=150000)
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {args.rounds}")
    checkouts = parse_checkouts(args.checkouts)
    rates: Dict[str, List[float]] = {name: [] for name, _ in checkouts}
    for rnd in range(1, args.rounds + 1):
        for name, path in checkouts:
            child = run_child(path, args.task, args.batch_size, args.num_samples)
            rates[name].append(statistics.median(child["rates"]))
        print(f"# round {rnd} (load {os.getloadavg()[0]:.2f}): "
              + ", ".join(f"{n} {rates[n][-1]:,.0f}" for n in rates), file=sys.stderr, flush=True)
    reference = statistics.median(rates[checkouts[0][0]])
    print(f"| checkout | median windows/s | x {checkouts[0][0]} | rounds |")
    print("|---|---:|---:|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / reference:.3f}x | {', '.join(f'{v:,.0f}' for v in values)} |")
    print(f"# fit(task={args.task}, batch_size={args.batch_size}, num_samples={args.num_samples}, num_epoch=1, "
          f"seed=0, log_every=50), live windows, default threads; {args.rounds} interleaved round(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
