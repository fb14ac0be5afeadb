"""sym_gen: one shared parameter set for every bucket key, output shapes per label mode."""
import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import make_sym_gen
from sinlstm_sym.recurrence.params import fused_shapes, init_params, pack_fused, unpack_fused, unpacked_shapes
from sinlstm_sym.recurrence.cells import to_layout

HIDDEN = (10, 20, 1)
BATCH = 4


def param_shapes(sym_gen, key, label_mode):
    symbol, data_names, label_names = sym_gen(key)
    shapes = {data_names[0]: (BATCH, key, 1)}
    if label_names:
        shapes[label_names[0]] = (BATCH, 1) if label_mode == "last" else (BATCH, key)
    arg_shapes, out_shapes, aux_shapes = symbol.infer_shape(**shapes)
    params = {n: s for n, s in zip(symbol.list_arguments(), arg_shapes) if n not in shapes}
    return params, out_shapes, aux_shapes


@pytest.mark.parametrize("cell", ["unrolled", "fused"])
@pytest.mark.parametrize("label_mode", ["last", "sequence"])
def test_same_parameters_for_every_key(cell, label_mode):
    sym_gen = make_sym_gen(HIDDEN, label_mode=label_mode, cell=cell)
    expected = unpacked_shapes(HIDDEN) if cell == "unrolled" else fused_shapes(HIDDEN)
    for key in range(1, 21):
        params, _, aux = param_shapes(sym_gen, key, label_mode)
        assert params == expected, key
        assert aux == []


@pytest.mark.parametrize("cell", ["unrolled", "fused"])
@pytest.mark.parametrize("label_mode, pred_shape", [("last", lambda L: (BATCH, 1)),
                                                    ("sequence", lambda L: (BATCH, L))])
@pytest.mark.parametrize("key", [1, 2, 9, 17])
def test_output_shapes(cell, label_mode, pred_shape, key):
    _, outs, _ = param_shapes(make_sym_gen(HIDDEN, label_mode=label_mode, cell=cell), key, label_mode)
    assert outs == [pred_shape(key)]  # the prediction is the only output
    symbol, data_names, label_names = make_sym_gen(HIDDEN, label_mode=label_mode, cell=cell, with_loss=False)(key)
    assert label_names is None and data_names == ("data",)
    assert symbol.infer_shape(data=(BATCH, key, 1))[1] == [pred_shape(key)]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(params, x):
    """Closed-form forward pass of the stacked LSTM (gates i, f, c, o), outputs (N, L)."""
    hs = [params[f"lstm{i}_h2h_weight"].shape[1] for i in range(len(HIDDEN))]
    h = [np.zeros((x.shape[0], n)) for n in hs]
    c = [np.zeros((x.shape[0], n)) for n in hs]
    outputs = []
    for t in range(x.shape[1]):
        inp = x[:, t, :]
        for i in range(len(hs)):
            gates = (inp @ params[f"lstm{i}_i2h_weight"].T + params[f"lstm{i}_i2h_bias"]
                     + h[i] @ params[f"lstm{i}_h2h_weight"].T + params[f"lstm{i}_h2h_bias"])
            gi, gf, gc, go = np.split(gates, 4, axis=1)
            c[i] = sigmoid(gf) * c[i] + sigmoid(gi) * np.tanh(gc)
            h[i] = sigmoid(go) * np.tanh(c[i])
            inp = h[i]
        outputs.append(inp[:, 0])
    return np.stack(outputs, axis=1)


@pytest.mark.parametrize("cell", ["unrolled", "fused"])
@pytest.mark.parametrize("length", [1, 3, 9, 12])
def test_forward_matches_numpy_lstm(cell, length):
    params = init_params(HIDDEN, seed=3)
    x = np.random.default_rng(length).uniform(0, 1, size=(BATCH, length, 1))
    symbol, _, _ = make_sym_gen(HIDDEN, label_mode="sequence", cell=cell, with_loss=False)(length)
    args = {k: mx.nd.array(v) for k, v in to_layout(params, cell, HIDDEN).items()}
    args["data"] = mx.nd.array(x)
    out = symbol.bind(mx.cpu(), args).forward()[0].asnumpy()
    np.testing.assert_allclose(out, numpy_lstm(params, x), atol=1e-6)


def _gradients(symbol, args):
    grads = {k: mx.nd.zeros_like(v) for k, v in args.items() if k not in ("data", "label")}
    executor = symbol.bind(mx.cpu(), args, args_grad=grads)
    outputs = executor.forward(is_train=True)
    executor.backward()
    return outputs[0].asnumpy(), {k: g.asnumpy() for k, g in grads.items()}


@pytest.mark.parametrize("label_mode", ["sequence", "last"])
@pytest.mark.parametrize("cell", ["unrolled", "fused"])
def test_regression_head_gives_the_gradient_of_half_mean_squared_error(label_mode, cell):
    """The head's gradient equals that of 0.5 * mean over steps (pred - label)^2 per window, summed."""
    length = 5
    params = to_layout(init_params(HIDDEN, seed=1), cell, HIDDEN)
    x = np.random.default_rng(0).uniform(0, 1, size=(BATCH, length, 1))
    label = np.random.default_rng(1).uniform(0, 0.5, size=(BATCH, length if label_mode == "sequence" else 1))
    args = {k: mx.nd.array(v) for k, v in params.items()}
    args.update(data=mx.nd.array(x), label=mx.nd.array(label))
    ours, ours_grads = _gradients(make_sym_gen(HIDDEN, label_mode=label_mode, cell=cell)(length)[0], dict(args))
    pred = make_sym_gen(HIDDEN, label_mode=label_mode, cell=cell, with_loss=False)(length)[0]
    reference = mx.sym.MakeLoss(0.5 * mx.sym.mean(mx.sym.square(pred - mx.sym.var("label")), axis=1))
    _, reference_grads = _gradients(reference, dict(args))
    assert ours.shape == label.shape  # the output is the prediction itself
    for name in reference_grads:
        np.testing.assert_allclose(ours_grads[name], reference_grads[name], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("cell", ["unrolled", "fused"])
@pytest.mark.parametrize("initializer", [mx.init.Xavier(), mx.init.Uniform(0.5),
                                         mx.init.Mixed([".*"], [mx.init.Normal(3.0)])])
def test_any_mxnet_initializer_gives_the_library_initial_weights(cell, initializer):
    sym_gen = make_sym_gen(HIDDEN, label_mode="sequence", cell=cell, init_seed=5, forget_bias=0.5)
    module = mx.mod.BucketingModule(sym_gen, default_bucket_key=4)
    module.bind(data_shapes=[("data", (BATCH, 4, 1))], label_shapes=[("label", (BATCH, 4))])
    module.init_params(initializer)
    args, _ = module.get_params()
    expected = to_layout(init_params(HIDDEN, seed=5, forget_bias=0.5), cell, HIDDEN)
    assert set(args) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(args[name].asnumpy(), value)


def test_fused_packing_round_trip():
    params = init_params(HIDDEN, seed=7)
    packed = pack_fused(params, HIDDEN)
    assert {k: v.shape for k, v in packed.items()} == fused_shapes(HIDDEN)
    back = unpack_fused(packed, HIDDEN)
    assert back.keys() == params.keys()
    for name in params:
        np.testing.assert_array_equal(back[name], params[name])


def test_init_params_seeded_and_private():
    state = np.random.get_state()
    a, b, c = init_params(HIDDEN, 5, forget_bias=1.0), init_params(HIDDEN, 5, forget_bias=1.0), init_params(HIDDEN, 6)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
    np.testing.assert_array_equal(np.random.get_state()[1], state[1])
    assert np.all(a["lstm1_i2h_bias"][20:40] == 1.0) and np.all(a["lstm1_h2h_bias"] == 0.0)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(hidden_sizes=()), ValueError, "hidden_sizes"),
    (dict(hidden_sizes=(10, 0, 1)), ValueError, "hidden_sizes"),
    (dict(hidden_sizes=(10, 20)), ValueError, "must end with 1"),
    (dict(hidden_sizes="10"), TypeError, "hidden_sizes"),
    (dict(label_mode="all"), ValueError, "label_mode"),
    (dict(cell="gru"), ValueError, "cell"),
    (dict(with_loss=1), TypeError, "with_loss"),
    (dict(data_name="x", label_name="x"), ValueError, "must differ"),
])
def test_make_sym_gen_rejects(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_sym_gen(**kwargs)


@pytest.mark.parametrize("key, error", [(0, ValueError), (-3, ValueError), (None, TypeError), (2.0, TypeError),
                                        ("5", TypeError), (True, TypeError)])
def test_sym_gen_rejects_bad_keys(key, error):
    with pytest.raises(error, match="bucket_key"):
        make_sym_gen()(key)
