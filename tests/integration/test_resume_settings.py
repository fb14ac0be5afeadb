"""Resume takes the checkpoint's settings (only those given replace them; every difference in one message), the
best checkpoint belongs to its validation settings, and update counts survive a change of devices."""
import logging
import shlex
import signal

import numpy as np
import pytest

from sinlstm_sym import Predictor, fit, load_checkpoint
from sinlstm_sym.core.checks import settings_of
from sinlstm_sym.cli import train as train_cli
from sinlstm_sym.train.fit import fit_session
from sinlstm_sym.train.loop import TrainingInterrupted

# the command line after tiny_flags
CLI_OPTIONS = ["--eval-lengths", "1-2", "--eval-samples", "10", "--progress", "off", "--lr-schedule", "null"]


# --- only the settings given replace the checkpoint's ------------------------------------------------------------

def test_resume_with_only_num_epoch_continues_the_checkpoints_run_exactly(tmp_path, tiny_settings):
    run = tmp_path / "run1"
    settings = dict(tiny_settings, lr_schedule=None, optimizer_params={"learning_rate": 0.01})
    straight = fit(num_epoch=3, **settings)
    fit(num_epoch=1, checkpoint=run, **settings)
    resumed = fit(checkpoint=run, resume=True, num_epoch=3)  # nothing repeated
    assert resumed.config.data.buckets == (1, 2, 3) and resumed.config.run.seed == tiny_settings["seed"]
    assert resumed.config.model.hidden_sizes == (4, 1) and resumed.config.optimizer.lr_schedule is None
    assert resumed.losses == straight.losses[len(straight.losses) - len(resumed.losses):]
    for name, value in straight.arg_params().items():
        np.testing.assert_array_equal(resumed.arg_params()[name], value)


def test_every_incompatible_setting_is_refused_in_one_message_naming_what_to_pass(tmp_path, tiny_settings):
    run = tmp_path / "run1"
    # a schedule over 6 updates
    fit(num_epoch=1, checkpoint=run, lr_schedule={"name": "cosine", "warmup_steps": 2}, **tiny_settings)
    with pytest.raises(ValueError) as err:
        fit(checkpoint=run, resume=True, num_epoch=3, buckets=[1, 2], batch_size=50, num_samples=600)
    message = str(err.value)
    assert message.startswith(f"resume=True: the checkpoint {run / 'ckpt-00000006'} was trained with other "
                              "settings: batch_size=100 there, 50 now, buckets=[1, 2, 3] there, [1, 2] now")
    assert "pass batch_size=100, buckets=[1, 2, 3] or nothing" in message
    assert "past the end of the checkpoint's cosine schedule" in message and "extend_schedule=RATE" in message
    assert set(settings_of(err.value)) >= {"batch_size", "buckets", "num_epoch", "extend_schedule", "resume"}
    assert "hidden_sizes" not in message and "seed" not in message  # the checkpoint's, not the defaults
    again = fit(checkpoint=run, resume=True, num_epoch=3, extend_schedule=0.003)  # what the message asked
    assert again.progress.epoch == 3 and again.config.data.buckets == (1, 2, 3)


def test_a_cell_of_another_layout_is_refused_naming_cells_a_user_can_pass(tmp_path, tiny_settings):
    run = tmp_path / "run1"
    fit(num_epoch=1, checkpoint=run, cell="unrolled", **tiny_settings)
    with pytest.raises(ValueError) as err:
        fit(checkpoint=run, resume=True, num_epoch=2, cell="fused")
    assert "cell='unrolled' there, 'fused' now" in str(err.value)
    assert "pass cell='unrolled' or nothing" in str(err.value)
    again = fit(checkpoint=run, resume=True, num_epoch=2, cell="unrolled")  # what the message asked
    assert again.progress.epoch == 2


def test_a_config_object_is_taken_as_given_in_full(tmp_path, tiny_settings):
    from sinlstm_sym import FitConfig
    run = tmp_path / "run1"
    fit(num_epoch=1, checkpoint=run, **tiny_settings)
    with pytest.raises(ValueError, match=r"buckets=\[1, 2, 3\] there, \[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 20\] now"):
        fit(FitConfig(), checkpoint=run, resume=True)


def test_cli_resume_takes_the_checkpoints_settings(tmp_path, capsys, tiny_flags):
    run = tmp_path / "run1"
    assert train_cli.main(tiny_flags + CLI_OPTIONS + ["--num-epoch", "1", "--checkpoint", str(run)]) == 0
    assert train_cli.main(["--checkpoint", str(run), "--resume", "--num-epoch", "2", "--eval-lengths", "1-2",
                           "--eval-samples", "10", "--progress", "off"]) == 0
    saved = load_checkpoint(run).config
    assert saved["progress"]["epoch"] == 2 and saved["settings"]["data"]["buckets"] == [1, 2, 3]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        train_cli.main(["--checkpoint", str(run), "--resume", "--buckets", "1-2", "--batch-size", "50"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1, err
    assert "argument --batch-size/--buckets/--resume: " in err and "buckets=[1, 2, 3] there, [1, 2] now" in err


def test_the_resume_command_printed_after_ctrl_c_on_an_overwrite_run_is_accepted(tmp_path, capsys, caplog,
                                                                                  tiny_settings, tiny_flags):
    run = tmp_path / "run"
    fit(num_epoch=1, checkpoint=run, **tiny_settings)  # another run's checkpoints: the new one needs --overwrite
    argv = tiny_flags + CLI_OPTIONS + ["--num-epoch", "2", "--checkpoint", str(run), "--overwrite", "--seed", "8",
                                       "--log-every", "2"]

    class InterruptAt(logging.Handler):
        def emit(self, record):
            if "batch 4/6" in record.getMessage():
                signal.raise_signal(signal.SIGINT)
    handler = InterruptAt()
    logging.getLogger("sinlstm_sym").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="sinlstm_sym"):
            assert train_cli.main(argv) == 130
    finally:
        logging.getLogger("sinlstm_sym").removeHandler(handler)
    err = capsys.readouterr().err
    printed = shlex.split(err.split("resume with: ", 1)[1].splitlines()[0])
    assert "--overwrite" not in printed and printed[-1] == "--resume" and str(run) in printed
    assert train_cli.main(printed[1:]) == 0, capsys.readouterr().err
    saved = load_checkpoint(run).config
    assert saved["progress"]["epoch"] == 2 and saved["settings"]["run"]["seed"] == 8


def test_interrupted_command_drops_overwrite_and_its_abbreviation(capsys):
    stop = TrainingInterrupted(0, 3, checkpoint=None)
    stop.checkpoint = "D"
    train_cli._interrupted(stop, ["--checkpoint", "D", "--overw", "--seed", "1"])
    line = capsys.readouterr().err.split("resume with: ", 1)[1].strip()
    assert line.endswith("--checkpoint D --seed 1 --resume")


# --- best/ belongs to its validation settings ----------------------------------------------------------------------

VALIDATED = dict(validation_lengths=[1], validation_samples=30)


def test_resume_without_validation_drops_the_old_best_and_serves_the_final_model(tmp_path, caplog, tiny_settings):
    run = tmp_path / "run"
    first = fit(num_epoch=1, checkpoint=run, **tiny_settings, **VALIDATED)
    assert (run / "best").is_dir() and first.validation_history
    with caplog.at_level(logging.WARNING):
        final = fit(checkpoint=run, resume=True, num_epoch=4, validation_lengths=None)
    assert not (run / "best").exists() and final.best_params is None and final.validation_history == []
    assert any("chosen on the held-out windows of validation_lengths=[1], validation_samples=30, but this run has "
               "no validation; it is removed" in r.getMessage() for r in caplog.records)
    served = Predictor.load(run)
    x = np.linspace(0.1, 0.9, 14, dtype=np.float32).reshape(7, 2)
    np.testing.assert_allclose(served.predict(x), final.predictor().predict(x), rtol=0, atol=1e-6)
    assert load_checkpoint(run).config["progress"]["validation"] == []


def test_resume_with_other_validation_lengths_chooses_the_best_again(tmp_path, caplog, tiny_settings):
    run = tmp_path / "run"
    fit(num_epoch=1, checkpoint=run, **tiny_settings, **VALIDATED)
    with caplog.at_level(logging.WARNING):
        again = fit(checkpoint=run, resume=True, num_epoch=2, validation_lengths=[2, 3])
    assert any("it is removed" in r.getMessage() for r in caplog.records)
    assert {tuple(r.per_length) for r in again.validation_history} == {(2, 3)}
    best = load_checkpoint(run / "best")
    assert best.config["settings"]["run"]["validation_lengths"] == [2, 3]
    assert best.config["progress"]["global_batch"] == again.best.global_batch > 6  # chosen in this run


def test_resume_with_the_same_validation_keeps_the_best(tmp_path, caplog, tiny_settings):
    run = tmp_path / "run"
    fit(num_epoch=1, checkpoint=run, **tiny_settings, **VALIDATED)
    before = load_checkpoint(run / "best").path
    with caplog.at_level(logging.WARNING):
        again = fit(checkpoint=run, resume=True, num_epoch=2)  # the checkpoint's validation settings
    assert not any("it is removed" in r.getMessage() for r in caplog.records)
    assert len(again.validation_history) == 2 and again.best_params is not None
    assert (run / "best").is_dir() and load_checkpoint(run / "best").path.parent == before.parent


# --- update counts survive a change of devices ------------------------------------------------------------------

def device_copies(module):
    """Each parameter's copies on the module's devices (MXNet keeps them in the executor group)."""
    group = module._curr_module._exec_group  # noqa: SLF001 - the per-device copies have no public accessor
    return {name: [a.asnumpy() for a in arrays] for name, arrays in zip(group.param_names, group.param_arrays)}


@pytest.mark.parametrize("saved_ctx, resumed_ctx", [("cpu:0", "cpu:0,1"), ("cpu:1", "cpu:0,1")])
def test_update_counts_survive_more_or_other_devices_without_kvstore_updates(tmp_path, monkeypatch, saved_ctx,
                                                                          resumed_ctx, tiny_settings):
    monkeypatch.setenv("MXNET_UPDATE_ON_KVSTORE", "0")  # each device updates its own copy of the weights
    run = tmp_path / "run"
    settings = dict(tiny_settings, optimizer="adam", lr_schedule=None, optimizer_params={"learning_rate": 0.01})
    fit(num_epoch=1, checkpoint=run, ctx=saved_ctx, **settings)
    with fit_session(checkpoint=run, resume=True, num_epoch=3, ctx=resumed_ctx) as session:
        counts = session.optimizer._all_index_update_counts  # noqa: SLF001 - Adam's per-device step counts
        assert sorted(counts) == [0, 1] and len(set(map(lambda c: frozenset(c.values()), counts.values()))) == 1
        assert set(counts[0].values()) == {6}  # one epoch of 6 updates, on both devices
        result = session.train()
    copies = device_copies(result.module)
    assert len(next(iter(copies.values()))) == 2
    for name, (first, second) in copies.items():
        np.testing.assert_array_equal(first, second, err_msg=name)  # no drift between the copies
