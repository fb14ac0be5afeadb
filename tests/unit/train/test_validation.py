"""Validation while training: a fixed held-out set, early stopping, the best parameters, resume."""
import json

import numpy as np
import pytest

from sinlstm_sym import Predictor, SinBucketIter, fit, load_checkpoint
from sinlstm_sym.train.validation import ValidationSet

RUN = dict(buckets=[1, 2, 3], batch_size=50, num_samples=50 * 40, seed=7, log_every=10,
           optimizer_params={"learning_rate": 0.01})


def test_held_out_windows_are_never_training_windows_and_never_change():
    held_out = ValidationSet([1, 2, 3], 200, seed=7, label_mode="sequence", feature="time")
    again = ValidationSet([1, 2, 3], 200, seed=7, label_mode="sequence", feature="time")
    train = SinBucketIter([1, 2, 3], batch_size=50, num_samples=50 * 40, seed=7)
    trained = set()
    for epoch in range(3):
        train.set_epoch(epoch)
        for batch in train:
            trained.update(batch.data[0].asnumpy()[:, 0, 0].tolist())
    for length in (1, 2, 3):
        starts = held_out.start_times[length].astype(np.float32)
        assert not trained & set(starts.tolist())
        np.testing.assert_array_equal(held_out.windows[length][0], again.windows[length][0])


def test_scores_are_recorded_every_n_batches_and_at_epoch_ends():
    result = fit(validation_lengths=[1, 3, 5], validation_samples=100, validate_every=15, num_epoch=2, **RUN)
    assert [(r.epoch, r.batch) for r in result.validation_history] == [(0, 15), (0, 30), (0, 40), (1, 5), (1, 20),
                                                                        (1, 35), (1, 40)]
    record = result.validation_history[-1]
    assert sorted(record.per_length) == [1, 3, 5]
    # the record's numbers are the errors of the final parameters on the held-out windows
    held_out = ValidationSet([1, 3, 5], 100, seed=7, label_mode="sequence", feature="time")
    predictor = result.predictor(best=False)
    for length, (mse, worst) in record.per_length.items():
        inputs, labels = held_out.windows[length]
        err = np.abs(predictor.predict(inputs) - labels)
        assert mse == pytest.approx(float(np.mean(err ** 2)), rel=1e-4)
        assert worst == pytest.approx(float(err.max()), rel=1e-4)
    seconds = [r.seconds for r in result.validation_history]
    assert seconds == sorted(seconds) and seconds[0] > 0


def test_early_stop_on_target():
    result = fit(validation_lengths=[1, 2, 3], validation_samples=100, validate_every=5, target_max_error=0.2,
                 num_epoch=3, **RUN)
    assert result.progress.stopped.startswith("max abs error") and "target_max_error 0.2" in result.progress.stopped
    assert result.validation_history[-1].max_abs_error <= 0.2
    assert all(r.max_abs_error > 0.2 for r in result.validation_history[:-1])
    assert result.progress.global_batch == result.validation_history[-1].global_batch < 120


def test_early_stop_on_patience_keeps_the_best():
    # a learning rate far too high: the held-out error wanders; patience 2 stops it and the best is kept
    run = dict(RUN, optimizer_params={"learning_rate": 0.3})
    result = fit(validation_lengths=[1, 2, 3], validation_samples=100, validate_every=2, patience=2,
                 num_epoch=3, **run)
    history = result.validation_history
    best = min(range(len(history)), key=lambda i: history[i].max_abs_error)
    assert result.progress.stopped.startswith("no improvement in 2 validations")
    assert len(history) == best + 3
    assert result.best == history[best]
    # the best parameters are the ones that scored best
    held_out = ValidationSet([1, 2, 3], 100, seed=7, label_mode="sequence", feature="time")
    worst = max(float(np.abs(result.predictor(best=True).predict(x) - y).max()) for x, y in held_out.windows.values())
    assert worst == pytest.approx(history[best].max_abs_error, rel=1e-4)


def test_best_checkpoint_is_loaded_by_default_and_resume_keeps_best_and_history(tmp_path, caplog):
    common = dict(validation_lengths=[1, 2, 3], validation_samples=100, validate_every=10, checkpoint=tmp_path, **RUN)
    first = fit(num_epoch=1, **common)
    assert (tmp_path / "best" / "latest.json").is_file()
    best_saved = load_checkpoint(tmp_path / "best")
    assert best_saved.config["progress"]["global_batch"] == first.best.global_batch
    with caplog.at_level("INFO", logger="sinlstm_sym.infer.predictor"):
        loaded = Predictor.load(tmp_path)
    assert "loading the best checkpoint by validation" in caplog.text
    x = np.linspace(0, 1, 12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(loaded.predict(x), first.predictor(best=True).predict(x), atol=1e-6)
    np.testing.assert_allclose(Predictor.load(tmp_path, best=False).predict(x), first.predictor(best=False).predict(x),
                               atol=1e-6)
    resumed = fit(num_epoch=2, resume=True, **common)
    straight = fit(num_epoch=2, **{k: v for k, v in common.items() if k != "checkpoint"})
    assert [r.global_batch for r in resumed.validation_history] == [r.global_batch for r in
                                                                    straight.validation_history]
    for a, b in zip(resumed.validation_history, straight.validation_history):
        assert sorted(a.per_length) == sorted(b.per_length)
        np.testing.assert_allclose([a.per_length[k] for k in sorted(a.per_length)],
                                   [b.per_length[k] for k in sorted(b.per_length)], rtol=1e-5)
    assert resumed.best.global_batch == straight.best.global_batch
    np.testing.assert_allclose(resumed.predictor().predict(x), straight.predictor().predict(x), atol=1e-6)
    saved = json.loads(json.dumps(load_checkpoint(tmp_path).config["progress"]["validation"]))
    assert len(saved) == len(straight.validation_history)


@pytest.mark.parametrize("kwargs, message", [
    (dict(target_max_error=0.01), "target_max_error needs validation_lengths"),
    (dict(validation_lengths=[0]), "validation_lengths must hold ints >= 1"),
    (dict(validation_lengths=[1], patience=0), "patience must be >= 1"),
    (dict(validation_lengths=[1], target_max_error=-1), "target_max_error must be > 0"),
])
def test_bad_validation_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(**kwargs, **RUN)
