"""SIGTERM stops training like Ctrl-C (batch boundary, checkpoint, exit 143); a signal while a checkpoint is
written waits until the checkpoint is complete; Ctrl-C while the command line imports exits 130, no traceback."""
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import sinlstm_sym.train.fit as training
from sinlstm_sym import fit, load_checkpoint
from sinlstm_sym.train.loop import TrainingInterrupted

from machine_load import scaled
from signal_delivery import popen, skip_unless_signalled_in_time
from interrupting import CLI_RUN, RUN, SCRIPT, InterruptAt, signal_cli_at


def _logger(name, *handlers):
    log = logging.getLogger(name)
    log.setLevel(logging.INFO)
    log.handlers = list(handlers)
    return log


def test_sigterm_stops_at_a_batch_boundary_with_a_checkpoint_and_resume_equals_a_straight_run(tmp_path):
    straight = fit(**RUN)
    # SIGINT is SIG_IGN when the tests run as a background job: what was there before is put back
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(TrainingInterrupted, match="interrupted by SIGTERM at epoch 0, batch 20") as stop:
        fit(checkpoint=tmp_path, logger=_logger("sigterm", InterruptAt("batch 20/60", signal.SIGTERM)), **RUN)
    assert stop.value.signum == signal.SIGTERM and stop.value.checkpoint is not None
    assert load_checkpoint(tmp_path).config["progress"]["batch"] == 20
    assert {signum: signal.getsignal(signum) for signum in before} == before  # the handlers are restored
    resumed = fit(checkpoint=tmp_path, resume=True, **RUN)
    for name, value in straight.arg_params().items():
        np.testing.assert_allclose(resumed.arg_params()[name], value, atol=1e-6)


def _signal_during_writes(monkeypatch, signum):
    """Make every checkpoint write receive ``signum`` halfway (after the write started)."""
    real = training.save_checkpoint
    written = []

    def save_checkpoint(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(0.01)  # a signal handler would run here, inside the write, if it were not deferred
        written.append(real(*args, **kwargs))
        return written[-1]
    monkeypatch.setattr(training, "save_checkpoint", save_checkpoint)
    return written


def test_a_second_ctrl_c_while_the_checkpoint_is_written_leaves_it_complete(tmp_path, monkeypatch):
    written = _signal_during_writes(monkeypatch, signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stop:
        fit(checkpoint=tmp_path, logger=_logger("second", InterruptAt("batch 20/60", signal.SIGINT)), **RUN)
    assert written == [stop.value.checkpoint]
    saved = load_checkpoint(tmp_path)  # complete: every file there and verified
    assert saved.path == stop.value.checkpoint and saved.config["progress"]["batch"] == 20
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary leftover"


def test_a_signal_during_a_checkpoint_write_stops_training_after_the_write(tmp_path, monkeypatch):
    written = _signal_during_writes(monkeypatch, signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="SIGTERM") as stop:
        fit(checkpoint=tmp_path, checkpoint_every=25, **RUN)
    # the write at batch 25 finished, then training stopped at that batch boundary, on that checkpoint
    assert (stop.value.epoch, stop.value.batch) == (0, 25) and written == [stop.value.checkpoint]
    assert load_checkpoint(tmp_path).config["progress"]["batch"] == 25


def _start(argv):
    return popen([str(SCRIPT), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_while_the_command_line_imports_exits_130_without_a_traceback():
    proc = _start(["--help"])
    time.sleep(0.5)  # the console script has started; the package and MXNet take over a second to import
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=scaled(60))
    skip_unless_signalled_in_time("usage" in out, "the import")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip() == "sinlstm-train: interrupted"


def test_sigterm_while_the_command_line_imports_exits_143_without_a_traceback():
    proc = _start(["--help"])
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=scaled(60))
    skip_unless_signalled_in_time("usage" in out, "the import")
    assert proc.returncode == 143 and "Traceback" not in err, err


def test_ctrl_c_while_the_example_imports_exits_130_without_a_traceback():
    example = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples",
                           "bucket_train.py")
    proc = popen([sys.executable, example, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=scaled(60))
    skip_unless_signalled_in_time("usage" in out, "the import")
    assert proc.returncode == 130 and err.strip() == "sinlstm-train: interrupted", err


def test_cli_sigterm_exits_143_with_a_checkpoint_and_the_resume_command(tmp_path):
    run = tmp_path / "run"
    code, err = signal_cli_at([*CLI_RUN, "--checkpoint", str(run)], "batch 20/", signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err and "interrupted by SIGTERM at epoch 0" in err and "resume with:" in err
    stopped_at = load_checkpoint(run).config["progress"]["global_batch"]
    assert 20 <= stopped_at < 1000
    resumed = fit(checkpoint=run, resume=True, buckets=[1, 2, 3], num_samples=100000, num_epoch=1, seed=0,
                  log_every=10 ** 6)
    assert resumed.progress.global_batch == 1000


def test_a_signal_during_the_epoch_end_checkpoint_stops_at_the_epoch_boundary(tmp_path, monkeypatch):
    written = _signal_during_writes(monkeypatch, signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="SIGINT") as stop:
        fit(checkpoint=tmp_path, **dict(RUN, num_epoch=2))
    assert (stop.value.epoch, stop.value.batch) == (1, 0) and written == [stop.value.checkpoint]
    assert load_checkpoint(tmp_path).config["progress"]["global_batch"] == 60


def test_a_second_sigterm_stops_at_once_and_the_cli_exits_143(monkeypatch, capsys):
    from sinlstm_sym.cli import train as train_cli
    from sinlstm_sym.train.loop import StopAtOnce, stop_on_interrupt

    with pytest.raises(StopAtOnce) as stop:
        with stop_on_interrupt() as request:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            assert request.is_set() and request.signum == signal.SIGTERM  # the first one only asks
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler raises before this ends
    assert stop.value.signum == signal.SIGTERM

    def second_sigterm(*args, **kwargs):
        raise StopAtOnce(signal.SIGTERM)
    from sinlstm_sym.train.fit import FitSession
    monkeypatch.setattr(FitSession, "train", second_sigterm)  # the second signal arrives while training
    assert train_cli.main(["--num-samples", "600", "--progress", "off"]) == 143
    assert capsys.readouterr().err.strip() == "sinlstm-train: stopped at once by a second SIGTERM"


def test_children_get_their_signals_back_when_the_tests_run_with_sigint_ignored():
    """As under `pytest &`: SIGINT ignored here; the children these tests signal still take Ctrl-C."""
    code = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=scaled(60))
        proc = popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        restored, _ = proc.communicate(timeout=scaled(60))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert plain.stdout.strip() == "False"  # inherited: Ctrl-C would not reach it
    assert restored.strip() == "True"
