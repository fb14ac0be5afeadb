"""cell='native' with step weights: the operator applies the loss' per-step gradient weights itself
(attribute ``step_weights``), with the same float32 numbers as the graph's
``BlockGrad(pred * (1 - w)) + pred * w`` on the unweighted operator, and no graph operator for them."""
import json

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import make_sym_gen
from sinlstm_sym.model.graph import step_weight_values, weigh_steps
from sinlstm_sym.native import unchecked_lstm_stack
from sinlstm_sym.recurrence.params import fused_shapes

pytestmark = pytest.mark.native  # built on first use by the first such test (tests/conftest.py)

HIDDEN = (10, 20, 1)
STEP_WEIGHT, STEP_TAU = 4.0, 1.0


def native_head(length, weighted, weights=None):
    """The training head on the native stack: weighted inside the operator, or by the graph's operators."""
    data = mx.sym.var("data", shape=(0, length, 1))
    params = [mx.sym.var(name, shape=shape) for name, shape in fused_shapes(HIDDEN).items()]
    if weighted:
        pred = unchecked_lstm_stack(data, params, HIDDEN, step_weights=weights or step_weight_values(
            length, STEP_WEIGHT, STEP_TAU))
    else:
        pred = weigh_steps(unchecked_lstm_stack(data, params, HIDDEN), length, STEP_WEIGHT, STEP_TAU)
    return mx.sym.LinearRegressionOutput(data=pred, label=mx.sym.var("label"), name="pred")


def forward_backward(symbol, x, y, packed):
    args = {"data": mx.nd.array(x), "label": mx.nd.array(y)}
    args.update({k: mx.nd.array(v) for k, v in packed.items()})
    grads = {k: mx.nd.zeros(v.shape) for k, v in args.items() if k != "label"}
    executor = symbol.bind(mx.cpu(), args=args, args_grad=grads, grad_req="write")
    executor.forward(is_train=True)
    executor.backward()
    return executor.outputs[0].asnumpy(), {k: v.asnumpy() for k, v in grads.items()}


@pytest.mark.parametrize("batch, length", [(100, 1), (100, 9), (33, 20), (1, 5)])
def test_weights_inside_the_operator_give_the_graphs_numbers_bit_for_bit(batch, length):
    rng = np.random.default_rng(length)
    x = rng.uniform(-1, 1, size=(batch, length, 1)).astype(np.float32)
    y = rng.uniform(-1, 1, size=(batch, length)).astype(np.float32)
    packed = {k: rng.uniform(-0.6, 0.6, size=s).astype(np.float32) for k, s in fused_shapes(HIDDEN).items()}
    out_graph, grads_graph = forward_backward(native_head(length, weighted=False), x, y, packed)
    out_op, grads_op = forward_backward(native_head(length, weighted=True), x, y, packed)
    np.testing.assert_array_equal(out_op, out_graph)
    assert set(grads_op) == set(grads_graph) == {"data", *fused_shapes(HIDDEN)}
    for name in grads_graph:
        np.testing.assert_array_equal(grads_op[name], grads_graph[name], err_msg=name)
    assert np.abs(grads_op["lstm0_parameters"]).max() > 0


def test_native_step_weights_are_the_graphs_float32_constants():
    weights = step_weight_values(6, STEP_WEIGHT, STEP_TAU)
    k = np.arange(6, dtype=np.float32)
    expected = (1.0 + STEP_WEIGHT * np.exp(k * np.float32(-1.0 / STEP_TAU))).astype(np.float32)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    assert all(float(np.float32(w)) == w for w in weights)  # each value exactly a float32
    assert weights[0] == 5.0


def op_nodes(symbol):
    return [n for n in json.loads(symbol.tojson())["nodes"] if n["op"] != "null"]


def test_training_symbol_carries_the_weights_in_the_operator_and_inference_symbol_none():
    sym_gen = make_sym_gen(HIDDEN, cell="native", step_weight=STEP_WEIGHT, step_tau=STEP_TAU)
    train, _, _ = sym_gen(7)
    ops = {n["op"] for n in op_nodes(train)}
    assert not ops & {"broadcast_mul", "BlockGrad", "elemwise_add", "exp", "_arange"}
    (stack,) = [n for n in op_nodes(train) if n["op"] == "sinlstm_stack"]
    assert [float(w) for w in stack["attrs"]["step_weights"].split(",")] == list(
        step_weight_values(7, STEP_WEIGHT, STEP_TAU))
    infer, _, _ = make_sym_gen(HIDDEN, cell="native", step_weight=STEP_WEIGHT, with_loss=False)(7)
    (stack,) = [n for n in op_nodes(infer) if n["op"] == "sinlstm_stack"]
    assert "step_weights" not in stack["attrs"]
    unweighted, _, _ = make_sym_gen(HIDDEN, cell="native", step_weight=0.0)(7)
    (stack,) = [n for n in op_nodes(unweighted) if n["op"] == "sinlstm_stack"]
    assert "step_weights" not in stack["attrs"]


def test_fused_cell_keeps_the_graph_weights():
    train, _, _ = make_sym_gen(HIDDEN, cell="fused", step_weight=STEP_WEIGHT)(4)
    assert {"broadcast_mul", "BlockGrad"} <= {n["op"] for n in op_nodes(train)}


@pytest.mark.parametrize("weights, message", [
    ([1.0, 2.0], "step_weights holds 2 weights for windows of length 3"),
    ([1.0, 2.0, 0.1], "step_weights must be float32 values"),  # 0.1 is no float32 value
    ([1.0, 2.0, float("nan")], "step_weights must be float32 values"),
])
def test_bad_step_weights_are_refused_before_running(weights, message):
    with pytest.raises((mx.base.MXNetError, RuntimeError), match=message):  # simple_bind wraps it in RuntimeError
        native_head(3, weighted=True, weights=weights).simple_bind(mx.cpu(), data=(4, 3, 1), label=(4, 3))
