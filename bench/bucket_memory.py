#!/usr/bin/env python
"""Process memory of training with one bucket length against nine, and its growth with each new length.

Three measurements, each in its own subprocess so that each peak is its own:

* one:    ``fit(buckets=[9], label_mode='sequence', cell=CELL)``: peak RSS (VmHWM) and RSS at the end;
* nine:   the same with ``buckets=range(1, 10)``; the table gives nine / one;
* growth: a ``SafeBucketingModule`` bound at length 9, then one batch (forward, backward, update) of each
  length 1..9: the RSS growth over the bound module after each new length's first batch.

    python bench/bucket_memory.py --cell native
    python bench/bucket_memory.py --cell fused --num-samples 3000 --json memory.json    # a quick look
"""
import argparse
import os
import sys
from typing import Any, Dict, List, Optional

import benchkit

HIDDEN = (10, 20, 1)
MODES = ("one", "nine", "growth")


def rss_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def child_fit(mode: str, cell: str, num_samples: int) -> Dict[str, Any]:
    from sinlstm_sym import fit
    fit(seed=0, num_samples=num_samples, log_every=10 ** 6, buckets=[9] if mode == "one" else range(1, 10),
        label_mode="sequence", cell=cell)
    return {"peak_rss_mib": rss_mib("VmHWM"), "end_rss_mib": rss_mib("VmRSS")}


def child_growth(cell: str) -> Dict[str, Any]:
    import mxnet as mx

    from sinlstm_sym import SafeBucketingModule, SinBucketIter, make_sym_gen
    from sinlstm_sym.params import init_params, to_layout
    it = SinBucketIter(range(1, 10), label_mode="sequence", seed=0, num_samples=9 * 300, shuffle=False)
    module = SafeBucketingModule(make_sym_gen(HIDDEN, label_mode="sequence", cell=cell), 9)
    module.bind(it.provide_data, it.provide_label)
    params = to_layout(init_params(HIDDEN, 0, forget_bias=1.0), cell, HIDDEN)
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})
    module.init_optimizer(optimizer="adam")
    base = rss_mib("VmRSS")
    growth: Dict[str, float] = {}
    for batch in it:
        module.forward(batch)
        module.backward()
        module.update()
        mx.nd.waitall()
        growth.setdefault(str(batch.bucket_key), rss_mib("VmRSS") - base)
    return {"bound_rss_mib": base, "growth_mib": growth}


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", choices=["fused", "unrolled", "native"], default="fused",
                        help="the LSTM cell (default fused)")
    parser.add_argument("--num-samples", type=benchkit.positive_int, default=90000,
                        help="windows of the one and nine runs' epoch (default 90000)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        benchkit.emit_result(child_growth(args.cell) if args.child == "growth" else
                             child_fit(args.child, args.cell, args.num_samples))
        return 0
    if not os.path.exists("/proc/self/status"):
        raise SystemExit("bucket_memory.py reads /proc/self/status: Linux only")
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0")
    out = {mode: benchkit.run_child([sys.executable, os.path.abspath(__file__), "--child", mode, "--cell", args.cell,
                                     "--num-samples", str(args.num_samples)], env) for mode in MODES}
    one, nine = out["one"]["peak_rss_mib"], out["nine"]["peak_rss_mib"]
    print("| cell | peak RSS, one length | peak RSS, nine lengths | nine / one | RSS at the end, one / nine |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {args.cell} | {one:.1f} MiB | {nine:.1f} MiB | {nine / one:.3f}x | {out['one']['end_rss_mib']:.1f} / "
          f"{out['nine']['end_rss_mib']:.1f} MiB |")
    growth = out["growth"]["growth_mib"]
    print(f"RSS growth after the first batch of each length ({args.cell}, MiB over the bound module of "
          f"{out['growth']['bound_rss_mib']:.1f} MiB): " + " ".join(f"{k}:+{v:.1f}" for k, v in growth.items()))
    print(f"# fit(seed=0, num_samples={args.num_samples}, label_mode='sequence', cell={args.cell!r}); load average "
          f"{benchkit.load_average():.2f}")
    if args.json:
        benchkit.write_json(args.json, {"cell": args.cell, "num_samples": args.num_samples, **out})
        print(f"# wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
