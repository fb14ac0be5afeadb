"""SafeBucketingModule on models other than ours: what MXNet 1.9.1's own BucketingModule tests check
(switch_bucket, grad_req, ctx groups, save/load, training with BucketSentenceIter), written here from
what those tests check, plus tuple and string keys, several inputs and layout TN. Where stock MXNet
works, the numbers must be the very same."""
import logging
import re
import warnings

import mxnet as mx
import numpy as np
import pytest

from bucket_models import EMBED, HIDDEN, VOCAB, Seq2SeqModel, TokenModel, cross_entropy
from training_asserts import SpoiledBatchAt
from sinlstm_sym import SafeBucketingModule, fit, make_sym_gen
from sinlstm_sym.model.bucketing import BucketReallocationWarning, parse_key_lengths

STOCK = mx.mod.BucketingModule
TOKEN, SEQ2SEQ = TokenModel(), Seq2SeqModel()


def sentences(count, seed, low=3, high=20):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        start = int(rng.integers(VOCAB))
        out.append([(start + i) % VOCAB + 1 for i in range(int(rng.integers(low, high)))])
    return out


def sentence_iter(seed, layout="NT", count=300):
    mx.random.seed(seed)
    np.random.seed(seed)
    import random
    random.seed(seed)
    return mx.rnn.BucketSentenceIter(sentences(count, seed), 16, buckets=[5, 10, 20], invalid_label=0,
                                     layout=layout)


def token_sym_gen(key):
    """As MXNet's bucketing example: embedding, LSTM unrolled over the key, softmax; label id 0 is padding."""
    embed = mx.sym.Embedding(mx.sym.var("data"), input_dim=VOCAB + 1, output_dim=EMBED, name="embed")
    outputs, _ = mx.rnn.LSTMCell(num_hidden=HIDDEN, prefix="lstm_").unroll(key, inputs=embed, merge_outputs=True)
    pred = mx.sym.FullyConnected(mx.sym.reshape(outputs, shape=(-1, HIDDEN)), num_hidden=VOCAB + 1, name="pred")
    label = mx.sym.reshape(mx.sym.var("softmax_label"), shape=(-1,))
    return mx.sym.SoftmaxOutput(pred, label, name="softmax"), ("data",), ("softmax_label",)


def fused_tn_sym_gen(key):
    """As MXNet's cudnn_rnn_bucketing example: a fused LSTM over (T, N) data, layout TNC inside."""
    embed = mx.sym.Embedding(mx.sym.var("data"), input_dim=VOCAB + 1, output_dim=EMBED, name="embed")
    cell = mx.rnn.FusedRNNCell(HIDDEN, num_layers=1, mode="lstm", prefix="lstm_")
    outputs, _ = cell.unroll(key, inputs=embed, merge_outputs=True, layout="TNC")
    pred = mx.sym.FullyConnected(mx.sym.reshape(outputs, shape=(-1, HIDDEN)), num_hidden=VOCAB + 1, name="pred")
    label = mx.sym.reshape(mx.sym.var("softmax_label"), shape=(-1,))
    return mx.sym.SoftmaxOutput(pred, label, name="softmax"), ("data",), ("softmax_label",)


def fit_scores(cls, sym_gen, layout="NT", epochs=2):
    """mod.fit as MXNet's bucketing example calls it; the validation perplexity of each epoch and the
    final parameters."""
    train, val = sentence_iter(1, layout), sentence_iter(2, layout, count=100)
    module = cls(sym_gen, default_bucket_key=train.default_bucket_key, context=mx.cpu())
    scores = []
    module.fit(train, eval_data=val, eval_metric=mx.metric.Perplexity(0), optimizer="sgd",
               optimizer_params={"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-5},
               initializer=mx.init.Xavier(factor_type="in", magnitude=2.34), num_epoch=epochs,
               eval_end_callback=lambda params: scores.append(params.eval_metric.get()[1]))
    args, _ = module.get_params()
    return scores, {k: v.asnumpy() for k, v in args.items()}


@pytest.mark.parametrize("sym_gen, layout", [(token_sym_gen, "NT"), (fused_tn_sym_gen, "TN")])
def test_mod_fit_gives_the_very_same_numbers_as_stock(sym_gen, layout):
    stock_scores, stock_params = fit_scores(STOCK, sym_gen, layout)
    safe_scores, safe_params = fit_scores(SafeBucketingModule, sym_gen, layout)
    assert safe_scores == stock_scores and len(safe_scores) == 2
    assert safe_scores[1] < safe_scores[0]  # it learns the cycle
    for name, value in stock_params.items():
        np.testing.assert_array_equal(safe_params[name], value)


def auto_named_sym_gen(key):
    """Like MXNet's test_module_switch_bucket: an Embedding without a name (auto-named embedding0)."""
    embed = mx.sym.Embedding(mx.sym.var("data"), input_dim=VOCAB, output_dim=EMBED)
    outputs, _ = mx.rnn.LSTMCell(num_hidden=HIDDEN, prefix="lstm_").unroll(key, inputs=embed, merge_outputs=True)
    pred = mx.sym.FullyConnected(mx.sym.reshape(outputs, shape=(-1, HIDDEN)), num_hidden=VOCAB, name="pred")
    label = mx.sym.reshape(mx.sym.var("softmax_label"), shape=(-1,))
    return mx.sym.SoftmaxOutput(pred, label, name="softmax"), ("data",), ("softmax_label",)


def test_switch_bucket_with_auto_named_layers():
    """sym_gen runs under a fresh NameManager at every call, so the auto-named embedding keeps its name."""
    mx.sym.Embedding(mx.sym.var("x"), input_dim=2, output_dim=2)  # advance the global name counter first
    module = SafeBucketingModule(auto_named_sym_gen, default_bucket_key=10)
    module.bind([("data", (4, 10))], [("softmax_label", (4, 10))])
    module.init_params(mx.init.Xavier())
    assert "embedding0_weight" in module.symbol.list_arguments()
    before, _ = module.get_params()
    module.switch_bucket(5, [("data", (4, 5))], [("softmax_label", (4, 5))])
    assert "embedding0_weight" in module.symbol.list_arguments()
    batch = TOKEN.batch(5, batch_size=4, names=("data", "softmax_label"))
    module.forward(batch, is_train=False)
    assert module.get_outputs()[0].shape == (20, VOCAB)
    after, _ = module.get_params()
    assert sorted(after) == sorted(before)


def scalar_sym_gen(_key):
    """Like MXNet's test_bucket_module_grad_req: loss = data * a, no label, key unrelated to the shapes."""
    weight = mx.sym.var("a", shape=(1,), init=mx.init.One())
    return mx.sym.make_loss(mx.sym.broadcast_mul(mx.sym.var("data"), weight)), ("data",), None


def scalar_batch(key):
    return mx.io.DataBatch([mx.nd.ones((2,))], None, bucket_key=key,
                           provide_data=[mx.io.DataDesc("data", (2,), layout="N")])


@pytest.mark.parametrize("grad_req, expected", [("write", 1 - 2), ("add", 1 - 4)])
@pytest.mark.parametrize("cls", [STOCK, SafeBucketingModule])
def test_grad_req_write_and_add_across_buckets(cls, grad_req, expected):
    """Two forward_backward on keys 10 and 5, one SGD step (lr 1): 'write' keeps the last gradient (2),
    'add' sums both (4)."""
    module = cls(scalar_sym_gen, default_bucket_key=10)
    module.bind(data_shapes=[["data", (2,)]], for_training=True, grad_req=grad_req)
    module.init_params()
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 1.0, "wd": 0.0,
                                                                   "rescale_grad": 1.0})
    module.forward_backward(scalar_batch(10))
    module.forward_backward(scalar_batch(5))
    module.update()
    assert module.get_params()[0]["a"].asscalar() == expected


def token_inference_sym_gen(key):
    """A softmax whose label shape MXNet infers from the prediction, so it binds without label shapes."""
    embed = mx.sym.Embedding(mx.sym.var("data"), input_dim=VOCAB + 1, output_dim=EMBED, name="embed")
    outputs, _ = mx.rnn.LSTMCell(num_hidden=HIDDEN, prefix="lstm_").unroll(key, inputs=embed, merge_outputs=True)
    pred = mx.sym.FullyConnected(mx.sym.reshape(outputs, shape=(-1, HIDDEN)), num_hidden=VOCAB + 1, name="pred")
    return mx.sym.SoftmaxOutput(pred, mx.sym.var("softmax_label"), name="softmax"), ("data",), ("softmax_label",)


@pytest.mark.parametrize("sym_gen, shape", [(token_inference_sym_gen, (4, 9)), ("library", (4, 9, 1))])
def test_bind_for_inference_without_labels_then_another_key(sym_gen, shape):
    if sym_gen == "library":  # made here, not at collection: the default cell may build the native operator
        sym_gen = make_sym_gen((10, 20, 1))
    outputs = {}
    layout = "NT" if len(shape) == 2 else "NTC"
    other = (4, 4) + shape[2:]
    for cls in (STOCK, SafeBucketingModule):
        mx.random.seed(3)
        module = cls(sym_gen, default_bucket_key=9)
        module.bind([mx.io.DataDesc("data", shape, layout=layout)], for_training=False)
        module.init_params(mx.init.Xavier())
        data = mx.nd.array(np.random.default_rng(0).integers(0, VOCAB, size=other), dtype=np.float32)
        descs = [mx.io.DataDesc("data", other, layout=layout)]
        module.forward(mx.io.DataBatch([data], bucket_key=4, provide_data=descs))
        outputs[cls] = module.get_outputs()[0].asnumpy()
    assert outputs[STOCK].shape[0] in (4, 16)
    np.testing.assert_array_equal(outputs[SafeBucketingModule], outputs[STOCK])


def test_ctx_groups_bind():
    """group2ctxs as in MXNet's test_bucket_module_ctx_group: the FC layers of two groups on two contexts
    (a switch to another bucket fails in stock MXNet 1.9.1 too: 'Input argument NDArray cannot be un-allocated')."""
    def sym_gen(length):
        net = None
        for group in ("dev1", "dev2"):
            with mx.AttrScope(ctx_group=group):
                net = mx.sym.var("data") if net is None else net
                weight, bias = mx.sym.var(f"{group}_weight"), mx.sym.var(f"{group}_bias")
                for i in range(length):
                    net = mx.sym.FullyConnected(net, weight=weight, bias=bias, num_hidden=6, name=f"{group}_fc{i}")
        with mx.AttrScope(ctx_group="dev2"):
            return mx.sym.SoftmaxOutput(net, mx.sym.var("label"), name="softmax"), ("data",), ("label",)
    module = SafeBucketingModule(sym_gen, default_bucket_key=4, context=[mx.cpu(0)],
                                 group2ctxs=[{"dev1": mx.cpu(1), "dev2": mx.cpu(2)}])
    module.bind([["data", (3, 6)]], [["label", (3,)]], inputs_need_grad=True)
    module.init_params()
    module.forward(mx.io.DataBatch([mx.nd.ones((3, 6))], [mx.nd.zeros((3,))], bucket_key=4,
                                   provide_data=[mx.io.DataDesc("data", (3, 6))],
                                   provide_label=[mx.io.DataDesc("label", (3,))]), is_train=True)
    module.backward()
    assert module.get_outputs()[0].shape == (3, 6) and module.get_input_grads()[0].shape == (3, 6)


def train_batches(module, model, keys, batch_size=16):
    losses = []
    for i, key in enumerate(keys):
        batch = model.batch(key, batch_size=batch_size, seed=i)
        module.forward_backward(batch)
        module.update()
        losses.append(cross_entropy(module, batch))
    return losses


def new_module(cls, model, default_key, seed=0, **kwargs):
    mx.random.seed(seed)
    module = cls(model.sym_gen(), default_bucket_key=default_key, **kwargs)
    first = model.batch(default_key, batch_size=16)
    module.bind(first.provide_data, first.provide_label)
    model.init(module)
    module.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.02})
    return module


def outputs_of(module, model, key):
    module.forward(model.batch(key, batch_size=16, seed=99), is_train=False)
    return module.get_outputs()[0].asnumpy()


def test_save_checkpoint_and_load_round_trip_same_numbers_as_stock(tmp_path):
    """Our files load into our class and into stock's, and stock's into ours, all with the same outputs."""
    keys = [9, 4, 7, 9, 2]
    safe = new_module(SafeBucketingModule, TOKEN, 9)
    stock = new_module(STOCK, TOKEN, 9)
    assert train_batches(safe, TOKEN, keys) == train_batches(stock, TOKEN, keys)
    safe.save_checkpoint(str(tmp_path / "safe"), 3)
    stock.save_checkpoint(str(tmp_path / "stock"), 3)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("safe")) == [
        "safe-0003.params", "safe-2-symbol.json", "safe-4-symbol.json", "safe-7-symbol.json", "safe-9-symbol.json",
        "safe.buckets"]
    expected = outputs_of(stock, TOKEN, 7)
    for loader, prefix in ((SafeBucketingModule, "safe"), (SafeBucketingModule, "stock"), (STOCK, "safe")):
        loaded = loader.load(str(tmp_path / prefix), 3, sym_gen=TOKEN.sym_gen(), default_bucket_key=9)
        assert type(loaded) is loader
        loaded.bind([mx.io.DataDesc("data", (16, 9), layout="NT")], [mx.io.DataDesc("softmax_label", (16, 9),
                                                                                    layout="NT")])
        np.testing.assert_array_equal(outputs_of(loaded, TOKEN, 7), expected)


def test_load_gives_the_checkpoint_parameters_before_bind(tmp_path):
    module = new_module(SafeBucketingModule, TOKEN, 6)
    module.save_checkpoint(str(tmp_path / "m"), 1)
    loaded = SafeBucketingModule.load(str(tmp_path / "m"), 1, sym_gen=TOKEN.sym_gen(), default_bucket_key=6)
    saved, _ = module.get_params()
    for name, value in loaded.get_params()[0].items():
        np.testing.assert_array_equal(value.asnumpy(), saved[name].asnumpy())


def test_tuple_keys_seq2seq_trains_switches_saves_and_loads(tmp_path):
    """Two data inputs, key (source_len, target_len), default key the largest pair."""
    rng = np.random.default_rng(0)
    keys = [(int(s), int(t)) for s, t in zip(rng.integers(2, 9, 80), rng.integers(1, 8, 80))]
    default = (8, 7)
    module = new_module(SafeBucketingModule, SEQ2SEQ, default)
    losses = train_batches(module, SEQ2SEQ, keys)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) / 2, losses
    stock = new_module(STOCK, SEQ2SEQ, default)
    assert train_batches(stock, SEQ2SEQ, keys) == losses
    module.save_checkpoint(str(tmp_path / "s2s"), 0)
    assert (tmp_path / "s2s-(3, 5)-symbol.json").is_file() == ((3, 5) in keys)
    loaded = SafeBucketingModule.load(str(tmp_path / "s2s"), 0, sym_gen=SEQ2SEQ.sym_gen(), default_bucket_key=default)
    first = SEQ2SEQ.batch(default, batch_size=16)
    loaded.bind(first.provide_data, first.provide_label)
    for key in [(3, 2), (8, 7), (2, 6)]:
        np.testing.assert_array_equal(outputs_of(loaded, SEQ2SEQ, key), outputs_of(module, SEQ2SEQ, key))


def test_string_keys_train_and_save_checkpoint_refuses_them(tmp_path):
    lengths = {"short": 3, "long": 8}

    def sym_gen(key):
        return TOKEN.sym_gen()(lengths[key])
    module = SafeBucketingModule(sym_gen, default_bucket_key="long")
    module.bind([mx.io.DataDesc("data", (8, 8), layout="NT")], [mx.io.DataDesc("softmax_label", (8, 8),
                                                                                layout="NT")])
    module.init_params(mx.init.Xavier())
    module.init_optimizer()
    for name in ("short", "long", "short"):
        batch = TOKEN.batch(lengths[name])
        batch.bucket_key = name
        module.forward_backward(batch)
        module.update()
    assert module.get_outputs()[0].shape == (24, VOCAB)
    with pytest.raises(TypeError, match="save_checkpoint stores bucket keys as an int32 array"):
        module.save_checkpoint(str(tmp_path / "words"), 0)
    assert list(tmp_path.iterdir()) == []


def test_larger_keys_when_allowed_give_the_same_numbers_as_stock():
    keys = [4, 9, 2, 12]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BucketReallocationWarning)
        safe = new_module(SafeBucketingModule, TOKEN, 4, allow_larger_keys=True)
        stock = new_module(STOCK, TOKEN, 4)
        assert train_batches(safe, TOKEN, keys) == train_batches(stock, TOKEN, keys)


def test_larger_keys_by_default_warn_once_per_input_and_give_the_same_numbers_as_stock():
    keys = [4, 9, 2, 12, 9]
    safe = new_module(SafeBucketingModule, TOKEN, 4)
    stock = new_module(STOCK, TOKEN, 4)
    with pytest.warns(BucketReallocationWarning) as caught:
        safe_losses = train_batches(safe, TOKEN, keys)
    assert safe_losses == train_batches(stock, TOKEN, keys)
    messages = sorted(str(w.message) for w in caught if w.category is BucketReallocationWarning)
    assert len(messages) == 2, messages  # data and softmax_label, once each (keys 9 and 12 both larger)
    assert messages[0].startswith("batch 2 (bucket_key 9): data 'data' has shape (16, 9), more elements than the "
                                  "(16, 4) it was bound with for default_bucket_key 4: MXNet re-allocates")


@pytest.mark.parametrize("change, message", [
    (dict(layout="TN"), "the inputs disagree on the batch size (along the layout's N axis): [('data', 4), "
                        "('softmax_label', 16)]"),  # stock: AssertionError 'all data must have the same batch size'

    (dict(dtype=np.int32), "data 'data' is declared int32 but was bound as float32"),
    (dict(shape=(16, 5)), "provide_data says shape (16, 5) for 'data' but the array has shape (16, 4)"),
])
def test_a_batch_must_match_what_bind_declared(change, message):
    module = new_module(SafeBucketingModule, TOKEN, 9)
    batch = TOKEN.batch(4, batch_size=16)
    desc = batch.provide_data[0]
    batch.provide_data = [mx.io.DataDesc("data", change.get("shape", desc.shape), change.get("dtype", desc.dtype),
                                         change.get("layout", desc.layout))]
    with pytest.raises(ValueError, match=r"^batch 1 \(bucket_key 4\): " + re.escape(message)):
        module.forward(batch)


def test_inputs_must_agree_on_the_batch_size():
    module = new_module(SafeBucketingModule, TOKEN, 9)
    batch = TOKEN.batch(4, batch_size=16)
    label = mx.nd.zeros((8, 4))
    batch.label, batch.provide_label = [label], [mx.io.DataDesc("softmax_label", (8, 4), layout="NT")]
    with pytest.raises(ValueError, match=r"inputs disagree on the batch size .*\('data', 16\), \('softmax_label', 8\)"):
        module.forward(batch)


def test_sym_gen_with_other_inputs_for_a_key():
    def sym_gen(key):
        symbol, _, labels = TOKEN.sym_gen()(key)
        if key == 3:
            return mx.sym.Group([symbol, mx.sym.var("extra")]), ("data", "extra"), labels
        return symbol, ("data",), labels
    module = SafeBucketingModule(sym_gen, default_bucket_key=9)
    module.bind([mx.io.DataDesc("data", (8, 9), layout="NT")], [mx.io.DataDesc("softmax_label", (8, 9))])
    module.init_params(mx.init.Xavier())
    with pytest.raises(ValueError, match=r"switch to bucket_key 3: sym_gen\(3\) names data inputs \['data', 'extra'\] "
                                         r"but provide_data names \['data'\]"):
        module.switch_bucket(3, [("data", (8, 3))], [("softmax_label", (8, 3))])
    # with the input given, the bucket binds as in stock MXNet (an input the default bucket lacks is allocated)
    module.switch_bucket(3, [("data", (8, 3)), ("extra", (8, 3))], [("softmax_label", (8, 3))])
    assert "extra" in module.symbol.list_arguments()


def test_default_bucket_key_must_be_given_and_hashable():
    with pytest.raises(TypeError, match="default_bucket_key is required"):
        SafeBucketingModule(TOKEN.sym_gen())
    with pytest.raises(TypeError, match=r"default_bucket_key must be hashable .* got \[3, 4\] \(list\)"):
        SafeBucketingModule(SEQ2SEQ.sym_gen(), default_bucket_key=[3, 4])


def _label_of_the_other_mode(batch):
    """Labels of the other label mode's shape: (batch, 1) instead of (batch, L)."""
    label = batch.label[0][:, -1:]
    batch.label, batch.provide_label = [label], [mx.io.DataDesc("label", label.shape, layout="NT")]


def test_fit_checks_each_batch_of_a_user_iterator_against_the_sine_contract(caplog):
    data = SpoiledBatchAt(3, _label_of_the_other_mode, [2, 4], batch_size=10, num_samples=100, seed=0)
    key = int(data.schedule[2])
    with caplog.at_level(logging.ERROR):
        with pytest.raises(ValueError, match=rf"batch 3 \(bucket_key {key}\): label must have shape \(10, {key}\) "
                                             r"for label_mode='sequence', got \(10, 1\)"):
            fit(train_iter=data, seed=0, num_epoch=1, log_every=5)


def tnc_sym_gen(key):
    """Time-major float data (T, N, 1), a fused LSTM in layout TNC, a regression on every step."""
    cell = mx.rnn.FusedRNNCell(HIDDEN, num_layers=1, mode="lstm", prefix="lstm_")
    outputs, _ = cell.unroll(key, inputs=mx.sym.var("data"), merge_outputs=True, layout="TNC")
    pred = mx.sym.FullyConnected(mx.sym.reshape(outputs, shape=(-1, HIDDEN)), num_hidden=1, name="pred")
    return mx.sym.LinearRegressionOutput(pred, mx.sym.reshape(mx.sym.var("label"), shape=(-1, 1)),
                                         name="out"), ("data",), ("label",)


def tnc_batch(length, steps=None, seed=0):
    values = np.sin(np.linspace(0, 3, (steps or length) * 8)).reshape(steps or length, 8, 1).astype(np.float32)
    values += np.random.default_rng(seed).normal(0, 0.01, values.shape).astype(np.float32)
    label = np.roll(values[:, :, 0], -1, axis=0)
    return mx.io.DataBatch([mx.nd.array(values)], [mx.nd.array(label)], bucket_key=length,
                           provide_data=[mx.io.DataDesc("data", values.shape, layout="TNC")],
                           provide_label=[mx.io.DataDesc("label", label.shape, layout="TN")])


def test_layout_tnc_same_numbers_as_stock_and_key_checked_on_axis_t_where_declared():
    outputs = {}
    for cls in (STOCK, SafeBucketingModule):
        mx.random.seed(5)
        module = cls(tnc_sym_gen, default_bucket_key=12, **({} if cls is STOCK else {"key_lengths": "data"}))
        first = tnc_batch(12)
        module.bind(first.provide_data, first.provide_label)
        module.init_params(mx.init.Xavier())
        module.init_optimizer(optimizer="adam")
        for i, length in enumerate([12, 5, 9, 5, 12]):
            module.forward_backward(tnc_batch(length, seed=i))
            module.update()
        outputs[cls] = module.get_outputs()[0].asnumpy()
    assert outputs[STOCK].shape == (12 * 8, 1)
    np.testing.assert_array_equal(outputs[SafeBucketingModule], outputs[STOCK])
    with pytest.raises(ValueError, match=r"bucket_key is 7 but data 'data' holds 6 steps \(axis T of layout TNC, "
                                         r"shape \(6, 8, 1\)\); key_lengths declares that the key gives its length"):
        module.forward(tnc_batch(7, steps=6))
    # undeclared, nothing is inferred: the fused cell runs 6 steps under key 7 as stock does
    for cls in (STOCK, SafeBucketingModule):
        module = cls(tnc_sym_gen, default_bucket_key=12)
        module.bind(first.provide_data, first.provide_label, for_training=False)
        module.init_params(mx.init.One())
        module.forward(tnc_batch(7, steps=6), is_train=False)
        outputs[cls] = module.get_outputs()[0].asnumpy()
    assert outputs[STOCK].shape == (6 * 8, 1)
    np.testing.assert_array_equal(outputs[SafeBucketingModule], outputs[STOCK])


def test_a_bound_bucket_takes_batches_without_descriptions_as_stock_does():
    """Stock MXNet runs a known bucket on the arrays' own shapes; a new bucket needs provide_data."""
    outputs = {}
    for cls in (STOCK, SafeBucketingModule):
        module = new_module(cls, TOKEN, 9)
        batch = TOKEN.batch(9, batch_size=16)
        module.forward(mx.io.DataBatch(batch.data, batch.label, bucket_key=9), is_train=False)
        outputs[cls] = module.get_outputs()[0].asnumpy()
    np.testing.assert_array_equal(outputs[SafeBucketingModule], outputs[STOCK])
    with pytest.raises(ValueError, match=r"batch 2 \(bucket_key 4\): provide_data is missing"):
        module.forward(mx.io.DataBatch(TOKEN.batch(4).data, bucket_key=4), is_train=False)


def test_mod_fit_names_the_batch_whose_new_bucket_is_wrong():
    """mod.fit prepares the next batch before its forward: the error names that next batch."""
    batches = [TOKEN.batch(9, batch_size=16), TOKEN.batch(5, batch_size=16, steps=3)]

    class Batches(mx.io.DataIter):
        def __init__(self):
            super().__init__(16)
            self.provide_data, self.provide_label = batches[0].provide_data, batches[0].provide_label
            self.position = 0

        def reset(self):
            self.position = 0

        def next(self):
            if self.position == len(batches):
                raise StopIteration
            self.position += 1
            return batches[self.position - 1]
    module = SafeBucketingModule(TOKEN.sym_gen(), default_bucket_key=9)
    with pytest.raises(ValueError, match=r"^batch 2 \(bucket_key 5\): sym_gen\(5\) cannot take the shapes "
                                         r"\[\('data', \(16, 3\)\), \('softmax_label', \(16, 3\)\)\]: MXNetError"):
        module.fit(Batches(), num_epoch=1, initializer=mx.init.Xavier())


# --- what stock MXNet 1.9.1 does correctly passes unchanged (measured: same outputs, same parameters) -------------

def decoder_step_sym_gen(key):
    """A decoder step, key (source length, step): the first step has no cache inputs (and no cache parameters),
    the later ones read the cache of the steps before."""
    source_len, step = key
    target, encoded = mx.sym.var("target"), mx.sym.var("encoded_source")
    embedded = mx.sym.reshape(mx.sym.Embedding(target, input_dim=VOCAB, output_dim=EMBED, name="emb"),
                              shape=(-1, EMBED))
    context = mx.sym.broadcast_div(mx.sym.sum(encoded, axis=1), mx.sym.reshape(mx.sym.var("source_length"), (-1, 1)))
    hidden = embedded + context
    names = ["target", "encoded_source", "source_length"]
    if step > 1:
        cache = mx.sym.sum(mx.sym.var("cache_l0_k"), axis=1) * mx.sym.sum(mx.sym.var("cache_l0_v"), axis=1)
        hidden = hidden + mx.sym.FullyConnected(cache, num_hidden=EMBED, name="cache_proj")
        names += ["cache_l0_k", "cache_l0_v"]
    return mx.sym.softmax(mx.sym.FullyConnected(hidden, num_hidden=VOCAB, name="out")), names, None


def decoder_step_batch(key, rows=3, seed=0):
    rng = np.random.default_rng(seed)
    source_len, step = key
    arrays = {"target": rng.integers(0, VOCAB, (rows, 1)).astype(np.float32),
              "encoded_source": rng.normal(size=(rows, source_len, EMBED)).astype(np.float32),
              "source_length": np.full((rows,), source_len, np.float32)}
    layouts = {"target": "NT", "encoded_source": "NTC", "source_length": "N"}
    if step > 1:
        for name in ("cache_l0_k", "cache_l0_v"):
            arrays[name], layouts[name] = rng.normal(size=(rows, step - 1, EMBED)).astype(np.float32), "NTC"
    return mx.io.DataBatch([mx.nd.array(a) for a in arrays.values()], None, bucket_key=key,
                           provide_data=[mx.io.DataDesc(n, a.shape, layout=layouts[n]) for n, a in arrays.items()])


def test_class_a_a_bucket_with_fewer_inputs_than_the_default_runs_as_in_stock():
    """A decoder's first step names ['target', 'encoded_source', 'source_length'], the default bucket also the
    cache inputs: stock binds the step from its own inputs (parameters shared) and is right; so is ours."""
    outputs = {}
    for cls in (STOCK, SafeBucketingModule):
        mx.random.seed(0)
        module = cls(decoder_step_sym_gen, default_bucket_key=(7, 5))
        module.bind(decoder_step_batch((7, 5)).provide_data, for_training=False)
        module.init_params(mx.init.Xavier())
        outputs[cls] = []
        for i, key in enumerate([(7, 1), (7, 5), (4, 1), (7, 3)]):
            module.forward(decoder_step_batch(key, seed=i), is_train=False)
            outputs[cls].append(module.get_outputs()[0].asnumpy())
    for safe, stock in zip(outputs[SafeBucketingModule], outputs[STOCK]):
        np.testing.assert_array_equal(safe, stock)
    # and the first step's numbers are those of a plain Module of its symbol with the shared parameters
    symbol, names, _ = decoder_step_sym_gen((7, 1))
    plain = mx.mod.Module(symbol, names, None)
    first = decoder_step_batch((7, 1), seed=0)
    plain.bind(first.provide_data, for_training=False)
    args, aux = module.get_params()
    plain.set_params({k: v for k, v in args.items() if k in symbol.list_arguments()}, aux)
    assert not {"cache_proj_weight", "cache_proj_bias"} & set(symbol.list_arguments())
    plain.forward(first, is_train=False)
    np.testing.assert_array_equal(outputs[SafeBucketingModule][0], plain.get_outputs()[0].asnumpy())


def test_class_a_a_bucket_with_a_parameter_the_default_lacks_is_refused():
    """The other way round stock MXNet fails in C++ ('_Map_base::at'): the default bucket is the first step."""
    module = SafeBucketingModule(decoder_step_sym_gen, default_bucket_key=(7, 1))
    module.bind(decoder_step_batch((7, 1)).provide_data, for_training=False)
    module.init_params(mx.init.Xavier())
    with pytest.raises(ValueError, match=r"^batch 1 \(bucket_key \(7, 3\)\): sym_gen gives parameter 'cache_proj_bias' "
                                         r"for bucket_key \(7, 3\) but not for bucket_key \(7, 1\)"):
        module.forward(decoder_step_batch((7, 3)), is_train=False)


def regression_sym_gen(length):
    """(N, T, 1) -> (N, T), one weight and bias: the gradient is known in closed form."""
    pred = mx.sym.reshape(mx.sym.FullyConnected(mx.sym.reshape(mx.sym.var("data"), shape=(-1, 1)), num_hidden=1,
                                                name="fc"), shape=(-1, length))
    return mx.sym.LinearRegressionOutput(pred, mx.sym.var("label"), name="out"), ("data",), ("label",)


def regression_batch(rows, length, seed):
    x = np.random.default_rng(seed).normal(size=(rows, length, 1)).astype(np.float32)
    return mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(2 * x[..., 0] + 1)], bucket_key=length,
                           provide_data=[mx.io.DataDesc("data", x.shape, layout="NTC")],
                           provide_label=[mx.io.DataDesc("label", (rows, length), layout="NT")])


def train_regression(cls, bound_rows):
    module = cls(regression_sym_gen, default_bucket_key=13)
    module.bind([mx.io.DataDesc("data", (bound_rows, 13, 1), layout="NTC")],
                [mx.io.DataDesc("label", (bound_rows, 13), layout="NT")])
    module.init_params(mx.init.Constant(0.3))
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.05, "rescale_grad": 1 / 9})
    outputs = []
    for i in range(6):  # word-based batching: the short bucket gets more rows than the default one
        module.forward_backward(regression_batch(20, 6, i) if i % 2 else regression_batch(9, 13, i))
        module.update()
        outputs.append(module.get_outputs()[0].asnumpy())
    return outputs, {k: v.asnumpy() for k, v in module.get_params()[0].items()}


def test_class_b_a_batch_larger_than_the_default_bucket_trains_as_stock_with_one_warning_per_input():
    """(20, 6, 1) against a bound (9, 13, 1): stock re-allocates and trains exactly as a module bound for the
    larger batch; ours gives the same numbers, warning once for data and once for label."""
    stock_outputs, stock_params = train_regression(STOCK, 9)
    with pytest.warns(BucketReallocationWarning) as caught:
        safe_outputs, safe_params = train_regression(SafeBucketingModule, 9)
    roomy_outputs, roomy_params = train_regression(STOCK, 20)
    for safe, stock, roomy in zip(safe_outputs, stock_outputs, roomy_outputs):
        np.testing.assert_array_equal(safe, stock)
        np.testing.assert_array_equal(safe, roomy)
    for name, value in stock_params.items():
        np.testing.assert_array_equal(safe_params[name], value)
        np.testing.assert_array_equal(roomy_params[name], value)
    assert abs(float(safe_params["fc_weight"].ravel()[0]) - 0.3) > 0.05  # it trained
    ours = [str(w.message) for w in caught if w.category is BucketReallocationWarning]
    assert len(ours) == 2 and "data 'data' has shape (20, 6, 1), more elements than the (9, 13, 1)" in ours[0]
    assert "label 'label' has shape (20, 6)" in ours[1]


def padded_conv_sym_gen(key):
    """Key (0, n): data of n + 2 steps through a width-3 convolution, beside an input 'pad' that always holds
    2 steps (the kernel width - 1), whatever the key."""
    _, _ = key
    conv = mx.sym.Convolution(mx.sym.reshape(mx.sym.var("data"), shape=(0, 1, -1)), kernel=(3,), num_filter=1,
                              no_bias=True, name="conv")
    return mx.sym.broadcast_add(mx.sym.sum(conv, axis=2), mx.sym.sum(mx.sym.var("pad"), axis=1, keepdims=True)), \
        ["data", "pad"], None


def padded_conv_batch(key):
    steps = key[1] + 2
    return mx.io.DataBatch([mx.nd.ones((2, steps)), mx.nd.ones((2, 2))], None, bucket_key=key,
                           provide_data=[mx.io.DataDesc("data", (2, steps), layout="NT"),
                                         mx.io.DataDesc("pad", (2, 2), layout="NT")])


def test_class_c_no_length_contract_is_inferred_from_a_coincidence():
    """'pad' holds 2 steps beside a default key (0, 2): that is no contract, key (0, 1) runs as in stock."""
    outputs = {}
    for cls in (STOCK, SafeBucketingModule):
        module = cls(padded_conv_sym_gen, default_bucket_key=(0, 2))
        module.bind(padded_conv_batch((0, 2)).provide_data, for_training=False)
        module.init_params(mx.init.One())
        outputs[cls] = []
        for key in [(0, 2), (0, 1)]:
            module.forward(padded_conv_batch(key), is_train=False)
            outputs[cls].append(module.get_outputs()[0].asnumpy())
    assert outputs[SafeBucketingModule][1].tolist() == outputs[STOCK][1].tolist() == [[5.0], [5.0]]  # 3 + 2
    assert outputs[SafeBucketingModule][0].tolist() == [[8.0], [8.0]]  # 2 positions of 3, + 2
    # declared, the contract is checked: 'data' (the key's element 1 + 2 steps is not it) must hold the key's length
    module = SafeBucketingModule(padded_conv_sym_gen, default_bucket_key=(0, 2), key_lengths={"pad": 1})
    module.bind(padded_conv_batch((0, 2)).provide_data, for_training=False)
    module.init_params(mx.init.One())
    with pytest.raises(ValueError, match=r"bucket_key is \(0, 1\) but data 'pad' holds 2 steps \(axis T of layout NT, "
                                         r"shape \(2, 2\)\); key_lengths declares that the key\[1\] gives its length"):
        module.forward(padded_conv_batch((0, 1)), is_train=False)


def test_inference_with_a_larger_batch_on_the_module_fit_trained_gives_stock_outputs():
    """A module trained at batch 100 forwards 500 windows: the outputs are stock MXNet's to the last bit."""
    result = fit(buckets=[5, 9], label_mode="last", seed=2, num_samples=400, batch_size=100, num_epoch=1,
                 log_every=1, lr_schedule=None)
    windows = np.random.default_rng(0).uniform(-1, 1, size=(500, 5, 1)).astype(np.float32)
    batch = mx.io.DataBatch([mx.nd.array(windows)], [mx.nd.zeros((500, 1))], bucket_key=5,
                            provide_data=[mx.io.DataDesc("data", (500, 5, 1))],
                            provide_label=[mx.io.DataDesc("label", (500, 1))])
    with pytest.warns(BucketReallocationWarning, match=r"data 'data' has shape \(500, 5, 1\), more elements than "
                                                       r"the \(100, 9, 1\)"):
        result.module.forward(batch, is_train=False)
    ours = result.module.get_outputs()[0].asnumpy()
    stock = STOCK(result.sym_gen, default_bucket_key=9)
    stock.bind([("data", (100, 9, 1))], [("label", (100, 1))])
    stock.set_params(*result.module.get_params())
    stock.forward(batch, is_train=False)
    assert ours.shape == (500, 1)
    np.testing.assert_array_equal(ours, stock.get_outputs()[0].asnumpy())
    with pytest.raises(ValueError, match="bucket_key 12 is larger than the default bucket 9"):  # the sine contract
        result.module.forward(mx.io.DataBatch([mx.nd.zeros((4, 12, 1))], bucket_key=12,
                                              provide_data=[mx.io.DataDesc("data", (4, 12, 1))]), is_train=False)


@pytest.mark.parametrize("value, parsed", [
    ("data", {"data": None}), ("source=0, target=1", {"source": 0, "target": 1}), (["a", "b"], {"a": None, "b": None}),
    ({"x": 2}, {"x": 2}), (None, None), ("", None)])
def test_key_lengths_forms(value, parsed):
    assert parse_key_lengths(value) == parsed


@pytest.mark.parametrize("value, error, message", [
    ("data=x", ValueError, "'data=x' must be NAME or NAME=INDEX"), ({"data": -1}, ValueError, "an int >= 0, got -1"),
    (3, TypeError, "key_lengths must be a name, a list of names or a dict")])
def test_key_lengths_refused(value, error, message):
    with pytest.raises(error, match=re.escape(message)):
        parse_key_lengths(value)


def test_key_lengths_from_the_class_and_the_environment(monkeypatch):
    """A drop-in user declares without touching the code that builds the module: class attribute, then env."""
    monkeypatch.setenv("SINLSTM_KEY_LENGTHS", "data")
    module = SafeBucketingModule(TOKEN.sym_gen(), default_bucket_key=9)
    module.bind([mx.io.DataDesc("data", (8, 9), layout="NT")], [mx.io.DataDesc("softmax_label", (8, 9), layout="NT")])
    module.init_params(mx.init.Xavier())
    batch = TOKEN.batch(9)
    batch.bucket_key = 8
    with pytest.raises(ValueError, match=r"bucket_key is 8 but data 'data' holds 9 steps"):
        module.forward(batch, is_train=False)
    monkeypatch.setattr(SafeBucketingModule, "key_lengths", {"softmax_label": None})
    with pytest.raises(ValueError, match=r"^bind: key_lengths declares that bucket_key 9 gives the length of label "
                                         r"'softmax_label', but it was bound without a layout holding T"):
        SafeBucketingModule(TOKEN.sym_gen(), default_bucket_key=9).bind(
            [mx.io.DataDesc("data", (8, 9), layout="NT")], [("softmax_label", (8, 9))])


def test_allow_larger_keys_from_the_environment_silences_the_warning(monkeypatch):
    monkeypatch.setenv("SINLSTM_ALLOW_LARGER_KEYS", "1")
    module = new_module(SafeBucketingModule, TOKEN, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BucketReallocationWarning)
        train_batches(module, TOKEN, [9, 12])
    monkeypatch.setenv("SINLSTM_ALLOW_LARGER_KEYS", "0")
    with pytest.warns(BucketReallocationWarning):
        train_batches(new_module(SafeBucketingModule, TOKEN, 4), TOKEN, [9])


def inferred_label_sym_gen(_key):
    """A softmax whose label shape MXNet infers, so a module binds for training without label shapes."""
    pred = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=3, name="fc")
    return mx.sym.SoftmaxOutput(pred, mx.sym.var("softmax_label"), name="softmax"), ("data",), ("softmax_label",)


def labelled_batch(seed):
    rng = np.random.default_rng(seed)
    return mx.io.DataBatch([mx.nd.array(rng.normal(size=(8, 4)))], [mx.nd.array(rng.integers(0, 3, 8))], bucket_key=4,
                           provide_data=[("data", (8, 4))], provide_label=[("softmax_label", (8,))])


def train_inferred_label(cls, label_shapes):
    module = cls(inferred_label_sym_gen, default_bucket_key=4)
    module.bind([("data", (8, 4))], label_shapes, for_training=True)
    module.init_params(mx.init.Constant(0.1))
    module.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5})
    for seed in range(3):
        module.forward_backward(labelled_batch(seed))
        module.update()
    return module.get_params()[0]["fc_weight"].asnumpy()


def test_training_a_bucket_bound_without_labels_is_refused():
    """Stock MXNet never loads the labels of such a bucket's batches (same shapes: no re-bind) and trains on
    the label array it allocated: other weights than with the labels bound."""
    labelled = train_inferred_label(STOCK, [("softmax_label", (8,))])
    assert np.abs(train_inferred_label(STOCK, None) - labelled).max() > 0.1  # stock: silently other numbers
    np.testing.assert_array_equal(train_inferred_label(SafeBucketingModule, [("softmax_label", (8,))]), labelled)
    with pytest.raises(ValueError, match=r"^batch 1 \(bucket_key 4\): bucket_key 4 was bound without labels \(bind or "
                                         r"switch_bucket without label_shapes\), so MXNet would not load"):
        train_inferred_label(SafeBucketingModule, None)
    # a batch that carries no labels trains on what the label arrays hold, as in stock (nothing is lost)
    for cls in (STOCK, SafeBucketingModule):
        module = cls(inferred_label_sym_gen, default_bucket_key=4)
        module.bind([("data", (8, 4))], None, for_training=True)
        module.init_params(mx.init.Constant(0.1))
        batch = labelled_batch(0)
        module.forward_backward(mx.io.DataBatch(batch.data, None, bucket_key=4, provide_data=batch.provide_data))
        assert module.get_outputs()[0].shape == (8, 3)
