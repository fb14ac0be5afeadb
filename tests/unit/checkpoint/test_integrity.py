"""Checkpoints safe to share: no pickle is ever read, every file checksummed, versions checked."""
import json
import logging
import pickle
import re
import shutil
import subprocess
from contextlib import nullcontext
from pathlib import Path

import mxnet as mx
import numpy as np
from training_asserts import assert_same_training as shared_assert_same_training
import pytest

from sinlstm_sym.config.fit_config import V01_DEFAULTS
from sinlstm_sym import fit
from sinlstm_sym.checkpoint.files import checksummed_json, sha256
from sinlstm_sym.checkpoint import (CHECKPOINTABLE_OPTIMIZERS, check_checkpointable_optimizer, load_checkpoint,
                                    save_checkpoint)
from sinlstm_sym.infer.predictor import Predictor

SMALL = dict(seed=4, num_samples=1200, batch_size=100, log_every=5, buckets=[1, 2, 3])  # 12 batches an epoch
TESTS = Path(__file__).resolve().parents[2]
FIXTURES = TESTS / "fixtures"
V01 = FIXTURES / "checkpoint-v0.1"
# how the fixture was made: version 0.1's fit with its defaults (the original's, but per-step labels)
V01_RUN = dict({k: v for k, v in V01_DEFAULTS.items() if k != "num_epoch"}, label_mode="sequence",
               buckets=[2, 3], num_samples=600, batch_size=100, seed=0, cell="fused")


def assert_same_training(a, b, atol=0.0):
    """Same loss history and parameters; bit for bit (atol=0) when both ran on the same devices."""
    shared_assert_same_training(a, b, atol)


def sgd_schedule():
    return dict(optimizer="sgd", optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
                lr_schedule={"name": "factor", "step": 5, "factor": 0.5})  # lr halves every 5 updates


OPTIMIZERS = {
    "adam": lambda: dict(optimizer="adam"),
    "sgd momentum + FactorScheduler": sgd_schedule,
    "sgd plain": lambda: dict(optimizer="sgd", optimizer_params={"learning_rate": 0.1}),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_equals_uninterrupted_run(tmp_path, name):
    straight = fit(num_epoch=2, **SMALL, **OPTIMIZERS[name]())
    fit(num_epoch=1, checkpoint=tmp_path, **SMALL, **OPTIMIZERS[name]())
    saved = load_checkpoint(tmp_path)
    state = json.loads((saved.path / "optimizer-state.json").read_text())
    arrays = mx.nd.load(str(saved.path / "optimizer-state.nd"))
    params = saved.arg_params
    assert state["num_update"] == 12
    assert state["update_counts"] == [{"device": 0, "param": p, "count": 12} for p in sorted(params)]
    per_param = {"adam": 2, "sgd momentum + FactorScheduler": 1, "sgd plain": 0}[name]
    kind = {0: "none", 1: "array", 2: "tuple"}[per_param]
    assert state["states"] == [{"param": p, "kind": kind, "arrays": per_param} for p in sorted(params)]
    assert sorted(arrays or {}) == sorted(f"{p}:{slot}" for p in params for slot in range(per_param))
    for key, value in (arrays or {}).items():
        assert value.shape == params[key.split(":")[0]].shape and value.dtype == np.float32
    resumed = fit(num_epoch=2, checkpoint=tmp_path, resume=True, **SMALL, **OPTIMIZERS[name]())
    assert_same_training(straight, resumed)


def test_schedule_and_counters_matter(tmp_path):
    """The resume tests above could not fail if the schedule or the restored counters changed nothing."""
    straight = fit(num_epoch=2, **SMALL, **sgd_schedule())
    no_schedule = fit(num_epoch=2, **SMALL, optimizer="sgd", optimizer_params={"learning_rate": 0.5, "momentum": 0.9},
                      lr_schedule=None)
    assert straight.losses[:1] == no_schedule.losses[:1] and straight.losses[-1] != no_schedule.losses[-1]
    fit(num_epoch=1, checkpoint=tmp_path, **SMALL, **sgd_schedule())
    saved = load_checkpoint(tmp_path)
    state_file = saved.path / "optimizer-state.json"
    state = json.loads(state_file.read_text())
    state["num_update"], state["update_counts"] = 0, []
    forge(saved.path, "optimizer-state.json", json.dumps(state).encode())
    wrong = fit(num_epoch=2, checkpoint=tmp_path, resume=True, **SMALL, **sgd_schedule())
    assert wrong.losses[:2] == straight.losses[:2] and wrong.losses[-1] != straight.losses[-1]


def test_resume_with_two_devices_and_across_device_counts(tmp_path):
    """Two devices key the updater by name (updates on the kvstore), one by index: the state fits both."""
    straight = fit(num_epoch=3, ctx="cpu:0,1", **SMALL)
    fit(num_epoch=1, checkpoint=tmp_path / "a", ctx="cpu:0,1", **SMALL)
    fit(num_epoch=2, checkpoint=tmp_path / "a", resume=True, ctx="cpu:0,1", **SMALL)
    assert_same_training(straight, fit(num_epoch=3, checkpoint=tmp_path / "a", resume=True, ctx="cpu:0,1", **SMALL))
    fit(num_epoch=1, checkpoint=tmp_path / "b", **SMALL)
    fit(num_epoch=2, checkpoint=tmp_path / "b", resume=True, ctx="cpu:0,1", **SMALL)
    mixed = fit(num_epoch=3, checkpoint=tmp_path / "b", resume=True, **SMALL)
    assert_same_training(straight, mixed, atol=1e-6)  # measured: 1.5e-8 (one or two devices sum differently)


def test_adam_state_arrays_matter(tmp_path):
    """Resume equality could not fail if the restored Adam moments changed nothing: zeroed, they do."""
    straight = fit(num_epoch=2, **SMALL)
    fit(num_epoch=1, checkpoint=tmp_path, **SMALL)
    ckpt = load_checkpoint(tmp_path).path
    zeros = {k: mx.nd.zeros_like(v) for k, v in mx.nd.load(str(ckpt / "optimizer-state.nd")).items()}
    mx.nd.save(str(tmp_path / "zeros.nd"), zeros)
    forge(ckpt, "optimizer-state.nd", (tmp_path / "zeros.nd").read_bytes())
    wrong = fit(num_epoch=2, checkpoint=tmp_path, resume=True, **SMALL)
    assert wrong.losses[:3] == straight.losses[:3]  # epoch 1, before the checkpoint
    assert np.max(np.abs(np.subtract(wrong.losses[3:], straight.losses[3:]))) > 1e-4  # measured 4.5e-4


@pytest.mark.parametrize("optimizer", [o for o in CHECKPOINTABLE_OPTIMIZERS if o not in ("adam", "sgd")])
def test_every_checkpointable_optimizer_resumes_exactly(tmp_path, optimizer):
    run = dict(SMALL, num_samples=600)
    straight = fit(num_epoch=2, optimizer=optimizer, **run)
    fit(num_epoch=1, checkpoint=tmp_path, optimizer=optimizer, **run)
    assert_same_training(straight, fit(num_epoch=2, checkpoint=tmp_path, resume=True, optimizer=optimizer, **run))


def test_other_optimizers_refused_at_fit_time_only_with_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match=r"optimizer 'nadam' cannot be checkpointed.*use one of adam, sgd, nag"):
        fit(optimizer="nadam", checkpoint=tmp_path, **SMALL)
    assert not any(tmp_path.iterdir())  # refused before training
    assert len(fit(optimizer="nadam", num_epoch=1, **SMALL).losses) == 3
    with pytest.raises(ValueError, match="'sgld' cannot be checkpointed"):
        check_checkpointable_optimizer("sgld")
    with pytest.raises(TypeError, match="optimizer must be an MXNet optimizer name"):
        check_checkpointable_optimizer(None)
    check_checkpointable_optimizer("Adam")


def forge(ckpt: Path, name: str, data: bytes) -> None:
    """Replace ``name`` by ``data`` and rewrite the manifest to match, as a forger could."""
    (ckpt / name).write_bytes(data)
    config = json.loads((ckpt / "config.json").read_text())
    config["manifest"][name] = {"sha256": sha256(data), "size": len(data)}
    (ckpt / "config.json").write_bytes(checksummed_json(config))


class _WritesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "unpickled")


@pytest.fixture
def evil(tmp_path):
    """A pickle that writes a marker file when unpickled (checked once here, so the tests below can fail)."""
    marker = tmp_path / "MARKER"
    payload = pickle.dumps(_WritesMarker(marker))
    pickle.loads(payload)
    assert marker.read_text() == "unpickled"
    marker.unlink()
    return payload, marker


@pytest.mark.parametrize("target, forged, message", [
    ("optimizer-state.nd", True, r"optimizer-state\.nd: not a readable MXNet array file"),
    ("optimizer-state.nd", False, r"optimizer-state\.nd: \d+ bytes, the manifest says \d+"),
    ("optimizer-state.json", True, r"optimizer-state\.json: not valid JSON"),
    ("model-0001.params", True, r"model-0001\.params: not a readable MXNet parameter file"),
])
def test_a_pickle_in_place_of_a_file_is_never_unpickled(tmp_path, evil, target, forged, message):
    payload, marker = evil
    run = tmp_path / "run"
    fit(num_epoch=1, checkpoint=run, **SMALL)
    ckpt = load_checkpoint(run).path
    if forged:
        forge(ckpt, target, payload)
    else:
        (ckpt / target).write_bytes(payload)
    with pytest.raises(ValueError, match=message):
        fit(num_epoch=2, checkpoint=run, resume=True, **SMALL)
    # prediction checks the manifest but reads no optimizer file
    with pytest.raises(ValueError) if target.startswith("model") or not forged else nullcontext():
        Predictor.load(run)
    assert not marker.exists()


def test_pickles_beside_the_manifest_are_ignored(tmp_path, evil, caplog):
    payload, marker = evil
    run = tmp_path / "run"
    straight = fit(num_epoch=2, **SMALL)
    fit(num_epoch=1, checkpoint=run, **SMALL)
    ckpt = load_checkpoint(run).path
    for name in ("optimizer.pickle", "model-0001.states"):  # the files format 1 unpickled
        (ckpt / name).write_bytes(payload)
    with caplog.at_level(logging.WARNING, logger="sinlstm_sym.checkpoint"):
        resumed = fit(num_epoch=2, checkpoint=run, resume=True, **SMALL)
    assert "files ['model-0001.states', 'optimizer.pickle'] are not in the manifest; they are ignored" in caplog.text
    assert_same_training(straight, resumed)
    assert not marker.exists()


def test_a_pickle_in_a_format_1_checkpoint_needs_allow_pickle(tmp_path, evil):
    payload, marker = evil
    run = tmp_path / "v01"
    shutil.copytree(V01, run)
    (run / "ckpt-00000006" / "optimizer.pickle").write_bytes(payload)
    with pytest.raises(ValueError, match=r"format version 1 .* keeps its optimizer state in pickles"):
        fit(num_epoch=2, checkpoint=run, resume=True, **V01_RUN)
    assert not marker.exists()
    # what allow_pickle=True means: the pickle runs (and is then found not to be an optimizer)
    with pytest.raises(ValueError, match="optimizer.pickle: holds a int, not an MXNet optimizer"):
        fit(num_epoch=2, checkpoint=run, resume=True, allow_pickle=True, **V01_RUN)
    assert marker.exists()


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("small") / "run"
    fit(num_epoch=1, checkpoint=run, **SMALL)
    return run


def test_every_flipped_byte_is_a_value_error_naming_its_file_before_mxnet_reads(small_run, tmp_path, python):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    out = tmp_path / "flips.json"
    proc = subprocess.run([python, str(TESTS / "support" / "flip_bytes.py"), str(run), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # no crash, no signal
    records = json.loads(out.read_text())
    names = {r["file"] for r in records}
    assert names == {"latest.json", "config.json", "model-0001.params", "model-1-symbol.json", "model-2-symbol.json",
                     "model-3-symbol.json", "model.buckets", "optimizer-state.json", "optimizer-state.nd"}
    for name in ("latest.json", "config.json", "optimizer-state.json"):  # every byte of these
        size = len((run / name if name == "latest.json" else load_checkpoint(run).path / name).read_bytes())
        assert sorted(r["pos"] for r in records if r["file"] == name) == list(range(size))
    for r in records:
        for error in r["errors"]:
            assert error is not None and error[0] == "ValueError" and f"{r['file']}:" in error[1], r
        assert r["mxnet_reads"] == 0, r


def test_evaluate_cli_names_the_damaged_file(small_run, tmp_path, capsys):
    from sinlstm_sym.cli.evaluate import main
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    symbol = load_checkpoint(run).path / "model-3-symbol.json"
    symbol.write_text(symbol.read_text().replace('"op"', '"Op"', 1))
    with pytest.raises(SystemExit) as stop:
        main([str(run), "--lengths", "1-2", "--num-samples", "10"])
    assert stop.value.code == 2
    assert re.search(r"error: .*model-3-symbol\.json: SHA-256 mismatch with the manifest", capsys.readouterr().err)


@pytest.mark.parametrize("name", ["latest.json", "config.json", "model-0001.params", "model-2-symbol.json",
                                  "model.buckets", "optimizer-state.json", "optimizer-state.nd"])
def test_a_truncated_file_is_a_value_error_naming_it(small_run, tmp_path, name):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    path = run / name if name == "latest.json" else load_checkpoint(run).path / name
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match=rf"{name}: (not valid JSON|\d+ bytes, the manifest says \d+)"):
        load_checkpoint(run)


def test_optimizer_files_are_verified_again_when_restored(tmp_path):
    fit(num_epoch=1, checkpoint=tmp_path, **SMALL)
    saved = load_checkpoint(tmp_path)
    result = fit(num_epoch=1, **SMALL)
    states = saved.path / "optimizer-state.nd"
    data = bytearray(states.read_bytes())
    data[-1] ^= 1
    states.write_bytes(bytes(data))  # changed after load_checkpoint verified it
    with pytest.raises(ValueError, match=r"optimizer-state\.nd: SHA-256 mismatch with the manifest"):
        saved.restore_optimizer(result.module, mx.optimizer.create("adam"))


def test_a_manifest_listing_a_missing_file(small_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    ckpt = load_checkpoint(run).path
    (ckpt / "model-2-symbol.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"model-2-symbol\.json: missing, although the checkpoint's "
                       "manifest lists it"):
        load_checkpoint(run)
    shutil.rmtree(run)
    shutil.copytree(small_run, run)
    config = json.loads((ckpt / "config.json").read_text())
    config["manifest"]["model-9-symbol.json"] = {"sha256": "0" * 64, "size": 3}
    (ckpt / "config.json").write_bytes(checksummed_json(config))
    with pytest.raises(FileNotFoundError, match=r"model-9-symbol\.json: missing"):
        Predictor.load(run)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["manifest"].pop("model-0001.params"), r"config\.json: the manifest lacks 'model-0001\.params'"),
    (lambda c: c["manifest"].pop("optimizer-state.nd"), r"config\.json: the manifest lacks 'optimizer-state\.nd'"),
    (lambda c: c["manifest"].update({"../latest.json": {"sha256": "0" * 64, "size": 1}}),
     r"config\.json: manifest names '\.\./latest\.json', not a file of the checkpoint directory"),
    (lambda c: c["manifest"].update({"model.buckets": "abc"}), r"manifest entry for 'model\.buckets' is not"),
    (lambda c: c.pop("manifest"), r"config\.json: lacks a manifest"),
    (lambda c: c.update(format_version=3),
     r"config\.json: checkpoint format version 3 is newer than this library .* reads \(versions 1 to 2\)"),
])
def test_forged_or_newer_config_is_refused(small_run, tmp_path, edit, message):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    ckpt = load_checkpoint(run).path
    config = json.loads((ckpt / "config.json").read_text())
    edit(config)
    (ckpt / "config.json").write_bytes(checksummed_json(config))
    with pytest.raises(ValueError, match=message):
        load_checkpoint(run)


def test_newer_latest_is_refused_naming_both_versions(small_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    latest = json.loads((run / "latest.json").read_text())
    (run / "latest.json").write_bytes(checksummed_json(dict(latest, format_version=7)))
    with pytest.raises(ValueError, match=r"latest\.json: checkpoint format version 7 is newer .*\(versions 1 to 2\)"):
        Predictor.load(run)


@pytest.mark.parametrize("how, message", [
    ("nan", r"array 'lstm0_parameters:0' is not finite"),
    ("shape", r"array 'lstm0_parameters:0' is float32\(3,\), expected float32\(\d+,\)"),
    ("dtype", r"array 'lstm0_parameters:0' is float64\(\d+,\), expected float32\(\d+,\)"),
    ("missing", r"lacks array 'lstm0_parameters:1'"),
    ("extra", r"arrays \['lstm9_parameters:0'\] belong to no parameter state"),
])
def test_state_arrays_are_validated_before_mxnet_gets_them(tmp_path, how, message):
    fit(num_epoch=1, checkpoint=tmp_path, **SMALL)
    ckpt = load_checkpoint(tmp_path).path
    arrays = mx.nd.load(str(ckpt / "optimizer-state.nd"))
    first = arrays["lstm0_parameters:0"]
    if how == "nan":
        arrays["lstm0_parameters:0"] = mx.nd.full(first.shape, np.nan)
    elif how == "shape":
        arrays["lstm0_parameters:0"] = mx.nd.zeros(3)
    elif how == "dtype":
        arrays["lstm0_parameters:0"] = first.astype("float64")
    elif how == "missing":
        del arrays["lstm0_parameters:1"]
    else:
        arrays["lstm9_parameters:0"] = first
    forged = tmp_path / "forged.nd"
    mx.nd.save(str(forged), arrays)
    forge(ckpt, "optimizer-state.nd", forged.read_bytes())
    with pytest.raises(ValueError, match=r"optimizer-state\.nd: " + message):
        fit(num_epoch=2, checkpoint=tmp_path, resume=True, **SMALL)


def test_restore_into_another_optimizer_is_refused(tmp_path):
    result = fit(num_epoch=1, checkpoint=tmp_path, **SMALL)
    with pytest.raises(ValueError, match=r"optimizer state of 'Adam', but the optimizer to resume is 'SGD'"):
        load_checkpoint(tmp_path).restore_optimizer(result.module, mx.optimizer.create("sgd"))


def test_unknown_files_are_ignored_with_a_warning_and_a_ckpt_dir_loads_too(small_run, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    ckpt = load_checkpoint(run).path
    (ckpt / ".DS_Store").write_bytes(b"\0\1")
    with caplog.at_level(logging.WARNING, logger="sinlstm_sym.checkpoint"):
        direct = load_checkpoint(ckpt)
    assert "files ['.DS_Store'] are not in the manifest; they are ignored" in caplog.text
    x = np.linspace(0, 1, 10).reshape(2, 5)
    np.testing.assert_array_equal(Predictor.load(ckpt).predict(x), Predictor.load(run).predict(x))
    assert direct.path == ckpt


def test_distributed_checkpoint_has_a_manifest_and_no_optimizer_state(tmp_path):
    result = fit(num_epoch=1, **SMALL)
    config = {"settings": result.config.to_json(),
              "progress": {"epoch": 1, "batch": 0, "global_batch": 12}}
    path = save_checkpoint(tmp_path, result.module, None, config, with_optimizer=False)
    saved = load_checkpoint(tmp_path)
    assert saved.path == path and sorted(saved.config["manifest"]) == [
        "model-0001.params", "model-1-symbol.json", "model-2-symbol.json", "model-3-symbol.json", "model.buckets"]
    assert sorted(p.name for p in path.iterdir()) == ["config.json", *sorted(saved.config["manifest"])]
    with pytest.raises(ValueError, match="written by distributed training, it holds no optimizer state"):
        saved.restore_optimizer(result.module, mx.optimizer.create("adam"))


# --- format 1 (sinlstm-sym 0.1): tests/fixtures/checkpoint-v0.1, written by the 0.1 code -------------------------

def recorded():
    payload = json.loads((FIXTURES / "checkpoint-v0.1-predictions.json").read_text())
    return np.array(payload["windows"]), np.array(payload["predictions"])


def test_format_1_checkpoint_loads_for_prediction_with_the_recorded_outputs(caplog):
    windows, predictions = recorded()
    with caplog.at_level(logging.WARNING, logger="sinlstm_sym.checkpoint"):
        saved = load_checkpoint(V01)
        predictor = Predictor.load(V01)
    assert saved.format_version == 1 and saved.config["library_version"] == "0.1.0"
    assert "format version 1 (sinlstm-sym 0.1) has no checksums" in caplog.text
    assert predictor.trained_lengths == (2, 3)
    np.testing.assert_array_equal(predictor.predict(windows), predictions.astype(np.float32))
    np.testing.assert_array_equal(Predictor.load(V01 / "ckpt-00000006").predict(windows),
                                  predictions.astype(np.float32))


@pytest.fixture(scope="module")
def v01_straight():
    return fit(num_epoch=2, **V01_RUN)


def test_format_1_resume_refused_without_allow_pickle_and_exact_with_it(tmp_path, caplog, v01_straight):
    run = tmp_path / "v01"
    shutil.copytree(V01, run)
    with pytest.raises(ValueError, match=r"format version 1 \(sinlstm-sym 0\.1\) keeps its optimizer state in "
                       r"pickles \(optimizer\.pickle, model-0001\.states\).*allow_pickle=True.*convert"):
        fit(num_epoch=2, checkpoint=run, resume=True, **V01_RUN)
    with caplog.at_level(logging.WARNING, logger="sinlstm_sym.checkpoint"):
        resumed = fit(num_epoch=2, checkpoint=run, resume=True, allow_pickle=True, **V01_RUN)
    assert "unpickling the optimizer state of a format-1 checkpoint (allow_pickle=True)" in caplog.text
    assert_same_training(v01_straight, resumed)
    latest = load_checkpoint(run)  # the new checkpoint is format 2, without pickles
    assert latest.format_version == 2 and not list(latest.path.glob("*.pickle")) + list(latest.path.glob("*.states"))


def test_convert_command(tmp_path, python, v01_straight, capsys):
    from sinlstm_sym.checkpoint.__main__ import main as convert_main
    new = tmp_path / "new"
    args = ["convert", str(V01), str(new)]
    assert convert_main(args) == 2 and "keeps its optimizer state in pickles" in capsys.readouterr().err
    assert not (new / "latest.json").exists()
    cmd = [python, "-m", "sinlstm_sym.checkpoint", *args]  # the command itself, in a process of its own
    done = subprocess.run(cmd + ["--allow-pickle"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    converted = load_checkpoint(new)
    assert done.stdout.strip() == str(converted.path) and converted.format_version == 2
    assert sorted(p.name for p in converted.path.iterdir()) == [
        "config.json", "model-0001.params", "model-2-symbol.json", "model-3-symbol.json", "model.buckets",
        "optimizer-state.json", "optimizer-state.nd"]
    assert converted.config["progress"] == load_checkpoint(V01).config["progress"]
    assert_same_training(v01_straight, fit(num_epoch=2, checkpoint=new, resume=True, **V01_RUN))
    capsys.readouterr()
    assert convert_main(args + ["--allow-pickle"]) == 2 and "already holds checkpoints" in capsys.readouterr().err
