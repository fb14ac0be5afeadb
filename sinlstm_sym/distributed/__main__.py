"""``python -m sinlstm_sym.distributed -n 2 -s 1 -- python train.py``: the launcher's command line."""
import sys

from .launcher import main

sys.exit(main())
