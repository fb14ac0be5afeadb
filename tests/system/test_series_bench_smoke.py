"""bench/series_accuracy.py runs end to end on a small setting and prints its table."""
import re
import subprocess

import pytest

pytest.importorskip("statsmodels")


@pytest.mark.slow
def test_series_accuracy_smoke(root, python):
    out = subprocess.run([python, str(root / "bench" / "series_accuracy.py"), "--series", "synthetic",
                          "--seeds", "0", "--levels", "last", "--num-epoch", "1", "--num-samples", "1000"],
                         capture_output=True, text=True, timeout=600, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("MASE at h=1, 3, 6") and "model (last)" in lines[1] and "arima" in lines[1]
    row = re.findall(r"(\d+\.\d\d)/(\d+\.\d\d)/(\d+\.\d\d)", lines[2])
    assert lines[2].startswith("synthetic") and len(row) == 5  # model, naive, seasonal naive, ARIMA, ETS
    # seasonal-naive repeats last season's value: the same MASE at every horizon up to the season
    assert row[2][0] == row[2][1] == row[2][2]


def test_series_accuracy_refuses_unknown_names(root, python):
    out = subprocess.run([python, str(root / "bench" / "series_accuracy.py"), "--series", "gdp"],
                         capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 2 and "unknown series or levels ['gdp']" in out.stderr
