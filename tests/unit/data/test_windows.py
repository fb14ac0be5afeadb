"""``sinlstm_sym.data.windows``: the batch allocation, the windows' closed form, and the ``SinBucketIter``
contract (shapes, bucket keys, schedule, determinism, RNG hygiene, DataIter protocol, validation)."""
import collections
import math
import re
from fractions import Fraction

import mxnet as mx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sinlstm_sym.data.windows import (SinBucketIter, allocate_batches, batch_schedule, half_sine, label_shape,
                                      make_windows, shard_positions)

FAST = settings(max_examples=30, deadline=None)

# Small defaults so that a whole epoch is a handful of tiny batches.
SMALL = dict(buckets=(3, 5, 8), batch_size=4, num_samples=40, seed=0)


# --- helpers ----------------------------------------------------------------------------------------

def make_iter(**kwargs):
    return SinBucketIter(**{**SMALL, **kwargs})


def epoch(it):
    """All remaining batches of the current epoch."""
    return list(it)


def arrays(batch):
    """``(data, label)`` of a batch as numpy arrays."""
    return batch.data[0].asnumpy(), batch.label[0].asnumpy()


def epoch_arrays(it):
    return [(b.bucket_key,) + arrays(b) for b in epoch(it)]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for (key_a, data_a, label_a), (key_b, data_b, label_b) in zip(first, second):
        assert key_a == key_b
        np.testing.assert_array_equal(data_a, data_b)
        np.testing.assert_array_equal(label_a, label_b)


def keys_of_epoch(it):
    return [b.bucket_key for b in epoch(it)]


def expected_windows(t0, length, step, label_mode, feature, target):
    """The closed form, computed independently of ``make_windows``."""
    t0 = np.asarray(t0, dtype=np.float64)
    t = t0[:, None] + step * np.arange(length)           # t_k, k = 0 .. L-1
    inputs = t if feature == "time" else target(t)
    if label_mode == "last":
        labels = target(t0 + step * length)[:, None]
    else:
        labels = target(t0[:, None] + step * np.arange(1, length + 1))   # target(t_{k+1})
    return inputs, labels


def exact_largest_remainder(num_batches, weights):
    """Reference allocation in exact rational arithmetic (ties to the earlier bucket)."""
    total = sum(Fraction(w) for w in weights)
    quotas = [num_batches * Fraction(w) / total for w in weights]
    counts = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[:num_batches - sum(counts)]:
        counts[i] += 1
    return counts


def same_rng_state(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


# --- pure functions ---------------------------------------------------------------------------------

def test_half_sine():
    t = np.array([0.0, np.pi / 2, np.pi, -np.pi / 6])
    np.testing.assert_allclose(half_sine(t), [0.0, 0.5, 0.0, -0.25], atol=1e-15)


@pytest.mark.parametrize("batch_size, length, label_mode, expected", [
    (4, 7, "last", (4, 1)), (4, 7, "sequence", (4, 7)), (1, 1, "sequence", (1, 1)), (300, 100, "last", (300, 1)),
])
def test_label_shape(batch_size, length, label_mode, expected):
    assert label_shape(batch_size, length, label_mode) == expected


@pytest.mark.parametrize("label_mode, feature, inputs, labels", [
    ("last", "time", [[0.0, 0.5], [1.0, 1.5]], [[1.5], [2.0]]),
    ("sequence", "time", [[0.0, 0.5], [1.0, 1.5]], [[1.25, 1.5], [1.75, 2.0]]),
    ("last", "value", [[1.0, 1.25], [1.5, 1.75]], [[1.5], [2.0]]),
    ("sequence", "value", [[1.0, 1.25], [1.5, 1.75]], [[1.25, 1.5], [1.75, 2.0]]),
])
def test_make_windows_by_hand(label_mode, feature, inputs, labels):
    """t0 = [0, 1], L = 2, step = 0.5, target(t) = t / 2 + 1."""
    x, y = make_windows(np.array([0.0, 1.0]), 2, 0.5, label_mode, feature, lambda t: t / 2 + 1)
    np.testing.assert_allclose(x, np.array(inputs)[:, :, None])
    np.testing.assert_allclose(y, labels)


@pytest.mark.parametrize("buckets, counts, expected", [
    ((3, 5, 8), (1, 2, 0), [3, 5, 5]),
    ((8, 3, 5), (2, 1, 0), [3, 8, 8]),       # keys come out ascending whatever the given order
    ((10,), (4,), [10] * 4),
    ((2, 4), (0, 0), []),
])
def test_batch_schedule_unshuffled(buckets, counts, expected):
    assert batch_schedule(buckets, counts, False, np.random.default_rng(0)).tolist() == expected


def test_batch_schedule_shuffled_is_a_permutation():
    keys = batch_schedule((3, 5, 8), (10, 10, 10), True, np.random.default_rng(0)).tolist()
    assert sorted(keys) == [3] * 10 + [5] * 10 + [8] * 10
    assert keys != sorted(keys)


def _shard_positions_by_counting(schedule, num_parts, part_index):
    """The sharding rule written as a plain loop: the k-th batch of each key goes to part k % num_parts."""
    seen, positions = {}, []
    for position, key in enumerate(schedule):
        if seen.get(key, 0) % num_parts == part_index:
            positions.append(position)
        seen[key] = seen.get(key, 0) + 1
    return positions


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("num_parts", [1, 2, 3, 7])
def test_shard_positions_follow_the_rule(seed, num_parts):
    schedule = batch_schedule((1, 4, 9), (5 * num_parts, 3 * num_parts, 2 * num_parts), True,
                              np.random.default_rng(seed))
    for part in range(num_parts):
        assert shard_positions(schedule, num_parts, part).tolist() == \
            _shard_positions_by_counting(schedule.tolist(), num_parts, part)


def test_an_epoch_too_large_for_memory_is_refused_with_the_figure():
    with pytest.raises(ValueError, match=r"num_samples=1000000000000000 gives 3333333333333 batches of 300 per "
                                         r"epoch, whose schedule needs .* GiB; .* GiB are free"):
        SinBucketIter([1, 2], num_samples=10 ** 15, batch_size=300)


# --- allocate_batches -------------------------------------------------------------------------------

@pytest.mark.parametrize("num_batches, weights, expected", [
    (10, [1, 1, 1], [4, 3, 3]),
    (10, [1, 1], [5, 5]),
    (1, [1, 1, 1], [1, 0, 0]),
    (2, [1, 1, 1], [1, 1, 0]),
    (100, [1, 1, 1], [34, 33, 33]),
    (7, [1, 2], [2, 5]),                    # quotas 2.33, 4.67
    (10, [1, 2, 3, 4], [1, 2, 3, 4]),
    (5, [0, 1], [0, 5]),
    (4, [3, 1], [3, 1]),
    (3, [0.5, 0.25, 0.25], [1, 1, 1]),      # quotas 1.5, .75, .75
    (9, [1, 0, 2], [3, 0, 6]),
    (0, [1, 2], [0, 0]),
    (5, [2, 1, 1, 1], [2, 1, 1, 1]),
    (3, [1, 1, 1, 1], [1, 1, 1, 0]),
    (2, [4, 1, 1], [2, 0, 0]),              # exact tie of fractional parts 1/3: to the shorter bucket
    (2, [1, 7, 2], [0, 2, 0]),              # quotas .2, 1.4, .4: exact tie .4 / .4
])
def test_allocate_batches_by_hand(num_batches, weights, expected):
    assert allocate_batches(num_batches, weights) == expected


int_weights = st.lists(st.integers(0, 50), min_size=1, max_size=6).filter(lambda w: sum(w) > 0)
float_weights = st.lists(st.floats(0.0, 1e3), min_size=1, max_size=6).filter(lambda w: sum(w) > 0)


@FAST
@given(num_batches=st.integers(0, 2000), weights=st.one_of(int_weights, float_weights))
def test_allocate_batches_sums_and_stays_within_one_of_quota(num_batches, weights):
    counts = allocate_batches(num_batches, weights)
    assert len(counts) == len(weights)
    assert sum(counts) == num_batches
    total = sum(weights)
    for count, weight in zip(counts, weights):
        assert isinstance(count, int) and count >= 0
        assert abs(count - num_batches * weight / total) < 1 + 1e-9
        if weight == 0:
            assert count == 0


@FAST
@given(num_batches=st.integers(0, 2000), weights=int_weights)
def test_allocate_batches_monotone_in_weight(num_batches, weights):
    counts = allocate_batches(num_batches, weights)
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j] or (weights[i] == weights[j] and i < j):
                assert counts[i] >= counts[j], (i, j)


@FAST
@example(num_batches=2, weights=[4, 1, 1])
@given(num_batches=st.integers(0, 200), weights=int_weights)
def test_allocate_batches_is_exact_largest_remainder(num_batches, weights):
    assert allocate_batches(num_batches, weights) == exact_largest_remainder(num_batches, weights)


# --- shapes, keys and descriptions ------------------------------------------------------------------

@pytest.mark.parametrize("buckets, batch_size, num_samples, label_mode, dtype", [
    ((3, 5, 8), 4, 40, "last", "float32"),
    ((3, 5, 8), 4, 43, "sequence", "float32"),
    ((10,), 7, 50, "last", "float64"),
    ((1, 2), 1, 6, "sequence", "float64"),
    ((20, 4, 12), 3, 30, "sequence", "float32"),
])
def test_every_batch_has_its_shapes_and_key(buckets, batch_size, num_samples, label_mode, dtype):
    it = SinBucketIter(buckets, batch_size=batch_size, num_samples=num_samples, label_mode=label_mode,
                       dtype=dtype, seed=1, data_name="x", label_name="y")
    batches = epoch(it)
    assert len(batches) == num_samples // batch_size
    for batch in batches:
        length = batch.bucket_key
        assert length in buckets
        label = (batch_size, 1) if label_mode == "last" else (batch_size, length)
        data, labels = arrays(batch)
        assert data.shape == (batch_size, length, 1) and labels.shape == label
        assert data.dtype == np.dtype(dtype) and labels.dtype == np.dtype(dtype)
        assert batch.pad == 0
        (data_desc,), (label_desc,) = batch.provide_data, batch.provide_label
        assert (data_desc.name, data_desc.shape, data_desc.layout) == ("x", (batch_size, length, 1), "NTC")
        assert (label_desc.name, label_desc.shape) == ("y", label)
        assert data_desc.dtype == np.dtype(dtype) and label_desc.dtype == np.dtype(dtype)
    largest = max(buckets)
    assert it.default_bucket_key == largest
    assert [(d.name, d.shape) for d in it.provide_data] == [("x", (batch_size, largest, 1))]
    label = (batch_size, 1) if label_mode == "last" else (batch_size, largest)
    assert [(d.name, d.shape) for d in it.provide_label] == [("y", label)]


@pytest.mark.parametrize("buckets", [(3, 5, 8), (8, 5, 3), (5, 8, 3), (8,), [12, 2], (2, 12)])
def test_default_bucket_key_is_largest_whatever_the_order(buckets):
    it = make_iter(buckets=buckets)
    assert it.default_bucket_key == max(buckets)
    assert it.provide_data[0].shape == (4, max(buckets), 1)


# --- closed form ------------------------------------------------------------------------------------

def check_closed_form(it, recover_t0, target, tol):
    """Every batch of an epoch equals the closed form for the t0 recovered from its first input."""
    seen = []
    for batch in epoch(it):
        data, labels = arrays(batch)
        t0 = recover_t0(data[:, 0, 0].astype(np.float64))
        assert np.all(t0 >= it.t_low - tol) and np.all(t0 < it.t_high + tol)
        inputs, expected = expected_windows(t0, batch.bucket_key, it.step, it.label_mode, it.feature, target)
        np.testing.assert_allclose(data[:, :, 0], inputs, rtol=tol, atol=tol)
        np.testing.assert_allclose(labels, expected, rtol=tol, atol=tol)
        seen.append(t0)
    assert len(np.unique(np.concatenate(seen))) > 1   # windows start at random times


@pytest.mark.parametrize("dtype, tol", [("float32", 2e-6), ("float64", 1e-12)])
@pytest.mark.parametrize("feature", ["time", "value"])
@pytest.mark.parametrize("label_mode", ["last", "sequence"])
def test_windows_match_closed_form_default_target(label_mode, feature, dtype, tol):
    it = make_iter(label_mode=label_mode, feature=feature, dtype=dtype, step=0.05, seed=3)
    # t in [0, 1) so arcsin(2 * sin(t) / 2) recovers t0 from a 'value' input.
    recover = (lambda x: x) if feature == "time" else (lambda v: np.arcsin(2 * v))
    check_closed_form(it, recover, half_sine, tol if feature == "time" else 10 * tol)


@pytest.mark.parametrize("label_mode", ["last", "sequence"])
def test_custom_target_cos_with_time_feature(label_mode):
    it = make_iter(label_mode=label_mode, target=np.cos, t_low=-2.0, t_high=5.0, step=0.3, seed=4)
    check_closed_form(it, lambda x: x, np.cos, 2e-6)


@pytest.mark.parametrize("label_mode", ["last", "sequence"])
def test_custom_target_with_value_feature(label_mode):
    def line(t):
        return 3.0 * t - 1.0
    it = make_iter(label_mode=label_mode, feature="value", target=line, t_low=1.0, t_high=2.0, step=0.1, seed=5)
    check_closed_form(it, lambda v: (v + 1.0) / 3.0, line, 5e-6)


@FAST
@given(label_mode=st.sampled_from(["last", "sequence"]), feature=st.sampled_from(["time", "value"]),
       step=st.floats(1e-3, 0.5), t_low=st.floats(-5.0, 5.0), width=st.floats(1e-2, 5.0),
       buckets=st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True), seed=st.integers(0, 2 ** 32))
def test_windows_match_closed_form_property(label_mode, feature, step, t_low, width, buckets, seed):
    def line(t):
        return 0.5 * t + 0.25
    it = SinBucketIter(buckets, batch_size=3, num_samples=12, label_mode=label_mode, feature=feature, step=step,
                       t_low=t_low, t_high=t_low + width, target=line, seed=seed)
    recover = (lambda x: x) if feature == "time" else (lambda v: (v - 0.25) / 0.5)
    for batch in epoch(it):
        data, labels = arrays(batch)
        t0 = recover(data[:, 0, 0].astype(np.float64))
        assert np.all(t0 >= t_low - 1e-5) and np.all(t0 <= t_low + width + 1e-5)
        inputs, expected = expected_windows(t0, batch.bucket_key, step, label_mode, feature, line)
        np.testing.assert_allclose(data[:, :, 0], inputs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(labels, expected, rtol=1e-5, atol=1e-5)


# --- batch counts and order -------------------------------------------------------------------------

@FAST
@given(buckets=st.lists(st.integers(1, 30), min_size=1, max_size=4, unique=True).map(sorted),
       data=st.data(), num_batches=st.integers(1, 40), shuffle=st.booleans())
def test_batches_per_bucket_follow_allocate_batches(buckets, data, num_batches, shuffle):
    weights = data.draw(st.lists(st.integers(0, 9), min_size=len(buckets), max_size=len(buckets))
                        .filter(lambda w: sum(w) > 0))
    it = SinBucketIter(buckets, batch_size=1, num_samples=num_batches, length_weights=weights, shuffle=shuffle,
                       seed=0)
    counts = collections.Counter(keys_of_epoch(it))
    assert [counts[k] for k in buckets] == allocate_batches(num_batches, weights)


@pytest.mark.parametrize("batch_size, num_samples, expected", [(4, 40, 10), (4, 43, 10), (7, 7, 1), (3, 2000, 666)])
def test_one_epoch_is_num_samples_over_batch_size(batch_size, num_samples, expected):
    it = make_iter(batch_size=batch_size, num_samples=num_samples)
    assert len(it) == expected
    assert len(keys_of_epoch(it)) == expected


def test_weights_follow_their_bucket_when_buckets_are_unsorted():
    it = make_iter(buckets=(8, 3, 5), length_weights=(6, 3, 1), num_samples=40)
    assert collections.Counter(keys_of_epoch(it)) == {8: 6, 3: 3, 5: 1}


@pytest.mark.parametrize("buckets, weights, zero", [((3, 5, 8), (1, 0, 1), 5), ((3, 5, 8), (0, 1, 1), 3),
                                                    ((3, 5, 8), (2, 1, 0), 8)])
def test_zero_weight_bucket_gets_no_batch(buckets, weights, zero):
    it = make_iter(buckets=buckets, length_weights=weights, num_samples=400)
    keys = keys_of_epoch(it)
    assert zero not in keys and len(keys) == 100
    assert set(keys) == set(buckets) - {zero}
    assert it.default_bucket_key == max(buckets)


@pytest.mark.parametrize("buckets", [(3, 5, 8), (8, 3, 5), (12, 1)])
def test_unshuffled_keys_ascend(buckets):
    it = make_iter(buckets=buckets, shuffle=False)
    for _ in range(2):
        keys = keys_of_epoch(it)
        assert keys == sorted(keys) and set(keys) == set(buckets)
        it.reset()


def test_shuffled_keys_mix_buckets():
    it = make_iter(num_samples=120)
    keys = keys_of_epoch(it)
    assert keys != sorted(keys)
    assert collections.Counter(keys) == {3: 10, 5: 10, 8: 10}


# --- determinism, reset and resume ------------------------------------------------------------------

@pytest.mark.parametrize("shuffle", [True, False])
def test_same_seed_same_batches_every_epoch(shuffle):
    a, b = make_iter(seed=11, shuffle=shuffle), make_iter(seed=11, shuffle=shuffle)
    previous = None
    for _ in range(3):
        first, second = epoch_arrays(a), epoch_arrays(b)
        assert_same_batches(first, second)
        if previous is not None:   # reset() draws fresh windows
            assert not np.array_equal(previous[0][1], first[0][1])
        previous = first
        a.reset()
        b.reset()


def test_same_seed_same_batches_after_uneven_resets():
    """An iterator reset mid-epoch still matches a fresh one at the same epoch."""
    a, b = make_iter(seed=5), make_iter(seed=5)
    next(a)
    a.reset()
    b.reset()
    assert_same_batches(epoch_arrays(a), epoch_arrays(b))


@pytest.mark.parametrize("seeds", [(0, 1), (1, 2), (7, 2 ** 31)])
def test_different_seeds_differ(seeds):
    a, b = (make_iter(seed=s) for s in seeds)
    data_a = np.concatenate([d.ravel() for _, d, _ in epoch_arrays(a)])
    data_b = np.concatenate([d.ravel() for _, d, _ in epoch_arrays(b)])
    assert not np.array_equal(data_a, data_b)


def test_seed_none_draws_a_seed_that_reproduces_the_run():
    a = make_iter(seed=None)
    assert isinstance(a.seed, int) and a.seed >= 0
    b = make_iter(seed=a.seed)
    assert_same_batches(epoch_arrays(a), epoch_arrays(b))


@pytest.mark.parametrize("target_epoch, cursor", [(0, 0), (0, 3), (1, 0), (2, 7), (3, 9), (1, 10)])
def test_set_epoch_resumes_at_batch(target_epoch, cursor):
    reference = make_iter(seed=8)
    for _ in range(target_epoch):
        reference.reset()
    expected = epoch_arrays(reference)[cursor:]
    it = make_iter(seed=8)
    next(it)
    it.set_epoch(target_epoch, cursor)
    assert_same_batches(epoch_arrays(it), expected)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(epoch=-1), ValueError, "epoch"), (dict(epoch=1.0), TypeError, "epoch"),
    (dict(epoch=0, cursor=-1), ValueError, "cursor"), (dict(epoch=0, cursor=11), ValueError, "cursor"),
    (dict(epoch=0, cursor=True), TypeError, "cursor"),
])
def test_set_epoch_rejects(kwargs, error, name):
    with pytest.raises(error, match=name):
        make_iter().set_epoch(**kwargs)


# --- global random state ----------------------------------------------------------------------------

def exercise(**kwargs):
    it = make_iter(**kwargs)
    epoch(it)
    it.reset()
    next(it)
    it.set_epoch(2, 1)
    next(it)


@pytest.mark.parametrize("seed", [None, 0, 123])
def test_numpy_global_rng_untouched(seed):
    np.random.seed(2024)
    state = np.random.get_state()
    exercise(seed=seed)
    assert same_rng_state(np.random.get_state(), state)
    np.random.seed(2024)
    expected = np.random.random(5)
    np.random.seed(2024)
    exercise(seed=seed)
    np.testing.assert_array_equal(np.random.random(5), expected)


@pytest.mark.parametrize("seed", [None, 0])
def test_mxnet_global_rng_untouched(seed):
    mx.random.seed(77)
    expected = mx.nd.random.uniform(shape=(5,)).asnumpy()
    mx.random.seed(77)
    exercise(seed=seed)
    np.testing.assert_array_equal(mx.nd.random.uniform(shape=(5,)).asnumpy(), expected)


# --- DataIter protocol ------------------------------------------------------------------------------

def test_data_iter_protocol():
    it = make_iter()
    assert isinstance(it, mx.io.DataIter) and iter(it) is it
    assert len(it) == 10 and it.batch_size == 4
    batches = [next(it), it.next()]
    batches += list(it)
    assert len(batches) == 10
    assert all(isinstance(b, mx.io.DataBatch) for b in batches)
    assert not it.iter_next()
    for _ in range(2):   # stays exhausted
        with pytest.raises(StopIteration):
            next(it)
    with pytest.raises(StopIteration):
        it.next()
    it.reset()
    assert it.iter_next()
    assert sum(1 for _ in it) == 10
    it.reset()
    assert sum(1 for _ in it) == 10


# --- argument validation ----------------------------------------------------------------------------

def _raise(t):
    raise RuntimeError("no")


BAD_ARGUMENTS = [
    (dict(buckets=[]), ValueError, "buckets"),
    (dict(buckets=[0]), ValueError, "buckets"),
    (dict(buckets=[3, -2]), ValueError, "buckets"),
    (dict(buckets=[1, 1]), ValueError, "buckets"),
    (dict(buckets="abc"), TypeError, "buckets"),
    (dict(buckets=5), TypeError, "buckets"),
    (dict(buckets=None), TypeError, "buckets"),
    (dict(buckets=[1.5]), TypeError, "buckets"),
    (dict(buckets=[3, True]), TypeError, "buckets"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=-4), ValueError, "batch_size"),
    (dict(batch_size=1.5), TypeError, "batch_size"),
    (dict(batch_size=True), TypeError, "batch_size"),
    (dict(batch_size="4"), TypeError, "batch_size"),
    (dict(num_samples=3), ValueError, "num_samples"),
    (dict(num_samples=0), ValueError, "num_samples"),
    (dict(num_samples=40.0), TypeError, "num_samples"),
    (dict(length_weights=[1, 1]), ValueError, "length_weights"),
    (dict(length_weights=[1, 1, 1, 1]), ValueError, "length_weights"),
    (dict(length_weights=[1, -1, 1]), ValueError, "length_weights"),
    (dict(length_weights=[0, 0, 0]), ValueError, "length_weights"),
    (dict(length_weights=[1, math.nan, 1]), ValueError, "length_weights"),
    (dict(length_weights=[1, math.inf, 1]), ValueError, "length_weights"),
    (dict(length_weights=[1, "a", 1]), TypeError, "length_weights"),
    (dict(length_weights="abc"), TypeError, "length_weights"),
    (dict(length_weights=3), TypeError, "length_weights"),
    (dict(label_mode="foo"), ValueError, "label_mode"),
    (dict(label_mode=None), TypeError, "label_mode"),
    (dict(feature="x"), ValueError, "feature"),
    (dict(feature=1), TypeError, "feature"),
    (dict(step=0), ValueError, "step"),
    (dict(step=-1), ValueError, "step"),
    (dict(step=math.nan), ValueError, "step"),
    (dict(step=math.inf), ValueError, "step"),
    (dict(step="0.1"), TypeError, "step"),
    (dict(t_low=1.0, t_high=1.0), ValueError, "t_high"),
    (dict(t_low=2.0, t_high=1.0), ValueError, "t_high"),
    (dict(t_low=math.nan), ValueError, "t_low"),
    (dict(t_high=math.inf), ValueError, "t_high"),
    (dict(t_low="0"), TypeError, "t_low"),
    (dict(target=5), TypeError, "target"),
    (dict(target="sin"), TypeError, "target"),
    (dict(target=lambda t: float(np.sum(t))), ValueError, "target"),
    (dict(target=lambda t: t[:, :1]), ValueError, "target"),
    (dict(target=lambda t: t.ravel()), ValueError, "target"),
    (dict(target=_raise), ValueError, "target"),
    (dict(shuffle="yes"), TypeError, "shuffle"),
    (dict(shuffle=1), TypeError, "shuffle"),
    (dict(shuffle=None), TypeError, "shuffle"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(seed=True), TypeError, "seed"),
    (dict(seed="1"), TypeError, "seed"),
    (dict(data_name=""), ValueError, "data_name"),
    (dict(data_name="my data"), ValueError, "data_name"),
    (dict(data_name=5), TypeError, "data_name"),
    (dict(label_name=""), ValueError, "label_name"),
    (dict(label_name=None), TypeError, "label_name"),
    (dict(data_name="x", label_name="x"), ValueError, "label_name"),
    (dict(data_name="label"), ValueError, "data_name"),
    (dict(dtype="int8"), ValueError, "dtype"),
    (dict(dtype="float16"), ValueError, "dtype"),
    (dict(dtype=None), TypeError, "dtype"),
]


@pytest.mark.parametrize("kwargs, error, name", BAD_ARGUMENTS,
                         ids=[f"{i}-{'-'.join(k)}" for i, (k, _, _) in enumerate(BAD_ARGUMENTS)])
def test_bad_argument_rejected_with_its_name(kwargs, error, name):
    with pytest.raises(error, match=re.escape(name)) as info:
        make_iter(**kwargs)
    assert type(info.value) is error


@pytest.mark.parametrize("kwargs", [
    dict(buckets=[1]), dict(batch_size=1, num_samples=1), dict(num_samples=4), dict(length_weights=[0, 0, 0.5]),
    dict(step=1e-9), dict(t_low=-1e3, t_high=-999.5), dict(seed=2 ** 40), dict(seed=np.int64(3)),
    dict(buckets=np.array([4, 2])), dict(data_name="x_0", label_name="y_0"), dict(dtype="float64"),
    dict(length_weights=np.array([1.0, 2.0, 3.0])), dict(target=lambda t: np.zeros_like(t)),
])
def test_good_arguments_accepted(kwargs):
    it = make_iter(**kwargs)
    assert len(epoch(it)) == len(it)


# --- edge cases once found as bugs ----------------------------------------------------------------

def test_buckets_from_a_generator():
    try:
        it = make_iter(buckets=(n for n in (3, 5, 8)))
    except TypeError as err:      # rejecting one-shot iterables would be fine too
        assert "buckets" in str(err)
        return
    assert set(keys_of_epoch(it)) == {3, 5, 8}


def test_huge_weights_still_allocate_or_are_rejected_up_front():
    try:
        it = make_iter(length_weights=[1e308, 1e308, 1e308])
    except ValueError as err:
        assert "length_weights" in str(err)
        return
    assert sum(it.batches_per_bucket.values()) == it.num_batches


def test_t_range_overflow_is_rejected_up_front():
    try:
        it = make_iter(t_low=-1e308, t_high=1e308)
    except ValueError as err:
        assert "t_" in str(err)
        return
    next(it)


def test_time_stamps_beyond_the_dtype_are_refused():
    with pytest.raises(ValueError, match=r"within float32"):
        SinBucketIter([1], batch_size=1, num_samples=16, t_low=-3.5e38, t_high=1.0)
    it = SinBucketIter([1], batch_size=1, num_samples=16, t_low=-3.5e38, t_high=1.0, dtype="float64")
    assert np.isfinite(next(it).data[0].asnumpy()).all()
