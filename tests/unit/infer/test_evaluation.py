"""evaluate(), its table/CSV/JSON, the evaluate CLI, and forecasting against the closed form."""
import csv
import json
import subprocess

import numpy as np
import pytest

from sinlstm_sym import fit
from sinlstm_sym.infer.evaluation import Evaluation, evaluate
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.infer.predictor import Predictor


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ckpt")
    result = fit(seed=0, num_samples=30000, log_every=50, checkpoint=directory)
    return result, directory


def test_evaluate_rows(checkpointed):
    result, directory = checkpointed
    report = evaluate(directory, lengths=range(1, 21), num_samples=500, seed=4)
    assert [r["length"] for r in report.rows] == list(range(1, 21))
    assert [r["trained"] for r in report.rows] == [n <= 9 or n in (12, 16, 20) for n in range(1, 21)]
    for row in report.rows:
        assert len(row["per_step_max_abs_error"]) == row["length"]
        assert row["max_abs_error"] == pytest.approx(max(row["per_step_max_abs_error"]))
        assert 0 <= row["mse"] <= row["max_abs_error"] ** 2
    same = evaluate(result, lengths=range(1, 21), num_samples=500, seed=4)
    assert same.rows == report.rows  # a FitResult and its checkpoint give the same figures
    table = str(report).splitlines()
    assert table[0].split() == ["length", "trained", "mse", "max|err|", "worst", "step"]
    assert len(table) == 21 and table[1].split()[:2] == ["1", "yes"] and table[19].split()[:2] == ["19", "no"]


def test_evaluation_writes_json_and_csv(checkpointed, tmp_path):
    report = evaluate(checkpointed[1], lengths=[1, 3], num_samples=50)
    report.write_json(tmp_path / "e.json")
    report.write_csv(tmp_path / "e.csv")
    assert json.loads((tmp_path / "e.json").read_text()) == report.rows
    rows = list(csv.DictReader(open(tmp_path / "e.csv")))
    assert [r["length"] for r in rows] == ["1", "3"]
    assert len(rows[1]["per_step_max_abs_error"].split(";")) == 3
    assert float(rows[0]["mse"]) == pytest.approx(report.rows[0]["mse"], rel=1e-12)


def test_evaluate_rejects_other_models():
    with pytest.raises(TypeError, match="model must be"):
        evaluate(42)
    assert isinstance(evaluate(Predictor(init_params((10, 20, 1), 0)), lengths=[2], num_samples=5), Evaluation)


def test_evaluate_cli(checkpointed, root, python, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "err.png"
    proc = subprocess.run([python, "-m", "sinlstm_sym.cli.evaluate", str(checkpointed[1]), "--lengths", "1-4,12",
                           "--num-samples", "100", "--plot", str(out), "--json", str(tmp_path / "e.json")],
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((tmp_path / "e.json").read_text())) == 5
    for png in (out, tmp_path / "err-steps.png"):
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    bad = subprocess.run([python, "-m", "sinlstm_sym.cli.evaluate", str(tmp_path / "none")], capture_output=True,
                         text=True, timeout=300, cwd=root)
    assert bad.returncode == 2 and "no such checkpoint directory" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def value_model():
    return fit(seed=0, feature="value", log_every=1000).predictor(trained_lengths=range(1, 10))


def test_forecast_follows_the_closed_form(value_model):
    t0 = np.random.default_rng(7).uniform(0.0, 0.5, size=200)
    history = np.sin(t0[:, None] + 0.01 * np.arange(9)) / 2
    truth = np.sin(t0[:, None] + 0.01 * np.arange(9, 59)) / 2
    forecast = value_model.forecast(history, 50)
    assert forecast.shape == (200, 50)
    error = np.abs(forecast - truth)
    assert error[:, 0].mean() < 0.02  # one step ahead
    assert error[:, -1].mean() < 0.1  # 50 steps ahead, fed on its own outputs (measured: about 0.06)
    single = value_model.forecast(history[0], 50)
    np.testing.assert_allclose(single, forecast[0], atol=1e-6)


def test_forecast_needs_a_value_model():
    with pytest.raises(ValueError, match="feature='value'"):
        Predictor(init_params((10, 20, 1), 0), feature="time").forecast(np.zeros(5), 3)
    with pytest.raises(ValueError, match="steps"):
        Predictor(init_params((10, 20, 1), 0), feature="value").forecast(np.zeros(5), 0)


def test_evaluate_cli_lists_and_accepts_a_ckpt_directory(tmp_path, capsys):
    from sinlstm_sym.cli.evaluate import main
    run = tmp_path / "run"
    fit(buckets=[1, 2], batch_size=50, num_samples=500, num_epoch=2, seed=0, checkpoint=run, checkpoint_every=4,
        log_every=5)
    assert main([str(run), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["checkpoint", "epoch", "batch", "updates", "latest"]
    assert [line.split()[0] for line in lines[1:]] == ["ckpt-00000016", "ckpt-00000020"]
    assert lines[-1].split() == ["ckpt-00000020", "2", "0", "20", "yes"]
    older = run / "ckpt-00000016"
    assert main([str(older), "--lengths", "1-2", "--num-samples", "20", "--json", str(tmp_path / "old.json")]) == 0
    assert main([str(run), "--lengths", "1-2", "--num-samples", "20", "--json", str(tmp_path / "new.json")]) == 0
    old, new = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("old", "new"))
    assert [r["length"] for r in old] == [1, 2] and old != new  # another model: other errors


def test_evaluate_cli_writes_all_outputs_or_none(tmp_path, monkeypatch, checkpointed):
    pytest.importorskip("matplotlib")
    from sinlstm_sym.infer import plotting
    from sinlstm_sym.cli.evaluate import main

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")
    monkeypatch.setattr(plotting, "plot_predictions", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        main([str(checkpointed[1]), "--lengths", "1", "--num-samples", "5", "--json", str(tmp_path / "e.json"),
              "--plot", str(tmp_path / "e.png")])
    assert list(tmp_path.iterdir()) == []  # neither the JSON nor the first plot, nor a temporary file


def test_a_table_beyond_the_memory_ceiling_is_refused_at_once():
    import time
    from sinlstm_sym.infer.evaluation import per_length_error
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"lengths \(longest 100000, 100000 lengths\) with num_samples 3000 "
                       r"needs about [\d.]+ GiB of memory"):
        per_length_error(Predictor(init_params((10, 20, 1), seed=0)), range(1, 100001))
    assert time.perf_counter() - start < 10


def test_a_long_error_table_says_where_it_is(monkeypatch, caplog):
    """A table that takes long logs its progress (here every beat: the interval patched to 0)."""
    import logging

    from sinlstm_sym.infer import evaluation
    from sinlstm_sym.infer.evaluation import per_length_error
    from sinlstm_sym.core.heartbeat import Heartbeat
    from sinlstm_sym.recurrence.params import init_params
    from sinlstm_sym.infer.predictor import Predictor

    monkeypatch.setattr(evaluation, "Heartbeat", lambda log: Heartbeat(log, interval=0.0))
    predictor = Predictor(init_params((3, 1), 0), hidden_sizes=(3, 1), cell="fused")
    with caplog.at_level(logging.INFO, logger="sinlstm_sym.infer.evaluation"):
        rows = per_length_error(predictor, [1, 2, 3], num_samples=4)
    assert [r["length"] for r in rows] == [1, 2, 3]
    assert [r.getMessage() for r in caplog.records if r.name == "sinlstm_sym.infer.evaluation"] == \
        [f"error per length: {i} of 3 lengths scored" for i in range(3)]
