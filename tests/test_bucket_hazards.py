"""MXNet issue 8663 and the BucketingModule hazards, each in a subprocess where a crash is possible."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("bucket_scenarios.py")


def run(scenario, mode, timeout=240):
    proc = subprocess.run([sys.executable, str(SCRIPT), scenario, mode], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert "terminate called" not in proc.stderr
    return proc


def last_error_line(stderr):
    return [line for line in stderr.splitlines() if line.strip()][-1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_issue_8663_scenario_trains(mode):
    """Custom loop, default key 5 of lengths 1..20 in random order: no abort, loss falls."""
    proc = run("issue_8663", mode)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("OK batches=400 keys=20")


@pytest.mark.parametrize("scenario, error, message", [
    ("1_params_differ", "ValueError", "sym_gen gives parameter 'fc3_bias' for bucket_key 3 but not for bucket_key 9"),
    ("2_no_provide_label", "ValueError", "batch 2 (bucket_key 4): provide_label is missing"),
    ("3_names_differ", "ValueError", "batch 2 (bucket_key 9): provide_data names must be ['data'], got ['x']"),
    ("4_key_not_length", "ValueError", "bucket_key is 5 but the data holds 3 steps"),
    ("5_key_none", "TypeError", "bucket_key must be an int (the window length), got '3' (str)"),
    ("6_key_above_default", "ValueError", "bucket_key 9 is larger than the default bucket 4"),
    ("7_outputs_after_failed_switch", "RuntimeError", "no outputs: the last forward() failed"),
    ("8_shapes_differ", "ValueError", "'fc_bias' shape (13,) dtype float32 for bucket_key 9 but shape (7,)"),
])
def test_hazard_raises_our_error(scenario, error, message):
    proc = run(scenario, "safe")
    assert proc.returncode == 1
    line = last_error_line(proc.stderr)
    assert line.startswith(f"{error}: ") and message in line, line
    assert "MXNetError" not in proc.stderr and "simple_bind" not in proc.stderr


def test_numpy_int_keys_as_saved_in_checkpoints_work():
    proc = run("5_numpy_int_key", "safe")
    assert proc.returncode == 0 and proc.stdout.startswith("OK"), proc.stderr[-2000:]


@pytest.mark.parametrize("scenario, outcome", [
    ("1_params_differ", "RuntimeError: simple_bind error"),  # MXNet issue 11384
    ("2_no_provide_label", "OK warnings: [\"Data provided by label_shapes don't match"),  # trains on stale labels
    ("3_names_differ", "OK"),  # silently accepted
    ("7_outputs_after_failed_switch", "OK outputs (8,)"),  # the previous bucket's outputs
])
def test_plain_mxnet_still_has_the_hazard(scenario, outcome):
    """The hazards are real in MXNet 1.9.1 (if one of these starts failing, MXNet changed)."""
    proc = run(scenario, "plain")
    assert outcome in proc.stdout + proc.stderr


def test_switching_buckets_does_not_grow_memory():
    proc = run("memory", "safe")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rss = [float(x) for x in proc.stdout.split()[2:]]
    assert len(rss) == 5
    assert rss[-1] - rss[0] < 8.0, rss  # MiB, after warm-up (batch 50) to batch 450; measured: about 0.3
