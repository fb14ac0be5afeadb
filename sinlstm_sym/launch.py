"""``python -m sinlstm_sym.launch -n 2 -s 1 -- python train.py``: the launcher's command line.

The launcher lives in :mod:`sinlstm_sym.distributed.launcher`. Nothing in the package imports this module,
so that running it with ``-m`` finds it not yet imported (no runpy ``RuntimeWarning``).
"""
import sys

from .distributed.launcher import launch, main

__all__ = ["launch", "main"]

if __name__ == "__main__":
    sys.exit(main())
