#!/usr/bin/env python
"""Train the stacked-LSTM sine predictor on variable-length windows (the ``sinlstm-train`` command).

``python examples/bucket_train.py --help`` lists every flag. It runs exactly as ``sinlstm-train`` does: the
package is imported inside the console entry, so Ctrl-C at any moment exits 130 with one line (SIGTERM: 143).
"""
import sys

from sinlstm_console import train

if __name__ == "__main__":
    sys.exit(train())
