"""Median fit throughput (fused and unrolled, mixed 1..9 and fixed L=9) for one context/environment setting.

Run it under the environment to compare, e.g.:
    python bench/fit_variants.py
    MXNET_USE_MKLDNN_RNN=0 python bench/fit_variants.py
    OMP_NUM_THREADS=1 python bench/fit_variants.py --ctx cpu:0,1
"""
import argparse
import logging
import os
import statistics

from sinlstm_sym import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ctx", default="cpu")
    parser.add_argument("--cells", default="fused,unrolled")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    env = {k: v for k, v in os.environ.items() if k.startswith(("MXNET_", "OMP_"))}
    for cell in args.cells.split(","):
        fit(seed=0, num_samples=15000, log_every=1000, cell=cell, ctx=args.ctx)  # warm-up
        rates = []
        for buckets, label_mode in ((range(1, 10), "sequence"), ([9], "last")):
            result = fit(seed=0, num_samples=90000, log_every=50, cell=cell, buckets=buckets,
                         label_mode=label_mode, ctx=args.ctx)
            rates.append(statistics.median(r.samples_per_sec for r in result.loss_history[1:]))
        print(f"{cell:8s} ctx={args.ctx} {env}: mixed 1..9 {rates[0]:,.0f}, fixed L=9 {rates[1]:,.0f} samples/s")


if __name__ == "__main__":
    main()
