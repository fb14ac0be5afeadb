"""Every flag of sinlstm-train and sinlstm-evaluate with a bad value: exit code 2, one line naming the flag,
nothing trained or loaded, no file written."""
import logging
import os
import re
import time

import pytest

from sinlstm_sym.cli import evaluate as evaluate_cli
from sinlstm_sym.cli import train as train_cli

# (flag named in the message, argv); {tmp} is a fresh empty directory, {file} an existing file in it
TRAIN_CASES = [
    ("--buckets", ["--buckets", "0"]),
    ("--buckets", ["--buckets", "1-x"]),
    ("--length-weights", ["--length-weights", "1,2"]),
    ("--length-weights", ["--length-weights", "1,a"]),
    ("--hidden-sizes", ["--hidden-sizes", "4,2"]),
    ("--batch-size", ["--batch-size", "0"]),
    ("--num-samples", ["--num-samples", "0"]),
    ("--num-samples", ["--num-samples", "1000000000000000"]),
    ("--num-samples", ["--num-samples", "100", "--batch-size", "300"]),
    ("--num-epoch", ["--num-epoch", "0"]),
    ("--label-mode", ["--label-mode", "every"]),
    ("--feature", ["--feature", "sin"]),
    ("--cell", ["--cell", "gru"]),
    ("--init", ["--init", "xavier"]),
    ("--optimizer", ["--optimizer", "nope"]),
    ("--optimizer-params", ["--optimizer-params", "{not json"]),
    ("--optimizer-params", ["--optimizer-params", '{"learning_rate": "fast"}']),
    ("--optimizer-params", ["--optimizer-params", '{"learning_rate": -1}']),
    ("--optimizer-params", ["--optimizer-params", '{"no_such_arg": 1}']),
    ("--optimizer-params", ["--optimizer", "sgd", "--optimizer-params", '{"momentum": 2}']),
    ("--optimizer-params", ["--optimizer-params", '{"multi_precision": "yes"}']),
    ("--optimizer-params", ["--optimizer-params", '{"lazy_update": "no"}']),
    ("--optimizer-params", ["--optimizer-params", '{"begin_num_update": -5}']),
    ("--optimizer-params", ["--optimizer-params", '{"begin_num_update": 1.5}']),
    ("--optimizer-params", ["--optimizer-params", '{"wd": 1e300}']),
    ("--optimizer-params", ["--optimizer-params", '{"learning_rate": 1e308}']),
    ("--optimizer-params", ["--optimizer-params", '{"epsilon": 1e39}']),
    ("--optimizer-params", ["--optimizer", "rmsprop", "--optimizer-params", '{"centered": 1}']),
    ("--optimizer-params", ["--optimizer", "rmsprop", "--optimizer-params", '{"clip_weights": 1e39}']),
    ("--optimizer-params", ["--optimizer", "lbsgd", "--optimizer-params", '{"warmup_strategy": "cubic"}']),
    ("--ctx", ["--ctx", "tpu"]),
    ("--ctx", ["--ctx", "gpu"]),
    ("--ctx", ["--ctx", "cpu:0,1", "--batch-size", "1", "--num-samples", "10"]),
    ("--kvstore", ["--kvstore", "nccl"]),
    ("--kvstore", ["--kvstore", "dist_sync"]),  # without the launcher's variables
    ("--seed", ["--seed", "-1"]),
    ("--log-every", ["--log-every", "0"]),
    ("--checkpoint", ["--checkpoint", "{file}"]),
    ("--checkpoint", ["--checkpoint", "/proc/nope"]),
    ("--checkpoint-every", ["--checkpoint-every", "0"]),
    ("--checkpoint-every", ["--checkpoint-every", "5"]),
    ("--resume", ["--resume"]),
    ("--overwrite", ["--overwrite"]),
    ("--overwrite", ["--checkpoint", "{tmp}", "--resume", "--overwrite"]),
    ("--eval-lengths", ["--eval-lengths", "0"]),
    ("--eval-samples", ["--eval-samples", "0"]),
    ("--plot", ["--plot", "{tmp}/missing/x.png"]),
    ("--plot", ["--plot", "{tmp}/out.txt"]),
    ("--plot", ["--plot", "{tmp}/noext"]),
    ("--plot", ["--plot", "{tmp}"]),
    ("--progress", ["--progress", "maybe"]),
    ("--lr-schedule", ["--lr-schedule", '{"name": "sawtooth"}']),
    ("--lr-schedule", ["--lr-schedule", '{"name": "factor"}']),
    ("--lr-schedule", ["--lr-schedule", '{"name": "cosine", "warmup_steps": 5, "max_update": 5}']),
    ("--lr-schedule", ["--lr-schedule", '{"name": "multifactor", "step": [5, 2]}']),
    ("--lr-schedule", ["--lr-schedule", '{"name": "factor", "step": 9, "warmup_begin_lr": 0.5}']),
    ("--lr-schedule", ["--lr-schedule", '{"name": "poly", "warmup_steps": 50}', "--num-samples", "2000",
                       "--num-epoch", "1", "--batch-size", "100"]),  # the warm-up outlasts the run's 20 updates
    ("--extend-schedule", ["--extend-schedule", "0.5"]),  # above the peak learning rate
    ("--extend-schedule", ["--extend-schedule", "x"]),
    ("--extend-schedule", ["--lr-schedule", "null", "--extend-schedule", "0.003"]),
    ("--validation-lengths", ["--validation-lengths", "0"]),
    ("--validation-samples", ["--validation-samples", "0"]),
    ("--validate-every", ["--validate-every", "5"]),
    ("--target-max-error", ["--validation-lengths", "1-3", "--target-max-error", "-1"]),
    ("--target-max-error", ["--target-max-error", "x"]),
    ("--patience", ["--patience", "0"]),
    # sizes bounded by memory (or MXNet's int32 indexing), refused before training with the figure
    ("--buckets", ["--buckets", "1-10000000"]),
    ("--buckets", ["--buckets", "1-100000"]),
    ("--buckets", ["--buckets", "100000"]),
    ("--hidden-sizes", ["--hidden-sizes", "100000,1"]),
    ("--ctx", ["--ctx", "cpu:99999999999"]),
    ("--validation-lengths", ["--validation-lengths", "1-100000"]),
    ("--validation-samples", ["--validation-lengths", "1-3", "--validation-samples", "1000000000"]),
    ("--eval-lengths", ["--eval-lengths", "1-100000"]),
    ("--eval-lengths", ["--eval-lengths", "1-10000000"]),
    ("--eval-samples", ["--eval-samples", "1000000000"]),
    ("--compare-gluon", ["--compare-gluon", "--optimizer", "ftrl"]),
    ("--compare-gluon", ["--compare-gluon", "--ctx", "cpu:0,1"]),
]
# Flags without a value cannot be bad on their own: --fixed (sets buckets and label mode).
NO_BAD_VALUE = {"-h", "--help", "--fixed"}

EVALUATE_CASES = [
    ("--lengths", ["{tmp}", "--lengths", "0"]),
    ("--num-samples", ["{tmp}", "--num-samples", "0"]),
    ("--seed", ["{tmp}", "--seed", "-2"]),
    ("--plot", ["{tmp}", "--plot", "{tmp}/x.txt"]),
    ("--json", ["{tmp}", "--json", "{tmp}"]),
    ("--json", ["{tmp}", "--json", "{tmp}/missing/x.json"]),
    ("--csv", ["{tmp}", "--csv", "{tmp}/x.json"]),
    ("checkpoint", ["{tmp}/none"]),
    ("checkpoint", ["{file}"]),
    ("--lengths", ["{tmp}", "--lengths", "1-100000"]),
    ("--lengths", ["{tmp}", "--lengths", "1-10000000"]),
    ("--num-samples", ["{tmp}", "--num-samples", "1000000000"]),
]


def _flags(parser):
    return {s for action in parser._actions for s in action.option_strings}  # noqa: SLF001 - argparse has no API


def test_the_train_table_covers_every_flag():
    assert {flag for flag, _ in TRAIN_CASES} | NO_BAD_VALUE == _flags(train_cli.build_parser())


def test_the_evaluate_table_covers_every_flag():
    assert {f for f, _ in EVALUATE_CASES} - {"checkpoint"} | {"-h", "--help", "--list"} == \
        _flags(evaluate_cli.build_parser())


def _run(main, argv, tmp_path, capsys, caplog):
    (tmp_path / "afile").write_text("not a directory")
    before = set(tmp_path.rglob("*"))
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{file}", str(tmp_path / "afile")) for a in argv]
    with caplog.at_level(logging.INFO):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    err = capsys.readouterr().err.strip()
    assert set(tmp_path.rglob("*")) == before, "a file was written"
    assert not [r for r in caplog.records if r.getMessage().startswith(("training ", "epoch "))], "training started"
    return code, err


@pytest.mark.parametrize("flag, argv", TRAIN_CASES, ids=[" ".join(a) for _, a in TRAIN_CASES])
def test_train_refuses_a_bad_flag_before_training(flag, argv, tmp_path, capsys, caplog):
    code, err = _run(train_cli.main, argv, tmp_path, capsys, caplog)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sinlstm-train: error: "), err
    assert flag in err, err


@pytest.mark.parametrize("flag, argv", EVALUATE_CASES, ids=[" ".join(a) for _, a in EVALUATE_CASES])
def test_evaluate_refuses_a_bad_flag_before_loading(flag, argv, tmp_path, capsys, caplog):
    code, err = _run(evaluate_cli.main, argv, tmp_path, capsys, caplog)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sinlstm-evaluate: error: "), err
    assert flag in err, err


HUGE = [(train_cli.main, ["--buckets", "1-10000000"]), (train_cli.main, ["--buckets", "1-100000"]),
        (train_cli.main, ["--validation-lengths", "1-100000"]), (train_cli.main, ["--eval-lengths", "1-100000"]),
        (train_cli.main, ["--validation-lengths", "1-99999", "--validation-samples", "1000000000"]),
        (evaluate_cli.main, ["{tmp}", "--lengths", "1-100000"])]


@pytest.mark.parametrize("main, argv", HUGE, ids=[" ".join(a) for _, a in HUGE])
def test_huge_ranges_are_refused_fast_with_the_figure(main, argv, tmp_path, capsys, caplog):
    start = time.perf_counter()
    code, err = _run(main, argv, tmp_path, capsys, caplog)
    assert code == 2 and time.perf_counter() - start < 10, err
    assert re.search(r"at most 100000 values, got 10000000|needs about [\d.]+ [GTP]iB of memory, more than the "
                     r"[\d.]+ [GMT]iB allowed", err), err


def test_an_existing_checkpoint_directory_is_accepted_and_proc_is_not(tmp_path):
    from sinlstm_sym.core.outputs import check_output_dir
    assert check_output_dir("d", tmp_path / "new" / "run") == tmp_path / "new" / "run"
    with pytest.raises(ValueError, match="cannot write in /proc"):
        check_output_dir("d", "/proc/nope")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="cannot write"):
            check_output_dir("d", locked / "run")


def test_outputs_get_the_usual_permissions(tmp_path):
    from sinlstm_sym.core.outputs import write_text_atomic
    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "out.json", "{}")
    finally:
        os.umask(mask)
    assert path.read_text() == "{}" and (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
