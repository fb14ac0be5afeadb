"""Shared fixtures: a quick trained model, reused by several test modules."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
