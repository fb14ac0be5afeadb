"""A worker for tests/system/test_updater_errors.py: fit under the launcher with an optimizer whose update raises
(tests/support/failing_optimizer.py; the servers import it too, through PYTHONPATH).

Usage: python dist_failing_worker.py KVSTORE
"""
import sys

import failing_optimizer  # noqa: F401 - registers 'failingsgd'

from sinlstm_sym import fit

if __name__ == "__main__":
    fit(kvstore=sys.argv[1], seed=11, num_samples=6000, batch_size=100, num_epoch=1, log_every=10,
        optimizer="failingsgd", optimizer_params={})
