"""The console scripts ``sinlstm-train`` and ``sinlstm-evaluate``, and the examples' entry points.

``sinlstm-train`` trains the sine predictor and prints its error per length
(:mod:`sinlstm_sym.cli.train`); ``sinlstm-evaluate DIR`` scores a checkpoint
(:mod:`sinlstm_sym.cli.evaluate`). ``--help`` lists every flag of each.

This module sits outside the package so that it imports in no time: the package (and MXNet) is
imported inside the handlers, so Ctrl-C at any moment, the imports included, exits 130 with one line
and no traceback, and SIGTERM exits 143. While training, both stop at a batch boundary and write a
checkpoint if one was asked for. Once imported, every command runs through
:func:`sinlstm_sym.cli.runner.run_main`, so all end the same way.

Exit codes: 0 success; 1 a failure while working (non-finite loss, divergence, full disk, a refused
permission, an updater error), with one line; 2 a bad flag or a refused setting, before any work;
130 Ctrl-C; 143 SIGTERM.

Examples
--------
sinlstm-train --num-epoch 1 --checkpoint run1
sinlstm-evaluate run1 --lengths 1-20
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
    """Run ``module``'s ``main()`` as the command ``prog``."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        main: Callable[[], int] = importlib.import_module(module).main
        runner = importlib.import_module("sinlstm_sym.cli.runner")
        return runner.run_main(prog, main)
    except KeyboardInterrupt:  # while importing
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
    """``python examples/own_series.py``: :func:`sinlstm_sym.cli.series.main`."""
    return _run("own_series.py", "sinlstm_sym.cli.series")
