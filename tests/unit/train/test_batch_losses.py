"""The fit loop's per-batch loss sums held on the device (train/batch_losses.py): the same float32 values
as batch_square_sum, batch for batch, in the order added, for mixed shapes, padding and reductions."""
import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym.train.batch_losses import PendingSquareSums, batch_square_sum


def random_batches(seed, count):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        batch, length = int(rng.choice([1, 7, 100, 300])), int(rng.choice([1, 2, 9, 20]))
        pad = int(rng.integers(0, batch)) if rng.random() < 0.25 else 0
        scale = 10.0 ** rng.uniform(-4, 3)
        yield (mx.nd.array(rng.normal(size=(batch, length)) * scale),
               mx.nd.array(rng.normal(size=(batch, length)) * scale), pad)


@pytest.mark.parametrize("condense_every", [1, 3, 1000])
def test_sums_equal_batch_square_sum_bit_for_bit_in_order(condense_every):
    pending = PendingSquareSums(condense_every=condense_every)
    expected = []
    for output, label, pad in random_batches(condense_every, 40):
        expected.append(batch_square_sum(output, label, pad).asnumpy()[0])
        pending.add(output, label, pad)
    assert len(pending) == 40
    got = pending.read()
    assert got.dtype == np.float32 and got.shape == (40,)
    np.testing.assert_array_equal(got.view(np.uint32), np.asarray(expected, dtype=np.float32).view(np.uint32))
    assert len(pending) == 0 and pending.read().shape == (0,)


def test_output_overwritten_after_add_does_not_change_its_sum():
    pending = PendingSquareSums()
    output, label = mx.nd.array([[1.0, 3.0], [2.0, 2.0]]), mx.nd.zeros((2, 2))
    pending.add(output, label)
    output[:] = 100.0  # the executor reuses its output array for the next batch
    pending.add(output, label, pad=1)
    np.testing.assert_array_equal(pending.read(), [(1 + 9) / 2 + (4 + 4) / 2, 100.0 ** 2])


def test_a_non_finite_batch_keeps_its_position():
    pending = PendingSquareSums(condense_every=2)
    for value in (1.0, float("nan"), 2.0):
        pending.add(mx.nd.full((3, 2), value), mx.nd.zeros((3, 2)))
    got = pending.read()
    assert got[0] == 3.0 and np.isnan(got[1]) and got[2] == 12.0


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4"])
def test_condense_every_must_be_a_positive_int(bad):
    with pytest.raises((ValueError, TypeError), match="condense_every"):
        PendingSquareSums(condense_every=bad)
