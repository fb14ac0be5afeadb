"""The public API: every name importable from the package, ``__all__`` exact, console scripts installed."""
import subprocess
import sys
from pathlib import Path

import pytest

import sinlstm_sym

PUBLIC = ["fit", "FitConfig", "ModelConfig", "DataConfig", "OptimizerConfig", "RunConfig", "FitResult",
          "SinBucketIter", "make_sym_gen", "Predictor", "evaluate", "SafeBucketingModule", "NonFiniteLossError",
          "load_checkpoint", "__version__"]


def test_all_lists_exactly_the_public_names():
    assert sorted(sinlstm_sym.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(sinlstm_sym, name) is not None


def test_evaluate_is_the_function_even_after_the_cli_is_imported():
    import sinlstm_sym.cli.evaluate  # noqa: F401
    from sinlstm_sym import evaluate
    assert callable(evaluate) and evaluate.__module__ == "sinlstm_sym.infer.evaluation"


def test_public_errors_and_classes_are_the_real_ones():
    from sinlstm_sym import NonFiniteLossError, Predictor, SafeBucketingModule
    import mxnet as mx
    assert issubclass(NonFiniteLossError, FloatingPointError)
    assert issubclass(SafeBucketingModule, mx.mod.BucketingModule)
    assert callable(Predictor.load)


@pytest.mark.parametrize("script", ["sinlstm-train", "sinlstm-evaluate", "sinlstm-series"])
def test_console_scripts_are_installed(script):
    path = Path(sys.executable).parent / script
    assert path.is_file(), f"{script} not installed next to {sys.executable}: pip install -e ."
    out = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and script in out.stdout
