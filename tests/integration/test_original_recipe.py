"""FitConfig.original() is the 2018 note's setup in every respect that changes a number, initialisation included:
its loss table is reproduced, and ``--fixed`` shows its per-step observation beside the note's."""
import re

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import FitConfig, ModelConfig, Predictor, fit, make_sym_gen
from sinlstm_sym.cli import train as train_cli
from sinlstm_sym.constants import GLUON_UNIFORM_SCALE, NOTE_LOG_EVERY, NOTE_LOSSES, NOTE_STEPS, NOTE_T0
from sinlstm_sym.data.windows import half_sine
from sinlstm_sym.infer.evaluation import step_outputs
from sinlstm_sym.reference.gluon import build_gluon_model, params_from_gluon, train_gluon_reference
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.recurrence.cells import to_layout

HIDDEN = (10, 20, 1)


def weights_and_biases(params):
    weights = np.concatenate([v.ravel() for k, v in params.items() if k.endswith("weight")])
    biases = np.concatenate([v.ravel() for k, v in params.items() if k.endswith("bias")])
    return weights, biases


def test_gluons_own_defaults_are_what_init_gluon_draws():
    net = build_gluon_model(HIDDEN)
    net.initialize()  # the original's model.initialize(): mx.init.Uniform() globally, 'zeros' for LSTM biases
    theirs_w, theirs_b = weights_and_biases(params_from_gluon(net))
    ours_w, ours_b = weights_and_biases(init_params(HIDDEN, seed=3, init="gluon"))
    assert theirs_w.shape == ours_w.shape and np.all(theirs_b == 0) and np.all(ours_b == 0)
    for w in (theirs_w, ours_w):
        assert np.abs(w).max() <= GLUON_UNIFORM_SCALE and np.abs(w).max() > 0.99 * GLUON_UNIFORM_SCALE
        assert abs(w.std() - GLUON_UNIFORM_SCALE / np.sqrt(3)) < 0.05 * GLUON_UNIFORM_SCALE / np.sqrt(3)
        assert abs(w.mean()) < 0.005


def test_init_gluon_is_seeded_and_differs_from_the_library_init():
    a, b, c = (init_params(HIDDEN, 5, init="gluon"), init_params(HIDDEN, 5, init="gluon"),
               init_params(HIDDEN, 6, init="gluon"))
    library = init_params(HIDDEN, 5)
    assert all(np.array_equal(a[k], b[k]) for k in a) and not any(np.array_equal(a[k], c[k]) for k in a
                                                                    if k.endswith("weight"))
    assert np.abs(library["lstm0_i2h_weight"]).max() > GLUON_UNIFORM_SCALE  # Xavier on fan-in 1: wider
    assert init_params(HIDDEN, 5, forget_bias=1.0, init="gluon")["lstm1_i2h_bias"][20:40].tolist() == [1.0] * 20
    with pytest.raises(ValueError, match=r"init must be one of \['library', 'gluon'\]"):
        init_params(HIDDEN, 5, init="xavier")
    with pytest.raises(ValueError, match="init must be one of"):
        make_sym_gen(init="uniform")
    with pytest.raises(ValueError, match="init must be one of"):
        ModelConfig(init="Gluon")


@pytest.mark.parametrize("cell", ["unrolled", "fused", "native"])
def test_every_cell_starts_from_the_gluon_weights(cell):
    sym_gen = make_sym_gen(HIDDEN, label_mode="last", cell=cell, init_seed=7, init="gluon")
    module = mx.mod.BucketingModule(sym_gen, default_bucket_key=9)
    module.bind(data_shapes=[("data", (4, 9, 1))], label_shapes=[("label", (4, 1))])
    module.init_params(mx.init.Xavier())
    args, _ = module.get_params()
    for name, value in to_layout(init_params(HIDDEN, 7, init="gluon"), cell, HIDDEN).items():
        np.testing.assert_array_equal(args[name].asnumpy(), value)


def test_fit_original_trains_from_the_seeds_gluon_weights():
    result = fit(FitConfig.original(num_samples=600, seed=11, cell="fused"))
    assert (result.config.model.init, result.config.model.forget_bias) == ("gluon", 0.0)
    module = mx.mod.BucketingModule(result.sym_gen, default_bucket_key=9)  # fit's own sym_gen, fresh
    module.bind(data_shapes=[("data", (2, 9, 1))], label_shapes=[("label", (2, 1))])
    module.init_params()
    args, _ = module.get_params()
    expected = to_layout(init_params(HIDDEN, 11, init="gluon"), "fused", HIDDEN)
    for name, value in expected.items():
        np.testing.assert_array_equal(args[name].asnumpy(), value)


@pytest.mark.parametrize("cell", ["unrolled", "fused", "native"])
def test_the_gluon_reference_starts_and_trains_alike(cell):
    settings = dict(num_samples=3000, log_every=2, seed=6)
    ours = fit(FitConfig.original(optimizer="sgd", cell=cell, **settings))
    reference = train_gluon_reference(optimizer="sgd", **settings)  # the original's windows and weights by default
    np.testing.assert_allclose(reference.losses, ours.losses, rtol=1e-4)
    assert len(ours.losses) == 5


def test_init_is_a_training_setting_stored_and_compared():
    gluon_config = FitConfig(model=ModelConfig(init="gluon"))
    assert FitConfig.from_json(gluon_config.to_json()) == gluon_config
    assert FitConfig().describe_differences(gluon_config) == "init='library' there, 'gluon' now"
    assert FitConfig.from_json({"model": {}}).model.init == "library"  # checkpoints before init: the library's


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_notes_loss_table_within_20_percent(optimizer):
    """The median over seeds 0, 1, 2 of each logged point is within 20 % of the note's (docs/results.md)."""
    runs = [fit(FitConfig.original(optimizer=optimizer), seed=s, num_samples=30000, log_every=NOTE_LOG_EVERY).losses
            for s in (0, 1, 2)]
    assert all(len(r) == len(NOTE_LOSSES[optimizer]) == 5 for r in runs)
    median = np.median(runs, axis=0)
    ratio = median / np.asarray(NOTE_LOSSES[optimizer])
    assert np.all(np.abs(ratio - 1) <= 0.2), f"{optimizer}: median {median.round(4)}, ratio to the note {ratio}"


def test_step_outputs_are_the_last_outputs_of_the_cut_windows():
    params = init_params(HIDDEN, 2, init="gluon")
    params["lstm2_i2h_bias"][:] = 0.3  # a model whose outputs are not all near zero
    model = ModelConfig(label_mode="last", cell="fused")
    last = Predictor.from_config(params, model)
    cut = np.array([last.predict_function(np.array([NOTE_T0]), k)[0] for k in range(1, 10)])
    np.testing.assert_allclose(step_outputs(params, model, NOTE_T0, 9), cut, atol=1e-6)
    assert np.abs(cut).min() > 1e-3


def parse_rows(text):
    """{row name: values} of the per-step table --fixed prints."""
    block = text[text.index("outputs at every step of one window"):]
    rows = {}
    for line in block.splitlines()[2:]:
        match = re.match(r"^(.*?)\s{2,}(\S+(?:\s+\S+){8})$", line)
        if match:
            rows[match.group(1).strip()] = [float(v) for v in match.group(2).split()]
    return rows


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fixed_prints_the_notes_window_beside_the_note(capsys, optimizer):
    argv = ["--fixed", "--optimizer", optimizer, "--num-samples", "3000", "--log-every", "5", "--eval-lengths", "9",
            "--eval-samples", "10", "--seed", "3", "--cell", "fused"]
    assert train_cli.main(argv) == 0
    rows = parse_rows(capsys.readouterr().out)
    for name, values in NOTE_STEPS.items():
        assert rows[f"note: {name}"] == pytest.approx(values, rel=1e-3)
    np.testing.assert_allclose(rows["label sin(t)/2"], half_sine(NOTE_T0 + 0.01 * np.arange(1, 10)), atol=1e-4)
    assert rows["label sin(t)/2"][0] == pytest.approx(NOTE_STEPS["label"][0], abs=1e-4)
    model = FitConfig.original(cell="fused").model
    untrained = step_outputs(init_params(HIDDEN, 3, init="gluon"), model, NOTE_T0, 9)
    np.testing.assert_allclose(rows["untrained model"], untrained, rtol=0.05, atol=1e-6)
    assert np.abs(untrained).max() < 1e-3  # as the note's: Gluon's small weights, zero biases
    trained = rows["trained model"]
    assert trained != pytest.approx(rows["untrained model"], abs=1e-3)


def test_a_trained_fixed_model_is_right_at_its_length_only():
    """The note's observation: trained on the last output of 9 steps, the early steps are far off."""
    result = fit(FitConfig.original(seed=0, cell="fused", num_samples=60000, log_every=100,
                                    optimizer_params={"learning_rate": 0.01}))
    out = step_outputs(result.arg_params(), result.config.model, NOTE_T0, 9)
    labels = half_sine(NOTE_T0 + 0.01 * np.arange(1, 10))
    assert abs(out[-1] - labels[-1]) < 0.02 and abs(out[0] - labels[0]) > 0.1
