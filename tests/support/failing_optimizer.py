"""An MXNet optimizer whose update raises on its 40th call, importable by the ps-lite servers of a launched
job (they unpickle the workers' optimizer): for the tests of updater failures (tests/system/test_updater_errors.py)."""
import mxnet as mx

FAIL_ON_CALL = 40  # a few batches in: one call per parameter array and update
MESSAGE = "simulated failure inside the optimizer's update"


@mx.optimizer.register
class FailingSGD(mx.optimizer.SGD):
    """SGD that raises ``RuntimeError(MESSAGE)`` from its ``FAIL_ON_CALL``-th update call."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def update_multi_precision(self, index, weight, grad, state):
        self.calls += 1
        if self.calls >= FAIL_ON_CALL:
            raise RuntimeError(MESSAGE)
        super().update_multi_precision(index, weight, grad, state)
