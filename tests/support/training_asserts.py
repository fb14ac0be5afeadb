"""Assertions and data shared by the test modules: two training runs are the same training; sine windows
with one spoiled batch."""
import numpy as np

from sinlstm_sym import SinBucketIter


class SpoiledBatchAt(SinBucketIter):
    """Sine windows whose batch ``bad`` (1-based) goes through ``spoil(batch)`` before it is yielded."""

    def __init__(self, bad, spoil, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bad, self.spoil, self.count = bad, spoil, 0

    def next(self):
        batch = super().next()
        self.count += 1
        if self.count == self.bad:
            self.spoil(batch)
        return batch


def assert_same_training(a, b, atol: float = 1e-6) -> None:
    """Same log points, loss history, epoch losses and parameters (within ``atol``; 0: bit for bit)."""
    assert [(r.epoch, r.batch) for r in a.loss_history] == [(r.epoch, r.batch) for r in b.loss_history]
    np.testing.assert_allclose(a.losses, b.losses, rtol=0, atol=atol)
    np.testing.assert_allclose(a.epoch_losses, b.epoch_losses, rtol=0, atol=atol)
    pa, pb = a.arg_params(), b.arg_params()
    for name in pa:
        np.testing.assert_allclose(pa[name], pb[name], rtol=0, atol=atol)
