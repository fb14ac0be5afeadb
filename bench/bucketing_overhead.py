"""Per-batch overhead of SafeBucketingModule against MXNet's BucketingModule, in one run.

    python bench/bucketing_overhead.py [--rounds 15] [--batches 60] [--json overhead.json]

Two models: the sine model (fused stacked LSTM 10/20/1, batch 100, lengths 1..20, ``fit``'s
module ``SineBucketingModule`` too) and a token model shaped like MXNet's bucketing example
(embedding 32, ``mx.rnn.LSTMCell`` 64 unrolled, softmax over 100 words, batch 32, lengths
5..40). Every module starts from the same weights and sees the same pre-built batches
(``forward_backward`` + ``update``; every bucket bound before timing). Rounds interleave the
modules (order rotated per round); the figures per module are the medians over rounds of the
wall and process-CPU time per batch, and each ratio (xR) is the median of the per-round ratios
against stock. The time
of the checks alone (``check_batch`` on the same batches, no MXNet work) is printed too: on
a busy machine it is the steadier figure.
"""
import argparse
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import benchkit
import mxnet as mx
import numpy as np

from sinlstm_sym import SafeBucketingModule, SinBucketIter, make_sym_gen
from sinlstm_sym.model.batches import SineBucketingModule

VOCAB, EMBED, HIDDEN = 100, 32, 64


def token_sym_gen(length: int) -> Tuple[Any, Tuple[str], Tuple[str]]:
    embed = mx.sym.Embedding(mx.sym.var("data"), input_dim=VOCAB, output_dim=EMBED, name="embed")
    outputs, _ = mx.rnn.LSTMCell(num_hidden=HIDDEN, prefix="lstm_").unroll(length, inputs=embed, merge_outputs=True)
    pred = mx.sym.FullyConnected(mx.sym.reshape(outputs, shape=(-1, HIDDEN)), num_hidden=VOCAB, name="pred")
    label = mx.sym.reshape(mx.sym.var("softmax_label"), shape=(-1,))
    return mx.sym.SoftmaxOutput(pred, label, name="softmax"), ("data",), ("softmax_label",)


def token_batches(count: int, seed: int = 0) -> List[mx.io.DataBatch]:
    rng = np.random.default_rng(seed)
    batches = []
    for length in rng.choice(np.arange(5, 41, 5), size=count):
        tokens = rng.integers(0, VOCAB, size=(32, int(length))).astype(np.float32)
        batches.append(mx.io.DataBatch([mx.nd.array(tokens)], [mx.nd.array((tokens + 1) % VOCAB)],
                                       bucket_key=int(length),
                                       provide_data=[mx.io.DataDesc("data", tokens.shape, layout="NT")],
                                       provide_label=[mx.io.DataDesc("softmax_label", tokens.shape, layout="NT")]))
    return batches


def sine_batches(count: int) -> List[mx.io.DataBatch]:
    it = SinBucketIter(range(1, 21), batch_size=100, num_samples=100 * count, seed=0)
    return list(it)


def build(cls: type, sym_gen: Callable[..., Any], default_key: int, first: mx.io.DataBatch,
          **kwargs: Any) -> mx.mod.BucketingModule:
    mx.random.seed(0)
    module = cls(sym_gen, default_bucket_key=default_key, **kwargs)
    data = [mx.io.DataDesc(d.name, d.shape[:1] + (default_key,) + d.shape[2:], layout=d.layout)
            for d in first.provide_data]
    label = [mx.io.DataDesc(d.name, d.shape[:1] + (default_key,) + d.shape[2:], layout=d.layout)
             for d in first.provide_label]
    module.bind(data, label)
    module.init_params(mx.init.Xavier())
    module.init_optimizer(optimizer="adam")
    return module


def run(module: mx.mod.BucketingModule, batches: List[mx.io.DataBatch]) -> Tuple[float, float]:
    """(wall seconds, process CPU seconds) per batch of forward_backward + update, to the end of the
    engine's work. CPU time, summed over the process's threads, is the steadier one on a shared machine."""
    mx.nd.waitall()
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        module.forward_backward(batch)
        module.update()
    mx.nd.waitall()
    return (time.perf_counter() - start) / len(batches), (time.process_time() - cpu) / len(batches)


def check_cost(module: SafeBucketingModule, batches: List[mx.io.DataBatch], repeat: int = 20) -> float:
    """Seconds per batch of the checks alone."""
    start = time.perf_counter()
    for _ in range(repeat):
        for batch in batches:
            module.check_batch(batch, True)
    return (time.perf_counter() - start) / (repeat * len(batches))


def measure(name: str, modules: Dict[str, mx.mod.BucketingModule], batches: List[mx.io.DataBatch],
            rounds: int) -> Dict[str, Dict[str, float]]:
    """Print and return per module: median wall and CPU ms per batch, their ratios to stock (median of the
    per-round ratios) and, for the checked modules, the microseconds of the checks alone."""
    for module in modules.values():  # bind every bucket before timing
        run(module, batches)
    times: Dict[str, List[Tuple[float, float]]] = {label: [] for label in modules}
    for r in range(rounds):
        for label in benchkit.rotated(list(modules), r):
            times[label].append(run(modules[label], batches))
    stock = times["stock"]
    print(f"{name}: {len(batches)} batches per round, {rounds} rounds")
    figures: Dict[str, Dict[str, float]] = {}
    for label, values in times.items():
        parts, figures[label] = [], {}
        for i, what in enumerate(("wall", "cpu")):
            ms = figures[label][f"{what}_ms"] = statistics.median(v[i] for v in values) * 1e3
            ratio = figures[label][f"{what}_ratio"] = statistics.median(v[i] / s[i] for v, s in zip(values, stock))
            parts.append(f"{what} {ms:7.3f} ms (x{ratio:.3f})")
        line = f"  {label:6s} " + "   ".join(parts)
        if label != "stock":
            checks = check_cost(modules[label], batches)
            figures[label]["checks_us"] = checks * 1e6
            line += (f"   checks alone {checks * 1e6:5.1f} us "
                     f"({100 * checks / statistics.median(s[0] for s in stock):.2f} % of stock's wall)")
        print(line)
    return figures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=benchkit.positive_int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--batches", type=benchkit.positive_int, default=60,
                        help="batches per round of the sine model; the token model gets half (default 60)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    sine = sine_batches(args.batches)
    sine_gen = make_sym_gen((10, 20, 1), cell="fused")
    figures = {"sine": measure("sine model (fused, batch 100, lengths 1..20)", {
        "stock": build(mx.mod.BucketingModule, sine_gen, 20, sine[0]),
        "safe": build(SafeBucketingModule, sine_gen, 20, sine[0]),
        "sine": build(SineBucketingModule, sine_gen, 20, sine[0], label_mode="sequence"),
    }, sine, args.rounds)}
    tokens = token_batches(max(1, args.batches // 2))
    figures["token"] = measure("token model (LSTMCell 64 unrolled, batch 32, lengths 5..40)", {
        "stock": build(mx.mod.BucketingModule, token_sym_gen, 40, tokens[0]),
        "safe": build(SafeBucketingModule, token_sym_gen, 40, tokens[0]),
    }, tokens, args.rounds)
    print(f"load average {benchkit.load_average():.2f}")
    if args.json:
        benchkit.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
