"""The original Gluon setup beside the symbolic path: same data, same weights, same numbers."""
import numpy as np
import pytest

from sinlstm_sym import FitConfig, fit
from sinlstm_sym.reference.gluon import (build_gluon_model, copy_params_to_gluon, gluon_predict, params_from_gluon,
                                         train_gluon_reference)
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.infer.predictor import Predictor

FIXED = dict(buckets=[9], label_mode="last", num_samples=6000, log_every=5, seed=4)


@pytest.fixture(scope="module")
def trained():
    return fit(buckets=range(1, 10), label_mode="sequence", num_samples=15000, log_every=50, seed=9)


@pytest.mark.parametrize("cell", ["fused", "unrolled"])
def test_same_weights_same_outputs_lengths_1_to_12(trained, cell):
    net = build_gluon_model()
    copy_params_to_gluon(trained.arg_params(), net)
    predictor = Predictor(trained.arg_params(), label_mode="sequence", cell=cell)
    rng = np.random.default_rng(0)
    worst = 0.0
    for length in range(1, 13):
        x = rng.uniform(0, 1.2, size=(37, length))
        worst = max(worst, float(np.abs(gluon_predict(net, x) - predictor.predict(x)).max()))
    assert worst < 1e-5


def test_weights_round_trip_through_gluon():
    params = init_params((10, 20, 1), seed=8)
    net = build_gluon_model()
    copy_params_to_gluon(params, net)
    back = params_from_gluon(net)
    assert back.keys() == params.keys()
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_gluon_and_bucketing_module_train_alike(optimizer):
    reference = train_gluon_reference(optimizer=optimizer, **FIXED)
    ours = fit(FitConfig.original(optimizer=optimizer, **FIXED))
    assert len(reference.losses) == len(ours.losses) == 4
    np.testing.assert_allclose(reference.losses, ours.losses, rtol=1e-4)
    theirs, mine = params_from_gluon(reference.net), ours.arg_params()
    for name in mine:
        np.testing.assert_allclose(theirs[name], mine[name], atol=1e-4)


def test_gluon_reference_rejects_bad_input():
    with pytest.raises(ValueError, match="optimizer"):
        train_gluon_reference(optimizer="rmsprop", num_samples=600)
    with pytest.raises(ValueError, match="lacks"):
        copy_params_to_gluon({}, build_gluon_model())
