"""Fault injection on run directories: ownership, lock, rotation, kills at each commit step, a full
disk, hostile files, damaged checkpoints in --list, outputs that would overwrite inputs."""
import errno
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from sinlstm_sym import Predictor, fit
from sinlstm_sym.checkpoint import load_checkpoint, run_directory, schema
from sinlstm_sym.checkpoint.files import checksummed_json
from sinlstm_sym.cli import evaluate as evaluate_cli
from sinlstm_sym.cli import train as train_cli

TRAIN_FOR_KILL = Path(__file__).resolve().parents[2] / "support" / "train_for_kill.py"
# the command line after tiny_flags
CLI_OPTIONS = ["--num-epoch", "1", "--eval-lengths", "1-2", "--eval-samples", "10", "--progress", "off"]
LEFTOVERS = (".tmp-*", ".old-*", ".latest.json.*", ".lock*")


def leftovers(directory: Path):
    return sorted(p.name for pattern in LEFTOVERS for p in Path(directory).glob(pattern))


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    out = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(out.stdout)


def run_ids(directory: Path):
    return {p.name: json.loads((p / "config.json").read_text()).get("run_id") for p in sorted(directory.iterdir())
            if run_directory.step_of(p.name) is not None}


def copy_run(source: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(source, run)
    return run


# --- ownership -------------------------------------------------------------------------------------------------

def test_a_new_run_refuses_another_runs_directory(tiny_run, tmp_path, capsys, tiny_settings, tiny_flags):
    run = copy_run(tiny_run[0], tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in run.rglob("*")}
    with pytest.raises(ValueError, match=r"holds the checkpoints of another run \(latest\.json, ckpt-00000009, "
                       r"ckpt-00000012\); continue that run with resume=True \(--resume\), write this one to a fresh "
                       r"directory, or pass overwrite=True \(--overwrite\)"):
        fit(num_epoch=1, checkpoint=run, **dict(tiny_settings, seed=9))
    with pytest.raises(SystemExit) as stop:
        train_cli.main(tiny_flags + CLI_OPTIONS + ["--seed", "9", "--checkpoint", str(run)])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("sinlstm-train: error: argument --checkpoint: ") and "--resume" in err and \
        "--overwrite" in err
    assert {p.name: p.stat().st_mtime_ns for p in run.rglob("*")} == before  # nothing touched


def test_overwrite_replaces_the_old_run_only_after_the_first_new_checkpoint(tmp_path, monkeypatch, tiny_settings):
    run = tmp_path / "run"
    fit(num_epoch=2, checkpoint=run, validation_lengths=[1, 2], validation_samples=20, **tiny_settings)  # with best/
    old = load_checkpoint(run)
    seen = []

    def watch(step, directory):
        if step == "written" and not seen:  # the new run's first checkpoint is complete, not yet in place
            seen.append(load_checkpoint(run).run_id)
    monkeypatch.setattr(run_directory, "after_step", watch)
    new = fit(num_epoch=1, checkpoint=run, overwrite=True, **dict(tiny_settings, seed=9))
    assert seen == [old.run_id]  # the old run was still there, whole, until then
    saved = load_checkpoint(run)
    assert saved.run_id != old.run_id and set(run_ids(run).values()) == {saved.run_id}
    assert not (run / "best").exists()  # the old run's best checkpoint went with it
    x = np.linspace(0, 1, 6).reshape(2, 3)
    np.testing.assert_allclose(Predictor.load(run).predict(x), new.predictor().predict(x), atol=1e-7)


def test_overwrite_needs_a_checkpoint_and_no_resume(tiny_settings):
    with pytest.raises(ValueError, match="overwrite=True needs checkpoint='DIR'"):
        fit(overwrite=True, **tiny_settings)
    with pytest.raises(ValueError, match="cannot be combined with resume=True"):
        fit(overwrite=True, resume=True, checkpoint="x", **tiny_settings)
    with pytest.raises(TypeError, match="overwrite"):
        fit(overwrite="yes", checkpoint="x", **tiny_settings)


# --- rotation --------------------------------------------------------------------------------------------------

def test_rotation_keeps_user_folders_and_other_runs_checkpoints(tmp_path, tiny_settings):
    run = tmp_path / "run"
    notes = run / "ckpt-0-notes"
    notes.mkdir(parents=True)
    (notes / "notes.txt").write_text("mine")
    (run / "ckpt-00000099.txt").write_text("mine too")
    fit(num_epoch=2, checkpoint=run, checkpoint_every=1, **tiny_settings)
    assert (notes / "notes.txt").read_text() == "mine" and (run / "ckpt-00000099.txt").read_text() == "mine too"
    assert sorted(run_ids(run)) == ["ckpt-00000011", "ckpt-00000012"]
    # a checkpoint of another run (here one written before run ids) is never rotated away
    legacy = run / "ckpt-00000002"
    shutil.copytree(run / "ckpt-00000011", legacy)
    config = json.loads((legacy / "config.json").read_text())
    del config["run_id"]
    (legacy / "config.json").write_bytes(checksummed_json(config))
    fit(num_epoch=3, checkpoint=run, resume=True, checkpoint_every=1, **tiny_settings)
    assert sorted(run_ids(run)) == ["ckpt-00000002", "ckpt-00000017", "ckpt-00000018"]
    assert leftovers(run) == []


def test_large_step_numbers_parse(tmp_path):
    assert run_directory.step_of("ckpt-123456789") == 123456789
    assert run_directory.step_of("ckpt-0-notes") is None and run_directory.step_of("ckpt-1234567") is None


# --- one writer at a time --------------------------------------------------------------------------------------

def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_recovered(tmp_path, caplog, tiny_settings):
    run = tmp_path / "run"
    args = dict(tiny_settings, num_samples=60000, num_epoch=1)  # 600 batches: long enough to overlap
    proc = subprocess.Popen([sys.executable, str(TRAIN_FOR_KILL), str(run),
                             *[f"{k}={v}" for k, v in args.items() if k not in ("buckets", "hidden_sizes")]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (run / "latest.json").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "no checkpoint in time"
            time.sleep(0.05)
        holder = json.loads((run / ".lock").read_text())
        assert holder["pid"] == proc.pid and holder["host"] and holder["started"]
        with pytest.raises(ValueError, match=rf"{run} is being written by another training \(pid {proc.pid} on "):
            fit(checkpoint=run, resume=True, **{k: v for k, v in args.items() if k not in ("buckets", "hidden_sizes")})
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (run / ".lock").exists()  # killed: its lock stays behind
    with caplog.at_level(logging.WARNING):
        resumed = fit(checkpoint=run, resume=True, num_epoch=1, num_samples=60000, seed=1, batch_size=100,
                      log_every=3, checkpoint_every=600)
    assert f"removing a stale lock: pid {proc.pid}" in caplog.text
    assert resumed.progress.global_batch == 600 and leftovers(run) == []


def test_a_lock_of_a_live_process_is_never_taken(tmp_path, tiny_settings):
    run = tmp_path / "run"
    run.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (run / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(),
                                               "started": "then", "run_id": "x"}))
        with pytest.raises(ValueError, match=rf"pid {sleeper.pid} on .*started then.*remove {run / '.lock'}"):
            fit(num_epoch=1, checkpoint=run, **tiny_settings)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert json.loads((run / ".lock").read_text())["pid"] == sleeper.pid


# --- a kill at each step of a commit ---------------------------------------------------------------------------

FIRST_STEPS = ["written", "latest staged", "renamed", "latest", "cleaned"]
REPLACE_STEPS = ["written", "set aside", "latest staged", "renamed", "latest", "cleaned"]


class Killed(Exception):
    pass


def kill_at(monkeypatch, step, snapshot):
    """At ``step`` copy the run directory as a kill would leave it (its lock held by a dead process), then raise."""
    def hook(name, directory):
        if name == step and not snapshot.exists():
            shutil.copytree(directory, snapshot)
            lock = snapshot / ".lock"
            lock.write_text(json.dumps(dict(json.loads(lock.read_text()), pid=dead_pid())))
            raise Killed(step)
    monkeypatch.setattr(run_directory, "after_step", hook)


@pytest.mark.parametrize("step", FIRST_STEPS)
def test_a_kill_during_the_first_checkpoint(tmp_path, monkeypatch, step, caplog, tiny_settings):
    run, snapshot = tmp_path / "run", tmp_path / "killed"
    kill_at(monkeypatch, step, snapshot)
    with pytest.raises(Killed):
        fit(num_epoch=1, checkpoint=run, **tiny_settings)
    assert leftovers(run) == []  # the error path cleaned up and released the lock
    monkeypatch.undo()
    complete = step in ("renamed", "latest", "cleaned")
    if complete:
        with caplog.at_level(logging.WARNING):
            saved = load_checkpoint(snapshot)  # even while latest.json was still being written
        assert saved.path.name == "ckpt-00000006"
        assert ("missing (its write was interrupted)" in caplog.text) == (step == "renamed")
    else:
        with pytest.raises(FileNotFoundError, match="no checkpoint has been completed"):
            load_checkpoint(snapshot)
    fit(num_epoch=2, checkpoint=snapshot, resume=complete, **tiny_settings)  # the next start
    assert leftovers(snapshot) == [] and load_checkpoint(snapshot).path.name == "ckpt-00000012"


@pytest.mark.parametrize("step", REPLACE_STEPS)
def test_a_kill_while_a_checkpoint_of_the_same_name_is_replaced(tiny_run, tmp_path, monkeypatch, step, tiny_settings):
    run, snapshot = copy_run(tiny_run[0], tmp_path), tmp_path / "killed"
    kill_at(monkeypatch, step, snapshot)
    with pytest.raises(Killed):  # from ckpt-9 the run writes ckpt-12 again, over the existing one
        fit(num_epoch=2, checkpoint=run / "ckpt-00000009", resume=True, **tiny_settings)
    monkeypatch.undo()
    assert leftovers(run) == [] and sorted(run_ids(run)) == ["ckpt-00000009", "ckpt-00000012"]
    for directory in (run, snapshot):
        saved = load_checkpoint(directory)  # a complete checkpoint whatever the moment
        assert saved.path.name in ("ckpt-00000009", "ckpt-00000012")
    fit(num_epoch=2, checkpoint=snapshot, resume=True, **tiny_settings)  # the next start restores and cleans up
    assert leftovers(snapshot) == [] and sorted(run_ids(snapshot)) == ["ckpt-00000009", "ckpt-00000012"]
    for name in ("ckpt-00000009", "ckpt-00000012"):
        load_checkpoint(snapshot / name)


def test_latest_naming_a_missing_folder_loads_the_newest_verified_one(tiny_run, tmp_path, caplog):
    run = copy_run(tiny_run[0], tmp_path)
    shutil.rmtree(run / "ckpt-00000012")
    with caplog.at_level(logging.WARNING):
        assert load_checkpoint(run).path.name == "ckpt-00000009"
    assert "names ckpt-00000012, which is missing" in caplog.text


def test_latest_json_deleted_by_hand_names_the_checkpoint_that_is_there(tiny_run, tmp_path):
    run = copy_run(tiny_run[0], tmp_path)
    (run / "latest.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"latest\.json: missing; .*ckpt-00000012 is there: give its path"):
        load_checkpoint(run)
    assert load_checkpoint(run / "ckpt-00000012").path.name == "ckpt-00000012"


# --- a full disk -----------------------------------------------------------------------------------------------

def test_disk_full_at_a_write_is_one_clear_error(tiny_run, tmp_path, monkeypatch, capsys, tiny_settings, tiny_flags):
    run = copy_run(tiny_run[0], tmp_path)
    before = load_checkpoint(run)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(schema, "write_bytes", full)
    # the resumed run keeps the checkpoint's checkpoint_every=3: its first write is after update 15
    with pytest.raises(OSError, match=rf"{run}: disk full while writing checkpoint ckpt-00000015 \([\d.]+ MiB free "
                       r"of [\d.]+ MiB\); the unfinished files were removed and the previous checkpoint is intact"):
        fit(num_epoch=3, checkpoint=run, resume=True, **tiny_settings)
    assert leftovers(run) == [] and load_checkpoint(run).path == before.path
    code = train_cli.main(tiny_flags + CLI_OPTIONS + ["--num-epoch", "3", "--checkpoint", str(run), "--resume"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"sinlstm-train: error: {run}: disk full while writing checkpoint")
    assert leftovers(run) == [] and load_checkpoint(run).path == before.path


@pytest.fixture
def small_filesystem(tmp_path):
    """A 100 KiB tmpfs: room for one checkpoint of the (10, 20, 1) model (about 60 KiB), not two."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root); the injected ENOSPC test covers the path")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_really_full_disk(small_filesystem, tiny_settings):
    run = small_filesystem / "run"
    settings = dict(tiny_settings, hidden_sizes=[10, 20, 1])  # the size the filesystem is made for
    fit(num_epoch=1, checkpoint=run, **settings)
    before = load_checkpoint(run)
    with pytest.raises(OSError, match=rf"{run}: disk full while writing checkpoint ckpt-00000012 \(0\.\d MiB free"):
        fit(num_epoch=2, checkpoint=run, resume=True, **settings)
    assert leftovers(run) == [] and load_checkpoint(run).path == before.path


# --- hostile files ---------------------------------------------------------------------------------------------

def test_an_oversized_file_is_refused_from_its_size_before_it_is_read(tiny_run, tmp_path):
    run = copy_run(tiny_run[0], tmp_path)
    params = load_checkpoint(run).path / "model-0002.params"
    os.truncate(params, 4 << 30)  # 4 GiB, sparse: nothing to read but zeros
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"model-0002\.params: 4294967296 bytes, the manifest says \d+"):
        load_checkpoint(run)
    seconds, peak = time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 2 and peak < 50 << 20  # measured: ~0.01 s, under 1 MB
    config = load_checkpoint(run / "ckpt-00000009").path / "config.json"
    os.truncate(config, 300 << 20)
    with pytest.raises(ValueError, match=r"config\.json: 314572800 bytes, more than the \d+ bytes"):
        load_checkpoint(run / "ckpt-00000009")


@pytest.mark.parametrize("name", ["latest.json", "config.json"])
def test_deeply_nested_json_is_a_value_error(tiny_run, tmp_path, name):
    run = copy_run(tiny_run[0], tmp_path)
    path = run / name if name == "latest.json" else run / "ckpt-00000012" / name
    path.write_bytes(checksummed_json({"progress": json.loads("[" * 60 + "]" * 60)}))
    with pytest.raises(ValueError, match=rf"{name}: JSON nested deeper than 32 levels"):
        load_checkpoint(run)
    path.write_text("[" * 200000 + "]" * 200000)
    with pytest.raises(ValueError, match=rf"{name}: JSON nested deeper"):
        load_checkpoint(run)


FORGED_PROGRESS = [
    (lambda p: p.update(epoch="1"), r"progress\.epoch is '1', expected an int >= 0"),
    (lambda p: p.update(batch=-3), r"progress\.batch is -3, expected an int >= 0"),
    (lambda p: p.update(global_batch=10 ** 30), r"progress\.global_batch is 1000000000000000000000000000000"),
    (lambda p: p.update(batch=5, global_batch=4), r"progress\.batch is 5, expected at most global_batch \(4\)"),
    (lambda p: p.update(history=5), r"progress\.history is 5, expected a list"),
    (lambda p: p["history"][0].update(bucket_counts={"x": 1}), r"progress\.history\[0\]\.bucket_counts is"),
    (lambda p: p["history"][0].pop("loss"), r"progress\.history\[0\] is \['batch'.*; it lacks \['loss'\]"),
    (lambda p: p.update(trained_lengths=[0]), r"progress\.trained_lengths is \[0\]"),
    (lambda p: p.update(window_loss=float("inf")), r"progress\.window_loss is inf"),
    (lambda p: p.update(first_loss=0), r"progress\.first_loss is 0, expected a finite number > 0 or null"),
    (lambda p: p.update(unknown=1), r"progress is \[.*; unknown: \['unknown'\]"),
    (lambda p: p.update(batch=7, global_batch=17), r"progress\.batch is 7, beyond the 6 batches of an epoch"),
]


@pytest.mark.parametrize("edit, message", FORGED_PROGRESS, ids=[m[:32] for _, m in FORGED_PROGRESS])
def test_forged_progress_is_a_value_error_naming_the_field(tiny_run, tmp_path, edit, message, tiny_settings):
    run = copy_run(tiny_run[0], tmp_path)
    config_file = run / "ckpt-00000012" / "config.json"
    config = json.loads(config_file.read_text())
    edit(config["progress"])
    config_file.write_bytes(checksummed_json(config))
    with pytest.raises(ValueError, match=r"ckpt-00000012/config\.json: " + message):
        fit(num_epoch=3, checkpoint=run, resume=True, **tiny_settings)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(settings=[]), r"settings is \[\], expected an object"),
    (lambda c: c.update(settings={"model": 3}), r"its settings cannot be read"),
    (lambda c: c.update(mxnet_epoch=1), r"mxnet_epoch is 1, expected progress\.epoch \(2\)"),
    (lambda c: c.update(optimizer_state="yes"), r"optimizer_state is 'yes', expected true or false"),
    (lambda c: c.update(run_id=["x"]), r"run_id is \['x'\], expected a run id"),
])
def test_forged_configuration_is_a_value_error_naming_the_field(tiny_run, tmp_path, edit, message, tiny_settings):
    run = copy_run(tiny_run[0], tmp_path)
    config_file = run / "ckpt-00000012" / "config.json"
    config = json.loads(config_file.read_text())
    edit(config)
    config_file.write_bytes(checksummed_json(config))
    with pytest.raises(ValueError, match=r"ckpt-00000012/config\.json: .*" + message):
        fit(num_epoch=3, checkpoint=run, resume=True, **tiny_settings)


# --- sinlstm-evaluate ------------------------------------------------------------------------------------------

def test_list_marks_damaged_checkpoints(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run[0], tmp_path)
    older = run / "ckpt-00000009" / "config.json"
    config = json.loads(older.read_text())
    config["progress"] = []  # a damaged field under a valid checksum
    older.write_bytes(checksummed_json(config))
    params = run / "ckpt-00000012" / "model-0002.params"
    params.write_bytes(params.read_bytes()[:-1] + b"\0")
    assert evaluate_cli.main([str(run), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == ["ckpt-00000009", "-", "-", "9"]
    assert "DAMAGED:" in lines[1] and "config.json: progress is [], expected an object" in lines[1]
    assert lines[2].split()[:5] == ["ckpt-00000012", "-", "-", "12", "yes"]
    assert "DAMAGED:" in lines[2] and "model-0002.params: SHA-256 mismatch with the manifest" in lines[2]


@pytest.mark.parametrize("given, flag, output", [
    ("run", "--json", "run/latest.json"),
    ("run", "--csv", "run/ckpt-00000012/out.csv"),
    ("run/ckpt-00000012", "--json", "run/ckpt-00000012/config.json"),
    ("run/ckpt-00000012", "--plot", "run/errors.png"),  # the run directory of the checkpoint read
])
def test_evaluate_refuses_an_output_inside_the_checkpoint_it_reads(tiny_run, tmp_path, capsys, given, flag, output):
    copy_run(tiny_run[0], tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as stop:
        evaluate_cli.main([str(tmp_path / given), flag, str(tmp_path / output), "--lengths", "1"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"sinlstm-evaluate: error: argument {flag}: ") and "outputs never overwrite inputs" in err
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_the_convert_command_runs_without_a_runpy_warning(python):
    out = subprocess.run([python, "-W", "error::RuntimeWarning", "-m", "sinlstm_sym.checkpoint", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "convert" in out.stdout and "Warning" not in out.stderr, out.stderr


def test_cli_resume_keeps_the_checkpoints_seed(tmp_path, caplog, tiny_flags):
    """--resume without --seed continues the checkpoint's run (its seed), not a run of the default seed 0."""
    run, unseeded = tmp_path / "run", tiny_flags[2:] + CLI_OPTIONS  # without its --seed
    assert train_cli.main(unseeded + ["--seed", "5", "--checkpoint", str(run)]) == 0
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert train_cli.main(unseeded + ["--num-epoch", "2", "--checkpoint", str(run), "--resume"]) == 0
    assert any("resuming from" in r.getMessage() for r in caplog.records)
    assert load_checkpoint(run).config["settings"]["run"]["seed"] == 5
    assert load_checkpoint(run).config["progress"]["epoch"] == 2


# --- outputs never replace what is not a regular file ------------------------------------------------------
def test_an_output_in_place_of_a_device_or_fifo_is_refused_and_the_node_survives(tmp_path):
    from sinlstm_sym.core.outputs import check_output_file, write_text_atomic
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"the file: .*pipe\.json' exists and is not a regular file"):
        check_output_file("the file", fifo, (".json",))
    with pytest.raises(ValueError, match=r"an output file: .*pipe\.json' exists and is not a regular file"):
        write_text_atomic(fifo, "{}")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    devnull = Path(os.devnull)
    with pytest.raises(ValueError, match="exists and is not a regular file"):
        write_text_atomic(devnull, "x")  # as root this would otherwise replace /dev/null
    assert stat.S_ISCHR(os.lstat(devnull).st_mode)
    assert not list(tmp_path.glob(".pipe-*")) and not list(devnull.parent.glob(".null-*"))
