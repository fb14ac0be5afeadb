"""ONNX export: onnxruntime on the exported file gives the Predictor's outputs; sinlstm-export; serving without
MXNet."""
import json
import subprocess
import sys

import numpy as np
import pytest

from sinlstm_sym import Predictor, fit
from sinlstm_sym.infer.onnx_export import INSTALL_HINT, build_onnx_model, lstm_weights
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.series import fit_series

ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime: pip install 'sinlstm-sym[onnx]'")
onnx = pytest.importorskip("onnx", reason="the ONNX tests need onnx: pip install 'sinlstm-sym[onnx]'")

LENGTHS = (1, 2, 3, 9, 20, 57, 200)
BATCHES = (1, 7, 1024)
TOLERANCE = 1e-5  # absolute, in the model's units (float32 outputs)


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def trained():
    """One short training per label mode and feature (trained weights, not initial ones)."""
    return {(mode, feature): fit(num_samples=3000, num_epoch=1, seed=1, log_every=1000, label_mode=mode,
                                 feature=feature).predictor()
            for mode in ("sequence", "last") for feature in ("time", "value")}


@pytest.fixture(scope="module")
def series_model():
    """A series model (label_mode 'last', its scaling fitted on a series around 500)."""
    x = 500.0 + 80.0 * np.sin(np.arange(300) * 0.3) + 10.0 * np.cos(np.arange(300) * 1.7)
    fitted = fit_series([x], test=30, buckets=[5, 10], batch_size=20, num_samples=2000, seed=0, log_every=1000,
                        window_level="none")
    return fitted.predictor(), x


@pytest.fixture(scope="module")
def level_model():
    """A series model of a trending series, each window modelled around its last value (the series recipe's)."""
    t = np.arange(300)
    x = 100.0 + 0.5 * t + 10.0 * np.sin(2 * np.pi * t / 12)
    fitted = fit_series([x], test=30, buckets=[5, 10], batch_size=20, num_samples=2000, seed=0, log_every=1000)
    assert fitted.config.model.window_level == "last"
    return fitted.predictor(), x


def windows_for(predictor, n, length, rng, series=None):
    if series is not None:  # consecutive values of the series, in its own units
        starts = rng.integers(0, series.size - length, size=n)
        return np.stack([series[s:s + length] for s in starts])
    t = rng.uniform(-0.1, 1.12, size=(n, 1)) + predictor.step * np.arange(length)
    return t if predictor.feature == "time" else np.sin(t) / 2


def worst_difference(predictor, path, series=None, seed=0):
    """The largest |onnxruntime - Predictor| over every length and batch size, in the model's units."""
    sess, rng = session(path), np.random.default_rng(seed)
    scale = 1.0 if predictor.scaling is None else predictor.scaling[1]
    worst = 0.0
    for length in LENGTHS:
        for n in BATCHES:
            x = windows_for(predictor, n, length, rng, series)
            got, want = sess.run(None, {"windows": x})[0], predictor.predict(x)
            assert got.shape == want.shape == ((n,) if predictor.label_mode == "last" else (n, length))
            worst = max(worst, float(np.abs(got - want).max()) / scale)
    return worst


@pytest.mark.parametrize("mode", ["sequence", "last"])
@pytest.mark.parametrize("feature", ["time", "value"])
def test_onnxruntime_equals_the_predictor_at_every_length_and_batch(trained, tmp_path, mode, feature):
    predictor = trained[(mode, feature)]
    path = predictor.export_onnx(tmp_path / "model.onnx")
    assert worst_difference(predictor, path) <= TOLERANCE


def test_a_series_model_exports_its_scaling_inside_the_graph(series_model, tmp_path):
    predictor, x = series_model
    center, scale = predictor.scaling
    assert scale > 10 and abs(center - 500) < 20  # a real scaling, far from the identity
    path = predictor.export_onnx(tmp_path / "series.onnx")
    assert worst_difference(predictor, path, series=x) <= TOLERANCE  # 1e-5 of the model's range per unit of scale
    got = session(path).run(None, {"windows": x[None, :20]})[0]
    np.testing.assert_allclose(got, predictor.predict(x[None, :20]), atol=TOLERANCE * scale, rtol=0)
    assert abs(float(got[0]) - x[20]) < 3 * x.std()  # in the series' units, not the model's
    meta = session(path).get_modelmeta().custom_metadata_map
    assert [float(v) for v in meta["scaling"].split(",")] == [center, scale]


def test_a_window_level_model_exports_its_levels_inside_the_graph(level_model, tmp_path):
    predictor, x = level_model
    path = predictor.export_onnx(tmp_path / "level.onnx")
    assert worst_difference(predictor, path, series=x) <= TOLERANCE
    sess = session(path)
    assert sess.get_modelmeta().custom_metadata_map["window_level"] == "last"
    windows = np.stack([x[s:s + 10] for s in (0, 50, 200)])
    base = sess.run(None, {"windows": windows})[0]
    # each window is modelled around its last value: a shift of the series shifts the forecast alike
    np.testing.assert_allclose(sess.run(None, {"windows": windows + 1000.0})[0], base + 1000.0, atol=1e-9, rtol=0)
    np.testing.assert_allclose(base, predictor.predict(windows), atol=TOLERANCE * predictor.scaling[1], rtol=0)


def test_every_cell_exports_the_same_model(tmp_path):
    params = init_params((10, 20, 1), seed=4)
    outputs = []
    x = np.random.default_rng(1).uniform(0, 1, size=(7, 33))
    for cell in ("native", "fused", "unrolled"):
        predictor = Predictor(params, cell=cell)
        path = predictor.export_onnx(tmp_path / f"{cell}.onnx")
        outputs.append(session(path).run(None, {"windows": x})[0])
        np.testing.assert_allclose(outputs[-1], predictor.predict(x), atol=TOLERANCE, rtol=0)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[0], outputs[2])


def test_the_graph_is_three_standard_lstm_nodes_with_dynamic_axes_and_metadata(trained, tmp_path):
    predictor = trained[("last", "value")]
    model = onnx.load(str(predictor.export_onnx(tmp_path / "m.onnx")))
    assert [n.op_type for n in model.graph.node].count("LSTM") == 3
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (model.graph.input[0], model.graph.output[0])]
    assert dims == [["batch", "length"], ["batch"]]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["label_mode"] == "last" and meta["feature"] == "value" and meta["hidden_sizes"] == "10,20,1"
    assert meta["scaling"] == "" and meta["sinlstm_sym_version"] == __import__("sinlstm_sym").__version__
    assert [int(v) for v in meta["trained_lengths"].split(",")] == list(predictor.trained_lengths)


def test_gate_blocks_are_reordered_for_onnx():
    params = init_params((2, 1), seed=0)
    params["lstm0_i2h_weight"] = np.arange(8, dtype=np.float32)[:, None]  # blocks i, f, g, o of 2 rows
    w, r, b = lstm_weights(params, 0, 2)
    assert w[0, :, 0].tolist() == [0, 1, 6, 7, 2, 3, 4, 5]  # ONNX: i, o, f, c
    assert r.shape == (1, 8, 2) and b.shape == (1, 16)


def test_bad_opset_and_label_mode_are_refused():
    params = init_params((10, 20, 1), seed=0)
    with pytest.raises(ValueError, match="opset must be between 14 and"):
        build_onnx_model(params, (10, 20, 1), "sequence", opset=10_000)
    with pytest.raises(ValueError, match="opset"):
        build_onnx_model(params, (10, 20, 1), "sequence", opset=13)
    with pytest.raises(ValueError, match="label_mode must be 'sequence' or 'last'"):
        build_onnx_model(params, (10, 20, 1), "every")


def test_bad_path_is_refused_before_anything_is_written(tmp_path):
    predictor = Predictor(init_params((10, 20, 1), seed=0))
    with pytest.raises(ValueError, match=r"ending in \.onnx"):
        predictor.export_onnx(tmp_path / "model.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        predictor.export_onnx(tmp_path / "missing" / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_without_onnx_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'sinlstm-sym\[onnx\]'"):
        Predictor(init_params((10, 20, 1), seed=0)).export_onnx(tmp_path / "m.onnx")
    assert INSTALL_HINT == "pip install 'sinlstm-sym[onnx]'"


# --- the command line ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    fit(num_samples=2000, num_epoch=1, seed=0, log_every=1000, label_mode="last", checkpoint=str(directory))
    return directory


def test_sinlstm_export_writes_a_file_onnxruntime_runs_like_the_checkpoint(checkpoint, tmp_path, capsys):
    from sinlstm_sym.cli.export import main
    out = tmp_path / "model.onnx"
    assert main([str(checkpoint), str(out), "--opset", "14"]) == 0
    assert "saved" in capsys.readouterr().out and onnx.load(str(out)).opset_import[0].version == 14
    x = np.random.default_rng(0).uniform(0, 1, size=(5, 9))
    np.testing.assert_allclose(session(out).run(None, {"windows": x})[0], Predictor.load(str(checkpoint)).predict(x),
                               atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("args, flag, message", [
    (["{ck}", "{tmp}/m.txt"], "OUT.onnx", "ending in .onnx"),
    (["{ck}", "{tmp}/no/m.onnx"], "OUT.onnx", "does not exist"),
    (["{ck}", "{ck}/m.onnx"], "OUT.onnx", "inside"),
    (["{ck}", "{tmp}/m.onnx", "--opset", "9"], "--opset", "between 14 and"),
    (["{tmp}/nothing", "{tmp}/m.onnx"], "checkpoint", "no such checkpoint"),
])
def test_sinlstm_export_refuses_bad_arguments_with_one_line_and_exit_2(checkpoint, tmp_path, capsys, args, flag,
                                                                       message):
    from sinlstm_sym.cli.export import main
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(ck=checkpoint, tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"argument {flag}:" in err and message in err
    assert not list(tmp_path.glob("*.onnx")) and not list(checkpoint.glob("*.onnx"))


def test_the_console_script_is_installed(python, tmp_path, checkpoint):
    script = __import__("pathlib").Path(python).parent / "sinlstm-export"
    assert script.is_file(), "pip install -e . installs sinlstm-export"
    proc = subprocess.run([str(script), str(checkpoint), str(tmp_path / "m.onnx")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "m.onnx").stat().st_size > 1000


# --- serving without MXNet -------------------------------------------------------------------------
SERVE = """
import json, runpy, sys
import numpy as np
example = runpy.run_path(sys.argv[1], run_name="serve_onnx")
x = np.load(sys.argv[3])
out = example["predict"](example["load"](sys.argv[2]), x)
np.save(sys.argv[4], out)
print(json.dumps({"mxnet": "mxnet" in sys.modules, "sinlstm_sym": "sinlstm_sym" in sys.modules}))
"""


def test_the_example_serves_the_export_in_a_process_without_mxnet(root, python, series_model, tmp_path):
    predictor, x = series_model
    path = predictor.export_onnx(tmp_path / "series.onnx")
    windows = np.stack([x[i:i + 10] for i in range(0, 200, 7)])
    np.save(tmp_path / "x.npy", windows)
    proc = subprocess.run([python, "-c", SERVE, str(root / "examples" / "serve_onnx.py"), str(path),
                           str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"mxnet": False, "sinlstm_sym": False}
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), predictor.predict(windows),
                               atol=TOLERANCE * predictor.scaling[1], rtol=0)
    cli = subprocess.run([python, str(root / "examples" / "serve_onnx.py"), str(path), "--values", "500,520,560"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0 and "label_mode=last feature=value windows (1, 3) -> outputs (1,)" in cli.stdout
