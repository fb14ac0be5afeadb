"""An exception inside MXNet's updater, which MXNet calls from C (the kvstore's update of the weights) and
Python would only print as "Exception ignored", fails the training run: in process with a local kvstore over
several devices, and the whole job under the launcher with dist_sync (the servers run the updater there)."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mxnet as mx
import pytest

from failing_optimizer import MESSAGE
from sinlstm_sym import fit
from sinlstm_sym.core.callback_errors import UpdaterError

SUPPORT = Path(__file__).resolve().parents[1] / "support"
# MXNet's updater callback still prints the exception (Python's hook, which pytest turns into a warning)
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
RUN = dict(buckets=[1, 2], batch_size=10, num_samples=400, num_epoch=1, seed=1, log_every=1000,
           optimizer="failingsgd", optimizer_params={}, lr_schedule=None)


@pytest.mark.parametrize("kvstore", ["local", "device"])
def test_an_updater_exception_on_the_kvstore_path_fails_the_run(kvstore, tmp_path):
    with pytest.raises(UpdaterError, match=rf"MXNet.s updater .* at epoch 0, batch \d+: RuntimeError: {MESSAGE}"):
        fit(ctx=[mx.cpu(0), mx.cpu(1)], kvstore=kvstore, **RUN)


def test_an_updater_exception_without_a_kvstore_propagates_as_it_is():
    with pytest.raises(RuntimeError, match=MESSAGE):
        fit(**RUN)


def test_the_updater_hook_is_removed_after_training():
    before = sys.unraisablehook
    with pytest.raises(UpdaterError):
        fit(ctx=[mx.cpu(0), mx.cpu(1)], kvstore="local", **RUN)
    assert sys.unraisablehook is before


@pytest.mark.slow
def test_an_updater_exception_on_a_server_ends_the_dist_sync_job_non_zero():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")])))
    tic = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sinlstm_sym.launch", "-n", "2", "-s", "1", "--timeout", "100",
                           "--", sys.executable, str(SUPPORT / "dist_failing_worker.py"), "dist_sync"],
                          capture_output=True, text=True, timeout=150, env=env)
    assert proc.returncode not in (0, 124), proc.stderr[-3000:]  # failed, and not by the launcher's timeout
    assert MESSAGE in proc.stderr and "ending the server with exit status 1" in proc.stderr, proc.stderr[-3000:]
    assert re.search(r"server 0 \(pid \d+\) exited with code 1: stopping the job", proc.stderr), proc.stderr[-3000:]
    assert time.monotonic() - tic < 90


def test_the_command_line_reports_an_updater_exception_in_one_line_and_exits_1(capsys):
    from sinlstm_sym.cli.train import main
    code = main(["--buckets", "1-2", "--batch-size", "10", "--num-samples", "400", "--num-epoch", "1",
                 "--ctx", "cpu:0,1", "--kvstore", "local", "--optimizer", "failingsgd", "--optimizer-params", "{}",
                 "--lr-schedule", "null", "--progress", "off"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and last.startswith("sinlstm-train: an exception inside MXNet's updater") and MESSAGE in last
