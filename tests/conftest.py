"""Shared fixtures: a quick trained model, reused by several test modules; the ``native`` marker.

A test marked ``native`` needs the native operator. It is built (or loaded from the per-user cache)
when the first such test runs, never while tests are collected, and every such test is skipped with
the reason when it cannot be built here."""
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


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("native") is None:
        return
    from sinlstm_sym.native import NativeUnavailableError, load_native
    try:
        load_native()
    except NativeUnavailableError as err:
        pytest.skip(f"the native operator could not be built or loaded here: {err}")
