"""Shared fixtures: the settings of a tiny run and one such run, the default run, the checkout's root and
this interpreter; the ``native`` marker.

A test marked ``native`` needs the native operator. It is built (or loaded from the per-user cache)
when the first such test runs, never while tests are collected, and every such test is skipped with
the reason when it cannot be built here."""
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A tiny run: 6 batches of 100 windows an epoch, lengths 1-3, LSTM layers of 4 and 1 units.
TINY_SETTINGS: Dict[str, Any] = {"seed": 1, "num_samples": 600, "batch_size": 100, "buckets": [1, 2, 3],
                                 "hidden_sizes": [4, 1], "log_every": 3}
TINY_FLAGS = ["--seed", "1", "--num-samples", "600", "--batch-size", "100", "--buckets", "1-3", "--hidden-sizes", "4,1",
              "--log-every", "3"]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def default_run():
    """The default training run (the recipe: lengths 1..9, 12, 16, 20, 2000 updates of 100 windows, seed 0)."""
    from sinlstm_sym import fit
    return fit(seed=0, log_every=250)


@pytest.fixture
def tiny_settings() -> Dict[str, Any]:
    """``fit`` settings of a tiny run (6 batches an epoch, a few seconds at most): a new dict for each test."""
    return {key: list(value) if isinstance(value, list) else value for key, value in TINY_SETTINGS.items()}


@pytest.fixture
def tiny_flags() -> List[str]:
    """The same settings as ``sinlstm-train`` flags: a new list for each test."""
    return list(TINY_FLAGS)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Tuple[Path, Any]:
    """One finished tiny run of 2 epochs with a checkpoint every 3 updates (ckpt-9 and ckpt-12 are kept), and its
    ``FitResult``. Shared by every test that asks for it: copy the directory before changing anything in it."""
    from sinlstm_sym import fit
    run = tmp_path_factory.mktemp("tiny") / "run"
    return run, fit(num_epoch=2, checkpoint=run, checkpoint_every=3, **TINY_SETTINGS)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("native") is None:
        return
    from sinlstm_sym.native import NativeUnavailableError, load_native
    try:
        load_native()
    except NativeUnavailableError as err:
        pytest.skip(f"the native operator could not be built or loaded here: {err}")
