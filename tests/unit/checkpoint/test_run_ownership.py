"""A run's work belongs to it (fault injection): a session, its writer and its lock are one lifetime; nothing in
a run directory or the native cache is followed out of it (symbolic links, FIFOs, huge files in place of best/,
the lock, JSON files, the library or its record); a checkpoint's directory must have an existing parent; a write
refused for lack of permission is one clear error."""
import contextlib
import errno
import hashlib
import json
import logging
import os
import signal
import socket
import traceback
import tracemalloc
from pathlib import Path

import pytest

from sinlstm_sym import Predictor, fit, load_checkpoint
from sinlstm_sym.checkpoint import CheckpointWriteError, RunDirectory, RunLockError, new_run_id, run_directory
from sinlstm_sym.core.checks import settings_of
from sinlstm_sym.cli import train as train_cli
from sinlstm_sym.train.fit import SessionClosedError, fit_session
from sinlstm_sym.native import build as native_build

# the command line after tiny_flags
CLI_OPTIONS = ["--num-epoch", "1", "--eval-lengths", "1-2", "--eval-samples", "10", "--progress", "off"]
HUGE = 20 << 30  # a sparse file of 20 GiB: no disk used, but read whole it would exhaust the memory


@contextlib.contextmanager
def within(seconds):
    """Fail (instead of hanging) when the block takes longer than ``seconds``."""
    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def tree_digest(directory: Path):
    """Every file under ``directory`` (links not followed) by relative path, with its SHA-256."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and not p.is_symlink()}


def sparse(path: Path, size: int = HUGE) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


# --- a session, its writer and its lock: one lifetime ------------------------------------------------------------

def test_a_session_used_after_its_block_refuses_and_the_other_run_keeps_its_checkpoint(tmp_path, tiny_settings):
    run = tmp_path / "run"
    with fit_session(checkpoint=run, num_epoch=1, **tiny_settings) as session:
        pass
    assert not (run / ".lock").exists()
    other = fit(checkpoint=run, num_epoch=1, **dict(tiny_settings, seed=9))  # another run takes the directory
    before = tree_digest(run)
    with pytest.raises(SessionClosedError, match=rf"block has ended: its checkpoint directory {run} is no longer "
                       "locked for it"):
        session.train()
    assert tree_digest(run) == before  # nothing written: latest.json and the config still the other run's
    assert load_checkpoint(run).config["settings"]["run"]["seed"] == 9 == other.config.run.seed
    with fit_session(num_epoch=1, **tiny_settings) as plain:  # without a checkpoint too
        pass
    with pytest.raises(SessionClosedError):
        plain.train()


def test_a_writer_writes_only_while_it_holds_the_lock(tmp_path, tiny_settings):
    run = tmp_path / "run"
    result = fit(num_epoch=1, **tiny_settings)
    fill = _filler(result)
    writer = RunDirectory(run).open(new_run_id(), new_run=True)
    writer.write(3, fill)
    (run / ".lock").unlink()  # someone removed it; another training locks the directory
    (run / ".lock").write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "session": "x"}))
    with pytest.raises(RunLockError, match=r"no longer holds the lock .*taken by pid 1"):
        writer.write(6, fill)
    with pytest.raises(RunLockError):
        writer.best.write(6, fill)  # best/ is written under the run's lock too
    assert sorted(p.name for p in run.iterdir()) == [".lock", "ckpt-00000003", "latest.json"]
    (run / ".lock").unlink()
    writer.close()
    with pytest.raises(RunLockError, match="released"):
        writer.write(9, fill)
    assert not (run / "ckpt-00000009").exists()


def _filler(result):
    from sinlstm_sym.checkpoint.schema import finish_checkpoint

    def fill(tmp, name):
        result.module.save_checkpoint(str(tmp / "model"), 1)
        finish_checkpoint(tmp, name, {"settings": result.config.to_json(), "progress": result.progress.to_json(),
                                      "optimizer_state": False, "mxnet_epoch": 1, "run_id": "r" * 32})
    return fill


# --- nothing followed out of a run directory ----------------------------------------------------------------------

def test_best_symlinked_to_another_run_is_replaced_never_written_through(tmp_path, caplog, tiny_settings):
    victim = tmp_path / "victim"
    fit(num_epoch=1, checkpoint=victim, validation_lengths=[1, 2], validation_samples=20, **tiny_settings)
    before = tree_digest(victim)
    run = tmp_path / "run"
    run.mkdir()
    (run / "best").symlink_to(victim)  # best/ pointing at another run's directory (its only checkpoint)
    with caplog.at_level(logging.WARNING):
        fit(num_epoch=1, checkpoint=run, overwrite=True, validation_lengths=[1, 2], validation_samples=20,
            **dict(tiny_settings, seed=4))
    assert tree_digest(victim) == before and not (victim / ".lock").exists()
    assert (run / "best").is_dir() and not (run / "best").is_symlink()
    assert load_checkpoint(run / "best").run_id == load_checkpoint(run).run_id
    assert any("a symbolic link" in r.getMessage() and "the link is removed" in r.getMessage()
               for r in caplog.records)
    # a reader ignores such a link too: Predictor.load serves the run's own checkpoint, not the link's
    (run / "best").rename(tmp_path / "own-best")
    (run / "best").symlink_to(victim)
    assert RunDirectory(run).best_for() is None
    assert Predictor.load(run) is not None


@pytest.mark.parametrize("kind", ["fifo", "file"])
def test_a_fifo_or_file_in_place_of_best_is_refused_before_training(tmp_path, kind, caplog, tiny_settings):
    run = tmp_path / "run"
    run.mkdir()
    if kind == "fifo":
        os.mkfifo(run / "best")
    else:
        (run / "best").write_text("notes")
    with caplog.at_level(logging.INFO), within(30), \
            pytest.raises(ValueError, match=rf"{run / 'best'}: not a directory; a run keeps its best checkpoint there"):
        fit(num_epoch=1, checkpoint=run, overwrite=True, validation_lengths=[1], validation_samples=20, **tiny_settings)
    assert not any(r.getMessage().startswith("training ") for r in caplog.records)  # refused before training
    assert sorted(p.name for p in run.iterdir()) == ["best"] and (kind == "fifo" or (run / "best").read_text())


def test_a_lock_that_is_a_symlink_fifo_or_huge_is_refused_not_followed(tmp_path, tiny_settings):
    victim = tmp_path / "someones-file"
    victim.write_text("precious")
    for kind in ("symlink", "fifo", "huge"):
        run = tmp_path / kind
        run.mkdir()
        if kind == "symlink":
            (run / ".lock").symlink_to(victim)
        elif kind == "fifo":
            os.mkfifo(run / ".lock")
        else:
            sparse(run / ".lock")
        tracemalloc.start()
        with within(30), pytest.raises(ValueError, match=r"is locked by .*\.lock, which cannot be read \(.*("
                                       r"symbolic link|not a regular file|more than the 1048576 bytes)"):
            fit(num_epoch=1, checkpoint=run, **tiny_settings)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 200 << 20, peak
    assert victim.read_text() == "precious"


def test_a_lock_naming_an_impossible_pid_is_stale(tmp_path, caplog, tiny_settings):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(json.dumps({"pid": 2 ** 31 + 7, "host": socket.gethostname(), "started": "then"}))
    with caplog.at_level(logging.WARNING):
        fit(num_epoch=1, checkpoint=run, **tiny_settings)
    assert load_checkpoint(run).config["progress"]["epoch"] == 1 and not (run / ".lock").exists()
    assert any("pid 2147483655" in r.getMessage() and "names no possible process" in r.getMessage()
               for r in caplog.records)
    (run / ".lock").write_text(json.dumps({"pid": 2 ** 64, "host": "elsewhere"}))  # another host's: never taken
    with pytest.raises(ValueError, match="being written by another training"):
        fit(num_epoch=1, checkpoint=run, resume=True)


@pytest.mark.parametrize("name", ["latest.json", "ckpt-00000006/config.json"])
@pytest.mark.parametrize("kind", ["symlink", "fifo", "huge"])
def test_checkpoint_files_that_are_links_fifos_or_huge_are_refused(tmp_path, name, kind, tiny_settings):
    run = tmp_path / "run"
    fit(num_epoch=1, checkpoint=run, **tiny_settings)
    path = run / name
    real = tmp_path / "elsewhere.json"
    path.rename(real)
    if kind == "symlink":
        path.symlink_to(real)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        sparse(path, 1 << 30)
    with within(30), pytest.raises(ValueError, match=rf"{path}: (a symbolic link|not a regular file|\d+ bytes, "
                                   "more than)"):
        load_checkpoint(run)


# --- nothing followed out of the native cache ---------------------------------------------------------------------

def fake_compiler(directory: Path) -> Path:
    script = directory / "fake-g++"
    script.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'fake-g++ 1.0'; exit 0; fi\n"
                      "for last; do :; done\necho library-bytes > \"$last\"\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", str(fake_compiler(tmp_path)))
    monkeypatch.setenv("SINLSTM_NATIVE_CACHE", str(tmp_path / "cache"))
    first = native_build.build_library()
    return first.path


def test_a_lock_symlinked_to_someones_file_is_never_truncated(cache, tmp_path, caplog):
    victim = tmp_path / "someones-file"
    victim.write_text("precious")
    lock = cache.with_suffix(".lock")
    lock.unlink()
    lock.symlink_to(victim)
    cache.unlink()  # the library missing: a build takes the lock
    with caplog.at_level(logging.WARNING):
        result = native_build.build_library()
    assert result.built and cache.read_text() == "library-bytes\n"
    assert victim.read_text() == "precious"
    assert lock.is_file() and not lock.is_symlink()
    assert any("not a regular file" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("what", ["library", "lock", "sidecar"])
def test_fifos_in_the_cache_do_not_hang_and_are_replaced(cache, what):
    path = {"library": cache, "lock": cache.with_suffix(".lock"), "sidecar": native_build.sidecar_path(cache)}[what]
    path.unlink()
    os.mkfifo(path)
    if what == "lock":
        cache.unlink()  # the build (which takes the lock) must run
    with within(30):
        result = native_build.build_library()
    assert result.built and cache.read_text() == "library-bytes\n" and path.is_file()
    assert native_build.verify_library(cache) is None


def test_a_huge_sidecar_or_library_is_not_read_whole(cache):
    sidecar = native_build.sidecar_path(cache)
    sparse(sidecar)
    tracemalloc.start()
    problem = native_build.verify_library(cache)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "unreadable (more than 4096 bytes)" in problem and peak < 1 << 20
    assert native_build.build_library().built and native_build.verify_library(cache) is None
    sparse(cache)  # a huge library: its size differs from the record, so it is never hashed
    with within(10):
        assert f"its size is {HUGE} bytes" in native_build.verify_library(cache)


def test_a_library_symlinked_elsewhere_is_rebuilt_not_loaded(cache, tmp_path):
    foreign = tmp_path / "foreign.so"
    foreign.write_text("library-bytes\n")  # even with the recorded bytes, a link is not the cache's file
    cache.unlink()
    cache.symlink_to(foreign)
    assert "not a regular file" in native_build.verify_library(cache)
    assert native_build.build_library().built and not cache.is_symlink() and foreign.read_text() == "library-bytes\n"


# --- output paths: the parent must exist -----------------------------------------------------------------------------

def test_a_checkpoint_whose_parent_does_not_exist_is_refused_like_a_plot(tmp_path, capsys, tiny_settings, tiny_flags):
    missing = tmp_path / "nonexistent" / "dir" / "run"
    with pytest.raises(FileNotFoundError, match=rf"checkpoint: the directory '{missing.parent}' does not exist") \
            as err:
        fit(num_epoch=1, checkpoint=missing, **tiny_settings)
    assert settings_of(err.value) == ("checkpoint",) and not (tmp_path / "nonexistent").exists()
    for flags, flag in ((["--checkpoint", str(missing)], "--checkpoint"),
                        (["--plot", str(missing.parent / "out.png")], "--plot")):
        with pytest.raises(SystemExit) as stop:
            train_cli.main(tiny_flags + CLI_OPTIONS + flags)
        err_text = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and f"argument {flag}: " in err_text and "does not exist" in err_text, err_text
    assert not (tmp_path / "nonexistent").exists()
    fit(num_epoch=1, checkpoint=tmp_path / "run", **tiny_settings)  # an existing parent: the directory is made
    assert load_checkpoint(tmp_path / "run").config["progress"]["epoch"] == 1


# --- write permission removed mid-run ---------------------------------------------------------------------------------

@pytest.fixture
def read_only_after_first_checkpoint(monkeypatch):
    """From the end of a run's first checkpoint on, the run directory refuses every change as a directory
    whose write permission was removed would (root ignores modes, so the refusal is injected)."""
    state = {"denied": None, "armed": True}
    real = {name: getattr(os, name) for name in ("mkdir", "unlink", "rename", "replace", "rmdir")}

    def deny(name):
        def call(path, *args, **kwargs):
            if state["denied"] is not None and str(path).startswith(str(state["denied"])):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real[name](path, *args, **kwargs)
        return call
    for name in real:
        monkeypatch.setattr(os, name, deny(name))

    def after(step, directory):
        if step == "cleaned" and state["armed"]:
            state["denied"], state["armed"] = directory, False
    monkeypatch.setattr(run_directory, "after_step", after)
    return state


def test_write_permission_removed_mid_run_is_one_clear_error(tmp_path, read_only_after_first_checkpoint, caplog,
                                                              tiny_settings):
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING), pytest.raises(CheckpointWriteError) as err:
        fit(num_epoch=2, checkpoint=run, checkpoint_every=2, **tiny_settings)
    text = "".join(traceback.format_exception(err.value))
    assert f"{run}: cannot write checkpoint ckpt-00000004: Permission denied" in str(err.value)
    assert "During handling" not in text and "directly caused" not in text and ".lock" not in str(err.value)
    assert isinstance(err.value, PermissionError) and err.value.errno == errno.EACCES
    assert any("could not remove the lock" in r.getMessage() for r in caplog.records)
    read_only_after_first_checkpoint["denied"] = None  # the permission back: the lock left names a dead run
    assert load_checkpoint(run).path.name == "ckpt-00000002"
    with caplog.at_level(logging.WARNING):
        fit(num_epoch=2, checkpoint=run, resume=True)  # the lock of an ended training is recovered
    assert load_checkpoint(run).config["progress"]["epoch"] == 2 and not (run / ".lock").exists()
    assert any("removing a stale lock" in r.getMessage() for r in caplog.records)


def test_write_permission_removed_mid_run_is_one_line_from_the_command_line(tmp_path, read_only_after_first_checkpoint,
                                                                             capsys, tiny_flags):
    run = tmp_path / "run"
    code = train_cli.main(tiny_flags + CLI_OPTIONS + ["--checkpoint", str(run), "--checkpoint-every", "2",
                                                    "--num-epoch", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("sinlstm-train: error: ") and ".lock" not in err, err
    assert f"{run}: cannot write checkpoint ckpt-00000004: Permission denied (" in err, err
