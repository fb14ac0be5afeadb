"""The console scripts ``sinlstm-train``, ``sinlstm-evaluate`` and ``sinlstm-series``.

A top-level module, outside the package, so that it imports in no time: the package (and MXNet) is imported
here, inside the handlers, so Ctrl-C at any moment, the imports included, exits 130 with one line and no
traceback, and SIGTERM exits 143 (while training, both stop at a batch boundary and write a checkpoint if
asked: :func:`sinlstm_sym.train.loop.stop_on_interrupt`).
"""
import importlib
import signal
import sys
from typing import Any, Callable

INTERRUPTED_EXIT = 128 + signal.SIGINT
TERMINATED_EXIT = 128 + signal.SIGTERM


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(TERMINATED_EXIT)


def _run(prog: str, module: str) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        main: Callable[[], int] = importlib.import_module(module).main
        return main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    finally:
        signal.signal(signal.SIGTERM, previous)


def train() -> int:
    """``sinlstm-train``: :func:`sinlstm_sym.cli.train.main`."""
    return _run("sinlstm-train", "sinlstm_sym.cli.train")


def evaluate() -> int:
    """``sinlstm-evaluate``: :func:`sinlstm_sym.cli.evaluate.main`."""
    return _run("sinlstm-evaluate", "sinlstm_sym.cli.evaluate")


def series() -> int:
    """``sinlstm-series``: :func:`sinlstm_sym.cli.series.main`."""
    return _run("sinlstm-series", "sinlstm_sym.cli.series")
