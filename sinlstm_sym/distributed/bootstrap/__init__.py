"""The worker bootstrap: this directory goes first on the ``PYTHONPATH`` of every worker the launcher starts,
so that its ``sitecustomize`` installs the exit hooks when the worker's Python starts (whatever the command:
a script, ``-m module``, a console script), before any of the worker's own code runs."""
import os

BOOTSTRAP_DIR = os.path.dirname(os.path.abspath(__file__))

__all__ = ["BOOTSTRAP_DIR"]
