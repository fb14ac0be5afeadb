#!/usr/bin/env python
"""Process memory of training with one bucket length against nine, and its growth with each new length.

Four measurements, each in its own subprocess so that each peak is its own:

* one:    ``fit(buckets=[9], label_mode='sequence', cell=CELL)``: peak RSS (VmHWM) and RSS at the end;
* nine:   the same with ``buckets=range(1, 10)``; the table gives nine / one;
* growth: a ``SafeBucketingModule`` bound at length 9, then one batch (forward, backward, update) of each
  length 1..9: the RSS growth over the bound module after each new length's first batch;
* long:   ``fit(buckets=[--long-length], batch_size=300)`` for ``--long-batches`` batches: RSS at the end
  and peak RSS (``--long-length 0`` skips it).

    python bench/bucket_memory.py --cell native
    python bench/bucket_memory.py --cell fused --num-samples 3000 --long-length 50 --json memory.json
"""
import argparse
import os
import sys
from typing import Any, Dict, List, Optional

import benchkit

HIDDEN = (10, 20, 1)
MODES = ("one", "nine", "growth", "long")
LONG_BATCH = 300


def rss_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM), MiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def child_fit(mode: str, args: argparse.Namespace) -> Dict[str, Any]:
    from sinlstm_sym import fit
    if mode == "long":
        fit(seed=0, num_samples=LONG_BATCH * args.long_batches, batch_size=LONG_BATCH, log_every=10 ** 6,
            buckets=[args.long_length], label_mode="sequence", cell=args.cell)
    else:
        fit(seed=0, num_samples=args.num_samples, log_every=10 ** 6, buckets=[9] if mode == "one" else range(1, 10),
            label_mode="sequence", cell=args.cell)
    return {"peak_rss_mib": rss_mib("VmHWM"), "end_rss_mib": rss_mib("VmRSS")}


def child_growth(cell: str) -> Dict[str, Any]:
    import mxnet as mx

    from sinlstm_sym import SafeBucketingModule, SinBucketIter, make_sym_gen
    from sinlstm_sym.recurrence.cells import to_layout
    from sinlstm_sym.recurrence.params import init_params
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
    parser.add_argument("--long-length", type=benchkit.non_negative_int, default=1000,
                        help="window length of the long run (default 1000; 0 skips it)")
    parser.add_argument("--long-batches", type=benchkit.positive_int, default=12,
                        help=f"batches of {LONG_BATCH} windows of the long run (default 12)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        benchkit.emit_result(child_growth(args.cell) if args.child == "growth" else child_fit(args.child, args))
        return 0
    if not os.path.exists("/proc/self/status"):
        raise SystemExit("bucket_memory.py reads /proc/self/status: Linux only")
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0")
    modes = MODES if args.long_length else MODES[:-1]
    settings = ["--cell", args.cell, "--num-samples", str(args.num_samples), "--long-length", str(args.long_length),
                "--long-batches", str(args.long_batches)]
    out = {mode: benchkit.run_child([sys.executable, os.path.abspath(__file__), "--child", mode, *settings], env)
           for mode in modes}
    one, nine = out["one"]["peak_rss_mib"], out["nine"]["peak_rss_mib"]
    long = (f" {out['long']['end_rss_mib']:.1f} MiB ({out['long']['peak_rss_mib']:.1f}) |" if "long" in out
            else " - |")
    print("| cell | peak RSS, one length | peak RSS, nine lengths | nine / one | RSS at the end, one / nine | "
          + (f"length {args.long_length}, batch {LONG_BATCH}: RSS at the end (peak) |" if args.long_length
             else "long run |"))
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| {args.cell} | {one:.1f} MiB | {nine:.1f} MiB | {nine / one:.3f}x | {out['one']['end_rss_mib']:.1f} / "
          f"{out['nine']['end_rss_mib']:.1f} MiB |" + long)
    growth = out["growth"]["growth_mib"]
    print(f"RSS growth after the first batch of each length ({args.cell}, MiB over the bound module of "
          f"{out['growth']['bound_rss_mib']:.1f} MiB): " + " ".join(f"{k}:+{v:.1f}" for k, v in growth.items()))
    print(f"# fit(seed=0, num_samples={args.num_samples}, label_mode='sequence', cell={args.cell!r}); long run: "
          f"{args.long_batches} batches; load average {benchkit.load_average():.2f}")
    if args.json:
        benchkit.write_json(args.json, {"settings": {k: v for k, v in vars(args).items() if k != "child"}, **out})
        print(f"# wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
