"""A training worker for tests/system/test_distributed.py: fit under the launcher, results to OUT_DIR.

Usage: python dist_worker.py OUT_DIR KVSTORE [FAIL_AT_LOG_LINE]
"""
import json
import logging
import sys
import time

import numpy as np

from sinlstm_sym import fit


class FailAt(logging.Handler):
    """Raise from inside fit when a given log line appears (a worker crashing mid-training)."""

    def __init__(self, marker, out):
        super().__init__()
        self.marker, self.out = marker, out

    def emit(self, record):
        if self.marker in record.getMessage():
            with open(f"{self.out}/failed_at", "w") as handle:
                handle.write(str(time.time()))
            raise RuntimeError(f"simulated worker failure at '{self.marker}'")


if __name__ == "__main__":
    out, kvstore = sys.argv[1], sys.argv[2]
    log = logging.getLogger("dist_worker")
    log.setLevel(logging.INFO)
    log.addHandler(logging.StreamHandler())
    if len(sys.argv) > 3:
        log.addHandler(FailAt(sys.argv[3], out))
    tic = time.perf_counter()
    result = fit(kvstore=kvstore, seed=11, num_samples=60000, batch_size=300, num_epoch=1, log_every=20, logger=log)
    seconds = time.perf_counter() - tic
    rank = result.rank
    np.savez(f"{out}/params-{rank}.npz", **result.arg_params())
    with open(f"{out}/result-{rank}.json", "w") as handle:
        json.dump({"rank": rank, "num_workers": result.num_workers, "losses": result.losses,
                   "seconds": seconds, "batches": result.loss_history[-1].batch}, handle)
