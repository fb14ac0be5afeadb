#!/usr/bin/env python
"""Train the stacked-LSTM sine predictor on variable-length windows (the ``sinlstm-train`` command).

``python examples/bucket_train.py --help`` lists every flag.
"""
import sys

from sinlstm_sym.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
