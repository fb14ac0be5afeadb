"""The machine's load, for tests that time things: their limits grow with the load (a shared machine runs
other jobs), and a test that cannot mean anything on a machine this busy skips, saying so."""
import os

import pytest

# Above this many runnable processes per CPU core, timing a job says nothing about the code under test.
MAX_LOAD_PER_CPU = 8.0


def load_per_cpu() -> float:
    """The 1-minute load average per CPU core (0 where the system does not tell)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return 0.0


def scaled(seconds: float) -> float:
    """``seconds`` on an idle machine, stretched by the load per CPU core above 1."""
    return seconds * max(1.0, load_per_cpu())


def skip_if_overloaded() -> None:
    """Skip the calling test (with the figure) when the machine is too busy to time anything."""
    load = load_per_cpu()
    if load > MAX_LOAD_PER_CPU:
        pytest.skip(f"the machine is too busy to time a job: load {load:.1f} per CPU core "
                    f"(more than {MAX_LOAD_PER_CPU:g})")
