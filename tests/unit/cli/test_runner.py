"""One command-line runner for the console scripts and the examples: the same exit codes (2 bad input before
any work, 1 failure, 130 SIGINT, 143 SIGTERM) and one line, no traceback, for a full disk, a refused
permission, an updater error or a failed training; the series command resumes and overwrites as
sinlstm-train does and refuses too many updates in one line."""
import errno
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import sinlstm_console
from machine_load import scaled
from signal_delivery import popen, skip_unless_signalled_in_time
from sinlstm_sym import load_checkpoint
from sinlstm_sym.core.callback_errors import UpdaterError
from sinlstm_sym.checkpoint import DiskFullError
from sinlstm_sym.cli.runner import failure_exit, run_main
from sinlstm_sym.train.loop import (IteratorLengthError, NonFiniteLossError, StopAtOnce, TrainingDivergedError,
                                    TrainingInterrupted)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


def _raising(err):
    def main():
        raise err
    return main


def _chained_permission_error():
    """A write refused, then (while cleaning up) the lock refused too: the second hides the first."""
    try:
        raise PermissionError(errno.EACCES, "Permission denied", "/runs/r/ckpt-00000010/params")
    except PermissionError as first:
        try:
            raise PermissionError(errno.EACCES, "Permission denied", "/runs/r/.lock") from first
        except PermissionError as second:
            return second


@pytest.mark.parametrize("err, code, line", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out.json"), 1,
     "prog: error: disk full: [Errno 28] No space left on device: '/data/out.json'"),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), 1, "prog: error: disk full: [Errno 122] Disk quota exceeded"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"), 1, "prog: error: read-only file system: "),
    (_chained_permission_error(), 1,
     "prog: error: permission denied: [Errno 13] Permission denied: '/runs/r/ckpt-00000010/params'"),
    (UpdaterError("an exception inside MXNet's updater at epoch 0, batch 3: ValueError: x"), 1,
     "prog: an exception inside MXNet's updater at epoch 0, batch 3: ValueError: x"),
    (NonFiniteLossError("loss became nan at epoch 0"), 1, "prog: loss became nan at epoch 0"),
    (TrainingDivergedError("training diverged: the loss rose"), 1, "prog: training diverged: the loss rose"),
    (IteratorLengthError("train_iter yielded more batches"), 1, "prog: train_iter yielded more batches"),
    (MemoryError(), 1, "prog: error: out of memory"),
    (KeyboardInterrupt(), 130, "prog: interrupted"),
    (StopAtOnce(signal.SIGTERM), 143, "prog: stopped at once by a second SIGTERM"),
    (TrainingInterrupted(0, 5, None, signal.SIGTERM), 143,
     "prog: training interrupted by SIGTERM at epoch 0, batch 5; no checkpoint was asked for"),
])
def test_known_failures_end_in_one_line_with_their_exit_code(capsys, err, code, line):
    assert run_main("prog", _raising(err)) == code
    out, text = capsys.readouterr()
    assert out == "" and len(text.strip().splitlines()) == 1 and text.strip().startswith(line), text


def test_a_checkpoints_disk_full_error_is_reported_as_it_says(capsys):
    full = DiskFullError("/runs/r: disk full while writing checkpoint 20 (0.0 MiB free of 10.0 MiB); the unfinished "
                         "files were removed and the previous checkpoint is intact: free some space and resume")
    full.errno = errno.ENOSPC
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as raw:
            raise full from raw
    except DiskFullError as err:
        assert failure_exit("sinlstm-train", err) == 1
    assert capsys.readouterr().err.strip() == f"sinlstm-train: error: {full}"


def test_a_bug_keeps_its_traceback():
    with pytest.raises(RuntimeError, match="a bug"):
        run_main("prog", _raising(RuntimeError("a bug")))
    assert run_main("prog", lambda: 0) == 0


def _series_csv(tmp_path: Path) -> Path:
    t = np.arange(400)
    path = tmp_path / "s.csv"
    path.write_text("value\n" + "\n".join(f"{v:.5f}" for v in np.sin(t / 7) + 0.1 * np.cos(t / 3)) + "\n")
    return path


def _series_argv(tmp_path, *extra):
    return ["--csv", str(_series_csv(tmp_path)), "--column", "value", "--num-samples", "1000", "--num-epoch", "1",
            "--references", "off", "--hidden-sizes", "8,1", *extra]


def _console(monkeypatch, entry, argv):
    monkeypatch.setattr(sys, "argv", [entry.__name__, *argv])
    return entry()


@pytest.mark.parametrize("entry, argv, flag", [
    (sinlstm_console.train, ["--batch-size", "0"], "argument --batch-size"),
    (sinlstm_console.evaluate, ["/nonexistent/run"], "argument checkpoint"),
    (sinlstm_console.series, ["--csv", "/nonexistent.csv", "--column", "v"], "argument --csv"),
])
def test_every_command_refuses_bad_input_with_2(monkeypatch, capsys, entry, argv, flag):
    with pytest.raises(SystemExit) as stop:
        _console(monkeypatch, entry, argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and flag in err, err


@pytest.mark.parametrize("entry, module, target", [
    (sinlstm_console.train, "sinlstm_sym.cli.train", "fit_session"),
    (sinlstm_console.series, "sinlstm_sym.cli.series", "planned_session"),
])
@pytest.mark.parametrize("err, line", [
    (OSError(errno.ENOSPC, "No space left on device", "ckpt"), "error: disk full: "),
    (_chained_permission_error(), "error: permission denied: [Errno 13] Permission denied: "
                                  "'/runs/r/ckpt-00000010/params'"),
    (UpdaterError("an exception inside MXNet's updater"), "an exception inside MXNet's updater"),
])
def test_every_command_reports_a_failure_in_one_line_with_1(tmp_path, monkeypatch, capsys, entry, module, target,
                                                            err, line):
    import importlib
    monkeypatch.setattr(importlib.import_module(module), target, lambda *a, **k: _raising(err)())
    argv = _series_argv(tmp_path) if entry is sinlstm_console.series else ["--num-samples", "600"]
    assert _console(monkeypatch, entry, argv) == 1
    err_text = capsys.readouterr().err.strip().splitlines()
    prog = "sinlstm-series" if entry is sinlstm_console.series else "sinlstm-train"
    assert err_text[-1].startswith(f"{prog}: {line}") and "Traceback" not in "\n".join(err_text)


def test_the_series_command_resumes_and_overwrites(tmp_path, capsys):
    from sinlstm_sym.cli.series import main
    run = tmp_path / "run"
    assert main(_series_argv(tmp_path, "--checkpoint", str(run))) == 0
    first = load_checkpoint(run)
    with pytest.raises(SystemExit) as stop:  # a used directory: the flags it names exist
        main(_series_argv(tmp_path, "--checkpoint", str(run)))
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and "argument --checkpoint:" in err and "--resume" in err and "--overwrite" in err
    assert main(_series_argv(tmp_path, "--checkpoint", str(run), "--resume", "--num-epoch", "2")) == 0
    resumed = load_checkpoint(run)
    assert resumed.run_id == first.run_id
    assert resumed.config["progress"]["global_batch"] == 2 * first.config["progress"]["global_batch"]
    assert main(_series_argv(tmp_path, "--checkpoint", str(run), "--overwrite")) == 0
    replaced = load_checkpoint(run)
    assert replaced.run_id != first.run_id and replaced.config["progress"]["epoch"] == 1


def test_the_series_command_refuses_more_than_int32_updates_in_one_line(tmp_path, capsys):
    from sinlstm_sym.cli.series import main
    with pytest.raises(SystemExit) as stop:
        main(_series_argv(tmp_path, "--batch-size", "1", "--num-samples", "3000000", "--num-epoch", "800"))
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and "Traceback" not in "\n".join(err)
    assert err[-1].startswith("sinlstm-series: error: argument --num-epoch/--num-samples: ")
    assert "2400000000 updates must be <= 2147483647" in err[-1]


def _series_until(tmp_path, argv, marker, signum):
    proc = popen([sys.executable, str(EXAMPLES / "own_series.py"), *argv], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if marker in line:
            proc.send_signal(signum)
            break
    _, err = proc.communicate(timeout=scaled(120))
    return proc.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_series_example_stops_on_a_signal_with_its_code_and_resumes(tmp_path, signum):
    run = tmp_path / "run"
    argv = _series_argv(tmp_path, "--checkpoint", str(run), "--num-samples", "50000", "--log-every", "20")
    code, err = _series_until(tmp_path, argv, "batch 20/", signum)
    assert code == 128 + signum, err
    assert "Traceback" not in err and "resume with:" in err and "--resume" in err
    assert load_checkpoint(run).config["progress"]["batch"] >= 20
    resume = [*argv, "--resume", "--num-samples", "50000"]
    done = subprocess.run([sys.executable, str(EXAMPLES / "own_series.py"), *resume], capture_output=True, text=True,
                          timeout=scaled(600))
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(run).config["progress"]["global_batch"] == 500


def test_ctrl_c_while_the_series_example_imports_exits_130_in_one_line():
    proc = popen([sys.executable, str(EXAMPLES / "own_series.py"), "--help"], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # the example has started; the package and MXNet take over a second to import
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=scaled(60))
    skip_unless_signalled_in_time("usage" in out, "the import")
    assert proc.returncode == 130 and err.strip() == "sinlstm-series: interrupted", err


def test_the_examples_go_through_the_console_runner(monkeypatch, capsys):
    for example, entry in (("own_series.py", "series"), ("bucket_train.py", "train")):
        text = (EXAMPLES / example).read_text()
        assert f"from sinlstm_console import {entry}" in text and f"sys.exit({entry}())" in text
    with pytest.raises(SystemExit) as stop:
        _console(monkeypatch, sinlstm_console.series, ["--help"])
    assert stop.value.code == 0 and "--resume" in capsys.readouterr().out
