"""SinBucketIter sharding: disjoint parts that cover the epoch, equal batch counts, same bucket mix."""
from collections import Counter

import numpy as np
import pytest

from sinlstm_sym import SinBucketIter


def parts_of(num_parts, **kwargs):
    return [SinBucketIter(num_parts=num_parts, part_index=i, seed=17, **kwargs) for i in range(num_parts)]


@pytest.mark.parametrize("num_parts, buckets, batch_size, num_samples, weights", [
    (2, range(1, 10), 30, 3000, None),
    (3, [2, 5, 9], 7, 700, [1, 2, 3]),
    (4, [1, 2], 1, 37, None),
    (2, [4], 10, 40, None),
    (5, range(1, 21), 12, 12 * 123, None),
])
def test_parts_are_disjoint_cover_the_epoch_and_match(num_parts, buckets, batch_size, num_samples, weights):
    parts = parts_of(num_parts, buckets=buckets, batch_size=batch_size, num_samples=num_samples,
                     length_weights=weights)
    for _epoch in range(2):
        global_schedule = parts[0].global_schedule
        assert all(np.array_equal(p.global_schedule, global_schedule) for p in parts)
        positions = [p.batch_indices for p in parts]
        flat = sorted(i for pos in positions for i in pos)
        assert flat == list(range(len(global_schedule)))  # disjoint and covering
        assert len({len(pos) for pos in positions}) == 1 and len(positions[0]) == parts[0].num_batches
        mixes = [Counter(p.schedule.tolist()) for p in parts]
        assert all(m == mixes[0] for m in mixes)
        assert num_parts * parts[0].num_batches == len(global_schedule) <= num_samples // batch_size
        seen_t0 = []
        for p in parts:
            for batch in p:
                t0 = batch.data[0].asnumpy()[:, 0, 0]
                seen_t0.append(t0)
        all_t0 = np.concatenate(seen_t0)
        assert len(np.unique(all_t0)) == len(all_t0)  # no window is trained twice
        for p in parts:
            p.reset()


def test_part_batches_are_the_global_batches():
    parts = parts_of(3, buckets=[3, 6], batch_size=5, num_samples=300)
    part = parts[1]
    for position, batch in zip(part.batch_indices, part):
        assert batch.bucket_key == part.global_schedule[position]
        np.testing.assert_allclose(batch.data[0].asnumpy()[:, 0, 0], part.start_times(position), rtol=1e-6)


def test_single_part_is_the_whole_epoch():
    it = SinBucketIter([2, 3], batch_size=4, num_samples=40, seed=1)
    assert it.batch_indices.tolist() == list(range(10)) and np.array_equal(it.schedule, it.global_schedule)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(num_parts=0), ValueError, "num_parts"),
    (dict(num_parts=2, part_index=2), ValueError, "part_index must be < num_parts"),
    (dict(part_index=-1), ValueError, "part_index"),
    (dict(num_parts=1.0), TypeError, "num_parts"),
    (dict(num_parts=11), ValueError, "fewer than one batch"),
])
def test_bad_sharding_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        SinBucketIter([2], batch_size=10, num_samples=100, **kwargs)
