"""Process memory with one bucket vs nine, and how it grows with each new bucket length.

Usage: python bench/bucket_memory.py [--cell fused|unrolled|native]   (each measurement in its own subprocess)
"""
import argparse
import subprocess
import sys

CHILD = r'''
import sys
import mxnet as mx
from sinlstm_sym import SinBucketIter, fit, make_sym_gen
from sinlstm_sym.model.bucketing import SafeBucketingModule
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.recurrence.cells import to_layout

def mib(field):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(field)) / 1024

mode, cell = sys.argv[1], sys.argv[2]
if mode in ("one", "nine"):
    fit(seed=0, num_samples=90000, log_every=1000, buckets=[9] if mode == "one" else range(1, 10),
        label_mode="sequence", cell=cell)
    print(f"{mode} bucket(s), {cell}: peak RSS {mib('VmHWM'):.1f} MiB, RSS at the end {mib('VmRSS'):.1f} MiB")
else:
    it = SinBucketIter(range(1, 10), label_mode="sequence", seed=0, num_samples=9 * 300, shuffle=False)
    module = SafeBucketingModule(make_sym_gen(label_mode="sequence", cell=cell), 9)
    module.bind(it.provide_data, it.provide_label)
    params = to_layout(init_params((10, 20, 1), 0, forget_bias=1.0), cell, (10, 20, 1))
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})
    module.init_optimizer(optimizer="adam")
    base = mib("VmRSS")
    growth = []
    for batch in it:
        module.forward(batch)
        module.backward()
        module.update()
        mx.nd.waitall()
        growth.append(f"{batch.bucket_key}:+{mib('VmRSS') - base:.1f}")
    print(f"RSS growth after the first batch of each length ({cell}, MiB over the bound module): {' '.join(growth)}")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cell", choices=["fused", "unrolled", "native"], default="fused")
    args = parser.parse_args()
    for mode in ("one", "nine", "growth"):
        out = subprocess.run([sys.executable, "-c", CHILD, mode, args.cell], capture_output=True, text=True, check=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
