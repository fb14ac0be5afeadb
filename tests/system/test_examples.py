"""examples/bucket_train.py end to end, in a subprocess, with small flags."""
import subprocess

import pytest

SMALL = ["--num-samples", "6000", "--log-every", "10", "--eval-samples", "200", "--eval-lengths", "1-3,12,13"]


def run_example(root, python, *args, timeout=300):
    return subprocess.run([python, str(root / "examples" / "bucket_train.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=root)


def test_default_flags_train_evaluate_and_plot(root, python, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "pred.png"
    proc = run_example(root, python, *SMALL, "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1 batch 60/60" in proc.stderr  # logging goes to stderr; 2 epochs of 60 batches of 100
    assert "error per length" in proc.stdout
    table = [line.split() for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [(row[0], row[1]) for row in table] == [("1", "yes"), ("2", "yes"), ("3", "yes"), ("12", "yes"),
                                                   ("13", "no")]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "Subgraph backend" not in proc.stderr


def test_fixed_with_gluon_comparison(root, python):
    proc = run_example(root, python, "--fixed", "--compare-gluon", *SMALL)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.strip().startswith("0 ")]
    assert len(rows) == 2
    for _, _, ours, theirs in rows:
        assert abs(float(ours) - float(theirs)) <= 1e-4 * float(theirs)


def test_bad_flag_value_is_a_clear_error(root, python):
    proc = run_example(root, python, "--buckets", "0-3", "--num-samples", "600")
    assert proc.returncode == 2
    assert "argument --buckets: expected ints >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr
