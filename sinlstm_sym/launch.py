"""``python -m sinlstm_sym.launch``: the ps-lite launcher (see :mod:`sinlstm_sym.distributed.launch`)."""
import sys

from sinlstm_sym.distributed.launch import main

if __name__ == "__main__":
    sys.exit(main())
