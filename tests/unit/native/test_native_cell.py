"""cell='native': the C++ operator against the fused and unrolled cells, finite differences,
training, the Predictor, grad_req, the build cache and the fallback without a compiler."""
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import fit, make_sym_gen
from sinlstm_sym.model.cells import resolve_cell
from sinlstm_sym.native import NativeUnavailableError, lstm_stack, native_available
from sinlstm_sym.native import build as native_build
from sinlstm_sym.recurrence.params import fused_shapes, unpacked_shapes
from sinlstm_sym.recurrence.cells import to_canonical, to_layout
from sinlstm_sym.infer.predictor import Predictor

needs_native = pytest.mark.native  # built on first use by the first such test (tests/conftest.py)


def random_canonical(hidden, seed, scale=0.6):
    """Random weights AND biases, so every gate and every parameter matters."""
    rng = np.random.default_rng(seed)
    return {k: rng.uniform(-scale, scale, size=s).astype(np.float32) for k, s in unpacked_shapes(hidden).items()}


def run_cell(cell, hidden, x, canonical, ograd, dtype="float32"):
    """Forward and backward of the inference symbol of ``cell``: output (B, L) and canonical gradients."""
    batch, length = x.shape[:2]
    symbol, _, _ = make_sym_gen(hidden, label_mode="sequence", cell=cell, with_loss=False)(length)
    params = to_layout(canonical, cell, hidden)
    args = {"data": mx.nd.array(x, dtype=dtype)}
    args.update({k: mx.nd.array(v, dtype=dtype) for k, v in params.items()})
    grads = {k: mx.nd.zeros(v.shape, dtype=dtype) for k, v in args.items()}
    executor = symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req="write")
    executor.forward(is_train=True)
    executor.backward(mx.nd.array(ograd, dtype=dtype))
    out = executor.outputs[0].asnumpy()
    assert out.shape == (batch, length)
    host = {k: v.asnumpy() for k, v in grads.items()}
    canonical_grads = to_canonical({k: host[k] for k in params}, cell, hidden)
    canonical_grads["data"] = host["data"]
    return out, canonical_grads


def close(a, b, rtol=1e-4, atol=1e-6):
    """Elementwise |a - b| <= max(rtol * |b|, atol)."""
    return np.all(np.abs(a - b) <= np.maximum(rtol * np.abs(b), atol))


CASES = [  # hidden sizes, length, batch
    ((10, 20, 1), 1, 300),
    ((10, 20, 1), 9, 300),
    ((10, 20, 1), 40, 33),
    ((10, 20, 1), 5, 1),
    ((10, 20, 1), 3, 16),
    ((3, 1), 17, 513),
    ((3, 1), 2, 15),
    ((32, 16, 8, 1), 12, 47),
    ((1,), 6, 5),
]


@needs_native
@pytest.mark.parametrize("hidden, length, batch", CASES)
def test_matches_fused_cell_forward_and_every_gradient(hidden, length, batch):
    rng = np.random.default_rng(length * 1000 + batch)
    x = rng.uniform(-1, 1, size=(batch, length, 1)).astype(np.float32)
    ograd = rng.normal(size=(batch, length)).astype(np.float32)
    canonical = random_canonical(hidden, seed=batch)
    out_n, grads_n = run_cell("native", hidden, x, canonical, ograd)
    out_f, grads_f = run_cell("fused", hidden, x, canonical, ograd)
    assert np.abs(out_n - out_f).max() <= 1e-5
    assert set(grads_n) == set(grads_f) == set(unpacked_shapes(hidden)) | {"data"}
    for name in grads_f:
        assert grads_n[name].shape == grads_f[name].shape
        assert close(grads_n[name], grads_f[name]), (name, np.abs(grads_n[name] - grads_f[name]).max())
        if length > 1 or "h2h_weight" not in name:  # (h2h has no gradient when h_0 = 0 is the only state)
            assert np.abs(grads_f[name]).max() > 0, name  # the comparison is not between zeros


@needs_native
@pytest.mark.parametrize("hidden, length, batch", [((10, 20, 1), 7, 19), ((32, 16, 8, 1), 3, 4)])
def test_matches_unrolled_cell(hidden, length, batch):
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(batch, length, 1)).astype(np.float32)
    ograd = rng.normal(size=(batch, length)).astype(np.float32)
    canonical = random_canonical(hidden, seed=3)
    out_n, grads_n = run_cell("native", hidden, x, canonical, ograd)
    out_u, grads_u = run_cell("unrolled", hidden, x, canonical, ograd)
    assert np.abs(out_n - out_u).max() <= 1e-5
    for name in grads_u:
        assert close(grads_n[name], grads_u[name]), (name, np.abs(grads_n[name] - grads_u[name]).max())


def numpy_lstm_stack(x, canonical, hidden):
    """Independent float64 reference: the stacked LSTM in numpy, zero initial states."""
    batch, length, _ = x.shape
    seq = x.astype(np.float64)
    for i, h in enumerate(hidden):
        p = {k.split("_", 1)[1]: canonical[k].astype(np.float64) for k in canonical if k.startswith(f"lstm{i}_")}
        hs, cs, outs = np.zeros((batch, h)), np.zeros((batch, h)), []
        for t in range(length):
            g = seq[:, t] @ p["i2h_weight"].T + p["i2h_bias"] + hs @ p["h2h_weight"].T + p["h2h_bias"]
            i_, f_, o_ = (1 / (1 + np.exp(-g[:, k * h:(k + 1) * h])) for k in (0, 1, 3))
            cs = f_ * cs + i_ * np.tanh(g[:, 2 * h:3 * h])
            hs = o_ * np.tanh(cs)
            outs.append(hs)
        seq = np.stack(outs, axis=1)
    return seq[:, :, 0]


@needs_native
def test_float64_forward_and_finite_difference_gradients():
    hidden, batch, length = (3, 2, 1), 3, 4
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(batch, length, 1))
    canonical = {k: v.astype(np.float64) for k, v in random_canonical(hidden, seed=5, scale=0.9).items()}
    weights = rng.normal(size=(batch, length))  # loss = sum(weights * out)
    symbol, _, _ = make_sym_gen(hidden, label_mode="sequence", cell="native", with_loss=False)(length)
    packed = to_layout(canonical, "native", hidden)
    args = {"data": mx.nd.array(x, dtype="float64")}
    args.update({k: mx.nd.array(v, dtype="float64") for k, v in packed.items()})
    grads = {k: mx.nd.zeros(v.shape, dtype="float64") for k, v in args.items()}
    executor = symbol.bind(mx.cpu(), args=args, args_grad=grads)

    def loss() -> float:
        executor.forward(is_train=False)
        assert executor.outputs[0].dtype == np.float64
        return float((executor.outputs[0].asnumpy() * weights).sum())

    executor.forward(is_train=True)
    np.testing.assert_allclose(executor.outputs[0].asnumpy(), numpy_lstm_stack(x, canonical, hidden),
                               rtol=1e-12, atol=1e-13)
    executor.backward(mx.nd.array(weights, dtype="float64"))
    analytic = {k: v.asnumpy().copy() for k, v in grads.items()}
    eps, checked = 1e-6, 0
    for name, array in args.items():
        values = array.asnumpy()
        for index in np.ndindex(values.shape):
            shifted = values.copy()
            shifted[index] += eps
            array[:] = shifted
            up = loss()
            shifted[index] -= 2 * eps
            array[:] = shifted
            down = loss()
            array[:] = values
            numeric = (up - down) / (2 * eps)
            # central differences in float64: truncation ~eps^2, rounding ~1e-16 / eps = 1e-10
            assert abs(analytic[name][index] - numeric) <= 1e-7 + 1e-6 * abs(numeric), (name, index)
            checked += 1
    assert checked == batch * length + sum(int(np.prod(s)) for s in fused_shapes(hidden).values())


@needs_native
def test_grad_req_add_and_null_are_honoured():
    hidden, batch, length = (10, 20, 1), 6, 4
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(batch, length, 1)).astype(np.float32)
    packed = to_layout(random_canonical(hidden, seed=1), "native", hidden)
    symbol, _, _ = make_sym_gen(hidden, label_mode="sequence", cell="native", with_loss=False)(length)

    def grads_after_two_backwards(req):
        args = {"data": mx.nd.array(x)}
        args.update({k: mx.nd.array(v) for k, v in packed.items()})
        grads = {k: mx.nd.full(v.shape, 7.0) for k, v in args.items()}
        executor = symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req=req)
        for _ in range(2):
            executor.forward(is_train=True)
            executor.backward(mx.nd.ones((batch, length)))
        return {k: v.asnumpy() for k, v in grads.items()}

    write = grads_after_two_backwards("write")
    add = grads_after_two_backwards("add")
    mixed = grads_after_two_backwards({"data": "null", "lstm0_parameters": "add", "lstm1_parameters": "null",
                                       "lstm2_parameters": "write"})
    for name in write:
        np.testing.assert_allclose(add[name], 7.0 + 2 * write[name], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mixed["data"], 7.0)
    np.testing.assert_array_equal(mixed["lstm1_parameters"], 7.0)
    np.testing.assert_allclose(mixed["lstm0_parameters"], 7.0 + 2 * write["lstm0_parameters"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mixed["lstm2_parameters"], write["lstm2_parameters"])


@needs_native
@pytest.mark.parametrize("label_mode", ["sequence", "last"])
def test_training_trace_equals_fused(label_mode):
    common = dict(seed=5, num_samples=300 * 40, batch_size=300, num_epoch=1, log_every=1, label_mode=label_mode,
                  buckets=range(1, 10) if label_mode == "sequence" else [9])
    native, fused = fit(cell="native", **common), fit(cell="fused", **common)
    assert native.config.model.cell == "native" and len(native.losses) == 40
    np.testing.assert_allclose(native.losses, fused.losses, rtol=0, atol=1e-4)
    assert abs(native.losses[-1] - fused.losses[-1]) <= 1e-6 + 1e-3 * fused.losses[-1]
    pn, pf = native.arg_params(), fused.arg_params()
    assert set(pn) == set(pf) == set(unpacked_shapes((10, 20, 1)))
    for name in pf:
        np.testing.assert_allclose(pn[name], pf[name], atol=1e-4)


@needs_native
@pytest.mark.parametrize("label_mode", ["sequence", "last"])
def test_predictor_native_matches_fused(label_mode):
    canonical = random_canonical((10, 20, 1), seed=9, scale=0.4)
    windows = np.random.default_rng(4).uniform(0, 1, size=(1100, 25))
    native = Predictor(canonical, label_mode=label_mode, cell="native")
    fused = Predictor(canonical, label_mode=label_mode, cell="fused")
    assert native.cell == "native"
    for length in (1, 7, 25):
        a, b = native.predict(windows[:, :length]), fused.predict(windows[:, :length])
        assert a.shape == b.shape == ((1100, length) if label_mode == "sequence" else (1100,))
        assert np.abs(a - b).max() <= 1e-5


@needs_native
def test_buckets_of_every_length_share_one_activation_block():
    """Length 1, then 2..9 (forward + backward each), then length 1 again: the same numbers."""
    hidden = (10, 20, 1)
    canonical = random_canonical(hidden, seed=12)
    rng = np.random.default_rng(12)
    x1 = rng.uniform(-1, 1, size=(300, 1, 1)).astype(np.float32)
    first_out, first_grads = run_cell("native", hidden, x1, canonical, np.ones((300, 1), np.float32))
    for length in range(2, 10):
        x = rng.uniform(-1, 1, size=(300, length, 1)).astype(np.float32)
        run_cell("native", hidden, x, canonical, np.ones((300, length), np.float32))
    out, grads = run_cell("native", hidden, x1, canonical, np.ones((300, 1), np.float32))
    np.testing.assert_array_equal(out, first_out)
    for name in grads:
        np.testing.assert_array_equal(grads[name], first_grads[name])


def test_resolve_cell_choices_and_errors(caplog):
    assert resolve_cell("fused") == "fused" and resolve_cell("unrolled") == "unrolled"
    with caplog.at_level(logging.INFO, logger="sinlstm_sym.model.cells"):
        assert resolve_cell("auto", [mx.gpu(0)]) == "fused"
        assert resolve_cell("native", [mx.cpu(), mx.gpu(1)]) == "fused"
    assert "CPU only" in caplog.text and "gpu(0)" in caplog.text
    expected = "native" if native_available() else "fused"
    assert resolve_cell("auto", [mx.cpu(0)]) == expected == resolve_cell("native")
    with pytest.raises(ValueError, match=r"cell must be one of \['unrolled', 'fused', 'native', 'auto'\]"):
        resolve_cell("lstm")
    with pytest.raises(TypeError, match="contexts must be mx.Context"):
        resolve_cell("auto", ["cpu"])


@needs_native
def test_lstm_stack_checks_its_arguments():
    data = mx.sym.var("data", shape=(0, 0, 1))
    good = [mx.sym.var(k, shape=s) for k, s in fused_shapes((3, 1)).items()]
    out = lstm_stack(data, good, (3, 1))
    assert out.infer_shape(data=(4, 6, 1))[1] == [(4, 6)]
    with pytest.raises(ValueError, match=r"data \('x'\) must be declared with its shape, e.g. "
                       r"mx.sym.var\('x', shape=\(0, length, 1\)\) \(0 = any size\), got None"):
        lstm_stack(mx.sym.var("x"), good, (3, 1))
    with pytest.raises(ValueError, match=r"params\[0\] \('lstm0_parameters'\) must be declared with shape=\(72,\)"):
        lstm_stack(data, [mx.sym.var("lstm0_parameters"), good[1]], (3, 1))
    with pytest.raises(ValueError, match=r"params must hold one symbol per layer \(2\), got 1"):
        lstm_stack(data, good[:1], (3, 1))
    with pytest.raises(ValueError, match="hidden_sizes must end with 1"):
        lstm_stack(data, good, (3, 2))
    with pytest.raises(TypeError, match="data must be an mx.sym.Symbol"):
        lstm_stack(np.zeros((2, 3, 1)), good, (3, 1))
    # the operator itself refuses an unknown data shape instead of guessing
    with pytest.raises(mx.base.MXNetError, match="needs the full data shape"):
        out.infer_shape_partial()


# ---------------------------------------------------------------- build cache and fallback


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("SINLSTM_NATIVE_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native_build.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SINLSTM_NATIVE_CACHE")
    assert native_build.cache_dir() == tmp_path / "xdg" / "sinlstm_sym"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert native_build.cache_dir() == tmp_path / "home" / ".cache" / "sinlstm_sym"


def test_no_compiler_is_a_build_error_naming_the_cause(monkeypatch, tmp_path):
    monkeypatch.setenv("SINLSTM_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(native_build.BuildError, match="no C\\+\\+ compiler found: neither g\\+\\+ nor c\\+\\+"):
        native_build.build_library()
    monkeypatch.setenv("CXX", str(tmp_path / "missing-g++"))
    with pytest.raises(native_build.BuildError, match="CXX=.*missing-g\\+\\+.* is not an executable compiler"):
        native_build.build_library()


def fake_compiler(directory: Path, body: str) -> Path:
    """A shell script standing in for g++: answers --version, otherwise runs ``body``."""
    script = directory / "fake-g++"
    script.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'fake-g++ 1.0'; exit 0; fi\n"
                      "for last; do :; done\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_failed_build_leaves_nothing_loadable(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    # writes half a library to the output path, then fails
    monkeypatch.setenv("CXX", str(fake_compiler(tmp_path, 'printf "\\177ELF-half" > "$last"\n'
                                                "echo 'lstm_stack.cc:1: error: boom' >&2; exit 1")))
    monkeypatch.setenv("SINLSTM_NATIVE_CACHE", str(cache))
    with pytest.raises(native_build.BuildError, match=r"exited with 1:\nlstm_stack.cc:1: error: boom"):
        native_build.build_library()
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_successful_build_is_renamed_into_place_and_reused(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    calls = tmp_path / "calls"
    monkeypatch.setenv("CXX", str(fake_compiler(tmp_path, f'echo built >> "{calls}"; echo lib > "$last"')))
    monkeypatch.setenv("SINLSTM_NATIVE_CACHE", str(cache))
    first = native_build.build_library()
    assert first.built and first.path.parent == cache and first.path.read_text() == "lib\n"
    assert first.path.name.startswith("sinlstm_native-") and first.path.suffix == ".so"
    second = native_build.build_library()
    assert not second.built and second.path == first.path
    assert calls.read_text() == "built\n"  # compiled once
    assert [p for p in cache.iterdir() if ".tmp" in p.name] == []
    # another compiler (or source, flags, CPU, MXNet) gives another key
    (tmp_path / "other").mkdir()
    monkeypatch.setenv("CXX", str(fake_compiler(tmp_path / "other", 'echo lib2 > "$last"')))
    assert native_build.build_library().path != first.path


CONCURRENT = textwrap.dedent("""
    import json, sys, time
    from sinlstm_sym.native.build import build_library
    result = build_library()
    print(json.dumps({"path": str(result.path), "built": result.built}))
""")


def test_concurrent_builds_compile_once(tmp_path):
    calls = tmp_path / "calls"
    # a slow compiler: the processes overlap while it runs
    cxx = fake_compiler(tmp_path, f'echo built >> "{calls}"; sleep 1; echo lib > "$last"')
    env = dict(os.environ, CXX=str(cxx), SINLSTM_NATIVE_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({r["path"] for r in results}) == 1 and sum(r["built"] for r in results) == 1
    assert calls.read_text() == "built\n"


FALLBACK = textwrap.dedent("""
    import json, logging, sys
    records = []
    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.levelname, record.name, record.getMessage()))
    logging.getLogger().addHandler(Keep())
    logging.getLogger().setLevel(logging.INFO)
    from sinlstm_sym import fit
    from sinlstm_sym.model.cells import resolve_cell
    from sinlstm_sym.native import native_available
    common = dict(seed=1, num_samples=300 * 12, batch_size=300, num_epoch=1, log_every=3)
    chosen = resolve_cell("auto")
    auto = fit(cell="auto", **common)
    native = fit(cell="native", **common)
    fused = fit(cell="fused", **common)
    print(json.dumps({"available": native_available(), "chosen": chosen, "auto": auto.losses,
                      "native": native.losses, "fused": fused.losses,
                      "warnings": [r for r in records if r[0] == "WARNING"]}))
""")


def test_without_a_compiler_fused_is_used_with_one_warning(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty), CXX=str(tmp_path / "no-such-g++"),
               SINLSTM_NATIVE_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", FALLBACK], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["available"] is False and report["chosen"] == "fused"
    assert len(report["warnings"]) == 1, report["warnings"]
    level, logger_name, message = report["warnings"][0]
    assert logger_name == "sinlstm_sym.native"
    assert "native LSTM operator unavailable, using cell='fused' instead" in message and "no-such-g++" in message
    assert len(report["fused"]) == 4 and report["auto"] == report["native"] == report["fused"]
    assert not any(p.suffix == ".so" for p in (tmp_path / "cache").glob("*"))
    cli = subprocess.run([sys.executable, "-m", "sinlstm_sym.native", "--build"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 1 and "native operator NOT built" in cli.stderr and "no-such-g++" in cli.stderr


@needs_native
def test_command_line_build_reports_the_cached_library():
    out = subprocess.run([sys.executable, "-m", "sinlstm_sym.native", "--build"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    cached = native_build.build_library()
    assert not cached.built and cached.path.parent == native_build.cache_dir()
    assert out.stdout.strip() == f"up to date: {cached.path} (cached)"


def test_unavailable_operator_raises_from_lstm_stack(monkeypatch):
    import sinlstm_sym.native as native
    monkeypatch.setattr(native, "_LOADED", "BuildError: no C++ compiler found")
    with pytest.raises(NativeUnavailableError, match="no C\\+\\+ compiler found"):
        lstm_stack(mx.sym.var("data", shape=(0, 3, 1)), [mx.sym.var(k, shape=s) for k, s in fused_shapes((1,)).items()],
                   (1,))
    assert native_available() is False and resolve_cell("native") == "fused"


PLAIN_LOAD = textwrap.dedent("""
    import json, sys
    import mxnet as mx
    import numpy as np
    from sinlstm_sym import make_sym_gen
    from sinlstm_sym.checkpoint import load_checkpoint
    from sinlstm_sym.infer.predictor import Predictor
    directory, x_path = sys.argv[1], sys.argv[2]
    x = np.load(x_path)
    saved = load_checkpoint(directory)
    module = mx.mod.BucketingModule.load(saved.prefix, saved.epoch, default_bucket_key=5,
                                         sym_gen=make_sym_gen((10, 20, 1), label_mode="sequence", cell="fused"))
    module.bind(data_shapes=[("data", x.shape)], label_shapes=[("label", x.shape[:2])], for_training=False)
    module.forward(mx.io.DataBatch([mx.nd.array(x)], [mx.nd.zeros(x.shape[:2])], bucket_key=5,
                                   provide_data=[mx.io.DataDesc("data", x.shape)],
                                   provide_label=[mx.io.DataDesc("label", x.shape[:2])]), is_train=False)
    loaded = Predictor.load(directory)
    print(json.dumps({"module": module.get_outputs()[0].asnumpy().tolist(), "predictor": loaded.predict(x).tolist(),
                      "cell": loaded.cell, "op_registered": hasattr(mx.sym, "sinlstm_stack")}))
""")


@needs_native
def test_native_checkpoint_loads_in_plain_mxnet_without_the_operator(tmp_path):
    result = fit(cell="native", num_epoch=1, checkpoint=tmp_path / "ckpt", seed=3, buckets=range(1, 6),
                 num_samples=300 * 10, label_mode="sequence", log_every=5)
    x = np.random.default_rng(0).uniform(0, 1, size=(4, 5, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    expected = result.predictor().predict(x)
    env = dict(os.environ, PATH=str(tmp_path), CXX=str(tmp_path / "no-such-g++"),
               SINLSTM_NATIVE_CACHE=str(tmp_path / "empty-cache"))
    out = subprocess.run([sys.executable, "-c", PLAIN_LOAD, str(tmp_path / "ckpt"), str(tmp_path / "x.npy")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["op_registered"] is False and report["cell"] == "fused"
    np.testing.assert_allclose(report["module"], expected, atol=1e-5)
    np.testing.assert_allclose(report["predictor"], expected, atol=1e-5)


def test_cached_library_is_verified_against_its_record(monkeypatch, tmp_path, caplog):
    cache = tmp_path / "cache"
    calls = tmp_path / "calls"
    monkeypatch.setenv("CXX", str(fake_compiler(tmp_path, f'echo built >> "{calls}"; echo library-bytes > "$last"')))
    monkeypatch.setenv("SINLSTM_NATIVE_CACHE", str(cache))
    first = native_build.build_library()
    record = json.loads(native_build.sidecar_path(first.path).read_text())
    assert record == {"size": len("library-bytes\n"), "sha256": native_build._file_digest(first.path)["sha256"]}
    assert native_build.verify_library(first.path) is None
    for damage, reason in ((b"library", "its size is 7 bytes, 14 were built"),
                           (b"LIBRARY-BYTES\n", "its SHA-256 differs"), (None, "is missing")):
        if damage is None:
            native_build.sidecar_path(first.path).unlink()
        else:
            first.path.write_bytes(damage)
        assert reason in native_build.verify_library(first.path)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sinlstm_sym.native.build"):
            again = native_build.build_library()
        assert again.built and again.path == first.path and first.path.read_text() == "library-bytes\n"
        assert any("damaged or foreign" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    assert calls.read_text() == "built\n" * 4
    assert not native_build.build_library().built  # repaired: reused again


TRUNCATED_LOAD = textwrap.dedent("""
    import json, logging
    logging.basicConfig(level=logging.WARNING)
    from sinlstm_sym.native import native_available
    from sinlstm_sym.infer.predictor import Predictor
    from sinlstm_sym.recurrence.params import unpacked_shapes
    import numpy as np
    params = {k: np.full(s, 0.1, np.float32) for k, s in unpacked_shapes((10, 20, 1)).items()}
    out = Predictor(params, cell="auto").predict_function([0.1, 0.2], length=5)
    print(json.dumps({"available": native_available(), "shape": list(out.shape)}))
""")


# A stand-in compiler: reports a version and "compiles" by copying a library built in this process, so the
# rebuild path runs end to end (key, temporary file, sidecar, load) without a 10-second compile.
STAND_IN_CXX = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "stand-in compiler 1"; exit 0; fi
for out; do :; done
cp "$SINLSTM_TEST_BUILT_LIBRARY" "$out"
"""


@needs_native
def test_truncated_cached_library_is_rebuilt_not_loaded(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cxx = tmp_path / "stand-in-c++"
    cxx.write_text(STAND_IN_CXX)
    cxx.chmod(0o755)
    env = dict(os.environ, SINLSTM_NATIVE_CACHE=str(cache), CXX=str(cxx),
               SINLSTM_TEST_BUILT_LIBRARY=str(native_build.build_library().path))
    build = [sys.executable, "-m", "sinlstm_sym.native", "--build"]
    first = subprocess.run(build, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0 and first.stdout.startswith("built "), (first.stdout, first.stderr)
    (library,) = [path for path in cache.iterdir() if path.suffix == ".so"]
    assert native_build.verify_library(library) is None
    with open(library, "r+b") as handle:  # head -c 5000
        handle.truncate(5000)
    loaded = subprocess.run([sys.executable, "-c", TRUNCATED_LOAD], env=env, capture_output=True, text=True,
                            timeout=600)
    assert loaded.returncode == 0, (loaded.returncode, loaded.stderr[-3000:])
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == {"available": True, "shape": [2, 5]}
    assert "damaged or foreign" in loaded.stderr and "its size is 5000 bytes" in loaded.stderr
    assert library.stat().st_size > 5000 and native_build.verify_library(library) is None
    with open(library, "r+b") as handle:
        handle.truncate(5000)
    again = subprocess.run(build, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.startswith("built "), (again.stdout, again.stderr)
    assert "its size is 5000 bytes" in again.stderr and native_build.verify_library(library) is None
