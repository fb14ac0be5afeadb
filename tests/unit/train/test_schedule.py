"""Learning-rate schedules planned against the run before training: every schedule at every run length
(100 updates = the default warm-up included) trains without a division by zero, a warm-up as long as the run
is refused, and a resumed run trained past its schedule's end is refused unless extend_schedule appends a
segment, which continues well and resumes exactly."""
import logging
import math
import os
import shutil
import signal

import numpy as np
import pytest

from sinlstm_sym import FitConfig, fit, load_checkpoint
from sinlstm_sym.config.schedules import ExtendSchedule
from sinlstm_sym.train.loop import TrainingInterrupted

# 50 batches of 10 windows an epoch, two epochs: 100 updates, the default warm-up's length
HUNDRED = dict(buckets=[1, 2], batch_size=10, num_samples=500, num_epoch=2, seed=1, log_every=1000, hidden_sizes=[4, 1])
# (cosine with final_lr given: the default schedule, {"name": "cosine", "warmup_steps": 100}, may be all warm-up)
SCHEDULES = {"cosine": {"final_lr": 0.0}, "poly": {"pwr": 2.0}, "factor": {"step": 10, "factor": 0.5},
             "multifactor": {"step": [10, 50], "factor": 0.5}}


def _rates(config, updates):
    """The learning rate MXNet's scheduler gives at updates 1..updates of a settled configuration."""
    scheduler = config.optimizer.create(rescale_grad=1.0).lr_scheduler
    return [scheduler(n) for n in range(1, updates + 1)]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("warmup", [0, 1, 99])
def test_a_run_of_exactly_100_updates_trains_with_every_schedule(name, warmup):
    result = fit(lr_schedule={"name": name, "warmup_steps": warmup, **SCHEDULES[name]}, **HUNDRED)
    assert result.progress.global_batch == 100 and all(math.isfinite(x) for x in result.losses)
    rates = _rates(result.config, 100)
    assert all(math.isfinite(r) and r >= 0 for r in rates)
    if name in ("cosine", "poly"):
        assert result.config.optimizer.lr_schedule["max_update"] == 100 and rates[-1] == pytest.approx(0.0)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_warm_up_as_long_as_the_run_is_refused_naming_it_and_the_updates(name):
    with pytest.raises(ValueError, match=r"lr_schedule warmup_steps \(100\) must be < the run's 100 updates"):
        fit(lr_schedule={"name": name, "warmup_steps": 100, **SCHEDULES[name]}, **HUNDRED)
    with pytest.raises(ValueError, match=r"lr_schedule warmup_steps \(150\) must be < the run's 100 updates"):
        fit(lr_schedule={"name": name, "warmup_steps": 150, **SCHEDULES[name]}, **HUNDRED)


@pytest.mark.parametrize("name", ["cosine", "poly"])
def test_a_schedule_that_would_divide_by_zero_is_refused_when_made(name):
    with pytest.raises(ValueError, match=r"warmup_steps \(5\) must be < max_update \(5\)"):
        FitConfig.from_flat(lr_schedule={"name": name, "warmup_steps": 5, "max_update": 5})


def test_a_run_may_be_the_first_part_of_a_longer_schedule_given_with_its_max_update(tmp_path):
    schedule = {"name": "cosine", "warmup_steps": 60, "max_update": 100}
    first = fit(lr_schedule=schedule, checkpoint=tmp_path, **dict(HUNDRED, num_epoch=1))  # 50 updates, all warm-up
    assert first.config.optimizer.lr_schedule == schedule
    resumed = fit(lr_schedule=schedule, checkpoint=tmp_path, resume=True, **HUNDRED)  # the rest of it
    assert resumed.losses == fit(lr_schedule=schedule, **HUNDRED).losses


def test_a_schedule_ending_before_the_run_is_refused():
    with pytest.raises(ValueError, match=r"lr_schedule max_update \(50\) is shorter than the run's 100 updates"):
        fit(lr_schedule={"name": "cosine", "max_update": 50}, **HUNDRED)


@pytest.mark.parametrize("num_epoch", [1, 2])  # 50 and 100 updates: the default warm-up is 100 updates
def test_the_default_schedule_in_a_run_no_longer_than_its_warm_up_is_all_warm_up_and_says_so(num_epoch, caplog):
    with caplog.at_level(logging.INFO, logger="sinlstm_sym.train.schedule"):
        result = fit(**dict(HUNDRED, num_epoch=num_epoch))
    assert "the whole run trains at a rising rate, with no decay" in caplog.text
    assert result.config.optimizer.lr_schedule == {"name": "cosine", "warmup_steps": 100, "max_update": 101}
    rates = _rates(result.config, 50 * num_epoch)
    assert rates == sorted(rates) and rates[0] > 0 and max(rates) <= 0.03


def test_the_default_schedule_resumed_with_more_epochs_equals_a_straight_run(tmp_path):
    straight = fit(**HUNDRED)
    fit(checkpoint=tmp_path, **dict(HUNDRED, num_epoch=1))
    resumed = fit(checkpoint=tmp_path, resume=True, **HUNDRED)
    assert resumed.config.optimizer == straight.config.optimizer and resumed.losses == straight.losses


# 100 batches of 50 windows an epoch; validated on held-out windows at every epoch end
EXTEND = dict(buckets=[1, 2, 3, 4, 5], batch_size=50, num_samples=5000, seed=3, log_every=1000,
              validation_lengths=[1, 3, 5], validation_samples=200)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-epoch run (200 updates) with its checkpoint."""
    run = tmp_path_factory.mktemp("finished") / "run"
    result = fit(num_epoch=2, checkpoint=run, **EXTEND)
    return run, result


def _copy(finished, tmp_path):
    shutil.copytree(finished[0], tmp_path / "run")
    return tmp_path / "run"


def test_resuming_past_the_schedule_end_is_refused_saying_how_to_continue(finished, tmp_path):
    run = _copy(finished, tmp_path)
    with pytest.raises(ValueError, match=r"num_epoch=4 trains 400 updates, past the end of the checkpoint's "
                                         r"cosine schedule \(update 200\).*restart at the peak rate.*"
                                         r"extend_schedule=RATE \(--extend-schedule RATE\)"):
        fit(num_epoch=4, checkpoint=run, resume=True, **EXTEND)
    assert load_checkpoint(run).config["progress"]["global_batch"] == 200  # nothing trained, nothing written


def test_an_extended_run_is_not_worse_than_its_checkpoint(finished, tmp_path):
    run = _copy(finished, tmp_path)
    before = finished[1].validation_history[-1].max_abs_error
    extended = fit(num_epoch=4, checkpoint=run, resume=True, extend_schedule=0.003, **EXTEND)
    assert extended.config.optimizer.extend_schedule == ExtendSchedule(0.003, from_update=200, max_update=400)
    stored = load_checkpoint(run).config["settings"]["optimizer"]["extend_schedule"]
    assert stored == {"peak_lr": 0.003, "from_update": 200, "max_update": 400}  # a checkpoint stores the dict
    rates = _rates(extended.config, 400)
    assert rates[200] == pytest.approx(0.003, rel=1e-3) and rates[-1] == pytest.approx(0.0)
    assert max(rates[200:]) <= 0.003  # never the peak rate 0.03 again
    after = [r.max_abs_error for r in extended.validation_history if r.global_batch > 200]
    assert len(after) == 2 and after[-1] <= before * 1.05, (before, after)  # not worse beyond noise


def test_an_interrupted_extended_run_resumes_exactly(finished, tmp_path):
    straight = fit(num_epoch=4, checkpoint=_copy(finished, tmp_path / "a"), resume=True, extend_schedule=0.003,
                   **EXTEND)
    run = _copy(finished, tmp_path / "b")
    log = logging.getLogger("test_schedule_interrupt")
    log.setLevel(logging.INFO)

    class InterruptAtEpoch2(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("epoch 2 done"):
                os.kill(os.getpid(), signal.SIGINT)

    handler = InterruptAtEpoch2()
    log.addHandler(handler)
    try:
        with pytest.raises(TrainingInterrupted):
            fit(num_epoch=4, checkpoint=run, resume=True, extend_schedule=0.003, logger=log, **EXTEND)
    finally:
        log.removeHandler(handler)
    assert load_checkpoint(run).config["settings"]["optimizer"]["extend_schedule"]["max_update"] == 400
    resumed = fit(num_epoch=4, checkpoint=run, resume=True, **EXTEND)  # the stored extension is kept
    for name, value in straight.arg_params().items():
        np.testing.assert_allclose(resumed.arg_params()[name], value, atol=1e-6)


def test_extend_schedule_is_refused_where_it_does_not_apply(finished, tmp_path):
    with pytest.raises(ValueError, match="extend_schedule only continues a resumed run"):
        fit(lr_schedule={"name": "cosine", "max_update": 50}, extend_schedule=0.003, **HUNDRED)
    with pytest.raises(ValueError, match="nothing to extend"):
        fit(num_epoch=2, checkpoint=_copy(finished, tmp_path), resume=True, extend_schedule=0.003, **EXTEND)
    with pytest.raises(ValueError, match=r"a rate between the schedule's final_lr \(0\) and its peak"):
        FitConfig.from_flat(extend_schedule=0.5)
    with pytest.raises(ValueError, match="a schedule that ends"):
        FitConfig.from_flat(lr_schedule=None, extend_schedule=0.003)


def test_extend_schedule_needs_a_finished_checkpoint(tmp_path):
    fit(checkpoint=tmp_path, checkpoint_every=40, **HUNDRED)
    older = sorted(p for p in tmp_path.iterdir() if p.name.startswith("ckpt-"))[-2]  # before the end (100)
    stopped = load_checkpoint(older).config["progress"]["global_batch"]
    assert stopped < 100
    with pytest.raises(ValueError, match=rf"the checkpoint stopped at update {stopped}: resume it with the num_epoch"):
        fit(checkpoint=older, resume=True, extend_schedule=0.003, **dict(HUNDRED, num_epoch=3))


def test_extend_schedule_is_a_checked_value_stored_as_its_dict():
    asked = FitConfig.from_flat(extend_schedule=0.003)
    assert asked.optimizer.extend_schedule == ExtendSchedule(0.003) and not asked.optimizer.extend_schedule.settled
    assert asked.to_json()["optimizer"]["extend_schedule"] == {"peak_lr": 0.003}
    settled = asked.replace(extend_schedule={"peak_lr": 0.003, "from_update": 200, "max_update": 400})
    assert settled.to_json()["optimizer"]["extend_schedule"] == {"peak_lr": 0.003, "from_update": 200,
                                                                 "max_update": 400}
    assert FitConfig.from_json(settled.to_json()) == settled  # what a checkpoint stores reads back
    assert FitConfig.from_flat().to_json()["optimizer"]["extend_schedule"] is None
    assert settled.training_json()["extend_schedule"] == {"peak_lr": 0.003, "from_update": 200, "max_update": 400}
    with pytest.raises(ValueError, match=r"extend_schedule\['max_update'\] must be >= 201, got 150"):
        ExtendSchedule(0.003, from_update=200, max_update=150)
    with pytest.raises(TypeError, match=r"extend_schedule\['max_update'\] must be an int, got None"):
        ExtendSchedule(0.003, from_update=200)  # one without the other
    with pytest.raises(TypeError, match="extend_schedule must be None, a learning rate or"):
        FitConfig.from_flat(extend_schedule={"rate": 0.003})
    with pytest.raises((TypeError, ValueError), match="extend_schedule"):
        ExtendSchedule("fast")  # type: ignore[arg-type]
