#!/usr/bin/env python
"""Train on your own series (a CSV column) and score held-out forecasts against naive baselines.

``python examples/own_series.py --help`` lists every flag. It runs as the console scripts do: the package
is imported inside the entry point, so Ctrl-C at any moment exits 130 with one line (SIGTERM: 143), and a
full disk, a refused permission or a failed training end with one line and exit code 1.
"""
import sys

from sinlstm_console import series

if __name__ == "__main__":
    sys.exit(series())
