"""Train with a checkpoint every batch until killed (used by tests/unit/checkpoint/test_store.py and
test_run_directory_faults.py)."""
import sys

from sinlstm_sym import fit

if __name__ == "__main__":
    fit(checkpoint=sys.argv[1], checkpoint_every=1, **{k: int(v) for k, v in (a.split("=") for a in sys.argv[2:])})
