"""One resolved model spec below the public boundary, a configuration that holds only data, one plan per fit:
a GPU-trained checkpoint serves on a CPU-only host, the cell is resolved once, a sym_gen only builds symbols,
fit builds one configuration and one iterator, and the series recipe is the configuration's."""
import ast
import json
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

import sinlstm_sym.model.cells as cells_module
import sinlstm_sym.model.spec as spec_module
from sinlstm_sym import FitConfig, ModelConfig, Predictor, evaluate, fit, make_sym_gen
from sinlstm_sym.config import fit_config as config_module
from sinlstm_sym import native
from sinlstm_sym.checkpoint import load_checkpoint, save_checkpoint
from sinlstm_sym.constants import DATA_NAME, LABEL_NAME
from sinlstm_sym.data import windows as data_module
from sinlstm_sym.cli import evaluate as evaluate_cli
from sinlstm_sym.model.spec import ModelSpec
from sinlstm_sym.train.validation import ValidationSet

PACKAGE = Path(config_module.__file__).parents[1]
NO_GPU = mx.context.num_gpus() == 0
SMALL = dict(hidden_sizes=[6, 1], buckets=[3, 6], num_samples=600, batch_size=50, label_mode="last", seed=0,
             log_every=100)


def _imports(module: str) -> set:
    tree = ast.parse((PACKAGE / module).read_text())
    modules = set()  # the modules imported from (relative: 'checkpoint', 'recurrence.params'; absolute: 'typing')
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            modules |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
    return modules


def test_the_configuration_imports_no_checkpoint_and_the_predictor_no_training_loop():
    config_imports = _imports("config/fit_config.py")
    assert "recurrence.params" in config_imports and "checkpoint" not in config_imports
    assert not {i for i in config_imports if i.startswith("native")}  # the optimizer's native code: in train/
    assert "data.windows" in _imports("infer/predictor.py") and not ({"train.loop", "train.fit"}
                                                                     & _imports("infer/predictor.py"))


@pytest.mark.skipif(not NO_GPU, reason="checks what a CPU-only host does with a GPU context")
def test_a_configuration_naming_a_gpu_is_read_anywhere_and_its_devices_checked_by_fit(tmp_path):
    config = FitConfig.from_flat(ctx=["gpu:0"], **SMALL)
    assert config.run.ctx == ("gpu:0",)
    assert FitConfig.from_json(config.to_json()) == config
    assert FitConfig.from_settings(config.to_json()).run.ctx == ("gpu:0",)
    with pytest.raises(ValueError, match=r"ctx must be None, 'cpu'"):  # the form is still checked on creation
        FitConfig.from_flat(ctx="tpu:0")
    with pytest.raises(ValueError, match=r"ctx asks for \[gpu\(0\)\] but MXNet sees no GPU"):
        fit(config, checkpoint=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # refused before any output


@pytest.fixture(scope="module")
def gpu_checkpoint(tmp_path_factory):
    """A run trained on the CPU, its checkpoint written by the library's writer with the settings of a run
    on gpu:0 (what a GPU-trained run writes: its cell resolved to 'fused' there), and its last validation."""
    result = fit(cell="fused", validation_lengths=[6], validation_samples=64, **SMALL)
    settings = result.config.replace(ctx=["gpu:0"]).to_json()
    directory = tmp_path_factory.mktemp("gpu-run")
    optimizer = result.config.optimizer.create(rescale_grad=1.0)
    save_checkpoint(directory, result.module, optimizer, {"settings": settings, "progress": result.progress.to_json()},
                    with_optimizer=False)
    return directory, result


def test_a_gpu_trained_checkpoint_loads_and_predicts_on_a_cpu_only_host(gpu_checkpoint):
    directory, result = gpu_checkpoint
    assert load_checkpoint(directory).config["settings"]["run"]["ctx"] == ["gpu:0"]
    loaded = Predictor.load(str(directory))
    assert loaded.context == mx.cpu() and loaded.cell == "fused" and loaded.trained_lengths == (3, 6)
    config = result.config
    held_out = ValidationSet([6], 64, config.run.seed, config.model.label_mode, config.model.feature)
    inputs, labels = held_out.windows[6]
    error = np.abs(loaded.predict(inputs) - labels[:, 0]).max()  # against the closed-form sine
    assert error == pytest.approx(result.progress.validation[-1].max_abs_error, rel=1e-5)
    np.testing.assert_array_equal(loaded.predict(inputs), result.predictor(best=False).predict(inputs))
    if NO_GPU:
        with pytest.raises(ValueError, match=r"ctx asks for \[gpu\(0\)\] but MXNet sees no GPU"):
            Predictor.load(str(directory), ctx="gpu:0")  # the predictor's own ctx is checked


def test_sinlstm_evaluate_reads_a_gpu_trained_checkpoint(gpu_checkpoint, tmp_path, capsys):
    directory, result = gpu_checkpoint
    out = tmp_path / "eval.json"
    assert evaluate_cli.main([str(directory), "--lengths", "6", "--num-samples", "40", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    trained_here = evaluate(result.predictor(best=False), [6], num_samples=40, seed=0).rows
    assert [r["length"] for r in rows] == [6] and rows == json.loads(json.dumps(trained_here))
    assert f"saved {out}" in capsys.readouterr().out


def test_fit_resolves_the_cell_once_and_builds_one_configuration_and_one_iterator(monkeypatch):
    counts = {"resolve": 0, "FitConfig": 0, "SinBucketIter": 0}
    resolve, post, init = spec_module.resolve_cell, config_module.FitConfig.__post_init__, \
        data_module.SinBucketIter.__init__

    def counted(name, original):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(spec_module, "resolve_cell", counted("resolve", resolve))
    monkeypatch.setattr(config_module.FitConfig, "__post_init__", counted("FitConfig", post))
    monkeypatch.setattr(data_module.SinBucketIter, "__init__", counted("SinBucketIter", init))
    config = FitConfig.from_flat(cell="auto", **SMALL)
    counts.update(FitConfig=0)
    result = fit(config)
    # 2 FitConfigs: the settled one (the cell as asked for) and its view as trained (the cell resolved)
    assert counts == {"resolve": 1, "FitConfig": 2, "SinBucketIter": 1}
    assert result.spec.cell == result.config.model.cell in ("native", "fused")  # what the run trained
    assert result.requested is not None and result.requested.model.cell == "auto"  # what it asked for
    assert result.requested.replace(cell=result.spec.cell) == result.config  # the one difference
    assert result.config.run.seed == 0 and "max_update" in result.config.optimizer.lr_schedule  # settled


def _fresh_names(sym_gen, key):
    with mx.name.NameManager():  # operators numbered from 0, so two builds can be compared as JSON
        return sym_gen(key)


def test_a_sym_gen_only_builds_symbols(monkeypatch):
    spec = ModelSpec.from_model(ModelConfig(hidden_sizes=(5, 1), cell="auto", label_mode="sequence",
                                            step_weight=2.0))
    sym_gen = spec.sym_gen(init_seed=3)

    def refuse(*args, **kwargs):
        raise AssertionError("a sym_gen call resolved the cell or loaded the native operator")

    monkeypatch.setattr(cells_module, "resolve_cell", refuse)
    monkeypatch.setattr(native, "load_native", refuse)
    monkeypatch.setattr(native, "native_available", refuse)
    monkeypatch.setattr(spec_module, "resolve_cell", refuse)
    first, data_names, label_names = _fresh_names(sym_gen, 4)
    assert (data_names, label_names) == ((DATA_NAME,), (LABEL_NAME,))
    assert _fresh_names(sym_gen, 4)[0].tojson() == first.tojson()


@pytest.mark.parametrize("cell", ["unrolled", "fused", "native"])
def test_make_sym_gen_keywords_and_a_spec_build_the_same_symbol(cell):
    keywords = dict(hidden_sizes=(4, 1), label_mode="sequence", cell=cell, forget_bias=0.5, step_weight=1.0,
                    step_tau=2.0, init="gluon")
    by_keywords = _fresh_names(make_sym_gen(**keywords, init_seed=2), 5)[0]
    spec = ModelSpec.from_model(ModelConfig(**keywords))
    assert by_keywords.tojson() == _fresh_names(spec.sym_gen(init_seed=2), 5)[0].tojson()
    assert spec.cell == (cell if cell != "native" or native.native_available() else "fused")


def test_a_spec_checks_nothing_again_and_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="model must be a ModelConfig, got dict"):
        ModelSpec.from_model({"hidden_sizes": (3, 1)})  # type: ignore[arg-type]
    spec = ModelSpec.from_model(ModelConfig(cell="fused"))
    with pytest.raises(ValueError, match="data_name and label_name must differ, both are 'x'"):
        spec.sym_gen(data_name="x", label_name="x")
    with pytest.raises(TypeError, match="writes_only must be True or False"):
        spec.sym_gen(writes_only="yes")  # type: ignore[arg-type]


def test_the_series_recipe_is_the_configurations():
    from sinlstm_sym.cli import series as series_cli
    recipe = FitConfig.series()
    assert (recipe.model.feature, recipe.model.label_mode, recipe.model.hidden_sizes) == ("value", "last", (32, 32, 1))
    assert (recipe.optimizer.lr_schedule, recipe.model.forget_bias, recipe.run.num_epoch) == (None, 1.0, 5)
    assert recipe.optimizer.params == {"learning_rate": 0.01, "wd": 0.0001}
    assert FitConfig.series(num_epoch=2).run.num_epoch == 2
    args = series_cli.build_parser().parse_args(["--csv", "x.csv", "--column", "y"])
    flags = {setting: getattr(args, flag[2:].replace("-", "_")) for flag, setting in series_cli.FLAG_SETTINGS.items()}
    from_cli = FitConfig.series(**flags)
    assert from_cli.replace(seed=None, log_every=recipe.run.log_every) == recipe  # the flags' defaults are it


def test_the_series_command_line_builds_its_training_windows_once(tmp_path, monkeypatch, capsys):
    from sinlstm_sym.cli import series as series_cli
    from sinlstm_sym.series import iterator as iterator_module
    built = []
    init = iterator_module.SeriesBucketIter.__init__

    def counted(self, *args, **kwargs):
        built.append(kwargs.get("refresh", True))  # refresh=False: the fixed validation windows
        init(self, *args, **kwargs)

    monkeypatch.setattr(iterator_module.SeriesBucketIter, "__init__", counted)
    path = tmp_path / "d.csv"
    path.write_text("t,v\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(160)))
    assert series_cli.main(["--csv", str(path), "--column", "v", "--buckets", "4,8", "--hidden-sizes", "4,1",
                            "--num-samples", "200", "--num-epoch", "1", "--horizon", "2", "--references", "off",
                            "--log-every", "1000"]) == 0
    assert built == [True, False]  # one training iterator (checked and trained), one validation iterator
    assert "MASE" in capsys.readouterr().out
