"""bench/serving.py runs end to end (a smoke run: its figures are not asserted, its shape is)."""
import json
import subprocess

import pytest


@pytest.mark.slow
def test_serving_bench_smoke(root, python, tmp_path):
    out = tmp_path / "serving.json"
    proc = subprocess.run([python, str(root / "bench" / "serving.py"), "--rounds", "2", "--calls", "4",
                           "--json", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows == ["request", "1 window, L=1", "1 window, L=20", "1 window, L=100", "1000 windows, L=20"]
    assert "Predictor.forecast, 12 steps" in proc.stdout and "load average before" in proc.stdout
    samples = json.loads(out.read_text())["samples"]
    assert len(samples["1 window, L=20"]["Predictor"]) == 2 * 4  # every round, every call
    assert len(samples["1000 windows, L=20"]["Predictor"]) == 2 * 1
    for name, times in samples["1 window, L=1"].items():
        assert len(times) == 8 and all(t > 0 for t in times), name
    for line in proc.stdout.splitlines():  # every implementation gave the Predictor's outputs before timing
        if "largest difference to the Predictor" in line:
            assert float(line.rsplit(" ", 1)[1]) < 1e-5, line
    if "Predictor (executors)" in samples["1 window, L=1"]:  # the native cell served directly: its executors agree
        assert "Predictor (executors): largest difference to the Predictor 0.00e+00" in proc.stdout
        assert "Predictor.forecast through executors, 12 steps" in proc.stdout
        assert len(samples["forecast"]["Predictor (executors)"]) == 2 * 1


def test_serving_bench_refuses_bad_flags(root, python):
    proc = subprocess.run([python, str(root / "bench" / "serving.py"), "--rounds", "0"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "argument --rounds: must be at least 1, got 0" in proc.stderr
