"""BucketingModule hazard scenarios, run one per subprocess by tests/test_bucket_hazards.py.

Usage: python bucket_scenarios.py SCENARIO {plain,safe}. Prints 'OK <detail>' and exits 0
when the run works; an exception propagates (exit 1) when it fails. A crash of MXNet's
C++ layer would show as a signal (negative return code) or 'terminate called'.
"""
import logging
import sys
import warnings

import mxnet as mx
import numpy as np

from sinlstm_sym import SinBucketIter, make_sym_gen
from sinlstm_sym.bucket_checks import SafeBucketingModule
from sinlstm_sym.params import init_params, to_layout

BATCH = 8


def per_key_params_sym_gen(key):
    """Hazard 1: a parameter name that depends on the key."""
    data = mx.sym.var("data")
    pred = mx.sym.FullyConnected(mx.sym.reshape(data, shape=(0, -1)), num_hidden=1, name=f"fc{key}")
    loss = mx.sym.MakeLoss(mx.sym.mean(mx.sym.square(pred - mx.sym.var("label")), axis=1))
    return loss, ("data",), ("label",)


def per_key_shape_sym_gen(key):
    """Hazard 8: the same parameter name with a shape that depends on the key."""
    data = mx.sym.var("data")
    hidden = mx.sym.FullyConnected(mx.sym.reshape(data, shape=(0, -1)), num_hidden=4 + key, name="fc")
    pred = mx.sym.sum(hidden, axis=1, keepdims=True)
    loss = mx.sym.MakeLoss(mx.sym.mean(mx.sym.square(pred - mx.sym.var("label")), axis=1))
    return loss, ("data",), ("label",)


def batch(length, key=None, provide_label=True, data_name="data", label_name="label"):
    it = SinBucketIter([length], batch_size=BATCH, num_samples=BATCH, label_mode="last", seed=length)
    b = next(it)
    return mx.io.DataBatch(b.data, b.label, bucket_key=length if key is None else key,
                           provide_data=[mx.io.DataDesc(data_name, b.data[0].shape)],
                           provide_label=[mx.io.DataDesc(label_name, b.label[0].shape)] if provide_label else None)


def make_module(mode, sym_gen=None, default_key=9, **kwargs):
    sym_gen = sym_gen or make_sym_gen((10, 20, 1), label_mode="last")
    if mode == "safe":
        module = SafeBucketingModule(sym_gen, default_bucket_key=default_key, label_mode="last", **kwargs)
    else:
        module = mx.mod.BucketingModule(sym_gen, default_bucket_key=default_key)
    first = batch(default_key)
    module.bind(first.provide_data, first.provide_label)
    if sym_gen in (per_key_params_sym_gen, per_key_shape_sym_gen):
        module.init_params(mx.init.Uniform(0.1))
    else:
        params = to_layout(init_params((10, 20, 1), 0), "fused", (10, 20, 1))
        module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})
    module.init_optimizer(optimizer="adam")
    return module


def step(module, data_batch):
    module.forward(data_batch, is_train=True)
    module.backward()
    module.update()
    return half_mse(module, data_batch)


def half_mse(module, data_batch):
    """The L2 loss 0.5 * mean (pred - label)^2 of the batch just run (the module's output is the prediction)."""
    pred = module.get_outputs()[0]
    return float((0.5 * mx.nd.square(pred - data_batch.label[0].reshape(pred.shape)).mean()).asscalar())


def scenario_issue_8663(mode):
    """Custom loop, default key NOT the largest, keys 1..20 in random order; loss must fall."""
    it = SinBucketIter(range(1, 21), batch_size=100, num_samples=100 * 400, label_mode="sequence", seed=8663)
    sym_gen = make_sym_gen((10, 20, 1), label_mode="sequence")
    kwargs = dict(allow_larger_keys=True, label_mode="sequence") if mode == "safe" else {}
    cls = SafeBucketingModule if mode == "safe" else mx.mod.BucketingModule
    module = cls(sym_gen, default_bucket_key=5, **kwargs)
    first = SinBucketIter([5], batch_size=100, num_samples=100, label_mode="sequence")
    module.bind(first.provide_data, first.provide_label)
    params = to_layout(init_params((10, 20, 1), 0), "fused", (10, 20, 1))
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})
    module.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.005})
    losses = []
    for b in it:
        module.forward_backward(b)
        module.update()
        losses.append(half_mse(module, b))
    head, tail = np.mean(losses[:40]), np.mean(losses[-40:])
    assert np.all(np.isfinite(losses)) and tail < head / 4, (head, tail)
    print(f"OK batches={len(losses)} keys={len(set(it.schedule))} first40={head:.5f} last40={tail:.5f}")


def scenario_1_params_differ(mode):
    module = make_module(mode, per_key_params_sym_gen, default_key=9)
    step(module, batch(9))
    step(module, batch(3))
    print("OK")


def scenario_2_no_provide_label(mode):
    module = make_module(mode)
    step(module, batch(9))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step(module, batch(4, provide_label=False))
    print("OK warnings:", [str(w.message)[:60] for w in caught])


def scenario_3_names_differ(mode):
    module = make_module(mode)
    step(module, batch(9))
    step(module, batch(9, data_name="x", label_name="y"))
    print("OK")


def scenario_4_key_not_length(mode):
    module = make_module(mode)
    step(module, batch(3, key=5))
    print("OK")


def scenario_5_key_none(mode):
    module = make_module(mode)
    step(module, batch(3, key=None if mode == "never" else "3"))
    print("OK")


def scenario_5_numpy_int_key(mode):
    module = make_module(mode)
    step(module, batch(3, key=np.int32(3)))
    print("OK")


def scenario_6_key_above_default(mode):
    module = make_module(mode, default_key=4)
    step(module, batch(4))
    step(module, batch(9))
    print("OK")


def scenario_7_outputs_after_failed_switch(mode):
    module = make_module(mode, per_key_params_sym_gen, default_key=9)
    step(module, batch(9))
    try:
        module.forward(batch(3), is_train=True)
    except (ValueError, RuntimeError, mx.base.MXNetError) as err:
        print("switch failed:", type(err).__name__)
    outputs = module.get_outputs()
    print("OK outputs", outputs[0].shape)


def scenario_8_shapes_differ(mode):
    module = make_module(mode, per_key_shape_sym_gen, default_key=9)
    step(module, batch(9))
    step(module, batch(3))
    print("OK")


def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def scenario_memory(mode):
    """Switch among buckets 1..9 for a few hundred batches; print RSS after warm-up and at the end."""
    it = SinBucketIter(range(1, 10), batch_size=300, num_samples=300 * 450, label_mode="sequence", seed=1)
    sym_gen = make_sym_gen((10, 20, 1), label_mode="sequence")
    cls = SafeBucketingModule if mode == "safe" else mx.mod.BucketingModule
    module = cls(sym_gen, default_bucket_key=9)
    module.bind(it.provide_data, it.provide_label)
    params = to_layout(init_params((10, 20, 1), 0), "fused", (10, 20, 1))
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})
    module.init_optimizer(optimizer="adam")
    samples = []
    for i, b in enumerate(it, start=1):
        step(module, b)
        if i in (50, 150, 250, 350, 450):
            samples.append(rss_mib())
    print("OK rss_mib", " ".join(f"{x:.1f}" for x in samples))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    globals()[f"scenario_{sys.argv[1]}"](sys.argv[2])
