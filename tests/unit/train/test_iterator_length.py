"""A train_iter's batch count is measured, not trusted: an epoch that yields more batches than ``len()`` says
is refused before the first extra batch trains (the schedule was planned for ``len()``), one that yields fewer
is reported; batches of varying size are each rescaled by their own number of windows."""
import logging

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import fit
from sinlstm_sym.data.windows import SinBucketIter
from sinlstm_sym.train.loop import IteratorLengthError

SETTINGS = dict(seed=0, num_epoch=1, log_every=5, hidden_sizes=[8, 1], buckets=[5])


class Wrapped(mx.io.DataIter):
    """The batches of ``inner`` (a SinBucketIter), ``len()`` = ``claimed``, each cut to ``rows(i)`` windows."""

    def __init__(self, inner, claimed=None, rows=None, batch_size=None):
        super().__init__(batch_size or inner.batch_size)
        self.inner, self.claimed, self.rows, self.count = inner, claimed, rows, 0
        self.default_bucket_key, self.buckets = inner.default_bucket_key, inner.buckets

    def _desc(self, desc):
        return [mx.io.DataDesc(d.name, (self.batch_size, *d.shape[1:])) for d in desc]

    @property
    def provide_data(self):
        return self._desc(self.inner.provide_data)

    @property
    def provide_label(self):
        return self._desc(self.inner.provide_label)

    def reset(self):
        self.inner.reset()
        self.count = 0

    def next(self):
        batch = self.inner.next()
        self.count += 1
        n = self.rows(self.count) if self.rows is not None else batch.data[0].shape[0]
        data, label = batch.data[0][:n], batch.label[0][:n]
        return mx.io.DataBatch([data], [label], bucket_key=batch.bucket_key,
                               provide_data=[mx.io.DataDesc(batch.provide_data[0].name, data.shape)],
                               provide_label=[mx.io.DataDesc(batch.provide_label[0].name, label.shape)])

    def __len__(self):
        return self.claimed if self.claimed is not None else len(self.inner)


def _sine(batch_size=20, num_samples=800):
    return SinBucketIter(buckets=[5], batch_size=batch_size, num_samples=num_samples, seed=0)


def test_an_iterator_that_under_counts_is_refused_before_its_extra_batches_train(tmp_path):
    lying = Wrapped(_sine(), claimed=2)  # says 2, yields 40
    with pytest.raises(IteratorLengthError, match=r"train_iter yielded more batches in epoch 0 than "
                       r"len\(train_iter\) = 2 says.*Training stopped after batch 2") as info:
        fit(train_iter=lying, lr_schedule={"name": "cosine"}, checkpoint=str(tmp_path / "run"), **SETTINGS)
    assert isinstance(info.value, ValueError)
    assert lying.count == 3  # the third batch was drawn and refused, not trained
    assert not list((tmp_path / "run").glob("ckpt-*"))  # nothing saved from a schedule planned for 2 updates


def test_an_iterator_that_over_counts_trains_and_is_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="sinlstm_sym.train.fit"):
        result = fit(train_iter=Wrapped(_sine(), claimed=60), **SETTINGS)
    assert result.progress.global_batch == 40
    assert "train_iter yielded 40 batches in epoch 0 but len(train_iter) says 60" in caplog.text


def test_an_honest_iterator_is_unchanged(caplog):
    honest = fit(train_iter=Wrapped(_sine()), **SETTINGS)
    built_in = fit(train_iter=_sine(), **SETTINGS)
    assert honest.losses == built_in.losses and "len(train_iter)" not in caplog.text


def test_batches_of_varying_size_are_rescaled_by_their_own_windows():
    """Batches cut to 10 of a declared 20 windows train as an iterator of 10-window batches does (SGD: the step
    is proportional to rescale_grad, so 1/20 instead of 1/10 would halve every step)."""
    sgd = dict(SETTINGS, optimizer="sgd", optimizer_params={"learning_rate": 0.5}, lr_schedule=None)
    cut = fit(train_iter=Wrapped(_sine(), rows=lambda i: 10), **sgd)
    assert cut.config.data.batch_size == 20
    reference = fit(train_iter=Wrapped(_sine(), rows=lambda i: 10, batch_size=10), **sgd)
    assert reference.config.data.batch_size == 10
    np.testing.assert_allclose(cut.losses, reference.losses, rtol=1e-5)
    ours, theirs = cut.arg_params(), reference.arg_params()
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-7)
    mixed = fit(train_iter=Wrapped(_sine(), rows=lambda i: 20 if i % 2 else 7), **sgd)  # back and forth
    assert np.isfinite(mixed.losses).all() and mixed.losses[-1] < mixed.losses[0]
