"""Ctrl-C stops training at a batch boundary, writes a checkpoint if asked, and the run resumes exactly;
the command line exits 130 with the resume command and no traceback. Divergence is reported, naming the rate."""
import logging
import signal
import subprocess

import numpy as np
import pytest

from sinlstm_sym import fit, load_checkpoint
from sinlstm_sym.train.loop import TrainingDivergedError, TrainingInterrupted

from interrupting import CLI_RUN, RUN, SCRIPT, InterruptAt, signal_cli_at


def test_sigint_stops_at_a_batch_boundary_with_a_checkpoint_and_resume_equals_a_straight_run(tmp_path):
    straight = fit(**RUN)
    before = signal.getsignal(signal.SIGINT)  # the default one, or SIG_IGN in a suite started in the background
    log = logging.getLogger("test_interrupt")
    log.setLevel(logging.INFO)
    log.addHandler(InterruptAt("batch 20/60"))
    with pytest.raises(TrainingInterrupted) as stop:
        fit(checkpoint=tmp_path, logger=log, **RUN)
    assert (stop.value.epoch, stop.value.batch) == (0, 20)
    assert stop.value.checkpoint is not None and stop.value.checkpoint.is_dir()
    assert load_checkpoint(tmp_path).config["progress"]["batch"] == 20
    assert signal.getsignal(signal.SIGINT) is before  # the handler is restored
    resumed = fit(checkpoint=tmp_path, resume=True, **RUN)
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=0, atol=1e-6)
    for name, value in straight.arg_params().items():
        np.testing.assert_allclose(resumed.arg_params()[name], value, atol=1e-6)


def test_sigint_without_checkpoint_says_nothing_was_saved():
    log = logging.getLogger("test_interrupt_nockpt")
    log.setLevel(logging.INFO)
    log.addHandler(InterruptAt("batch 10/60"))
    with pytest.raises(TrainingInterrupted, match="no checkpoint was asked for") as stop:
        fit(logger=log, **RUN)
    assert stop.value.checkpoint is None and stop.value.batch == 10


def test_a_diverging_learning_rate_is_reported_naming_it():
    with pytest.raises(TrainingDivergedError, match=r"training diverged: .* lower learning_rate=1e\+06"):
        fit(optimizer="sgd", optimizer_params={"learning_rate": 1e6}, **RUN)


@pytest.mark.slow
def test_cli_ctrl_c_exits_130_with_the_resume_command(tmp_path):
    run = tmp_path / "run"
    argv = [*CLI_RUN, "--checkpoint", str(run)]
    code, err = signal_cli_at(argv, "batch 100/", signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err
    assert "checkpoint written to" in err and "resume with:" in err
    resume = err.split("resume with: ", 1)[1].strip().splitlines()[0]
    assert resume.endswith("--resume") and str(run) in resume
    stopped_at = load_checkpoint(run).config["progress"]["global_batch"]
    assert 100 <= stopped_at < 1000
    again = subprocess.run([str(SCRIPT), *argv, "--resume"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert load_checkpoint(run).config["progress"]["global_batch"] == 1000


class _SmallParams:
    def get_params(self):
        import mxnet as mx
        return {"w": mx.nd.ones((3,))}, {}


@pytest.mark.parametrize("losses, windows, diverged", [
    ([0.03, 0.2, 0.01, 0.2], 300, False),  # one window above 4x, then back: noise, not divergence
    ([0.03, 0.2, 0.25], 300, True),         # two windows in a row above 4x the first: divergence
    ([0.03, 0.2, 0.25], 50, False),         # windows of 50 windows are too noisy to judge
    ([0.03, 0.1, 0.11], 300, False),        # under 4x
])
def test_divergence_rule_on_log_windows(losses, windows, diverged):
    from sinlstm_sym.train.loop import LossRecord, Progress, Trainer
    trainer = Trainer(_SmallParams(), None, Progress(), logging.getLogger("t"), 10, learning_rate=0.5)

    def feed():
        for i, loss in enumerate(losses):
            trainer._check_divergence(LossRecord(0, 10 * (i + 1), loss, 1.0), windows)
    if diverged:
        with pytest.raises(TrainingDivergedError, match=r"rose from 0.03 \(first log window\) .* learning_rate=0.5"):
            feed()
    else:
        feed()
