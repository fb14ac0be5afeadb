"""fit under MXNet's parameter server, started by sinlstm_sym.launch on 127.0.0.1; each run bounded."""
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import fit
from sinlstm_sym.constants import KVSTORES
from sinlstm_sym.distributed import RankLogAdapter, create_kvstore

WORKER = Path(__file__).resolve().parents[1] / "support" / "dist_worker.py"


def job_processes(marker):
    """Pids whose command line mentions ``marker`` (our job's unique output directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def launch(out, kvstore, *extra, timeout=180):
    proc = subprocess.run([sys.executable, "-m", "sinlstm_sym.launch", "-n", "2", "-s", "1", "--timeout", "150",
                           "--", sys.executable, str(WORKER), str(out), kvstore, *extra],
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.time()


def results(out):
    found = {}
    for rank in (0, 1):
        found[rank] = (json.loads((out / f"result-{rank}.json").read_text()), dict(np.load(out / f"params-{rank}.npz")))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("kvstore", ["dist_sync", "dist_async"])
def test_two_workers_train_and_agree(tmp_path, kvstore):
    proc, _ = launch(tmp_path, kvstore)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r0, p0), (r1, p1) = results(tmp_path).values()
    assert {r0["rank"], r1["rank"]} == {0, 1} and r0["num_workers"] == 2
    assert r0["batches"] == r1["batches"] == 100  # 60000 windows / 300 / 2 workers: the same number of updates
    for name in p0:
        np.testing.assert_array_equal(p0[name], p1[name])  # bitwise identical
    for r in (r0, r1):
        assert r["losses"][-1] < r["losses"][0] / 2
    assert "[worker 0/2]" in proc.stderr and "[worker 1/2]" in proc.stderr
    assert not job_processes(str(tmp_path))


@pytest.mark.slow
def test_a_worker_that_raises_ends_the_whole_job(tmp_path):
    proc, ended = launch(tmp_path, "dist_sync", "[worker 1/2] epoch 0 batch 40/", timeout=60)
    assert proc.returncode != 0
    failed_at = float((tmp_path / "failed_at").read_text())
    assert ended - failed_at < 10.0
    assert "simulated worker failure" in proc.stderr and "stopping the job" in proc.stderr
    time.sleep(0.5)
    assert not job_processes(str(tmp_path))


def test_two_cpu_contexts_match_one():
    run = dict(seed=2, num_samples=9000, log_every=10)
    one = fit(**run)
    for kvstore in ("local", "device"):
        two = fit(ctx=[mx.cpu(0), mx.cpu(1)], kvstore=kvstore, **run)
        np.testing.assert_allclose(two.losses, one.losses, rtol=1e-5)
        p1, p2 = one.arg_params(), two.arg_params()
        for name in p1:
            np.testing.assert_allclose(p2[name], p1[name], atol=1e-5)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(kvstore="dist"), ValueError, "kvstore must be one of"),
    (dict(kvstore="dist_sync"), ValueError, "needs an explicit seed"),
    (dict(kvstore="dist_sync", seed=1, checkpoint="x", resume=True), ValueError, "resume=True is not supported"),
])
def test_kvstore_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(num_samples=600, **kwargs)


@pytest.mark.slow
def test_example_under_the_launcher_reports_once(root):
    proc = subprocess.run([sys.executable, "-m", "sinlstm_sym.launch", "-n", "2", "-s", "1", "--timeout", "150", "--",
                           sys.executable, str(root / "examples" / "bucket_train.py"), "--kvstore", "dist_sync",
                           "--num-samples", "12000", "--eval-samples", "50", "--eval-lengths", "1-3"],
                          capture_output=True, text=True, timeout=180, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("error per length") == 1  # rank 0 only
    assert "[worker 0/2]" in proc.stderr and "[worker 1/2]" in proc.stderr


DMLC_WORKER = dict(DMLC_ROLE="worker", DMLC_PS_ROOT_URI="127.0.0.1", DMLC_PS_ROOT_PORT="9091",
                   DMLC_NUM_SERVER="1", DMLC_NUM_WORKER="2")


@pytest.fixture
def no_mxnet_kvstore(monkeypatch):
    """Remove the launcher's variables; fail the test if MXNet is asked for a kvstore."""
    for key in list(os.environ):
        if key.startswith("DMLC_"):
            monkeypatch.delenv(key)
    asked = []
    monkeypatch.setattr(mx.kv, "create", lambda *args, **kwargs: asked.append(args) or pytest.fail("MXNet asked"))
    return asked


@pytest.mark.parametrize("name", ["dist_sync", "dist_async"])
def test_create_kvstore_without_the_launcher_names_it(no_mxnet_kvstore, name):
    with pytest.raises(ValueError) as info:
        create_kvstore(name)
    message = str(info.value)
    assert f"kvstore={name!r}" in message and "python -m sinlstm_sym.launch" in message
    for key in DMLC_WORKER:
        assert key in message
    assert "missing here: DMLC_ROLE, DMLC_PS_ROOT_URI, DMLC_PS_ROOT_PORT, DMLC_NUM_SERVER, DMLC_NUM_WORKER" in message
    assert not no_mxnet_kvstore


@pytest.mark.parametrize("key, value, expected", [
    ("DMLC_ROLE", "server", "DMLC_ROLE must be 'worker', got 'server'"),
    ("DMLC_NUM_WORKER", "two", "DMLC_NUM_WORKER must be an integer >= 1, got 'two'"),
    ("DMLC_NUM_SERVER", "0", "DMLC_NUM_SERVER must be an integer >= 1, got '0'"),
    ("DMLC_PS_ROOT_PORT", "70000", "DMLC_PS_ROOT_PORT must be an integer >= 1 and <= 65535, got '70000'"),
    ("DMLC_PS_ROOT_URI", " ", "missing here: DMLC_PS_ROOT_URI"),
    ("DMLC_NUM_WORKER", "\u00b2", "DMLC_NUM_WORKER must be an integer >= 1, got '\u00b2' (the digits 0-9 only)"),
    ("DMLC_NUM_SERVER", "\u0663", "DMLC_NUM_SERVER must be an integer >= 1, got '\u0663' (the digits 0-9 only)"),
    ("DMLC_PS_ROOT_PORT", "9" * 5000, "DMLC_PS_ROOT_PORT must be an integer >= 1 and <= 65535, got '999"),
])
def test_create_kvstore_rejects_bad_launcher_variables(no_mxnet_kvstore, monkeypatch, key, value, expected):
    for name, default in DMLC_WORKER.items():
        monkeypatch.setenv(name, default)
    monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match="python -m sinlstm_sym.launch") as info:
        create_kvstore("dist_sync")
    assert expected in str(info.value)
    assert not no_mxnet_kvstore


@pytest.mark.parametrize("name, error", [("dist", ValueError), ("nccl", ValueError), (None, TypeError)])
def test_create_kvstore_rejects_unknown_names(name, error):
    with pytest.raises(error, match=r"kvstore must be one of \['local', 'device', 'dist_sync', 'dist_async'\]"):
        create_kvstore(name)


@pytest.mark.parametrize("name", [n for n in KVSTORES if not n.startswith("dist")])
def test_create_kvstore_local_kinds(name):
    kv = create_kvstore(name)
    assert isinstance(kv, mx.kv.KVStore) and kv.type == name and (kv.rank, kv.num_workers) == (0, 1)


def test_fit_dist_without_the_launcher_fails_before_training(no_mxnet_kvstore, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ValueError, match=r"kvstore='dist_sync' runs under MXNet's parameter server: start every "
                                         r"worker with `python -m sinlstm_sym.launch"):
        fit(kvstore="dist_sync", seed=0, num_samples=600)
    assert not no_mxnet_kvstore
    assert not [r for r in caplog.records if r.name.startswith("sinlstm_sym")]  # no "training ..." line


def test_rank_log_adapter_prefixes_messages(caplog):
    caplog.set_level(logging.INFO, logger="rank-test")
    RankLogAdapter(logging.getLogger("rank-test"), 1, 3).info("epoch %d done", 4)
    assert [r.getMessage() for r in caplog.records] == ["[worker 1/3] epoch 4 done"]
