"""Checkpoints: atomic, resumable to the same numbers, loadable by plain MXNet, clear errors."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mxnet as mx
import numpy as np
from training_asserts import assert_same_training as shared_assert_same_training
import pytest

from sinlstm_sym import fit, make_sym_gen
from sinlstm_sym.checkpoint import load_checkpoint
from sinlstm_sym.infer.predictor import Predictor
from sinlstm_sym import NonFiniteLossError

RUN = dict(seed=3, num_samples=6000, batch_size=300, log_every=7, buckets=[1, 2, 3, 4, 5])  # 20 batches an epoch
KILL_RUN = dict(seed=5, num_samples=12000, batch_size=300, log_every=10, num_epoch=2)  # 40 batches an epoch
TRAIN_FOR_KILL = Path(__file__).resolve().parents[2] / "support" / "train_for_kill.py"


def assert_same_training(a, b, atol=1e-6):
    """Same loss history and parameters."""
    shared_assert_same_training(a, b, atol)


@pytest.fixture(scope="module")
def straight():
    return fit(num_epoch=2, **RUN)


def test_resume_after_one_epoch_equals_two_epochs_straight(straight, tmp_path):
    fit(num_epoch=1, checkpoint=tmp_path, **RUN)
    resumed = fit(num_epoch=2, checkpoint=tmp_path, resume=True, **RUN)
    assert_same_training(straight, resumed, atol=1e-6)
    # measured: identical to the last bit on CPU (difference 0.0)
    assert straight.losses == resumed.losses


def test_checkpoint_files_and_config(tmp_path):
    fit(num_epoch=2, checkpoint=tmp_path, checkpoint_every=6, **RUN)
    latest = json.loads((tmp_path / "latest.json").read_text())
    saved = load_checkpoint(tmp_path)
    assert latest["checkpoint"] == saved.path.name == "ckpt-00000040"
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-00000036", "ckpt-00000040"]  # keeps 2
    names = sorted(p.name for p in saved.path.iterdir())
    assert names == ["config.json", "model-0002.params", "model-1-symbol.json", "model-2-symbol.json",
                     "model-3-symbol.json", "model-4-symbol.json", "model-5-symbol.json", "model.buckets",
                     "optimizer-state.json", "optimizer-state.nd"]
    assert sorted(saved.config["manifest"]) == names[1:]  # every file but config.json, with its sha256 and size
    config = saved.config
    assert config["format"] == "sinlstm-sym-checkpoint" and config["library_version"]
    assert config["settings"]["data"]["buckets"] == [1, 2, 3, 4, 5] and config["settings"]["run"]["seed"] == 3
    assert config["progress"]["epoch"] == 2 and config["progress"]["global_batch"] == 40
    assert not list(tmp_path.glob(".tmp-*"))


def test_plain_mxnet_bucketing_module_load(tmp_path):
    result = fit(num_epoch=1, checkpoint=tmp_path, **RUN)
    saved = load_checkpoint(tmp_path)
    sym_gen = make_sym_gen((10, 20, 1), label_mode="sequence", cell="fused")
    module = mx.mod.BucketingModule.load(saved.prefix, saved.epoch, sym_gen=sym_gen, default_bucket_key=5)
    x = np.random.default_rng(0).uniform(0, 1, size=(4, 5, 1)).astype(np.float32)
    module.bind(data_shapes=[("data", (4, 5, 1))], label_shapes=[("label", (4, 5))], for_training=False)
    module.forward(mx.io.DataBatch([mx.nd.array(x)], [mx.nd.zeros((4, 5))], bucket_key=5,
                                   provide_data=[mx.io.DataDesc("data", (4, 5, 1))],
                                   provide_label=[mx.io.DataDesc("label", (4, 5))]), is_train=False)
    pred = module.get_outputs()[0].asnumpy()
    np.testing.assert_allclose(pred, result.predictor().predict(x), atol=1e-6)


def test_predictor_load_matches_fit_result(tmp_path):
    result = fit(num_epoch=1, checkpoint=tmp_path, **RUN)
    loaded = Predictor.load(tmp_path)
    assert loaded.trained_lengths == (1, 2, 3, 4, 5) and loaded.label_mode == "sequence"
    x = np.random.default_rng(1).uniform(0, 1, size=(33, 20))
    np.testing.assert_allclose(loaded.predict(x), result.predictor().predict(x), atol=1e-7)


def run_until_checkpoint(tmp_path, min_global_batch):
    """Start training in a subprocess, SIGKILL it once a checkpoint past ``min_global_batch`` exists."""
    ckpt = tmp_path / "ckpt"
    args = [f"{k}={v}" for k, v in KILL_RUN.items()]
    proc = subprocess.Popen([sys.executable, str(TRAIN_FOR_KILL), str(ckpt), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            try:
                done = json.loads((ckpt / "latest.json").read_text())["checkpoint"]
                if int(done.split("-")[1]) >= min_global_batch:
                    break
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.01)
        else:
            pytest.fail("no checkpoint appeared in time")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return ckpt


@pytest.fixture(scope="module")
def kill_run_straight():
    return fit(**KILL_RUN)


@pytest.mark.slow
@pytest.mark.parametrize("min_global_batch", [13, 53])  # in the first epoch, in the second
def test_sigkill_during_training_leaves_a_loadable_checkpoint_and_resume_is_exact(tmp_path, min_global_batch,
                                                                                  kill_run_straight):
    ckpt = run_until_checkpoint(tmp_path, min_global_batch)
    saved = load_checkpoint(ckpt)  # whatever moment the kill hit, the latest checkpoint is complete
    assert saved.config["progress"]["global_batch"] >= min_global_batch
    resumed = fit(checkpoint=ckpt, resume=True, **KILL_RUN)
    assert_same_training(kill_run_straight, resumed, atol=1e-6)


def test_crash_in_the_middle_of_a_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    fit(num_epoch=1, checkpoint=tmp_path, **RUN)
    before = load_checkpoint(tmp_path)

    def crash(*args, **kwargs):
        raise OSError("simulated crash between writing and renaming")
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(OSError, match="simulated crash"):
        fit(num_epoch=2, checkpoint=tmp_path, resume=True, **RUN)
    monkeypatch.undo()
    after = load_checkpoint(tmp_path)
    assert after.path == before.path
    for name in before.arg_params:
        np.testing.assert_array_equal(after.arg_params[name], before.arg_params[name])
    assert not list(tmp_path.glob(".tmp-*"))  # the half-written one is removed on the error path
    fit(num_epoch=2, checkpoint=tmp_path, resume=True, **RUN)
    assert not list(tmp_path.glob(".tmp-*"))


def test_non_finite_training_writes_no_nan_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError):  # 1e6: the largest learning_rate accepted
        fit(checkpoint=tmp_path, checkpoint_every=1, optimizer_params={"learning_rate": 1e6},
            **{**RUN, "log_every": 100})
    if (tmp_path / "latest.json").exists():
        for value in load_checkpoint(tmp_path).arg_params.values():
            assert np.isfinite(value).all()
    assert issubclass(NonFiniteLossError, FloatingPointError)


def corrupt(tmp_path, how):
    fit(num_epoch=1, checkpoint=tmp_path, **RUN)
    ckpt = load_checkpoint(tmp_path).path
    if how == "no latest":
        (tmp_path / "latest.json").unlink()
    elif how == "truncated latest":
        (tmp_path / "latest.json").write_text('{"format": "sinlstm')
    elif how == "foreign latest":
        (tmp_path / "latest.json").write_text('{"format": "something-else", "checkpoint": "ckpt-00000020"}')
    elif how == "missing dir":
        shutil.rmtree(ckpt)
    elif how == "truncated params":
        params = ckpt / "model-0001.params"
        params.write_bytes(params.read_bytes()[:100])
    elif how == "missing params":
        (ckpt / "model-0001.params").unlink()
    elif how == "truncated config":
        (ckpt / "config.json").write_text((ckpt / "config.json").read_text()[:50])
    elif how == "foreign params":
        mx.nd.save(str(ckpt / "model-0001.params"), [mx.nd.zeros(3)])
    return tmp_path


@pytest.mark.parametrize("how, error, message", [
    ("no latest", FileNotFoundError, r"latest\.json: missing"),
    ("truncated latest", ValueError, r"latest\.json: not valid JSON"),
    ("foreign latest", ValueError, r"latest\.json: not a sinlstm-sym checkpoint"),
    ("missing dir", FileNotFoundError, r"ckpt-00000020: missing"),
    ("truncated params", ValueError, r"model-0001\.params: 100 bytes, the manifest says \d+"),
    ("missing params", FileNotFoundError, r"model-0001\.params: missing"),
    ("truncated config", ValueError, r"config\.json: not valid JSON"),
    ("foreign params", ValueError, r"model-0001\.params: \d+ bytes, the manifest says \d+"),
])
def test_broken_checkpoints_give_clear_errors(tmp_path, how, error, message):
    directory = corrupt(tmp_path, how)
    with pytest.raises(error, match=message):
        load_checkpoint(directory)
    with pytest.raises(error, match=message):
        Predictor.load(directory)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        Predictor.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        fit(checkpoint=tmp_path / "nope", resume=True, **RUN)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(checkpoint_every=5), ValueError, "checkpoint_every needs checkpoint"),
    (dict(resume=True), ValueError, "resume=True needs checkpoint"),
    (dict(checkpoint=3), TypeError, "checkpoint must be a directory path"),
    (dict(checkpoint="x", checkpoint_every=0), ValueError, "checkpoint_every"),
    (dict(resume="yes"), TypeError, "resume"),
])
def test_checkpoint_arguments_validated(kwargs, error, message):
    with pytest.raises(error, match=message):
        fit(**{**RUN, **kwargs})


def test_resume_with_other_settings_is_refused(tmp_path):
    fit(num_epoch=1, checkpoint=tmp_path, **RUN)
    with pytest.raises(ValueError, match=r"other settings: batch_size=300 there, 150 now"):
        fit(num_epoch=2, checkpoint=tmp_path, resume=True, **{**RUN, "batch_size": 150})
