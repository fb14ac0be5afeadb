"""The Predictor's direct path: the native forward pass called without MXNet's engine.

Its outputs are bit-identical to the inference executors' for every request size, length, label mode,
feature, a scaled series model and a window-level model, and in ``forecast``; concurrent calls (also while
MXNet trains with the same operator in another thread) give the serial outputs; without the library's direct
interface the Predictor serves through its executors after one warning.
"""
import ctypes
import ctypes.util
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import Predictor, make_sym_gen
from sinlstm_sym.infer import predictor as predictor_module
from sinlstm_sym.native import direct
from sinlstm_sym.recurrence.params import fused_shapes, init_params, pack_fused, unpacked_shapes

pytestmark = pytest.mark.native  # built on first use by the first such test (tests/conftest.py)

HIDDEN = (10, 20, 1)
LENGTHS = (1, 2, 9, 20, 57, 200)
BATCHES = (1, 7, 16, 17, 1024)
MODELS = {
    "sequence, time": dict(label_mode="sequence", feature="time"),
    "last, time": dict(label_mode="last", feature="time"),
    "sequence, value": dict(label_mode="sequence", feature="value"),
    "last, value": dict(label_mode="last", feature="value"),
    "scaled series": dict(label_mode="last", feature="value", scaling=(500.0, 60.0)),
    "window level": dict(label_mode="last", feature="value", scaling=(0.0, 4.0), window_level="last"),
}


def random_params(hidden_sizes=HIDDEN, seed=0, spread=0.8):
    """Parameters far from the initial ones (larger weights and nonzero biases), so every gate matters."""
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-spread, spread, size=shape).astype(np.float32)
            for name, shape in unpacked_shapes(hidden_sizes).items()}


def both_paths(monkeypatch, params, **settings):
    """A predictor serving directly and one serving through executors, on the same model."""
    served = Predictor(params, **settings)
    assert served.serves_directly, "the native cell on a CPU serves directly"
    with monkeypatch.context() as patch:
        patch.setattr(predictor_module, "load_direct", lambda: None)
        executed = Predictor(params, **settings)
    assert not executed.serves_directly
    return served, executed


def request(predictor, n, length, rng):
    """Windows as the model takes them: time stamps or sine values, or a series' values around its center."""
    if predictor.scaling is not None:
        center, scale = predictor.scaling
        return center + scale * np.cumsum(rng.normal(0, 0.3, size=(n, length)), axis=1)
    t0 = rng.uniform(-0.1, 1.12, size=n)
    if predictor.feature == "time":
        return t0[:, None] + predictor.step * np.arange(length)
    return 0.5 * np.sin(np.pi * (t0[:, None] + predictor.step * np.arange(length)))


@pytest.mark.parametrize("model", list(MODELS))
def test_direct_outputs_are_the_executors_bit_for_bit(monkeypatch, model):
    settings = MODELS[model]
    served, executed = both_paths(monkeypatch, random_params(seed=len(model)), **settings)
    rng = np.random.default_rng(7)
    for length in LENGTHS:
        for n in BATCHES:
            x = request(served, n, length, rng)
            got, want = served.predict(x), executed.predict(x)
            assert got.shape == want.shape == ((n,) if settings["label_mode"] == "last" else (n, length))
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{model}: {n} window(s) of length {length}")
    assert served.cached_lengths == ()  # no executor was bound for the direct path


def test_predict_function_and_other_hidden_sizes_agree(monkeypatch):
    hidden = (33, 5, 1)  # 132 gate rows: blocks of 8 and of 4
    served, executed = both_paths(monkeypatch, random_params(hidden, seed=3), hidden_sizes=hidden)
    t0 = np.random.default_rng(1).uniform(0, 1, size=40)
    for length in (1, 9, 64):
        np.testing.assert_array_equal(served.predict_function(t0, length), executed.predict_function(t0, length))


def test_requests_beyond_a_chunk_run_chunk_by_chunk_and_agree(monkeypatch):
    served, executed = both_paths(monkeypatch, random_params(), batch_size=100)
    x = np.random.default_rng(2).uniform(0, 1, size=(250, 9))  # chunks of 100, 100 and 50 windows
    np.testing.assert_array_equal(served.predict(x), executed.predict(x))


@pytest.mark.parametrize("model", ["last, value", "sequence, value", "scaled series", "window level"])
def test_forecast_is_the_executors_bit_for_bit(monkeypatch, model):
    served, executed = both_paths(monkeypatch, random_params(seed=11), trained_lengths=[20], **MODELS[model])
    history = request(served, 3, 40, np.random.default_rng(4))
    got = served.forecast(history, 12)
    assert got.shape == (3, 12) and np.isfinite(got).all()
    np.testing.assert_array_equal(got, executed.forecast(history, 12))
    np.testing.assert_array_equal(served.forecast(history[0, :5], 12), executed.forecast(history[0, :5], 12))


def test_direct_outputs_match_a_float64_reference():
    from lstm_reference import reference_lstm
    params = random_params(seed=5)
    predictor = Predictor(params)
    x = np.random.default_rng(8).uniform(-0.1, 1.2, size=(37, 30))
    np.testing.assert_allclose(predictor.predict(x), reference_lstm(params, HIDDEN, x), atol=1e-5, rtol=0)


# --- fallback ------------------------------------------------------------------------------------------
def test_without_the_direct_interface_the_predictor_uses_executors_after_one_warning(monkeypatch, caplog):
    params = random_params(seed=9)
    x = np.random.default_rng(3).uniform(0, 1, size=(17, 12))
    want = Predictor(params).predict(x)
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no C library to stand in for a library without the direct interface")
    monkeypatch.setattr(direct, "_LIBRARY", None)  # not opened yet in this process
    monkeypatch.setattr(direct, "_open", lambda: direct._declare(ctypes.CDLL(libc)))  # has no sinlstm_direct_*
    with caplog.at_level(logging.WARNING, logger=direct.__name__):
        first, second = Predictor(params), Predictor(params, label_mode="last")
    warnings = [r for r in caplog.records if r.name == direct.__name__]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "sinlstm_direct_version" in warnings[0].getMessage()
    assert "run through MXNet's executors" in warnings[0].getMessage()
    assert not first.serves_directly and not second.serves_directly
    np.testing.assert_array_equal(first.predict(x), want)
    np.testing.assert_array_equal(second.predict(x), want[:, -1])
    assert first.cached_lengths == (12,)


def test_a_library_of_another_interface_version_is_not_used(monkeypatch, caplog):
    monkeypatch.setattr(direct, "_LIBRARY", None)
    monkeypatch.setattr(direct, "DIRECT_VERSION", direct.DIRECT_VERSION + 1)
    with caplog.at_level(logging.WARNING, logger=direct.__name__):
        assert direct.load_direct() is None
        assert direct.load_direct() is None
    messages = [r.getMessage() for r in caplog.records if r.name == direct.__name__]
    assert len(messages) == 1 and f"this package speaks {direct.DIRECT_VERSION}" in messages[0]


def test_bad_models_and_windows_are_refused_with_the_reason():
    library = direct.load_direct()
    assert library is not None
    with pytest.raises(ValueError, match=r"last hidden size must be 1"):
        shapes = fused_shapes((4, 2))
        direct.DirectStack(library, [np.zeros(s, np.float32) for s in shapes.values()], (4, 2))
    with pytest.raises(ValueError, match=r"params must be one vector per layer of shapes \[\(112,\), \(28,\)\]"):
        direct.DirectStack(library, [np.zeros(112, np.float32), np.zeros(27, np.float32)], (4, 1))
    stack = direct.DirectStack(library, list(pack_fused(init_params((4, 1), seed=0), (4, 1)).values()), (4, 1))
    for bad in (np.zeros((0, 3)), np.zeros((2, 0)), np.zeros((2, 3, 2)), np.zeros(3)):
        with pytest.raises(ValueError, match=r"windows must have shape \(N, L, 1\) with N, L >= 1 or \(N, L\)"):
            stack.forward(bad, last_step=False)
    error = ctypes.create_string_buffer(200)
    out = np.zeros(1, np.float32)
    assert library.sinlstm_direct_forward(stack._handle, out.ctypes.data, 0, 3, 0, out.ctypes.data, error, 200) == 1
    assert b"a batch and length from 1" in error.value
    assert stack.forward(np.zeros((3, 5, 1)), last_step=True).shape == (3, 1)


# --- threads -------------------------------------------------------------------------------------------
SIZES = [(1, 20), (1000, 20), (7, 57), (300, 9), (17, 1), (64, 30)]  # 1000 x 20 and 300 x 9 use the helper thread


def test_concurrent_calls_on_one_model_give_the_serial_outputs():
    params = random_params(seed=12)
    stack = Predictor(params)._direct  # no lock around it: the library's own guarantee
    rng = np.random.default_rng(0)
    calls = [(rng.uniform(0, 1, size=SIZES[i % len(SIZES)]), i % 3 == 0) for i in range(60)]
    serial = [stack.forward(x, last) for x, last in calls]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(3):
            for got, want in zip(pool.map(lambda c: stack.forward(*c), calls), serial):
                np.testing.assert_array_equal(got, want)


def test_serving_while_mxnet_trains_with_the_operator_gives_the_serial_numbers():
    """Predictors in three threads while a fourth runs the operator's forward and backward in MXNet's engine
    (large batches, so both share the helper threads): everyone gets the numbers of running alone."""
    predictors = [Predictor(random_params(seed=s), label_mode=m) for s, m in ((1, "sequence"), (2, "last"),
                                                                               (3, "sequence"))]
    rng = np.random.default_rng(1)
    calls = [rng.uniform(0, 1, size=SIZES[i % len(SIZES)]) for i in range(24)]
    serial = [[p.predict(x) for x in calls] for p in predictors]
    symbol, _, _ = make_sym_gen(HIDDEN, label_mode="sequence", cell="native", with_loss=False)(9)
    args = {"data": mx.nd.array(rng.uniform(-1, 1, (600, 9, 1)))}
    args.update({k: mx.nd.array(rng.uniform(-0.6, 0.6, s)) for k, s in fused_shapes(HIDDEN).items()})
    grads = {k: mx.nd.zeros(v.shape) for k, v in args.items()}
    executor = symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req="write")
    head = mx.nd.array(rng.normal(size=(600, 9)))

    def train_step():
        executor.forward(is_train=True)
        executor.backward(head)
        return {k: v.asnumpy() for k, v in grads.items()}
    alone = train_step()
    stop, trained, steps = threading.Event(), [], [0]

    def train():
        while not stop.is_set():
            trained.append(train_step())
            steps[0] += 1

    trainer = threading.Thread(target=train)
    trainer.start()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda p: [[p.predict(x) for x in calls] for _ in range(3)], predictors))
    finally:
        stop.set()
        trainer.join()
    for got, want in zip(results, serial):
        for repeat in got:
            for a, b in zip(repeat, want):
                np.testing.assert_array_equal(a, b)
    assert steps[0] >= 1
    for step in trained:
        for name, value in step.items():
            np.testing.assert_array_equal(value, alone[name], err_msg=name)
