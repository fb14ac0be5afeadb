"""The command lines are made from the configuration's declarations; errors carry the settings they are
about, so flags are named without reading messages; only errors raised before training exit 2."""
import argparse
import logging

import pytest

from sinlstm_sym.train import fit as fitting
from sinlstm_sym.core.checks import SettingError, SettingValueError, check_condition, naming, settings_of
from sinlstm_sym.cli import series as series_cli
from sinlstm_sym.cli import train as train_cli
from sinlstm_sym.cli.flags import flag_of
from sinlstm_sym.config import FitConfig
from sinlstm_sym.train.fit import FitSession, fit_session

QUICK = ["--num-samples", "600", "--batch-size", "100", "--num-epoch", "1", "--buckets", "3", "--hidden-sizes",
         "4,1", "--eval-lengths", "3", "--eval-samples", "10", "--progress", "off"]


def _actions(parser: argparse.ArgumentParser):
    return {a.dest: a for a in parser._actions}  # noqa: SLF001 - argparse has no API for its arguments


def test_every_declared_flag_is_offered_with_its_declaration():
    declarations = FitConfig.declarations()
    assert set(train_cli.SETTING_FLAGS) == {name for name, info in declarations.items() if info.flag}
    actions = _actions(train_cli.build_parser())
    for name in train_cli.SETTING_FLAGS:
        info, action = declarations[name], actions[name]
        assert action.option_strings == [flag_of(name)]
        assert action.help.startswith(info.help)
        assert list(action.choices or []) == list(info.choices)
    series_actions = _actions(series_cli.build_parser())
    for name in series_cli.SETTING_FLAGS:
        assert series_actions[name].help == declarations[name].help
        assert series_actions[name].default == series_cli.DEFAULTS[name]


@pytest.mark.parametrize("name", [n for n, i in FitConfig.declarations().items() if i.kind == "int"])
def test_an_int_flag_refuses_what_the_configuration_refuses(name, capsys):
    info = FitConfig.declarations()[name]
    too_small = str(int(info.minimum) - 1)
    with pytest.raises(SettingValueError) as err:
        FitConfig.from_flat(**{name: int(too_small)})
    assert err.value.settings[0] == name
    if info.flag:
        with pytest.raises(SystemExit) as stop:
            train_cli.build_parser().parse_args([flag_of(name), too_small])
        assert stop.value.code == 2 and flag_of(name) in capsys.readouterr().err


@pytest.mark.parametrize("settings, named", [
    (dict(num_epoch=0), ("num_epoch",)),
    (dict(cell="gru"), ("cell",)),
    (dict(checkpoint_every=5), ("checkpoint_every", "checkpoint")),
    (dict(ctx=["cpu:0", "cpu:1"], batch_size=1, num_samples=10), ("ctx", "batch_size")),
    (dict(optimizer_params={"no_such": 1}), ("optimizer_params", "optimizer")),
    (dict(lr_schedule={"name": "sawtooth"}), ("lr_schedule",)),
    (dict(length_weights=[1, 2], buckets=[3]), ("length_weights", "buckets")),
    (dict(hidden_sizes=[4, 2]), ("hidden_sizes",)),
    (dict(num_samples=10, batch_size=100), ("num_samples", "batch_size")),
    (dict(resume=True, overwrite=True, checkpoint="d"), ("overwrite", "resume")),
    (dict(no_such_setting=1), ("no_such_setting",)),
])
def test_configuration_errors_carry_the_settings_they_are_about(settings, named):
    with pytest.raises((ValueError, TypeError)) as err:
        FitConfig.from_flat(**settings)
    assert settings_of(err.value) == named


def test_naming_keeps_the_message_and_class_and_leaves_named_errors_alone():
    with pytest.raises(TypeError) as err:
        with naming("seed"):
            raise TypeError("seed must be an int")
    assert isinstance(err.value, SettingError) and str(err.value) == "seed must be an int"
    assert err.value.settings == ("seed",)
    with pytest.raises(SettingValueError) as err:
        with naming("outer"):
            check_condition(False, "inner", settings=("inner",))
    assert err.value.settings == ("inner",)
    with pytest.raises(KeyError):  # another class passes unchanged
        with naming("x"):
            raise KeyError("x")


def test_a_setting_is_named_by_the_error_not_by_its_message(monkeypatch, capsys):
    def no_devices(ctx):
        raise ValueError("no such device here")  # names no setting in its text
    monkeypatch.setattr(fitting, "resolve_contexts", no_devices)
    assert _exit_code(train_cli.main, QUICK) == 2
    assert capsys.readouterr().err.strip() == \
        "sinlstm-train: error: argument --ctx: no such device here (--help lists the flags)"


def test_an_error_while_training_is_not_a_flag_error(monkeypatch, caplog):
    def broken(self):
        raise ValueError("something broke in batch 3")
    monkeypatch.setattr(FitSession, "train", broken)
    with pytest.raises(ValueError, match="something broke in batch 3"):  # a traceback and exit 1, not exit 2
        train_cli.main(QUICK)


def test_fit_session_checks_everything_on_entering_and_trains_on_request(tmp_path, caplog):
    with pytest.raises(ValueError, match="must be a directory") as err:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "afile").write_text("")
        with caplog.at_level(logging.INFO), fit_session(checkpoint=tmp_path / "run" / "afile", num_samples=600):
            pass
    assert not [r for r in caplog.records if r.getMessage().startswith("training ")]
    assert "checkpoint" in settings_of(err.value)
    with fit_session(buckets=[3], hidden_sizes=[4, 1], num_samples=600, num_epoch=1, seed=5,
                     checkpoint=tmp_path / "ok") as session:
        assert session.config.run.seed == 5 and session.progress.global_batch == 0
        assert (tmp_path / "ok" / ".lock").exists()  # the run directory is held from entering
        result = session.train()
    assert result.progress.global_batch == 6 and not (tmp_path / "ok" / ".lock").exists()


def _exit_code(main, argv):
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code
