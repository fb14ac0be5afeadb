"""The console scripts ``sinlstm-train`` and ``sinlstm-evaluate``.

``sinlstm-train`` trains the sine predictor and prints its error per length
(:mod:`sinlstm_sym.cli.train`); ``sinlstm-evaluate DIR`` scores a checkpoint
(:mod:`sinlstm_sym.cli.evaluate`). ``--help`` lists every flag of each.

This module sits outside the package so that it imports in no time: the package (and MXNet) is
imported inside the handlers, so Ctrl-C at any moment, the imports included, exits 130 with one line
and no traceback, and SIGTERM exits 143. While training, both stop at a batch boundary and write a
checkpoint if one was asked for.

Exit codes: 0 success; 1 a failure while training (non-finite loss, divergence, full disk, an updater
error); 2 a bad flag or a refused setting, before anything is trained; 130 Ctrl-C; 143 SIGTERM.

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
