"""Every value the checks accept runs through MXNet: float settings are 0 or normal float32 numbers (the
operators parse their parameters as float32 and refuse denormals such as 1e-45), and the learning rates a
run hands to the update operator (the schedule's smallest rate times Adam's bias correction) stay above the
smallest normal float32. Refusals come before any training and before the checkpoint directory exists; the
values at the bounds train through MXNet."""
import re

import numpy as np
import pytest

from sinlstm_sym import fit
from sinlstm_sym.core.checks import FLOAT32_MAX, FLOAT32_MIN_NORMAL, SettingValueError, check_float, is_float32_normal
from sinlstm_sym.config import FitConfig
from sinlstm_sym.config.schedules import smallest_rate

TINY = dict(buckets=[3], batch_size=10, num_samples=40, num_epoch=1, seed=0, hidden_sizes=[4, 1], log_every=1)
DENORMAL = 1e-45


def test_the_bounds_are_float32s():
    assert FLOAT32_MIN_NORMAL == float(np.finfo(np.float32).tiny)
    assert FLOAT32_MAX == float(np.finfo(np.float32).max)
    assert is_float32_normal(0.0) and is_float32_normal(-FLOAT32_MIN_NORMAL) and is_float32_normal(FLOAT32_MAX)
    assert not is_float32_normal(DENORMAL) and not is_float32_normal(np.nextafter(FLOAT32_MIN_NORMAL, 0))
    assert not is_float32_normal(1e39) and not is_float32_normal(-1e300)
    with pytest.raises(ValueError, match=r"^x must be 0 or a magnitude between 1.175e-38 and 3.403e\+38"):
        check_float("x", 1e-320, float32=True)
    assert check_float("x", 1e-320) == 1e-320  # only values that reach MXNet are bounded


@pytest.mark.parametrize("key", ["wd", "epsilon", "clip_gradient", "beta1", "beta2", "learning_rate"])
def test_denormal_optimizer_arguments_are_refused_naming_them(key):
    with pytest.raises(SettingValueError, match=re.escape(f"optimizer_params['{key}'] must be 0 or a magnitude "
                                                          "between 1.175e-38")) as info:
        FitConfig.from_flat(optimizer_params={key: DENORMAL})
    assert info.value.settings[0] == "optimizer_params"


@pytest.mark.parametrize("flat, name", [
    (dict(step_tau=1e-320), "step_tau"), (dict(step_weight=1e308), "step_weight"),
    (dict(step_weight=DENORMAL), "step_weight"), (dict(t_low=-1e39, t_high=0.0), "t_low"),
    (dict(target_max_error=DENORMAL, validation_lengths=[3]), "target_max_error"),
    (dict(feature="value", scaling=(0.0, 1e-320)), "scaling scale"),
    (dict(feature="value", scaling=(1e300, 1.0)), "scaling center"),
    (dict(lr_schedule={"name": "cosine", "final_lr": DENORMAL}), "lr_schedule['final_lr']"),
    (dict(lr_schedule={"name": "cosine", "warmup_begin_lr": DENORMAL}), "lr_schedule['warmup_begin_lr']"),
    (dict(lr_schedule={"name": "factor", "step": 2, "factor": 0.5, "stop_factor_lr": DENORMAL}),
     "lr_schedule['stop_factor_lr']"),
])
def test_python_only_float_settings_are_float32s(flat, name):
    with pytest.raises(ValueError, match=re.escape(f"{name} must be 0 or a magnitude between")):
        FitConfig.from_flat(**flat)


@pytest.mark.parametrize("value", [1e30, -1e30, 1000.5])
def test_a_forget_bias_that_counts_as_diverged_is_refused(value):
    with pytest.raises(SettingValueError, match="forget_bias must be"):
        FitConfig.from_flat(forget_bias=value)


def _rate_error(tmp_path, **flat):
    run = tmp_path / "run"
    with pytest.raises(SettingValueError, match=r"reaches MXNet's update operator") as info:
        fit(**{**TINY, **flat}, checkpoint=str(run))
    assert not run.exists()  # refused before the directory is made
    assert info.value.settings == ("optimizer_params", "lr_schedule")
    return float(re.search(r"learning_rate of at least ([0-9.e+-]+)", str(info.value)).group(1))


@pytest.mark.parametrize("flat", [
    dict(lr_schedule=None, optimizer_params={"learning_rate": 1.2e-38, "beta2": 0.99}),  # Adam's bias correction
    dict(optimizer_params={"learning_rate": 1.2e-35}),  # the default warm-up's first rate, then Adam's
    dict(optimizer="sgd", optimizer_params={"learning_rate": 2e-38},
         lr_schedule={"name": "cosine", "warmup_steps": 3}),  # SGD: the warm-up alone
])
def test_a_learning_rate_that_reaches_the_operator_denormal_is_refused_and_the_bound_trains(tmp_path, flat):
    needed = _rate_error(tmp_path, **flat)
    params = dict(flat.get("optimizer_params", {}), learning_rate=needed)
    result = fit(**{**TINY, **flat, "optimizer_params": params})  # the bound it names runs through MXNet
    assert result.progress.global_batch == 4 and np.isfinite(result.losses).all()


@pytest.mark.parametrize("cell", ["native", "fused"])
def test_values_at_the_float32_bounds_train_through_mxnet(cell):
    params = {"wd": FLOAT32_MIN_NORMAL, "epsilon": FLOAT32_MIN_NORMAL, "clip_gradient": FLOAT32_MIN_NORMAL,
              "beta1": FLOAT32_MIN_NORMAL, "learning_rate": 0.01}
    result = fit(**TINY, cell=cell, optimizer_params=params, lr_schedule=None, step_tau=FLOAT32_MIN_NORMAL,
                 step_weight=1e30, forget_bias=1000.0)
    assert result.progress.global_batch == 4 and np.isfinite(result.losses).all()


def test_smallest_rate_is_at_an_end_of_the_run():
    cosine = {"name": "cosine", "max_update": 100, "warmup_steps": 10, "final_lr": 0.0}
    assert smallest_rate(cosine, 1.0, 1, 20) == pytest.approx(0.1)  # the warm-up's first rate
    assert smallest_rate(cosine, 1.0, 1, 100) == pytest.approx((1 + np.cos(np.pi * 89 / 90)) / 2)  # update 99
    factor = {"name": "factor", "step": 1, "factor": 0.5, "stop_factor_lr": 0.0}
    assert 0 < smallest_rate(factor, 1.0, 1, 5000) < FLOAT32_MIN_NORMAL  # underflows: refused, not 0
    assert smallest_rate(None, 0.5, 1, None) == 0.5


def test_the_command_line_refuses_a_denormal_in_one_line(tmp_path, capsys):
    from sinlstm_sym.cli import train as train_cli
    with pytest.raises(SystemExit) as info:
        train_cli.main(["--optimizer-params", '{"wd": 1e-45}', "--checkpoint", str(tmp_path / "run")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "argument --optimizer-params" in err and "1e-45" in err
    assert not (tmp_path / "run").exists()
