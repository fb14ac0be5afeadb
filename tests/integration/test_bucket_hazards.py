"""MXNet issue 8663 and the BucketingModule hazards, each in a subprocess where a crash is possible.

The general ``SafeBucketingModule`` is run on three models (tests/support/bucket_models.py): the sine model,
a token LSTM and a seq2seq-shaped model with tuple keys; the ``SineBucketingModule`` fit uses adds the
sine contract's own messages."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "bucket_scenarios.py"


_SERVER = {}  # the scenario server of this module's tests and the directory of their output files


@pytest.fixture(scope="module", autouse=True)
def scenario_server(tmp_path_factory):
    """``bucket_scenarios.py --serve``: MXNet imported once, each scenario in a process of its own (a fork)."""
    server = subprocess.Popen([sys.executable, str(SCRIPT), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=SCRIPT.parent)
    _SERVER.update(process=server, directory=tmp_path_factory.mktemp("scenarios"), count=0)
    yield
    server.stdin.close()
    server.wait(timeout=60)
    _SERVER.clear()


def run_unchecked(scenario, mode, model="sine"):
    """The scenario's completed process: its return code (negative: killed by that signal), stdout and stderr."""
    server, directory = _SERVER["process"], _SERVER["directory"]
    _SERVER["count"] += 1
    out, err = (directory / f"{_SERVER['count']}-{scenario}-{mode}-{model}.{name}" for name in ("out", "err"))
    server.stdin.write(json.dumps({"scenario": scenario, "mode": mode, "model": model, "stdout": str(out),
                                   "stderr": str(err)}) + "\n")
    server.stdin.flush()
    answer = server.stdout.readline()
    assert answer, f"the scenario server ended (code {server.wait()})"
    return subprocess.CompletedProcess([SCRIPT.name, scenario, mode, model], json.loads(answer)["returncode"],
                                       out.read_text(), err.read_text())


def run(scenario, mode, model="sine"):
    proc = run_unchecked(scenario, mode, model)
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert "terminate called" not in proc.stderr
    return proc


def test_the_server_reports_exit_codes_output_and_crashes_as_a_subprocess_would():
    crashed = run_unchecked("crash", "plain")
    assert crashed.returncode == -signal.SIGABRT and crashed.stdout == "before the crash\n"
    failed = run_unchecked("1_params_differ", "plain")
    direct = subprocess.run([sys.executable, str(SCRIPT), "1_params_differ", "plain"], capture_output=True, text=True,
                            timeout=240, cwd=SCRIPT.parent)
    assert failed.returncode == direct.returncode == 1
    assert last_error_line(failed.stderr) == last_error_line(direct.stderr)


def last_error_line(stderr):
    return [line for line in stderr.splitlines() if line.strip()][-1]


@pytest.mark.slow
@pytest.mark.parametrize("mode, model", [("plain", "sine"), ("sine", "sine"), ("safe", "sine"), ("plain", "token"),
                                         ("safe", "token"), ("plain", "tuple"), ("safe", "tuple")])
def test_issue_8663_scenario_trains(mode, model):
    """Custom loop, default key 5 of lengths 1..20 (1..12 for the token models) in random order: no abort,
    loss falls."""
    proc = run("issue_8663", mode, model)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("OK batches=400 keys=20" if model == "sine" else "OK batches=240 keys=12")


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
    """The module fit trains with (the sine contract on top of the general checks)."""
    proc = run(scenario, "sine")
    assert proc.returncode == 1
    line = last_error_line(proc.stderr)
    assert line.startswith(f"{error}: ") and message in line, line
    assert "MXNetError" not in proc.stderr and "simple_bind" not in proc.stderr


GENERAL = {  # scenario -> (error, message per model)
    "1_params_differ": ("ValueError", {
        "sine": "sym_gen gives parameter 'fc3_bias' for bucket_key 3 but not for bucket_key 9",
        "token": "sym_gen gives parameter 'pred3_bias' for bucket_key 3 but not for bucket_key 9",
        "tuple": "sym_gen gives parameter 'pred3_bias' for bucket_key (3, 2) but not for bucket_key (9, 8)"}),
    "2_no_provide_label": ("ValueError", {
        "sine": "batch 2 (bucket_key 4): provide_label is missing", "token": "batch 2 (bucket_key 4): provide_label "
        "is missing", "tuple": "batch 2 (bucket_key (4, 3)): provide_label is missing"}),
    "3_names_differ": ("ValueError", {
        "sine": "batch 2 (bucket_key 9): provide_data names must be ['data'] (in this order, as bucket_key 9 was "
                "bound), got ['x']",
        "token": "batch 2 (bucket_key 9): provide_data names must be ['data'] (in this order, as bucket_key 9 was "
                 "bound), got ['x']",
        "tuple": "batch 2 (bucket_key (9, 8)): provide_data names must be ['source', 'target'] (in this order, as "
                 "bucket_key (9, 8) was bound), got ['x', 'target']"}),
    "4_key_not_length": ("ValueError", {  # declared through SINLSTM_KEY_LENGTHS
        "sine": "bucket_key is 5 but data 'data' holds 3 steps (axis T of layout NTC, shape (8, 3, 1)); key_lengths "
                "declares that the key gives its length",
        "token": "bucket_key is 5 but data 'data' holds 3 steps (axis T of layout NT, shape (8, 3))",
        "tuple": "bucket_key is (5, 4) but data 'source' holds 3 steps (axis T of layout NT, shape (8, 3)); "
                 "key_lengths declares that the key[0] gives its length"}),
    "5_key_none": ("TypeError", {
        "sine": "bucket_key must be an int like default_bucket_key 9, got '3' (str)",
        "token": "bucket_key must be an int like default_bucket_key 9, got '3' (str)",
        "tuple": "bucket_key must be a tuple of 2 like default_bucket_key (9, 8), got 3 (int)"}),
    "7_outputs_after_failed_switch": ("RuntimeError", {m: "no outputs: the last forward() failed"
                                                       for m in ("sine", "token", "tuple")}),
    "8_shapes_differ": ("ValueError", {
        "sine": "'fc_bias' shape (13,) dtype float32 for bucket_key 9 but shape (7,) dtype float32 for bucket_key 3",
        "token": "'embedding0_weight' shape (12, 17) dtype float32 for bucket_key 9 but shape (12, 11)",
        "tuple": "'enc_i2h_weight' shape (64, 17) dtype float32 for bucket_key (9, 8) but shape (64, 11)"}),
}


@pytest.mark.parametrize("model", ["sine", "token", "tuple"])
@pytest.mark.parametrize("scenario", sorted(GENERAL))
def test_general_module_raises_our_error(scenario, model):
    """The general SafeBucketingModule, on the sine model, a token model and tuple keys."""
    error, messages = GENERAL[scenario]
    proc = run(scenario, "safe", model)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    line = last_error_line(proc.stderr)
    assert line.startswith(f"{error}: ") and messages[model] in line, line
    assert "MXNetError" not in proc.stderr and "simple_bind" not in proc.stderr


@pytest.mark.parametrize("model, outcome", [
    ("sine", "OK"),  # stock runs it too: nothing declared the key a length, nothing is inferred
    ("token", "ValueError: batch 1 (bucket_key 5): sym_gen(5) cannot take the shapes [('data', (8, 3)), "
              "('softmax_label', (8, 3))]: MXNetError: Error in operator split0"),  # stock: MXNetError at bind
    ("tuple", "ValueError: batch 1 (bucket_key (5, 4)): sym_gen((5, 4)) cannot take the shapes [('source', (8, 3))"),
])
def test_key_not_length_undeclared_refused_only_where_stock_aborts(model, outcome):
    proc = run("4_key_not_length_undeclared", "safe", model)
    assert outcome in proc.stdout + proc.stderr, proc.stdout + proc.stderr[-2000:]
    assert proc.returncode == (0 if outcome == "OK" else 1)


@pytest.mark.parametrize("model", ["sine", "token", "tuple"])
def test_keys_above_the_default_train_as_stock_with_one_warning_per_input(model):
    """Stock MXNet re-allocates and trains correctly: the general module warns once per input, same losses."""
    stock, safe = run("6_key_above_default", "plain", model), run("6_key_above_default", "safe", model)
    assert stock.returncode == 0 and safe.returncode == 0, safe.stderr[-2000:]
    assert "Need to re-allocate" in stock.stderr
    stock_losses, safe_losses = (p.stdout.split(" warnings ")[0] for p in (stock, safe))
    assert stock_losses.startswith("OK losses ") and safe_losses == stock_losses
    inputs = {"sine": 1, "token": 2, "tuple": 3}[model]  # the inputs that grow (the sine label (8, 1) does not)
    assert f" warnings {inputs} batch 2 (bucket_key {9 if model != 'tuple' else (9, 8)}): data " in safe.stdout


@pytest.mark.parametrize("mode, model", [("sine", "sine"), ("safe", "sine"), ("safe", "token"), ("safe", "tuple")])
def test_numpy_int_keys_as_saved_in_checkpoints_work(mode, model):
    proc = run("5_numpy_int_key", mode, model)
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


@pytest.mark.parametrize("model, scenario, outcome", [
    ("token", "1_params_differ", "MXNetError: _Map_base: :at"),  # the 8663 message
    ("tuple", "1_params_differ", "MXNetError: _Map_base: :at"),
    ("token", "3_names_differ", "OK"),
    ("token", "7_outputs_after_failed_switch", "OK outputs (72, 12)"),  # the previous bucket's 9 steps
    ("tuple", "8_shapes_differ", "Inferred shape does not match shared_exec.arg_array's shape"),
])
def test_plain_mxnet_has_the_hazard_on_token_models_too(model, scenario, outcome):
    proc = run(scenario, "plain", model)
    assert outcome in proc.stdout + proc.stderr


def test_switching_buckets_does_not_grow_memory():
    proc = run("memory", "safe")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rss = [float(x) for x in proc.stdout.split()[2:]]
    assert len(rss) == 5
    assert rss[-1] - rss[0] < 8.0, rss  # MiB, after warm-up (batch 50) to batch 450; measured: about 0.3
