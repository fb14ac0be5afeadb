"""The benchmark script still runs end to end (a smoke run; its figures are not asserted)."""
import json
import subprocess

import pytest


@pytest.mark.slow
def test_train_throughput_smoke(root, python, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([python, str(root / "bench" / "train_throughput.py"), "--rounds", "1", "--rows", "1,3,5,11",
                           "--batches", "30", "--warmup", "30", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ") and line[2:3].isdigit()]
    assert [line.split("|")[1].strip() for line in table] == ["1", "3", "5", "11"]
    doc = json.loads(out.read_text())
    e2e = doc["measurements"]["e2e-mixed"][0]
    assert e2e["cell"] in ("native", "fused") and e2e["env"]["OMP_NUM_THREADS"] is None  # as a user runs it


@pytest.mark.slow
def test_compare_checkouts_smoke(root, python):
    proc = subprocess.run([python, str(root / "bench" / "compare_checkouts.py"), "--rounds", "1", "--batch-size", "100",
                           "--num-samples", "20000", "--task", "mixed", f"a={root}", f"b={root}"],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.startswith(("| a ", "| b "))]
    assert [r[1].strip() for r in rows] == ["a", "b"] and rows[0][3].strip() == "1.000x"
    assert all(float(r[2].replace(",", "")) > 0 for r in rows)
