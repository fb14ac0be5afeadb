"""Small bucketing models for the SafeBucketingModule tests: the sine model, a token model and a
seq2seq-shaped model with tuple keys. Each gives its ``sym_gen`` (with the two broken variants the
8663 scenarios need), batches of a given key and a loss, so a scenario can run on any of them.

The token and seq2seq models follow what MXNet's own bucketing tests and example build (an
embedding, ``mx.rnn.LSTMCell`` unrolled over the key's length, a softmax over the vocabulary,
``(batch, length)`` token data in layout NT); they are written here, not copied.
"""
import mxnet as mx
import numpy as np

from sinlstm_sym import SinBucketIter, make_sym_gen
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.recurrence.cells import to_layout

VOCAB, EMBED, HIDDEN = 12, 8, 16


def next_token_labels(tokens):
    """The learnable task of the token models: each label is the next token id of the cycle 0..VOCAB-1."""
    return (tokens + 1) % VOCAB


def cross_entropy(module, batch):
    """Mean -log p(label) of the softmax outputs of the batch just run."""
    probs = module.get_outputs()[0].asnumpy().reshape(-1, VOCAB)
    labels = batch.label[0].asnumpy().reshape(-1).astype(int)
    return float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + 1e-12)))


class SineModel:
    """The library's sine model (fused cell, label_mode 'last'): key = window length."""

    name = "sine"
    other_names = ("x", "y")

    def key(self, n):
        return n

    def sym_gen(self, variant=None):
        if variant is None:
            return make_sym_gen((10, 20, 1), label_mode="last")

        def broken(key):
            data = mx.sym.reshape(mx.sym.var("data"), shape=(0, -1))
            if variant == "params_differ":  # hazard 1: a parameter name that depends on the key
                pred = mx.sym.FullyConnected(data, num_hidden=1, name=f"fc{key}")
            else:  # hazard 8: the same name with a shape that depends on the key
                pred = mx.sym.sum(mx.sym.FullyConnected(data, num_hidden=4 + key, name="fc"), axis=1, keepdims=True)
            loss = mx.sym.MakeLoss(mx.sym.mean(mx.sym.square(pred - mx.sym.var("label")), axis=1))
            return loss, ("data",), ("label",)
        return broken

    def batch(self, key, batch_size=8, steps=None, provide_label=True, names=None, seed=None):
        length = steps or key
        it = SinBucketIter([length], batch_size=batch_size, num_samples=batch_size, label_mode="last",
                           seed=length if seed is None else seed)
        b = next(it)
        data_name, label_name = names or ("data", "label")
        return mx.io.DataBatch(b.data, b.label, bucket_key=key,
                               provide_data=[mx.io.DataDesc(data_name, b.data[0].shape, layout="NTC")],
                               provide_label=[mx.io.DataDesc(label_name, b.label[0].shape, layout="NT")]
                               if provide_label else None)

    def init(self, module, variant=None):
        if variant is not None:
            module.init_params(mx.init.Uniform(0.1))
        else:
            params = to_layout(init_params((10, 20, 1), 0), "fused", (10, 20, 1))
            module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})

    def loss(self, module, batch):
        pred = module.get_outputs()[0]
        return float((0.5 * mx.nd.square(pred - batch.label[0].reshape(pred.shape)).mean()).asscalar())


def _lstm(prefix):
    return mx.rnn.LSTMCell(num_hidden=HIDDEN, prefix=prefix)


def _softmax(outputs, label, name="pred", num_hidden=VOCAB):
    pred = mx.sym.FullyConnected(mx.sym.reshape(outputs, shape=(-1, HIDDEN)), num_hidden=num_hidden, name=name)
    return mx.sym.SoftmaxOutput(pred, mx.sym.reshape(label, shape=(-1,)), name="softmax")


class TokenModel:
    """A language-model-shaped LSTM: (batch, L) token ids, layout NT, key = L; the embedding is auto-named
    (``embedding0_weight``), as in MXNet's test_module_switch_bucket."""

    name = "token"
    other_names = ("x", "y")

    def key(self, n):
        return n

    def sym_gen(self, variant=None):
        def sym_gen(key):
            embed_dim = EMBED + key if variant == "shape_differ" else EMBED
            embed = mx.sym.Embedding(mx.sym.var("data"), input_dim=VOCAB, output_dim=embed_dim)
            outputs, _ = _lstm("lstm_").unroll(key, inputs=embed, merge_outputs=True)
            name = f"pred{key}" if variant == "params_differ" else "pred"
            return _softmax(outputs, mx.sym.var("softmax_label"), name), ("data",), ("softmax_label",)
        return sym_gen

    def batch(self, key, batch_size=8, steps=None, provide_label=True, names=None, seed=None):
        rng = np.random.default_rng(key if seed is None else seed)
        tokens = rng.integers(0, VOCAB, size=(batch_size, steps or key)).astype(np.float32)
        data_name, label_name = names or ("data", "softmax_label")
        return mx.io.DataBatch([mx.nd.array(tokens)], [mx.nd.array(next_token_labels(tokens))], bucket_key=key,
                               provide_data=[mx.io.DataDesc(data_name, tokens.shape, layout="NT")],
                               provide_label=[mx.io.DataDesc(label_name, tokens.shape, layout="NT")]
                               if provide_label else None)

    def init(self, module, variant=None):
        module.init_params(mx.init.Xavier(factor_type="in", magnitude=2.34))

    loss = staticmethod(cross_entropy)


class Seq2SeqModel:
    """A seq2seq-shaped model: data 'source' (B, S) and 'target' (B, T), label (B, T), key ``(S, T)``; the
    decoder starts from the encoder's final state."""

    name = "tuple"
    other_names = ("x", "target", "y")

    def key(self, n):
        return (n, max(1, n - 1))

    def sym_gen(self, variant=None):
        def sym_gen(key):
            source_len, target_len = key
            embed_dim = EMBED + source_len if variant == "shape_differ" else EMBED
            source = mx.sym.Embedding(mx.sym.var("source"), input_dim=VOCAB, output_dim=embed_dim, name="src_embed")
            target = mx.sym.Embedding(mx.sym.var("target"), input_dim=VOCAB, output_dim=EMBED, name="tgt_embed")
            _, states = _lstm("enc_").unroll(source_len, inputs=source, merge_outputs=True)
            outputs, _ = _lstm("dec_").unroll(target_len, inputs=target, begin_state=states, merge_outputs=True)
            name = f"pred{source_len}" if variant == "params_differ" else "pred"
            return _softmax(outputs, mx.sym.var("softmax_label"), name), ("source", "target"), ("softmax_label",)
        return sym_gen

    def batch(self, key, batch_size=8, steps=None, provide_label=True, names=None, seed=None):
        rng = np.random.default_rng(sum(key) if seed is None else seed)
        source = rng.integers(0, VOCAB, size=(batch_size, steps or key[0])).astype(np.float32)
        target = rng.integers(0, VOCAB, size=(batch_size, key[1])).astype(np.float32)
        source_name, target_name, label_name = names or ("source", "target", "softmax_label")
        return mx.io.DataBatch([mx.nd.array(source), mx.nd.array(target)], [mx.nd.array(next_token_labels(target))],
                               bucket_key=key,
                               provide_data=[mx.io.DataDesc(source_name, source.shape, layout="NT"),
                                             mx.io.DataDesc(target_name, target.shape, layout="NT")],
                               provide_label=[mx.io.DataDesc(label_name, target.shape, layout="NT")]
                               if provide_label else None)

    def init(self, module, variant=None):
        module.init_params(mx.init.Xavier(factor_type="in", magnitude=2.34))

    loss = staticmethod(cross_entropy)


MODELS = {m.name: m for m in (SineModel(), TokenModel(), Seq2SeqModel())}
