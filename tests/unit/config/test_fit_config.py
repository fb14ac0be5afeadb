"""FitConfig: frozen, validated on creation, JSON round trip, flat settings, resume comparison."""
import dataclasses

import time

import mxnet as mx
import pytest

from sinlstm_sym import DataConfig, FitConfig, ModelConfig, OptimizerConfig, RunConfig, fit
from sinlstm_sym.config import limits


def test_defaults_are_the_documented_ones():
    config = FitConfig()
    assert config.model == ModelConfig(hidden_sizes=(10, 20, 1), label_mode="sequence", feature="time",
                                       cell="auto", forget_bias=0.0, step_weight=4.0, step_tau=1.0)
    assert config.data.buckets == tuple(range(1, 10)) + (12, 16, 20) and config.data.batch_size == 100
    assert (config.data.num_samples, config.run.num_epoch, config.data.t_low, config.data.t_high) == \
        (100000, 2, -0.1, 1.12)
    assert config.optimizer == OptimizerConfig("adam", {"learning_rate": 0.03, "beta2": 0.99},
                                               {"name": "cosine", "warmup_steps": 100})
    assert config.run.ctx == ("cpu:0",)


def test_the_original_setup():
    config = FitConfig.original()
    assert (config.data.buckets, config.model.label_mode, config.data.batch_size, config.data.num_samples) == \
        ((9,), "last", 300, 300000)
    assert config.optimizer == OptimizerConfig("adam", {}, None)
    assert (config.model.init, config.model.forget_bias) == ("gluon", 0.0)  # Gluon: U[-0.07, 0.07], no offset
    assert (config.model.step_weight, config.data.t_low, config.data.t_high, config.run.num_epoch) == (0, 0, 1, 1)


def test_another_optimizer_starts_from_its_own_arguments():
    assert FitConfig.from_flat(optimizer="sgd").optimizer.params == {}
    assert FitConfig.from_flat(optimizer="sgd", optimizer_params={"momentum": 0.9}).optimizer.params == \
        {"momentum": 0.9}


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FitConfig().model.cell = "unrolled"  # type: ignore[misc]


def test_flat_settings_and_normalisation():
    config = FitConfig.from_flat(buckets=[5, 1, 3], length_weights=[5, 1, 3], hidden_sizes=[4, 1],
                                 optimizer="SGD", optimizer_params={"learning_rate": 1}, ctx="cpu", seed=7)
    assert config.data.buckets == (1, 3, 5) and config.data.length_weights == (1.0, 3.0, 5.0)
    assert config.model.hidden_sizes == (4, 1)
    assert config.optimizer.name == "sgd" and config.optimizer.params == {"learning_rate": 1.0}
    assert config.flat()["seed"] == 7 and config.run.ctx == ("cpu:0",)
    assert set(config.flat()) == set(FitConfig.flat_names())


def test_json_round_trip():
    config = FitConfig.from_flat(buckets=[2, 4], batch_size=10, num_samples=100, optimizer_params={"wd": 0.1},
                                 checkpoint="run", seed=1, label_mode="last")
    assert FitConfig.from_json(config.to_json()) == config
    assert FitConfig.from_settings(config.to_json()) == config


def test_version_0_1_flat_settings_are_read():
    legacy = dict(buckets=[1, 2], hidden_sizes=[10, 20, 1], batch_size=100, num_samples=600, num_epoch=1,
                  label_mode="sequence", feature="time", cell="fused", optimizer="adam", optimizer_params={},
                  ctx=["cpu(0)"], seed=0, log_every=100, length_weights=[1.0, 1.0], kvstore="local",
                  num_workers=1, rank=0)
    legacy["ctx"] = "cpu"
    config = FitConfig.from_settings(legacy)
    assert config.data.buckets == (1, 2) and config.run.seed == 0


def test_resume_comparison_ignores_settings_that_change_no_number():
    a = FitConfig.from_flat(seed=1, log_every=10, num_epoch=1, checkpoint="x")
    b = a.replace(log_every=50, num_epoch=3, progress_bar=True, checkpoint_every=4)
    assert a.describe_differences(b) == ""
    c = a.replace(batch_size=150)
    assert a.describe_differences(c) == "batch_size=100 there, 150 now"


@pytest.mark.parametrize("section, kwargs, error, message", [
    (ModelConfig, dict(hidden_sizes=(4, 2)), ValueError, "must end with 1"),
    (ModelConfig, dict(cell="gru"), ValueError, "cell must be one of"),
    (ModelConfig, dict(forget_bias="1"), TypeError, "forget_bias"),
    (DataConfig, dict(buckets=[]), ValueError, "buckets must not be empty"),
    (DataConfig, dict(batch_size=10, num_samples=5), ValueError, "num_samples must be >= 10"),
    (OptimizerConfig, dict(name="nope"), ValueError, "known:"),
    (OptimizerConfig, dict(params={"learning_rate": True}), TypeError, "real number"),
    (OptimizerConfig, dict(params={"clip_gradient": -1}), ValueError, "clip_gradient"),
    (OptimizerConfig, dict(params={"beta1": 1.0}), ValueError, r"beta1'\] must be >= 0 and < 1"),
    (RunConfig, dict(num_epoch=0), ValueError, "num_epoch must be >= 1"),
    (RunConfig, dict(resume=True), ValueError, "resume=True needs checkpoint"),
    (RunConfig, dict(checkpoint=3), TypeError, "checkpoint must be a directory path"),
    (RunConfig, dict(kvstore="dist_sync", checkpoint="x", resume=True), ValueError, "not supported"),
    (RunConfig, dict(progress_bar="yes"), TypeError, "progress_bar"),
    (ModelConfig, dict(hidden_sizes=(100000, 1)), ValueError, r"layer 0 would hold 40001200000 parameters in one "
     r"array, more than MXNet's int32 indexing allows \(2147483647\)"),
    (ModelConfig, dict(hidden_sizes=(10, 30000, 1)), ValueError, "layer 1 would hold"),
    (RunConfig, dict(ctx="cpu:99999999999"), ValueError, "ctx device ids must be <= 1023"),
    (RunConfig, dict(ctx=mx.cpu(5000)), ValueError, r"ctx device ids must be in \[0, 1023\]"),
])
def test_bad_values_are_refused_naming_the_setting(section, kwargs, error, message):
    with pytest.raises(error, match=message):
        section(**kwargs)


def test_fit_config_sections_must_have_their_types():
    with pytest.raises(TypeError, match="FitConfig.model must be a ModelConfig"):
        FitConfig(model=DataConfig())  # type: ignore[arg-type]


MiB = 1 << 20


@pytest.mark.parametrize("flat, named", [
    (dict(buckets=[1, 2, 400]), "buckets (longest 400, 3 lengths) with batch_size=100"),
    (dict(batch_size=5000, num_samples=5000), "batch_size=5000"),
    (dict(hidden_sizes=(2000, 1)), "hidden_sizes=[2000, 1]"),
    (dict(validation_lengths=[1, 2, 3], validation_samples=3000000), "validation_samples=3000000"),
])
def test_sizes_beyond_the_memory_ceiling_are_refused_with_the_figure(monkeypatch, flat, named):
    monkeypatch.setattr(limits, "available_memory", lambda: 128 * MiB)  # a 64 MiB ceiling
    FitConfig().check_memory()  # the recipe fits
    config = FitConfig().replace(**flat)  # a configuration is made (a checkpoint's always loads) ...
    with pytest.raises(ValueError) as refused:  # ... and refused before training
        config.check_memory()
    message = str(refused.value)
    assert named in message and "more than the 64.0 MiB allowed (50% of the memory available now)" in message
    amount, unit = message.split("needs about ")[1].split(" ")[:2]
    assert unit in ("GiB", "TiB") or (unit == "MiB" and float(amount) > 64)


def test_the_estimate_grows_with_the_longest_bucket_and_the_bucket_count_not_the_range():
    def activations(buckets):
        return limits.training_bytes(buckets, 100, (10, 20, 1), "fused") - MiB * len(buckets)
    assert activations([1, 2, 300]) > 50 * activations([1, 2, 3])
    assert activations([1, 2, 300]) == activations([300])
    start = time.perf_counter()
    with pytest.raises(ValueError, match="needs about"):
        FitConfig().replace(buckets=range(1, 100001)).check_memory()
    with pytest.raises(ValueError, match="needs about"):
        fit(validation_lengths=range(1, 100001))
    assert time.perf_counter() - start < 10


def test_available_memory_is_read_and_positive():
    assert limits.available_memory() > 0 and limits.memory_ceiling() == int(limits.available_memory() * 0.5)
    assert limits.format_bytes(1536) == "1.5 KiB" and limits.format_bytes(3 << 30) == "3.0 GiB"
