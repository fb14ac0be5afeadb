"""cell='native' on several threads ($SINLSTM_NATIVE_THREADS): outputs, gradients and a short fit are
bit-identical to one thread, for batches below the threading threshold, not a multiple of 16 and above it."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest

from sinlstm_sym.constants import NATIVE_THREADS_ENV

pytestmark = pytest.mark.native  # built on first use by the first such test (tests/conftest.py)

# (batch, length): calls of fewer than 160 (blocks of 16 windows x steps) stay on one thread (the first six),
# larger ones are shared; 17, 40, 130, 200, 301 and 999 leave a partly padded last block.
CASES = [(1, 3), (17, 9), (40, 5), (64, 9), (48, 30), (200, 8), (130, 20), (301, 9), (999, 4), (32, 90)]

SCRIPT = textwrap.dedent("""
    import os, sys
    import mxnet as mx
    import numpy as np
    from sinlstm_sym import fit, make_sym_gen
    from sinlstm_sym.recurrence.params import fused_shapes

    hidden = (10, 20, 1)
    out = {}
    for batch, length in %r:
        rng = np.random.default_rng(batch * 100 + length)
        symbol, _, _ = make_sym_gen(hidden, label_mode="sequence", cell="native", with_loss=False)(length)
        args = {"data": mx.nd.array(rng.uniform(-1, 1, (batch, length, 1)))}
        args.update({k: mx.nd.array(rng.uniform(-0.6, 0.6, s)) for k, s in fused_shapes(hidden).items()})
        grads = {k: mx.nd.zeros(v.shape) for k, v in args.items()}
        executor = symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req="write")
        executor.forward(is_train=True)
        executor.backward(mx.nd.array(rng.normal(size=(batch, length))))
        out[f"out_{batch}_{length}"] = executor.outputs[0].asnumpy()
        out.update({f"grad_{batch}_{length}_{k}": v.asnumpy() for k, v in grads.items()})
    result = fit(buckets=[9], label_mode="last", batch_size=300, num_samples=6000, num_epoch=1, seed=5,
                 lr_schedule=None, cell="native", log_every=5)
    out["fit_losses"] = np.array(result.losses)
    out.update({f"fit_{k}": v for k, v in result.arg_params().items()})
    out["threads"] = np.array(len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else -1)
    np.savez(sys.argv[1], **out)
""") % (CASES,)


def run_with_threads(count: str, path: Path) -> Tuple[Dict[str, np.ndarray], str]:
    """The arrays SCRIPT saved and its stderr, run with $SINLSTM_NATIVE_THREADS=count."""
    env = dict(os.environ, **{NATIVE_THREADS_ENV: count, "MXNET_SUBGRAPH_VERBOSE": "0"})
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(path) as arrays:
        return {k: arrays[k] for k in arrays.files}, proc.stderr


@pytest.mark.parametrize("count", ["2", "3"])
def test_several_threads_are_bit_identical_to_one(tmp_path, count):
    one, _ = run_with_threads("1", tmp_path / "one.npz")
    many, _ = run_with_threads(count, tmp_path / "many.npz")
    threads_one, threads_many = int(one.pop("threads")), int(many.pop("threads"))
    assert sorted(one) == sorted(many)
    assert len([k for k in one if k.startswith("grad_")]) == len(CASES) * 4  # data and three layers each
    differing = [k for k in one if one[k].tobytes() != many[k].tobytes()]
    assert differing == [], f"results differ between 1 and {count} threads: {differing}"
    assert np.all(np.isfinite(one["fit_losses"])) and len(one["fit_losses"]) == 4
    if threads_one > 0:  # Linux: the process started count - 1 helpers
        assert threads_many == threads_one + int(count) - 1


def test_a_bad_thread_count_falls_back_to_the_default(tmp_path):
    default, quiet = run_with_threads("", tmp_path / "default.npz")
    bad, warned = run_with_threads("zero", tmp_path / "bad.npz")
    assert f"{NATIVE_THREADS_ENV}='zero' is not a positive integer" in warned
    assert NATIVE_THREADS_ENV not in quiet
    assert int(bad.pop("threads")) == int(default.pop("threads"))
    assert all(bad[k].tobytes() == default[k].tobytes() for k in default)
