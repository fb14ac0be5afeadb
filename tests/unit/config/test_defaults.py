"""One home for each default: every public object's defaults are fit's, and the iterator fit builds is the one
``SinBucketIter`` gives with the same arguments."""
import inspect

import mxnet as mx
import numpy as np
import pytest

import sinlstm_sym
from sinlstm_sym import DataConfig, FitConfig, ModelConfig, Predictor, SinBucketIter, fit, make_sym_gen
from sinlstm_sym.recurrence.params import init_params

# (public object, argument) -> why its default is not fit's setting of the same name
NOT_FITS = {
    ("make_sym_gen", "step_weight"): "the plain symbol's gradient is the L2 loss's, which MXNet's own idioms "
                                     "(eval_metric='mse', the README's plain-MXNet snippet) assume; fit weighs steps",
    ("evaluate", "num_samples"): "fresh windows per length to score, not training windows per epoch",
    ("evaluate", "seed"): "a fixed evaluation set: the same windows at every call",
    ("Predictor", "batch_size"): "windows per inference batch, not per training batch",
}


def normalised(arg, value):
    """``value`` as fit holds it (``ctx=None`` -> ``('cpu:0',)``, ranges -> tuples); as given if fit refuses it."""
    try:
        return FitConfig.from_flat(**{arg: value}).flat()[arg]
    except (TypeError, ValueError):
        return value


def public_defaults():
    """(object name, argument, default) of every public callable's arguments named like a fit setting."""
    flat = set(FitConfig.flat_names())
    for name in sinlstm_sym.__all__:
        if name.endswith("Config"):  # fit's defaults are theirs (FitConfig().flat() reads them)
            continue
        obj = getattr(sinlstm_sym, name)
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):  # exception classes
            continue
        for param in signature.parameters.values():
            if param.name in flat and param.default is not inspect.Parameter.empty:
                yield name, param.name, param.default


def test_every_public_default_named_like_a_fit_setting_is_fits():
    fits = FitConfig().flat()
    checked = []
    for name, arg, default in public_defaults():
        checked.append(f"{name}.{arg}")
        if (name, arg) in NOT_FITS:
            assert normalised(arg, default) != fits[arg], f"{name}.{arg} is fit's now: drop the exception"
            continue
        assert normalised(arg, default) == fits[arg], \
            f"{name}({arg}={default!r}) but fit's default is {fits[arg]!r}"
    # the objects that share settings with fit are all seen
    assert {"SinBucketIter.t_low", "SinBucketIter.t_high", "SinBucketIter.buckets", "SinBucketIter.num_samples",
            "make_sym_gen.forget_bias", "make_sym_gen.init", "Predictor.cell", "load_checkpoint.allow_pickle"} <= \
        set(checked)
    assert {f"{n}.{a}" for n, a in NOT_FITS} <= set(checked)


def test_public_objects_built_with_defaults_are_fits():
    config = FitConfig()
    it = SinBucketIter(seed=0)
    assert (it.buckets, it.batch_size, it.num_samples, it.label_mode, it.feature, it.t_low, it.t_high) == \
        (config.data.buckets, config.data.batch_size, config.data.num_samples, config.model.label_mode,
         config.model.feature, config.data.t_low, config.data.t_high)
    assert set(it.length_weights) == {1.0} and config.data.length_weights is None  # equal weights both
    start = np.concatenate([it.start_times(i) for i in range(50)])
    assert config.data.t_low <= start.min() < 0.0 and 1.0 < start.max() < config.data.t_high  # fit's wider range
    predictor = Predictor(init_params(config.model.hidden_sizes, 0))
    assert (predictor.hidden_sizes, predictor.label_mode, predictor.feature) == \
        (config.model.hidden_sizes, config.model.label_mode, config.model.feature)
    symbol, data_names, label_names = make_sym_gen()(3)
    assert symbol.infer_shape(data=(2, 3, 1), label=(2, 3))[1] == [(2, 3)]  # 'sequence' by default, as fit
    assert (data_names, label_names) == (("data",), ("label",))


@pytest.mark.parametrize("model", [None, ModelConfig(label_mode="last", feature="value")])
def test_from_config_is_the_iterator_fit_builds(model):
    data = DataConfig(buckets=(3, 1), batch_size=7, num_samples=70, length_weights=(1.0, 3.0), t_low=0.5,
                      t_high=0.75)
    it = SinBucketIter.from_config(data, model, seed=5)
    same = SinBucketIter(buckets=(3, 1), batch_size=7, num_samples=70, length_weights=(1.0, 3.0), t_low=0.5,
                         t_high=0.75, seed=5, **({} if model is None else dict(label_mode="last", feature="value")))
    got, want = list(it), list(same)
    assert len(got) == len(want) == 10
    for a, b in zip(got, want):
        assert a.bucket_key == b.bucket_key
        np.testing.assert_array_equal(a.data[0].asnumpy(), b.data[0].asnumpy())
        np.testing.assert_array_equal(a.label[0].asnumpy(), b.label[0].asnumpy())


def test_from_config_rejects_other_objects():
    with pytest.raises(TypeError, match="data must be a DataConfig"):
        SinBucketIter.from_config(FitConfig())
    with pytest.raises(TypeError, match="model must be a ModelConfig"):
        SinBucketIter.from_config(DataConfig(), model=FitConfig())


# data arguments shared by SinBucketIter and fit; the model's (label_mode, feature) go to both
ARGUMENT_SETS = [
    dict(buckets=(2, 5), num_samples=3000, batch_size=100, seed=9, label_mode="sequence"),  # a reported example
    dict(buckets=[9], num_samples=9000, batch_size=300, seed=1, label_mode="last"),
    dict(buckets=[1, 3, 4], length_weights=[1.0, 2.0, 0.5], num_samples=4000, batch_size=40, seed=2,
         feature="value", t_low=0.2, t_high=0.9),
    dict(buckets=[6, 2], num_samples=2500, batch_size=25, seed=3, t_low=-1.0),
]
MODEL_ARGS = ("label_mode", "feature")


@pytest.mark.parametrize("args", ARGUMENT_SETS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
def test_fit_on_sin_bucket_iter_equals_fit_on_the_same_arguments(args):
    model = {k: v for k, v in args.items() if k in MODEL_ARGS}
    settings = dict(log_every=10, lr_schedule=None, cell="fused")
    built = fit(**args, **settings)
    given = fit(train_iter=SinBucketIter(**args), seed=args["seed"], **model, **settings)
    assert built.losses == given.losses and len(built.losses) >= 3
    mine, theirs = built.arg_params(), given.arg_params()
    for name in mine:
        np.testing.assert_array_equal(mine[name], theirs[name])
    assert built.config.data.batch_size == given.config.data.batch_size == args["batch_size"]


def test_fit_on_a_bare_sin_bucket_iter_trains_on_fits_windows():
    # the defaults agree too: no data argument at all on either side
    built = fit(num_samples=1000, seed=4, log_every=5, lr_schedule=None, buckets=[2])
    given = fit(train_iter=SinBucketIter(buckets=[2], num_samples=1000, seed=4), seed=4, log_every=5,
                lr_schedule=None)
    assert built.losses == given.losses
    assert isinstance(given.module, mx.mod.BucketingModule)
