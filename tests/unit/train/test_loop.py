"""The fit loop's per-batch shortcuts change no number and miss no bad batch: windows generated
many batches at a time, loss sums in fewer operators, batch checks remembered by signature, MXNet's
operators on one OpenMP thread while training."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import SinBucketIter, make_sym_gen
from sinlstm_sym.constants import WINDOW_CHUNK_BATCHES
from sinlstm_sym.data.windows import make_windows
from sinlstm_sym.model.batches import SineBucketingModule
from sinlstm_sym.train.batch_losses import batch_loss_sum, batch_square_sum


def batch_arrays(batch):
    return batch.data[0].asnumpy(), batch.label[0].asnumpy()


@pytest.mark.parametrize("label_mode, feature", [("sequence", "time"), ("last", "value")])
def test_chunked_windows_equal_batch_by_batch_windows(label_mode, feature):
    """Every batch equals what window_arrays gives for its position, bit for bit, across chunk boundaries."""
    it = SinBucketIter(range(1, 10), batch_size=7, num_samples=7 * (2 * WINDOW_CHUNK_BATCHES + 5),
                       label_mode=label_mode, feature=feature, seed=11)
    batches = list(it)
    assert len(batches) == 2 * WINDOW_CHUNK_BATCHES + 5
    for cursor, batch in enumerate(batches):
        length = int(it.schedule[cursor])
        inputs, labels = it.window_arrays(int(it.batch_indices[cursor]), length)
        data, label = batch_arrays(batch)
        assert batch.bucket_key == length and data.shape == (7, length, 1)
        np.testing.assert_array_equal(data, inputs.astype(np.float32))
        np.testing.assert_array_equal(label, labels.astype(np.float32))


def test_resume_inside_a_chunk_gives_the_same_batches():
    it = SinBucketIter(range(1, 6), batch_size=5, num_samples=5 * 100, seed=3)
    full = [batch_arrays(b) for b in it]
    it.set_epoch(0, WINDOW_CHUNK_BATCHES - 3)
    resumed = [batch_arrays(b) for b in it]
    assert len(resumed) == 100 - WINDOW_CHUNK_BATCHES + 3
    for (d1, l1), (d2, l2) in zip(full[WINDOW_CHUNK_BATCHES - 3:], resumed):
        np.testing.assert_array_equal(d1, d2)
        np.testing.assert_array_equal(l1, l2)


def test_group_arrays_rows_are_window_arrays_rows():
    it = SinBucketIter([4], batch_size=6, num_samples=60, seed=5, target=lambda t: np.cos(3 * t))
    inputs, labels = it.group_arrays([2, 0, 7], 4)
    expected = [make_windows(it.start_times(p), 4, it.step, it.label_mode, it.feature, it.target) for p in (2, 0, 7)]
    np.testing.assert_array_equal(inputs, np.concatenate([e[0] for e in expected]))
    np.testing.assert_array_equal(labels, np.concatenate([e[1] for e in expected]))


@pytest.mark.parametrize("pad", [0, 3])
def test_square_sum_is_exactly_twice_the_loss_sum(pad):
    rng = np.random.default_rng(0)
    output = mx.nd.array(rng.normal(size=(10, 6)).astype(np.float32))
    label = mx.nd.array(rng.normal(size=(10, 6)).astype(np.float32))
    half = batch_loss_sum(output, label, pad).asnumpy()
    full = batch_square_sum(output, label, pad).asnumpy()
    assert half.dtype == full.dtype == np.float32
    assert float(half) == 0.5 * float(full)
    rows = 10 - pad
    expected = 0.5 * np.mean((output.asnumpy()[:rows] - label.asnumpy()[:rows]) ** 2, axis=1).sum()
    assert float(half) == pytest.approx(float(expected), rel=1e-6)


def sine_module():
    module = SineBucketingModule(make_sym_gen((4, 1), label_mode="sequence"), default_bucket_key=6,
                                 label_mode="sequence")
    first = next(iter(SinBucketIter([6], batch_size=5, num_samples=5, seed=0)))
    module.bind(first.provide_data, first.provide_label)
    module.init_params(mx.init.Uniform(0.1))
    return module


def test_a_batch_like_one_that_passed_skips_the_full_check(monkeypatch):
    module = sine_module()
    calls = []
    full_check = SineBucketingModule.check_batch
    monkeypatch.setattr(SineBucketingModule, "check_batch",
                        lambda self, batch, training: calls.append(batch.bucket_key) or full_check(self, batch,
                                                                                                   training))
    for batch in SinBucketIter([2, 6], batch_size=5, num_samples=5 * 8, seed=1):
        module.forward(batch, is_train=True)
    assert sorted(calls) == [2, 6]  # one full check per kind of batch
    module.forward(next(iter(SinBucketIter([6], batch_size=5, num_samples=5, seed=2))), is_train=False)
    assert sorted(calls) == [2, 6, 6]  # inference is another kind (no label needed)
    first = next(iter(SinBucketIter([6], batch_size=5, num_samples=5, seed=0)))
    module.bind(first.provide_data, first.provide_label, force_rebind=True)
    module.forward(first, is_train=True)
    assert sorted(calls) == [2, 6, 6, 6]  # bind forgets what passed


def test_a_batch_that_differs_from_one_that_passed_is_checked_in_full():
    module = sine_module()
    good = next(iter(SinBucketIter([6], batch_size=5, num_samples=5, seed=0)))
    module.forward(good, is_train=True)
    liar = mx.io.DataBatch(data=good.data, label=good.label, bucket_key=6, provide_data=good.provide_data,
                           provide_label=[mx.io.DataDesc("label", (5, 5), np.float32, "NT")])
    with pytest.raises(ValueError, match=r"provide_label says shape \(5, 5\) but the label has shape \(5, 6\)"):
        module.forward(liar, is_train=True)
    wrong_dtype = mx.io.DataBatch(data=[good.data[0].astype(np.float64)], label=good.label, bucket_key=6,
                                  provide_data=good.provide_data, provide_label=good.provide_label)
    with pytest.raises(ValueError, match="data dtype must be float32, got float64"):
        module.forward(wrong_dtype, is_train=True)
    numpy_key = mx.io.DataBatch(data=good.data, label=good.label, bucket_key=np.int64(6),
                                provide_data=good.provide_data, provide_label=good.provide_label)
    module.forward(numpy_key, is_train=True)  # another key type: checked in full, and accepted
    as_text = mx.io.DataBatch(data=good.data, label=good.label, bucket_key="6", provide_data=good.provide_data,
                              provide_label=good.provide_label)
    with pytest.raises(TypeError, match="bucket_key must be an int"):
        module.forward(as_text, is_train=True)


THREADS_SCRIPT = """
import mxnet as mx
from sinlstm_sym import fit
from sinlstm_sym.train.threads import operator_threads, worker_omp_threads
import sinlstm_sym.train.loop as trainer
mx.nd.zeros(1).wait_to_read()
seen = []
original = trainer.Trainer._epoch
def spy(self):
    seen.append(worker_omp_threads()[0])
    return original(self)
trainer.Trainer._epoch = spy
print(worker_omp_threads()[0], end=" ")
fit(buckets=[2, 3], batch_size=10, num_samples=40, num_epoch=2, seed=0, hidden_sizes=(3, 1))
print(seen, worker_omp_threads()[0])
"""


def test_fit_runs_operators_on_one_openmp_thread_and_restores_the_setting():
    env = dict(os.environ, OMP_NUM_THREADS="3", MXNET_SUBGRAPH_VERBOSE="0")
    proc = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[0].strip() == "3 [1, 1] 3"
