"""Random, also nonsensical, arguments: only ValueError/TypeError with a message, or a working object.

Each example starts from valid arguments and replaces up to two of them by anything at all.
"""
import math

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sinlstm_sym import SinBucketIter, fit, make_sym_gen

ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.sampled_from(["last", "sequence", "time", "value", "fused", "unrolled", "adam", "sgd",
                                          "cpu", "gpu", "float32", "int8", "data", "label"]),
    st.lists(st.integers(-2, 12), max_size=4), st.tuples(st.integers(0, 21), st.integers(0, 21)),
    st.just(range(1, 4)), st.just({"learning_rate": 0.01}), st.just({"lr": "x"}), st.just(object()),
)

ITER_ARGS = {
    "buckets": st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True),
    "batch_size": st.integers(1, 16), "num_samples": st.integers(16, 64),
    "length_weights": st.none(), "label_mode": st.sampled_from(["last", "sequence"]),
    "feature": st.sampled_from(["time", "value"]), "step": st.floats(1e-3, 1.0), "t_low": st.floats(-5, 0),
    "t_high": st.floats(0.5, 5), "shuffle": st.booleans(), "seed": st.integers(0, 2 ** 32),
    "data_name": st.just("data"), "label_name": st.just("label"), "dtype": st.sampled_from(["float32", "float64"]),
}
SYM_ARGS = {
    "hidden_sizes": st.lists(st.integers(1, 5), min_size=0, max_size=2).map(lambda h: h + [1]),
    "label_mode": st.sampled_from(["last", "sequence"]), "cell": st.sampled_from(["fused", "unrolled"]),
    "with_loss": st.booleans(), "data_name": st.just("data"), "label_name": st.just("label"),
}
FIT_ARGS = {
    "buckets": st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True),
    "hidden_sizes": st.lists(st.integers(1, 4), min_size=0, max_size=2).map(lambda h: h + [1]),
    "batch_size": st.integers(1, 8), "num_samples": st.integers(8, 24), "num_epoch": st.integers(1, 2),
    "label_mode": st.sampled_from(["last", "sequence"]), "feature": st.sampled_from(["time", "value"]),
    "cell": st.sampled_from(["fused", "unrolled"]), "optimizer": st.sampled_from(["adam", "sgd", "rmsprop"]),
    "optimizer_params": st.none(), "ctx": st.sampled_from([None, "cpu"]), "seed": st.integers(0, 99),
    "log_every": st.integers(1, 5), "logger": st.none(), "length_weights": st.none(),
}


def arguments(valid):
    """Valid keyword arguments with up to two of them replaced by anything."""
    return st.tuples(st.fixed_dictionaries(valid), st.dictionaries(st.sampled_from(sorted(valid)), ANYTHING,
                                                                   max_size=2)).map(lambda p: {**p[0], **p[1]})


def accepted_or_clear(call):
    try:
        result = call()
    except (ValueError, TypeError) as err:
        assert str(err), "an error without a message"
        event(f"rejected: {type(err).__name__}")
        return None
    event("accepted")
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments(ITER_ARGS))
def test_sin_bucket_iter(kwargs):
    it = accepted_or_clear(lambda: SinBucketIter(**kwargs))
    if it is not None:
        batches = list(it)
        assert len(batches) == it.num_samples // it.batch_size
        for b in batches:
            assert b.data[0].shape == (it.batch_size, b.bucket_key, 1)
            assert np.isfinite(b.data[0].asnumpy()).all()


@settings(max_examples=100, deadline=None)
@given(arguments(SYM_ARGS), st.one_of(st.integers(1, 6), ANYTHING))
def test_make_sym_gen(kwargs, key):
    sym_gen = accepted_or_clear(lambda: make_sym_gen(**kwargs))
    if sym_gen is not None:
        result = accepted_or_clear(lambda: sym_gen(key))
        if result is not None:
            symbol, data_names, _ = result
            assert isinstance(key, int) and key >= 1 and data_names[0] in symbol.list_arguments()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arguments(FIT_ARGS))
def test_fit_tiny_budget(kwargs):
    result = accepted_or_clear(lambda: fit(**kwargs))
    if result is not None:
        assert result.loss_history and all(math.isfinite(r.loss) for r in result.loss_history)


CONFIG_ARGS = {**{k: v for k, v in FIT_ARGS.items() if k != "logger"},
               "optimizer_params": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
                   "learning_rate": st.floats(allow_nan=True, allow_infinity=True),
                   "wd": st.floats(-1, 1), "momentum": st.floats(-1, 2), "beta1": st.floats(-1, 2)})),
               "checkpoint_every": st.none(), "resume": st.booleans(), "progress_bar": st.booleans(),
               "kvstore": st.sampled_from(["local", "device", "dist_sync", "x"]), "forget_bias": st.floats(-5, 5)}


@settings(max_examples=200, deadline=None)
@given(arguments(CONFIG_ARGS))
def test_fit_config(kwargs):
    from sinlstm_sym import FitConfig
    config = accepted_or_clear(lambda: FitConfig.from_flat(**kwargs))
    if config is not None:
        assert FitConfig.from_json(config.to_json()) == config
        lr = config.optimizer.params.get("learning_rate")
        assert lr is None or (math.isfinite(lr) and lr > 0)
        assert config.model.hidden_sizes[-1] == 1 and config.data.num_samples >= config.data.batch_size
