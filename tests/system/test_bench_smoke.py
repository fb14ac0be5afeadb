"""Every maintained tool of bench/ runs once on tiny settings (never waiting for a quiet machine) and prints
figures of the right shape: rows present, numbers positive and finite, ratios that follow from the printed
figures, files written. Timings themselves are never asserted. bench/benchkit.py, the tools' shared helpers,
is tested directly."""
import argparse
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import benchkit  # noqa: E402


def run_tool(root: Path, python: str, tool: str, *args: str, code: int = 0, cwd: Optional[Path] = None) -> str:
    proc = subprocess.run([python, str(root / "bench" / tool), *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd or root)
    assert proc.returncode == code, f"{tool} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout if code == 0 else proc.stderr


def number(text: str) -> float:
    value = float(text.replace(",", "").rstrip("xs% ").strip())
    assert math.isfinite(value), text
    return value


def table_rows(stdout: str, first_cell: str = r"\d") -> List[List[str]]:
    """The cells of the Markdown table rows whose first cell matches ``first_cell``."""
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in stdout.splitlines() if line.startswith("| ")]
    return [r for r in rows if re.fullmatch(first_cell, r[0])]


@pytest.mark.slow
def test_train_throughput_smoke(root, python, tmp_path):
    out = tmp_path / "bench.json"
    stdout = run_tool(root, python, "train_throughput.py", "--rounds", "1", "--rows", "1,5,11", "--batches", "10",
                      "--warmup", "10", "--batch-size", "50", "--max-other-load", "inf", "--json", str(out))
    rows = table_rows(stdout, r"\d+")
    assert [r[0] for r in rows] == ["1", "5", "11"]
    rates = {r[0]: number(r[2]) for r in rows}
    assert all(rate > 0 for rate in rates.values())
    for r in rows:  # x Gluon ref = the row's rate / the Gluon row's (rounded as printed)
        assert number(r[5]) == pytest.approx(rates[r[0]] / rates["5"], rel=0.01, abs=0.006)
        assert number(r[9]) > 0 and number(r[10]) > 0  # peak RSS, final loss
    # the fused fit row and the Gluon reference train the same model on the same windows from the same weights
    assert number(rows[0][10]) == pytest.approx(number(rows[1][10]), rel=1e-3)
    doc = json.loads(out.read_text())
    e2e = doc["measurements"]["e2e-mixed"][0]
    assert e2e["cell"] in ("native", "fused") and e2e["env"]["OMP_NUM_THREADS"] is None  # as a user runs it
    assert doc["summary"]["e2e-mixed"]["mean_length"] < 9 and doc["settings"]["num_samples"] == 20 * 50
    assert list(doc["settings"]["data_checksums"]) == ["fixed"]  # the end-to-end rows make their own windows
    assert [m["attempts"][0]["waited"] for ms in doc["measurements"].values() for m in ms] == [0.0] * 3


def test_train_throughput_refuses_bad_settings(root, python):
    assert "unknown row 'x'" in run_tool(root, python, "train_throughput.py", "--rows", "1,x", code=1)
    assert "gcd >= 10" in run_tool(root, python, "train_throughput.py", "--warmup", "7", code=2)


@pytest.mark.slow
def test_time_to_accuracy_smoke(root, python, tmp_path):
    rows = "library,fused,torch" if benchkit.torch_version()[0] else "library,fused"
    stdout = run_tool(root, python, "time_to_accuracy.py", "--seeds", "0", "--rows", rows, "--torch-threads", "1",
                      "--num-samples", "12000", "--num-epoch", "1", "--validate-every", "40",
                      "--validation-samples", "20", "--json", str(tmp_path / "tta.json"),
                      "--plot", str(tmp_path / "tta.png"))
    assert "max_update=120" in stdout and "(OK)" in stdout
    doc = json.loads((tmp_path / "tta.json").read_text())
    for row in rows.split(","):
        run = doc["runs"]["0"][row]
        assert run["updates"] == 120 and [r[0] for r in run["records"]] == [40, 80, 120]
        assert all(0 < r[2] < 1 for r in run["records"]) and run["train_seconds"] > 0
        assert [r[1] for r in run["records"]] == sorted(r[1] for r in run["records"])  # seconds accumulate
    final = table_rows(stdout, "final max abs error")[0]
    assert number(final[1]) == pytest.approx(doc["finals"]["library"], abs=1e-5)
    assert number(final[2].split()[0]) == pytest.approx(doc["total_seconds"]["library"], abs=0.006)
    # the native (or fused) default cell and the fused cell train the same numbers
    assert doc["finals"]["library"] == pytest.approx(doc["finals"]["fused"], rel=1e-3)
    assert (tmp_path / "tta.png").stat().st_size > 10000


def test_time_to_accuracy_refuses_unknown_rows(root, python):
    assert "--rows must name some of" in run_tool(root, python, "time_to_accuracy.py", "--rows", "gluon", code=2)


@pytest.mark.slow
def test_compare_checkouts_smoke(root, python, tmp_path):
    stdout = run_tool(root, python, "compare_checkouts.py", "--rounds", "1", "--batch-size", "100", "--num-samples",
                      "10000", "--task", "mixed", "--max-other-load", "inf", "--json", str(tmp_path / "cc.json"),
                      f"a={root}", f"b={root}")
    rows = table_rows(stdout, "[ab]")
    assert [r[0] for r in rows] == ["a", "b"] and rows[0][2] == "1.000x"
    assert number(rows[1][2]) == pytest.approx(number(rows[1][1]) / number(rows[0][1]), abs=0.0006)
    doc = json.loads((tmp_path / "cc.json").read_text())
    assert all(len(v) == 1 and v[0] > 0 for v in doc["rates"].values())


def test_compare_checkouts_refuses_a_directory_without_the_library(root, python, tmp_path):
    assert "expected NAME=DIR with DIR/sinlstm_sym" in run_tool(root, python, "compare_checkouts.py", "--num-samples",
                                                                "30000", f"a={tmp_path}", code=1)


@pytest.mark.slow
def test_bucket_memory_smoke(root, python, tmp_path):
    stdout = run_tool(root, python, "bucket_memory.py", "--cell", "fused", "--num-samples", "3000", "--long-length",
                      "30", "--long-batches", "2", "--json", str(tmp_path / "memory.json"))
    row = table_rows(stdout, "fused")[0]
    doc = json.loads((tmp_path / "memory.json").read_text())
    one, nine = doc["one"]["peak_rss_mib"], doc["nine"]["peak_rss_mib"]
    assert number(row[1].split()[0]) == pytest.approx(one, abs=0.06) and one > 50
    assert number(row[2].split()[0]) == pytest.approx(nine, abs=0.06) and nine > 50
    assert number(row[3]) == pytest.approx(nine / one, abs=0.0006)
    long = doc["long"]
    assert row[5] == f"{long['end_rss_mib']:.1f} MiB ({long['peak_rss_mib']:.1f})" and long["end_rss_mib"] > 50
    assert doc["settings"]["long_length"] == 30
    growth = re.findall(r" (\d):\+([0-9.]+)", stdout)
    assert [int(k) for k, _ in growth] == list(range(1, 10)) and all(float(v) >= 0 for _, v in growth)


@pytest.mark.slow
def test_bucketing_overhead_smoke(root, python, tmp_path):
    stdout = run_tool(root, python, "bucketing_overhead.py", "--rounds", "1", "--batches", "4",
                      "--json", str(tmp_path / "overhead.json"))
    assert "sine model" in stdout and "token model" in stdout
    doc = json.loads((tmp_path / "overhead.json").read_text())
    assert sorted(doc) == ["sine", "token"] and sorted(doc["sine"]) == ["safe", "sine", "stock"]
    for model in doc.values():
        assert model["stock"]["wall_ratio"] == 1.0
        for label, figures in model.items():
            assert figures["wall_ms"] > 0 and figures["cpu_ms"] > 0
            assert ("checks_us" in figures) == (label != "stock")


@pytest.mark.slow
def test_series_accuracy_smoke(root, python, tmp_path):
    pytest.importorskip("statsmodels")
    stdout = run_tool(root, python, "series_accuracy.py", "--series", "synthetic", "--seeds", "0", "--levels", "last",
                      "--num-epoch", "1", "--num-samples", "1000", "--json", str(tmp_path / "series.json"))
    lines = stdout.splitlines()
    assert lines[0].startswith("MASE at h=1, 3, 6") and "model (last)" in lines[1] and "arima" in lines[1]
    row = re.findall(r"(\d+\.\d\d)/(\d+\.\d\d)/(\d+\.\d\d)", lines[2])
    assert lines[2].startswith("synthetic") and len(row) == 5  # model, naive, seasonal naive, ARIMA, ETS
    # seasonal-naive repeats last season's value: the same MASE at every horizon up to the season
    assert row[2][0] == row[2][1] == row[2][2]
    doc = json.loads((tmp_path / "series.json").read_text())
    assert [f"{v:.2f}" for v in doc["synthetic"]["naive"]] == list(row[1])


def test_series_accuracy_refuses_unknown_names(root, python):
    assert "unknown series or levels ['gdp']" in run_tool(root, python, "series_accuracy.py", "--series", "gdp",
                                                          code=2)


def test_every_tool_says_what_it_measures(root, python):
    """--help of each tool in bench/README.md starts with what it measures."""
    listed = re.findall(r"python bench/(\w+\.py)", (BENCH / "README.md").read_text())
    assert sorted(set(listed)) == sorted(p.name for p in BENCH.glob("*.py") if p.name != "benchkit.py")
    helps = {tool: subprocess.Popen([python, str(BENCH / tool), "--help"], stdout=subprocess.PIPE, text=True)
             for tool in set(listed)}  # side by side: most of each is importing MXNet
    for tool, proc in helps.items():
        stdout, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and len(stdout.splitlines()) > 3, tool


def test_positive_int_and_rotated():
    assert benchkit.positive_int("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1, got 0"):
        benchkit.positive_int("0")
    assert benchkit.rotated(["a", "b", "c"], 4) == ["b", "c", "a"] and benchkit.rotated([], 1) == []


def test_wait_for_quiet_returns_at_once_when_asked_not_to_wait():
    assert benchkit.wait_for_quiet(math.inf, 20) == 0.0
    assert benchkit.wait_for_quiet(0.3, 0) == 0.0
    assert benchkit.wait_for_quiet(-1, 20) == 0.0
    assert not benchkit.load_checked(argparse.Namespace(max_other_load=math.inf))


def test_run_child_returns_the_marked_result_and_the_load(tmp_path):
    code = "import benchkit; print('noise'); benchkit.emit_result({'x': 1})"
    out = benchkit.run_child([sys.executable, "-c", code], cwd=str(BENCH))
    assert out["x"] == 1 and out["child_wall"] > 0 and out["child_cpu_seconds"] >= 0
    assert out["foreign_load"] is None or out["foreign_load"] >= 0
    with pytest.raises(SystemExit, match="failed \\(exit 3\\)"):
        benchkit.run_child([sys.executable, "-c", "raise SystemExit(3)"])
    benchkit.write_json(str(tmp_path / "doc.json"), {"a": [1.5]})
    assert json.loads((tmp_path / "doc.json").read_text()) == {"a": [1.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]
