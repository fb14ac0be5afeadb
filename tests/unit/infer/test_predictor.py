"""Predictor: any N, any length, bounded cache, checked input."""
import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym.core.context import resolve_contexts
from sinlstm_sym.data.windows import half_sine
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.infer import predictor as predictor_module
from sinlstm_sym.infer.predictor import Predictor
from lstm_reference import reference_lstm

PARAMS = init_params((10, 20, 1), seed=0)


@pytest.fixture
def executors_only(monkeypatch):
    """Predictors made in the test serve through MXNet's executors (as without the native direct interface)."""
    monkeypatch.setattr(predictor_module, "load_direct", lambda: None)


@pytest.fixture(params=["direct", "executors"])
def serving(request, monkeypatch):
    """Each way a native-cell predictor serves: the direct call where the library offers it, and executors."""
    if request.param == "executors":
        monkeypatch.setattr(predictor_module, "load_direct", lambda: None)
    return request.param


@pytest.mark.parametrize("n, length", [(1, 1), (5, 3), (1025, 2), (2000, 20), (7, 50)])
def test_any_n_and_length(n, length):
    predictor = Predictor(PARAMS, label_mode="sequence", batch_size=1024)
    x = np.random.default_rng(n).uniform(0, 1, size=(n, length))
    out = predictor.predict(x)
    assert out.shape == (n, length) and out.dtype == np.float32
    # the same windows one by one give the same outputs: padding never leaks into real rows
    np.testing.assert_allclose(predictor.predict(x[:1]), out[:1], atol=1e-6)
    np.testing.assert_allclose(predictor.predict(x[:, :, None]), out, atol=1e-7)


def test_last_mode_returns_one_value_per_window_equal_to_last_step():
    last = Predictor(PARAMS, label_mode="last").predict(np.full((4, 6), 0.5))
    seq = Predictor(PARAMS, label_mode="sequence").predict(np.full((4, 6), 0.5))
    assert last.shape == (4,)
    np.testing.assert_allclose(last, seq[:, -1], atol=1e-6)


def test_cache_is_bounded_lru(executors_only):
    predictor = Predictor(PARAMS, max_cached_lengths=3, batch_size=8)
    for length in [1, 2, 3, 1, 4]:
        predictor.predict(np.zeros((2, length)))
    assert predictor.cached_lengths == (3, 1, 4)


def test_predict_function_builds_windows_like_the_iterator():
    predictor = Predictor(PARAMS, label_mode="sequence")
    t0 = np.array([0.1, 0.7])
    np.testing.assert_allclose(predictor.predict_function(t0, 4),
                               predictor.predict(t0[:, None] + 0.01 * np.arange(4)), atol=1e-7)
    value = Predictor(PARAMS, label_mode="sequence", feature="value")
    np.testing.assert_allclose(value.predict_function(t0, 4),
                               value.predict(half_sine(t0[:, None] + 0.01 * np.arange(4))), atol=1e-7)


@pytest.mark.parametrize("windows, error, message", [
    (np.zeros((0, 3)), ValueError, "at least one"),
    (np.zeros((2, 0)), ValueError, "at least one"),
    (np.zeros((2, 3, 2)), ValueError, r"\(N, L\)"),
    (np.zeros(3), ValueError, r"\(N, L\)"),
    (np.array([["a", "b"]]), TypeError, "numeric"),
    (np.array([[0.1, np.nan]]), ValueError, "finite"),
])
def test_bad_windows(windows, error, message):
    with pytest.raises(error, match=message):
        Predictor(PARAMS).predict(windows)


def test_bad_params():
    with pytest.raises(ValueError, match="lacks"):
        Predictor({k: v for k, v in PARAMS.items() if k != "lstm2_h2h_bias"})
    wrong = dict(PARAMS, lstm0_i2h_weight=np.zeros((8, 1)))
    with pytest.raises(ValueError, match="lstm0_i2h_weight"):
        Predictor(wrong)


@pytest.mark.parametrize("spec, expected", [
    (None, [mx.cpu(0)]), ("cpu", [mx.cpu(0)]), ("cpu:0,1", [mx.cpu(0), mx.cpu(1)]), (mx.cpu(1), [mx.cpu(1)]),
    (["cpu:0", mx.cpu(1)], [mx.cpu(0), mx.cpu(1)]),
])
def test_resolve_contexts(spec, expected):
    assert resolve_contexts(spec) == expected


@pytest.mark.parametrize("spec, error, message", [
    ("gpu", ValueError, r"cu112"), ("gpu:0,1", ValueError, "no GPU"), ([mx.gpu(0)], ValueError, "no GPU"),
    ([], ValueError, "empty"), ("cpu:0,0", ValueError, "distinct"), (["cpu", "cpu:0"], ValueError, "twice"),
    (3, TypeError, "ctx"), ("npu", ValueError, "ctx"),
])
def test_resolve_contexts_rejects(spec, error, message):
    if mx.context.num_gpus() > 0 and "GPU" in message:
        pytest.skip("a GPU is present")
    with pytest.raises(error, match=message):
        resolve_contexts(spec)


def test_one_predictor_serves_eight_threads_like_serial_calls(serving):
    from concurrent.futures import ThreadPoolExecutor
    predictor = Predictor(init_params((10, 20, 1), seed=2), max_cached_lengths=4)
    assert predictor.serves_directly == (serving == "direct" and predictor.cell == "native")
    rng = np.random.default_rng(0)
    calls = [rng.uniform(0, 1, size=(int(rng.integers(1, 40)), int(rng.integers(1, 13)))) for _ in range(200)]
    serial = [predictor.predict(x) for x in calls]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(8):  # 8 threads x 200 calls of mixed lengths (the LRU of 4 lengths evicts all along)
            results = list(pool.map(predictor.predict, calls))
            for got, want in zip(results, serial):
                np.testing.assert_array_equal(got, want)


def test_one_window_of_length_100000_runs_in_chunks_sized_by_its_length():
    predictor = Predictor(PARAMS)
    assert predictor.chunk_rows(20) == 1024  # ordinary lengths keep their 1024-window chunks
    assert predictor.chunk_rows(100000) <= 2 and predictor.chunk_rows(30000) <= 8
    for length in (300, 3000, 30000, 100000):  # windows x length per chunk stays within the budget
        assert predictor.chunk_rows(length) * length * (sum(predictor.hidden_sizes) + 2) * 32 <= 256 << 20
    out = predictor.predict_function([0.1], length=100000)
    assert out.shape == (1, 100000) and np.isfinite(out).all()
    # the LSTM is causal: the first 20 steps are those of the window of length 20
    np.testing.assert_allclose(out[:, :20], predictor.predict_function([0.1], length=20), atol=1e-6)


def test_a_request_beyond_the_memory_ceiling_is_refused_before_allocating(monkeypatch):
    from sinlstm_sym.config import limits
    predictor = Predictor(PARAMS)
    with pytest.raises(ValueError, match=r"predicting 10000000 window\(s\) of length 1000000 needs about "
                       r"[\d.]+ TiB of memory, more than the [\d.]+ [GMT]iB allowed"):
        predictor.predict_function(np.zeros(10**7), length=10**6)
    monkeypatch.setattr(limits, "available_memory", lambda: 64 << 20)
    with pytest.raises(ValueError, match="predicting 1 window"):
        predictor.predict(np.zeros((1, 100000)))


# --- cost follows the request: executors per row bucket ------------------------------------------------
CASES = {"native": [(1, 20), (15, 9), (16, 9), (17, 9), (100, 57), (1025, 20), (2100, 3)],
         "fused": [(1, 20), (3, 9), (100, 57), (1025, 20)],
         "unrolled": [(1, 9), (3, 9), (1025, 2)]}


@pytest.mark.parametrize("cell, direct", [("native", True), ("native", False), ("fused", False),
                                          ("unrolled", False)])
def test_every_cell_and_request_size_gives_the_reference_outputs(cell, direct, monkeypatch):
    if not direct:
        monkeypatch.setattr(predictor_module, "load_direct", lambda: None)
    predictor = Predictor(PARAMS, cell=cell)
    if predictor.cell != cell:
        pytest.skip(f"cell {cell!r} is not available here")
    assert predictor.serves_directly == direct
    rng = np.random.default_rng(3)
    for n, length in CASES[cell]:
        x = rng.uniform(-0.1, 1.2, size=(n, length))
        out = predictor.predict(x)
        assert out.shape == (n, length) and out.dtype == np.float32
        np.testing.assert_allclose(out, reference_lstm(PARAMS, (10, 20, 1), x), atol=1e-5, rtol=0)
        # a window alone (another row bucket) gives its row of the batch
        np.testing.assert_allclose(predictor.predict(x[-1:]), out[-1:], atol=1e-6, rtol=0)


def test_one_window_runs_in_a_small_executor_not_a_chunk(executors_only):
    predictor = Predictor(PARAMS, batch_size=1024)
    small = 16 if predictor.cell == "native" else 1  # the native operator computes blocks of 16 windows
    assert [predictor.row_bucket(n, 20) for n in (1, 16, 17, 100, 1000, 5000)] == [small, 16, 32, 128, 1024, 1024]
    assert predictor.row_bucket(1, 100000) == predictor.chunk_rows(100000) <= 2  # long windows: never past a chunk
    predictor.predict(np.zeros((1, 20)))
    assert predictor._executors.rows_bound(20) == (small,)
    predictor.predict(np.zeros((1000, 20)))
    predictor.predict(np.zeros((100, 20)))
    predictor.predict(np.zeros((3, 20)))  # bound already: no new executor
    assert predictor._executors.rows_bound(20) == tuple(sorted({small, 16, 128, 1024}))
    with pytest.raises(ValueError, match="num_windows"):
        predictor.row_bucket(0, 20)


def test_a_small_request_does_not_read_the_memory_available(monkeypatch):
    from sinlstm_sym.config import limits

    def unreadable():
        raise AssertionError("read the memory available")
    predictor = Predictor(PARAMS)
    monkeypatch.setattr(limits, "available_memory", unreadable)
    assert predictor.predict(np.zeros((1, 20))).shape == (1, 20)
    with pytest.raises(AssertionError, match="memory available"):  # a large one still does
        predictor.predict(np.zeros((1000, 200)))


def forecast_step_by_step(predictor, history, steps, window):
    """What forecast computes: predict on the last `window` values, append, repeat."""
    series = np.array(history, dtype=np.float64, ndmin=2)
    out = []
    for _ in range(steps):
        pred = predictor.predict(series[:, -window:])
        out.append(pred if predictor.label_mode == "last" else pred[:, -1])
        series = np.concatenate([series, out[-1][:, None]], axis=1)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("mode, scaling", [("last", (500.0, 60.0)), ("sequence", None)])
def test_forecast_equals_step_by_step_prediction_and_binds_its_lengths_once(mode, scaling, serving):
    predictor = Predictor(PARAMS, feature="value", label_mode=mode, scaling=scaling, trained_lengths=[8])
    rng = np.random.default_rng(0)
    history = rng.uniform(-0.4, 0.4, size=(3, 30)) * (1 if scaling is None else 60) + (scaling or (0,))[0]
    got = predictor.forecast(history, 12)
    np.testing.assert_allclose(got, forecast_step_by_step(predictor, history, 12, 8), rtol=1e-12, atol=1e-9)
    # every step in the executor of the window's length, or none bound when serving directly
    assert predictor.cached_lengths == (() if predictor.serves_directly else (8,))
    short = predictor.forecast(history[0, :3], 7)  # a history shorter than the window: lengths 3..8
    np.testing.assert_allclose(short, forecast_step_by_step(predictor, history[0, :3], 7, 8)[0], rtol=1e-12,
                               atol=1e-9)
    with pytest.raises(ValueError, match="history must be finite"):
        predictor.forecast(np.array([0.1, np.nan]), 2)


def test_a_predictor_on_another_cpu_device_copies_requests_in_and_agrees():
    x = np.random.default_rng(5).uniform(0, 1, size=(3, 7))
    np.testing.assert_array_equal(Predictor(PARAMS, ctx="cpu:1").predict(x), Predictor(PARAMS).predict(x))
