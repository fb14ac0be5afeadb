#!/usr/bin/env python
"""Train on your own series (a CSV column) and score held-out forecasts against naive baselines.

``python examples/own_series.py --help`` lists every flag.
"""
import sys

from sinlstm_sym.cli.series import main

if __name__ == "__main__":
    sys.exit(main())
