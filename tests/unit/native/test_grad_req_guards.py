"""cell='native' without grad_req guards (``ModelSpec.sym_gen(..., writes_only=True)``, what ``fit`` binds): the same
numbers as the guarded symbol for grad_req 'write', 'add' refused before MXNet binds, the public sym_gen still
accumulating; and the operator's ``last_step`` output, the numbers of ``slice_axis`` on the full output."""
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import SafeBucketingModule, fit
from sinlstm_sym.config import ModelConfig
from sinlstm_sym.constants import WRITES_GRADIENTS_ATTR
from sinlstm_sym.model.bucketing import writing_nodes
from sinlstm_sym.model.spec import ModelSpec
from sinlstm_sym.native import unchecked_lstm_stack
from sinlstm_sym.recurrence.params import fused_shapes

pytestmark = pytest.mark.native  # built on first use by the first such test (tests/conftest.py)

HIDDEN = (10, 20, 1)
REFUSED = r"grad_req must be one of \['write', 'null'\] for this symbol, got "


def native_spec(label_mode, step_weight=0.0):
    return ModelSpec.from_model(ModelConfig(hidden_sizes=HIDDEN, label_mode=label_mode, cell="native",
                                            step_weight=step_weight))


def batch_arrays(batch, length, label_mode, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(batch, length, 1)).astype(np.float32)
    y = rng.uniform(-1, 1, size=(batch, length if label_mode == "sequence" else 1)).astype(np.float32)
    packed = {k: rng.uniform(-0.6, 0.6, size=s).astype(np.float32) for k, s in fused_shapes(HIDDEN).items()}
    return x, y, packed


def forward_backward(symbol, x, y, packed, grad_req="write", rounds=1):
    """Outputs and gradients (started at 7) after ``rounds`` forward/backward passes."""
    args = {"data": mx.nd.array(x), "label": mx.nd.array(y), **{k: mx.nd.array(v) for k, v in packed.items()}}
    grads = {k: mx.nd.full(v.shape, 7.0) for k, v in args.items() if k != "label"}
    executor = symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req=grad_req)
    for _ in range(rounds):
        executor.forward(is_train=True)
        executor.backward()
    return executor.outputs[0].asnumpy(), {k: v.asnumpy() for k, v in grads.items()}


@pytest.mark.parametrize("label_mode, step_weight, batch, length", [
    ("last", 0.0, 300, 9), ("sequence", 4.0, 300, 9), ("sequence", 0.0, 33, 20), ("last", 0.0, 1, 1)])
def test_guard_free_symbol_gives_the_guarded_numbers_bit_for_bit(label_mode, step_weight, batch, length):
    spec = native_spec(label_mode, step_weight)
    guarded, _, _ = spec.sym_gen()(length)
    bare, _, _ = spec.sym_gen(writes_only=True)(length)
    ops = lambda s: [n for n in s.get_internals().list_outputs() if n.endswith("_output")]  # noqa: E731
    assert len(ops(guarded)) == len(ops(bare)) + 4  # one identity per input: data and three parameter vectors
    assert writing_nodes(bare) == ["lstm_stack"] and writing_nodes(guarded) == []
    x, y, packed = batch_arrays(batch, length, label_mode)
    some_null = {"data": "write", "lstm0_parameters": "write", "lstm1_parameters": "null", "lstm2_parameters": "write"}
    for req in ("write", {"data": "null", **{name: "write" for name in packed}}, some_null):
        out_g, grads_g = forward_backward(guarded, x, y, packed, req, rounds=2)
        out_b, grads_b = forward_backward(bare, x, y, packed, req, rounds=2)
        np.testing.assert_array_equal(out_b, out_g)
        for name in grads_g:
            np.testing.assert_array_equal(grads_b[name], grads_g[name], err_msg=f"{name} {req}")
        assert np.abs(grads_b["lstm0_parameters"] - 7.0).max() > 0
        if req != "write":  # 'null': left alone
            nulls = [name for name in grads_b if req[name] == "null"]
            assert len(nulls) == 1 and (grads_b[nulls[0]] == 7.0).all()


def bucketing_module(sym_gen, length=9, batch=4):
    module = SafeBucketingModule(sym_gen, default_bucket_key=length)
    shapes = dict(data_shapes=[("data", (batch, length, 1))], label_shapes=[("label", (batch, 1))])
    return module, shapes


@pytest.mark.parametrize("grad_req, named", [
    ("add", "'add'"), ({"lstm1_parameters": "add"}, "{'lstm1_parameters': 'add'}"),
    (["add", "write", "write", "write", "null"], "{'data': 'add'}")])
def test_add_on_a_guard_free_symbol_is_refused_before_binding(grad_req, named):
    module, shapes = bucketing_module(native_spec("last").sym_gen(writes_only=True))
    with pytest.raises(ValueError, match=r"^bind: " + REFUSED + named.replace("[", r"\[").replace("{", r"\{")
                       + r": its operator\(s\) \['lstm_stack'\] write their gradients"):
        module.bind(grad_req=grad_req, **shapes)
    assert not module.binded
    module.bind(grad_req="add", for_training=False, **shapes)  # no gradients: nothing to refuse
    module.bind(grad_req={"lstm1_parameters": "null"}, force_rebind=True, **shapes)
    assert module.binded and module.for_training


def test_a_new_bucket_without_guards_is_refused_under_the_bound_grad_req():
    guarded, bare = native_spec("last").sym_gen(), native_spec("last").sym_gen(writes_only=True)
    module, shapes = bucketing_module(lambda key: (guarded if key == 9 else bare)(key))
    module.bind(grad_req="add", **shapes)
    module.init_params()
    with pytest.raises(ValueError, match=r"^switch to bucket_key 5: " + REFUSED + "'add'"):
        module.switch_bucket(5, [("data", (4, 5, 1))], [("label", (4, 1))])
    assert 5 not in module._buckets  # MXNet never bound it
    batch = mx.io.DataBatch([mx.nd.zeros((4, 5, 1))], [mx.nd.zeros((4, 1))], bucket_key=5,
                            provide_data=[("data", (4, 5, 1))], provide_label=[("label", (4, 1))])
    with pytest.raises(ValueError, match=r"^batch 1 \(bucket_key 5\): " + REFUSED + "'add'"):
        module.forward(batch)


def test_fit_trains_without_guards_and_hands_out_a_sym_gen_that_accumulates():
    result = fit(buckets=[9], label_mode="last", cell="native", seed=1, num_samples=1200, batch_size=300,
                 num_epoch=1, log_every=1, lr_schedule=None)
    assert writing_nodes(result.module.symbol) == ["lstm_stack"]
    with pytest.raises(ValueError, match=r"^bind: " + REFUSED + "'add'"):
        result.module.bind(data_shapes=[("data", (300, 9, 1))], label_shapes=[("label", (300, 1))],
                           force_rebind=True, grad_req="add")
    symbol, _, _ = result.sym_gen(9)
    assert writing_nodes(symbol) == [] and symbol.attr_dict()["lstm_stack"].get(WRITES_GRADIENTS_ATTR) is None
    x, y, _ = batch_arrays(300, 9, "last")
    params = {k: v.asnumpy() for k, v in result.module.get_params()[0].items()}
    _, written = forward_backward(symbol, x, y, params, "write")
    _, added = forward_backward(symbol, x, y, params, "add", rounds=2)
    for name in params:
        np.testing.assert_allclose(added[name], 7.0 + 2 * (written[name]), rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.abs(written["lstm0_parameters"]).max() > 0


def last_step_head(length, last_step, **attrs):
    data = mx.sym.var("data", shape=(0, length, 1))
    params = [mx.sym.var(name, shape=shape) for name, shape in fused_shapes(HIDDEN).items()]
    seq = unchecked_lstm_stack(data, params, HIDDEN, last_step=last_step, **attrs)
    pred = seq if last_step else mx.sym.slice_axis(seq, axis=1, begin=length - 1, end=length)
    return mx.sym.LinearRegressionOutput(data=pred, label=mx.sym.var("label"), name="pred")


@pytest.mark.parametrize("batch, length", [(300, 9), (17, 1), (33, 20)])
def test_last_step_output_is_the_slice_of_the_full_output_bit_for_bit(batch, length):
    x, y, packed = batch_arrays(batch, length, "last", seed=length)
    out_slice, grads_slice = forward_backward(last_step_head(length, False), x, y, packed)
    out_last, grads_last = forward_backward(last_step_head(length, True), x, y, packed)
    assert out_last.shape == (batch, 1)
    np.testing.assert_array_equal(out_last, out_slice)
    for name in grads_slice:
        np.testing.assert_array_equal(grads_last[name], grads_slice[name], err_msg=name)


def test_last_step_attribute_checks():
    data = mx.sym.var("data", shape=(0, 3, 1))
    params = [mx.sym.var(name, shape=shape) for name, shape in fused_shapes(HIDDEN).items()]
    hidden = ",".join(map(str, HIDDEN))
    with pytest.raises(mx.base.MXNetError, match="last_step must be '0' or '1', got 'yes'"):
        mx.sym.sinlstm_stack(data, *params, hidden_sizes=hidden, last_step="yes").infer_shape(data=(2, 3, 1))
    with pytest.raises(mx.base.MXNetError, match="step_weights .* cannot apply"):
        mx.sym.sinlstm_stack(data, *params, hidden_sizes=hidden, last_step="1",
                             step_weights="1,1,1").infer_shape(data=(2, 3, 1))
    _, out_shapes, _ = mx.sym.sinlstm_stack(data, *params, hidden_sizes=hidden, last_step="0").infer_shape(
        data=(2, 3, 1))
    assert out_shapes == [(2, 3)]


def alternating(*sym_gens):
    """A sym_gen that hands out the given sym_gens' symbols in turn, one per call."""
    calls = []

    def sym_gen(key):
        calls.append(key)
        return sym_gens[(len(calls) - 1) % len(sym_gens)](key)
    return sym_gen, calls


def sgd_step_of_two_passes(module, x, y):
    """Two forward/backward passes on one batch, one SGD step (lr 1, no rescale): the parameters' change."""
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 1.0, "wd": 0.0, "rescale_grad": 1.0})
    before = {k: v.asnumpy() for k, v in module.get_params()[0].items()}
    batch = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y)], bucket_key=x.shape[1],
                            provide_data=[("data", x.shape)], provide_label=[("label", y.shape)])
    for _ in range(2):
        module.forward_backward(batch)
    module.update()
    return {k: before[k] - v.asnumpy() for k, v in module.get_params()[0].items()}


def test_the_symbol_checked_is_the_symbol_bound_with_a_sym_gen_alternating_guards():
    """Each call of the sym_gen alternates guarded and guard-free symbols: whatever bind checks is what MXNet
    binds, so 'add' either is refused or accumulates (two passes give twice the gradient of one)."""
    spec = native_spec("last")
    sym_gen, calls = alternating(spec.sym_gen(), spec.sym_gen(writes_only=True))
    module, shapes = bucketing_module(sym_gen)
    with pytest.raises(ValueError, match=r"^bind: " + REFUSED + "'add'"):  # the second call: guard-free
        module.bind(grad_req="add", **shapes)
    module.bind(grad_req="add", **shapes)  # the third call: guarded, and bound
    assert len(calls) == 3 and writing_nodes(module.symbol) == []
    x, y, packed = batch_arrays(4, 9, "last")
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in packed.items()}, aux_params={})
    change = sgd_step_of_two_passes(module, x, y)
    _, one_pass = forward_backward(spec.sym_gen()(9)[0], x, y, packed, "write")
    for name in packed:
        np.testing.assert_allclose(change[name], 2 * one_pass[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert np.abs(change["lstm0_parameters"]).max() > 0
    assert len(calls) == 3  # bound buckets are not generated again


def test_a_sym_gen_whose_parameters_change_between_calls_is_refused_before_mxnet():
    """Every call adds a parameter of its own: the default bucket binds the symbol it was checked with, the next
    bucket is refused naming the parameter (stock MXNet: '_Map_base::at' from C++)."""
    calls = []

    def sym_gen(key):
        calls.append(key)
        data = mx.sym.reshape(mx.sym.var("data"), shape=(0, -1))
        pred = mx.sym.FullyConnected(data, num_hidden=1, name="fc") + mx.sym.FullyConnected(
            data, num_hidden=1, name=f"extra{len(calls)}")
        return mx.sym.LinearRegressionOutput(pred, mx.sym.var("label")), ("data",), ("label",)
    module = SafeBucketingModule(sym_gen, default_bucket_key=9)
    module.bind([("data", (4, 9))], [("label", (4, 1))])
    bound = [name for name in module.symbol.list_arguments() if name.startswith("extra")]
    assert bound == [f"extra{len(calls)}_weight", f"extra{len(calls)}_bias"]
    module.init_params(mx.init.Uniform(0.1))
    with pytest.raises(ValueError, match=rf"^switch to bucket_key 5: sym_gen gives parameter 'extra{len(calls) + 1}"
                                         r"_bias' for bucket_key 5 but not for bucket_key 9; a bucket's parameters"):
        module.switch_bucket(5, [("data", (4, 5))], [("label", (4, 1))])
    # the default bucket still trains on what it was bound with
    module.init_optimizer()
    module.forward_backward(mx.io.DataBatch([mx.nd.ones((4, 9))], [mx.nd.ones((4, 1))], bucket_key=9,
                                            provide_data=[("data", (4, 9))], provide_label=[("label", (4, 1))]))
    assert module.get_outputs()[0].shape == (4, 1)


def test_module_save_checkpoint_writes_symbols_plain_mxnet_loads_and_trains_right(tmp_path):
    """fit's module binds guard-free native symbols; its save_checkpoint writes the fused ones (same parameters):
    a process without this library loads them, matches the module's outputs and accumulates with 'add'."""
    result = fit(buckets=[5, 9], label_mode="last", cell="native", seed=1, num_samples=600, batch_size=100,
                 num_epoch=1, log_every=1, lr_schedule=None)
    assert writing_nodes(result.module.symbol) == ["lstm_stack"]
    result.module.save_checkpoint(str(tmp_path / "m"), 1)
    x, y, _ = batch_arrays(100, 9, "last", seed=3)
    batch = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y)], bucket_key=9, provide_data=[("data", x.shape)],
                            provide_label=[("label", y.shape)])
    result.module.forward(batch, is_train=False)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "out.npy", result.module.get_outputs()[0].asnumpy())
    script = PLAIN_MXNET_LOADS.format(prefix=str(tmp_path / "m"), dir=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[:2] == ["OK", "sinlstm_sym-not-imported"], proc.stdout


PLAIN_MXNET_LOADS = '''
import sys
import numpy as np
import subprocess
import sys

import mxnet as mx
prefix, where = {prefix!r}, {dir!r}
symbol = mx.sym.load(prefix + "-9-symbol.json")
args, aux = mx.model.load_params(prefix, 1)
x, y, expected = (np.load(where + "/" + n + ".npy") for n in ("x", "y", "out"))
module = mx.mod.Module(symbol, ("data",), ("label",))
module.bind([("data", x.shape)], [("label", y.shape)], grad_req="add")
module.set_params(args, aux)
batch = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(y)])
module.forward(batch, is_train=False)
np.testing.assert_allclose(module.get_outputs()[0].asnumpy(), expected, rtol=1e-4, atol=1e-5)
grads = []
for _ in range(2):
    module.forward_backward(batch)
    grads.append(module._exec_group.grad_arrays[1][0].asnumpy().copy())
assert np.abs(grads[0]).max() > 0
np.testing.assert_allclose(grads[1], 2 * grads[0], rtol=1e-5, atol=1e-7)
print("OK", "sinlstm_sym-not-imported" if "sinlstm_sym" not in sys.modules else "sinlstm_sym-imported")
'''


def test_save_checkpoint_refuses_symbols_that_write_their_gradients(tmp_path):
    """A user's sym_gen of guard-free symbols with no portable twin: nothing is written, the message says why."""
    bare = native_spec("last").sym_gen(writes_only=True)
    module, shapes = bucketing_module(lambda key: bare(key))
    module.bind(**shapes)
    module.init_params()
    with pytest.raises(ValueError, match=r"^save_checkpoint: the symbol of bucket_key 9 holds operator\(s\) "
                                         r"\['lstm_stack'\] that write their gradients whatever grad_req asks"):
        module.save_checkpoint(str(tmp_path / "m"), 0)
    assert list(tmp_path.iterdir()) == []
