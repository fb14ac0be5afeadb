"""Plain MXNet idioms with the library's parts: a custom loop with any initializer, and ``mod.fit``."""
import logging

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import SafeBucketingModule, SinBucketIter, fit, make_sym_gen
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.recurrence.cells import to_layout

HIDDEN = (10, 20, 1)


@pytest.mark.parametrize("cell", ["fused", "unrolled", "native"])
def test_custom_loop_with_xavier_trains_from_the_library_initial_weights(cell):
    it = SinBucketIter(range(1, 6), batch_size=100, num_samples=100 * 60, seed=4)
    module = mx.mod.BucketingModule(make_sym_gen(HIDDEN, cell=cell, init_seed=4), default_bucket_key=5)
    module.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    module.init_params(mx.init.Xavier())
    args, _ = module.get_params()
    for name, value in to_layout(init_params(HIDDEN, seed=4), cell, HIDDEN).items():
        np.testing.assert_array_equal(args[name].asnumpy(), value)
    module.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.01})
    losses = []
    for batch in it:
        module.forward_backward(batch)
        module.update()
        pred, label = module.get_outputs()[0].asnumpy(), batch.label[0].asnumpy()
        assert pred.shape == label.shape == (100, batch.bucket_key)
        losses.append(0.5 * np.mean((pred - label) ** 2))
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 3


def _numpy_mse(module, data):
    """Mean over batches of the batch MSE, computed from the module's predictions in numpy."""
    data.reset()
    values = []
    for batch in data:
        module.forward(batch, is_train=False)
        pred = module.get_outputs()[0].asnumpy()
        values.append(np.mean((pred - batch.label[0].asnumpy()) ** 2))
    return float(np.mean(values))


def test_mod_fit_with_mse_metric_speedometer_and_eval_data(caplog):
    args = dict(batch_size=50, num_samples=50 * 40, label_mode="sequence")
    train = SinBucketIter(range(1, 7), seed=1, **args)
    held_out = SinBucketIter(range(1, 7), seed=2, refresh=False, **args)
    module = mx.mod.BucketingModule(make_sym_gen(HIDDEN), default_bucket_key=train.default_bucket_key)
    scores = []
    with caplog.at_level(logging.INFO):
        module.fit(train, eval_data=held_out, eval_metric="mse", optimizer="adam",
                   optimizer_params={"learning_rate": 0.01}, num_epoch=2,
                   batch_end_callback=mx.callback.Speedometer(50, frequent=20),
                   eval_end_callback=lambda params: scores.append(params.eval_metric.get()[1]))
    assert any("Speed" in r.getMessage() and "samples/sec" in r.getMessage() for r in caplog.records)
    assert len(scores) == 2 and scores[1] < scores[0]
    # MXNet's MSE on the held-out set equals an independent numpy computation on the same windows ...
    held_out_mse = _numpy_mse(module, held_out)
    assert module.score(held_out, "mse")[0][1] == pytest.approx(held_out_mse, rel=1e-5)
    # ... and twice the library's L2 loss on those windows
    result = fit(seed=1, num_epoch=1, eval_iter=held_out, buckets=range(1, 7), **args)
    assert _numpy_mse(result.module, held_out) == pytest.approx(2 * result.eval_losses[-1], rel=1e-5)


def test_mod_fit_with_safe_bucketing_module():
    it = SinBucketIter([3, 6], batch_size=40, num_samples=40 * 10, seed=0)
    module = SafeBucketingModule(make_sym_gen(HIDDEN), default_bucket_key=6)
    module.fit(it, eval_metric="mse", optimizer="adam", num_epoch=1)
    assert module.score(it, "mse")[0][1] < 0.05


def test_fit_on_a_passed_in_iterator_equals_the_built_in_one():
    settings = dict(buckets=[1, 2, 5], batch_size=50, num_samples=50 * 30, seed=6, log_every=10, num_epoch=2)
    built_in = fit(**settings)
    data = SinBucketIter([1, 2, 5], batch_size=50, num_samples=50 * 30, seed=6, t_low=-0.1, t_high=1.12)
    passed = fit(train_iter=data, **settings)
    assert passed.losses == built_in.losses
    for name, value in built_in.arg_params().items():
        np.testing.assert_array_equal(passed.arg_params()[name], value)


def test_fit_refuses_an_iterator_that_breaks_the_contract():
    class NoKey(mx.io.NDArrayIter):
        pass
    with pytest.raises(ValueError, match="train_iter must have default_bucket_key"):
        fit(train_iter=NoKey(np.zeros((4, 3, 1), np.float32), np.zeros((4, 3), np.float32)), seed=0)
    wrong = SinBucketIter([3], batch_size=4, num_samples=8, seed=0, label_mode="last")
    with pytest.raises(ValueError, match=r"train_iter.provide_label must describe \(4, 3\) for label_mode='sequence'"):
        fit(train_iter=wrong, seed=0)


def test_progress_bar_without_a_terminal_falls_back_to_log_lines(caplog):
    with caplog.at_level(logging.INFO, logger="sinlstm_sym"):
        fit(buckets=[2], batch_size=20, num_samples=200, num_epoch=1, log_every=5, seed=0, progress_bar=True)
    assert sum("samples/s" in r.getMessage() for r in caplog.records) == 2  # batches 5 and 10 of 10
