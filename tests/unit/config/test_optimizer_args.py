"""Optimizer arguments follow a typed schema per optimizer: what MXNet would refuse inside C++ or overflow
on is refused when the configuration is made, naming the argument; what is accepted runs in MXNet."""
import inspect

import mxnet as mx
import pytest

from sinlstm_sym import FitConfig, OptimizerConfig
from sinlstm_sym.config.fit_config import _RESERVED_ARGS
from sinlstm_sym.constants import OPTIMIZER_FLOAT_LIMIT, OPTIMIZER_INT_LIMIT
from sinlstm_sym.config.optimizer_args import ARG_KINDS, argument_defaults, check_optimizer_arg, spec_of

# MXNet's own optimizers (not the ones tests register, whichever test module was imported first)
OPTIMIZERS = sorted(name for name, cls in mx.optimizer.Optimizer.opt_registry.items()
                    if cls.__module__.startswith("mxnet.") and name != "test")


@pytest.mark.parametrize("name, params, error, message", [
    ("adam", {"multi_precision": "yes"}, TypeError, r"optimizer_params\['multi_precision'\] must be True or False"),
    ("adam", {"lazy_update": "no"}, TypeError, r"optimizer_params\['lazy_update'\] must be True or False"),
    ("sgd", {"lazy_update": 0}, TypeError, r"lazy_update'\] must be True or False"),
    ("rmsprop", {"centered": 1}, TypeError, r"centered'\] must be True or False"),
    ("adam", {"begin_num_update": -5}, ValueError, r"begin_num_update'\] must be >= 0 and <= 2147483647"),
    ("adam", {"begin_num_update": 2 ** 31}, ValueError, r"begin_num_update'\] must be >= 0"),
    ("adam", {"begin_num_update": 1.0}, TypeError, r"begin_num_update'\] must be an int"),
    ("adam", {"begin_num_update": True}, TypeError, r"begin_num_update'\] must be an int"),
    ("adam", {"wd": 1e300}, ValueError, r"wd'\] must be >= 0 and <= 1e\+06 \(MXNet's update operators take float32"),
    ("adam", {"learning_rate": 1e308}, ValueError, r"learning_rate'\] must be > 0 and <= 1e\+06"),
    ("adam", {"learning_rate": float("inf")}, ValueError, r"learning_rate'\] must be finite"),
    ("adam", {"learning_rate": 10 ** 400}, ValueError, r"learning_rate'\] must be finite"),
    ("adam", {"epsilon": 1e39}, ValueError, r"epsilon'\] must be > 0 and <= 1e\+06"),
    ("adam", {"clip_gradient": 1e39}, ValueError, r"clip_gradient'\] must be > 0"),
    ("adam", {"clip_gradient": "none"}, TypeError, r"clip_gradient'\] must be a real number"),
    ("rmsprop", {"clip_weights": 1e39}, ValueError, r"clip_weights'\] must be > 0"),
    ("ftrl", {"lamda1": -1}, ValueError, r"lamda1'\] must be >= 0"),
    ("signum", {"wd_lh": 1e39}, ValueError, r"wd_lh'\] must be >= 0 and <= 1e\+06"),
    ("adadelta", {"rho": 1.0}, ValueError, r"rho'\] must be >= 0 and < 1"),
    ("lbsgd", {"warmup_strategy": "cubic"}, ValueError, r"warmup_strategy'\] must be one of"),
    ("lbsgd", {"updates_per_epoch": 0}, ValueError, r"updates_per_epoch'\] must be >= 1"),
])
def test_bad_optimizer_arguments_are_refused_naming_them(name, params, error, message):
    with pytest.raises(error, match=message):
        OptimizerConfig(name, params, None)
    with pytest.raises(error, match=message):  # through fit's flat settings too
        FitConfig.from_flat(optimizer=name, optimizer_params=params, lr_schedule=None)


@pytest.mark.parametrize("name, params, expected", [
    ("adam", {"multi_precision": True, "lazy_update": False}, {"multi_precision": True, "lazy_update": False}),
    ("adam", {"begin_num_update": 5, "learning_rate": 1}, {"begin_num_update": 5, "learning_rate": 1.0}),
    ("adam", {"clip_gradient": None, "wd": 0}, {"clip_gradient": None, "wd": 0.0}),
    ("lamb", {"lower_bound": None, "upper_bound": 10}, {"lower_bound": None, "upper_bound": 10.0}),
])
def test_good_optimizer_arguments_are_kept_with_their_types(name, params, expected):
    clean = OptimizerConfig(name, params, None).params
    assert clean == expected and [type(v) for v in clean.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_argument_of_every_optimizer_has_a_kind_its_default_satisfies(name):
    defaults = argument_defaults(mx.optimizer.Optimizer.opt_registry[name])
    for arg, default in defaults.items():
        if arg in _RESERVED_ARGS or arg in ("kwargs", "args", "rescale_grad", "lr_scheduler"):
            continue
        spec = spec_of(arg, default)
        assert spec is not None or default is None, (name, arg)
        if default is not None and default is not inspect.Parameter.empty:
            assert check_optimizer_arg(arg, spec, default) == default, (name, arg, default)


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "ftrl", "signum", "adagrad", "nadam", "lamb"])
def test_the_largest_accepted_values_run_in_mxnet(name):
    """Every float argument this optimizer takes at its upper bound (1e6, or just below 1 for decays), ints at
    theirs: MXNet runs an update without an error (the numbers may overflow to inf, which training reports)."""
    defaults = argument_defaults(mx.optimizer.Optimizer.opt_registry[name])
    params = {}
    for arg in defaults:
        kind = ARG_KINDS.get(arg)
        if kind is None or arg in _RESERVED_ARGS or arg in ("lower_bound", "upper_bound"):
            continue
        high, inclusive = kind[3], kind[4]
        if kind[0] in ("float", "float?"):
            params[arg] = high if inclusive else 0.99
        elif kind[0] == "int":
            params[arg] = OPTIMIZER_INT_LIMIT - 1 if arg == "begin_num_update" else 1  # room for one update
    assert params["learning_rate"] == OPTIMIZER_FLOAT_LIMIT
    optimizer = OptimizerConfig(name, params, None).create(rescale_grad=1.0)
    updater = mx.optimizer.get_updater(optimizer)
    weight, grad = mx.nd.ones((4,)), mx.nd.ones((4,)) * 0.5
    updater(0, grad, weight)
    assert weight.asnumpy().shape == (4,)  # the update ran: MXNet raises here on an argument it refuses


@pytest.mark.parametrize("lr_schedule", [None, {"name": "factor", "step": 10}])
def test_begin_num_update_leaves_room_for_the_run_s_updates(lr_schedule):
    from sinlstm_sym import fit
    with pytest.raises(ValueError, match=r"begin_num_update'\] \(2147483600\) plus the run's 100 updates"):
        fit(buckets=[1], batch_size=10, num_samples=1000, num_epoch=1, seed=0, lr_schedule=lr_schedule,
            optimizer_params={"begin_num_update": 2147483600})
