#!/usr/bin/env python
"""Serving latency and throughput: the Predictor, onnxruntime on its ONNX export, and PyTorch eager.

Requests: ONE window of length 1, 20 and 100 (latency p50/p99 per call, microseconds), 1000 windows of
length 20 in one call (throughput, windows/s), and the Predictor's ``forecast`` of 12 steps for one series
(window 20). Implementations, all on the same weights (hidden sizes 10, 20, 1; seeded initial weights, or
``--checkpoint DIR``), interleaved in one process (round r runs every request through every implementation
in a rotated order, so drift of a shared machine hits all of them alike):

* Predictor: ``Predictor.predict`` as a user calls it (default cell: the native operator where it builds, called
  directly: no MXNet engine, no executor);
* Predictor (executors): the same model served through MXNet's inference executors, as the Predictor serves
  when the native library lacks its direct interface (and the other cells always do);
* onnxruntime: ``InferenceSession.run`` on ``Predictor.export_onnx``, one intra-op thread
  (skipped without onnx/onnxruntime: ``pip install 'sinlstm-sym[onnx]'``);
* PyTorch eager: three ``torch.nn.LSTM`` loaded with the same weights, ``torch.no_grad()``,
  ``torch.set_num_threads(1)``, numpy in and out (skipped without torch: ``pip install 'sinlstm-sym[bench]'``).

Every implementation's outputs are checked against the Predictor's before timing (largest difference
printed). Ratios are p50 against p50 (latency) and medians over the calls (throughput). The machine's load
average is printed before and after: quote it with the figures. ``MXNET_ENGINE_TYPE=NaiveEngine`` runs
MXNet's operators in the calling thread (no hand-over to the engine's worker thread): it changes only the
executors' row.

    python bench/serving.py [--rounds 5] [--calls 200] [--json out.json]
"""
import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock
from typing import Any, Callable, Dict, List, Optional

import numpy as np

import benchkit
from sinlstm_sym import Predictor
from sinlstm_sym.infer import predictor as predictor_module
from sinlstm_sym.recurrence.params import init_params

HIDDEN = (10, 20, 1)
LATENCY_LENGTHS = (1, 20, 100)
BATCH, BATCH_LENGTH = 1000, 20
FORECAST_STEPS, FORECAST_WINDOW = 12, 20
EXECUTORS = "Predictor (executors)"

Call = Callable[[np.ndarray], np.ndarray]


def onnx_call(predictor: Predictor, directory: str) -> Optional[Call]:
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime rows skipped: pip install 'sinlstm-sym[onnx]'")
        return None
    path = predictor.export_onnx(Path(directory) / "model.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"windows": x})[0]


def torch_call(params: Dict[str, np.ndarray]) -> Optional[Call]:
    try:
        import torch
    except ImportError:
        print("PyTorch rows skipped: pip install 'sinlstm-sym[bench]'")
        return None
    torch.set_num_threads(1)
    layers = benchkit.torch_lstm_layers(params, HIDDEN).eval()

    def call(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            h = torch.from_numpy(x.astype(np.float32))[:, :, None]
            for layer in layers:
                h, _ = layer(h)
            return h[:, :, 0].numpy()
    return call


def executors_predictor(params: Dict[str, np.ndarray], **kwargs: Any) -> Predictor:
    """A Predictor of the same model that serves through MXNet's executors (the direct interface withheld)."""
    with mock.patch.object(predictor_module, "load_direct", return_value=None):
        predictor = Predictor(params, **kwargs)
    assert not predictor.serves_directly
    return predictor


def time_calls(call: Callable[[np.ndarray], object], x: np.ndarray, count: int) -> List[float]:
    """Seconds of each of ``count`` calls ``call(x)``."""
    out = []
    for _ in range(count):
        start = time.perf_counter()
        call(x)
        out.append(time.perf_counter() - start)
    return out


def run(args: argparse.Namespace) -> Dict[str, Dict[str, List[float]]]:
    params = Predictor.load(args.checkpoint).canonical_params() if args.checkpoint else init_params(HIDDEN, seed=0)
    predictor = Predictor(params)
    forecasters = {"Predictor": Predictor(params, feature="value", trained_lengths=[FORECAST_WINDOW])}
    executed = None
    if predictor.serves_directly:
        executed = executors_predictor(params)
        forecasters[EXECUTORS] = executors_predictor(params, feature="value", trained_lengths=[FORECAST_WINDOW])
    rng = np.random.default_rng(0)
    requests = {f"1 window, L={length}": rng.uniform(0, 1, size=(1, length)) for length in LATENCY_LENGTHS}
    requests[f"{BATCH} windows, L={BATCH_LENGTH}"] = rng.uniform(0, 1, size=(BATCH, BATCH_LENGTH))
    with tempfile.TemporaryDirectory() as directory:
        impls = {"Predictor": predictor.predict, EXECUTORS: executed.predict if executed else None,
                 "onnxruntime": onnx_call(predictor, directory), "PyTorch": torch_call(params)}
        calls = {name: call for name, call in impls.items() if call is not None}
        for name, call in calls.items():  # same outputs before any timing; warm-up (binds, first runs)
            worst = max(float(np.abs(call(x) - predictor.predict(x)).max()) for x in requests.values())
            print(f"{name}: largest difference to the Predictor {worst:.2e}")
        history = np.sin(np.arange(200) * 0.05) / 2
        for forecaster in forecasters.values():
            forecaster.forecast(history, FORECAST_STEPS)
        samples: Dict[str, Dict[str, List[float]]] = {r: {n: [] for n in calls} for r in requests}
        samples["forecast"] = {n: [] for n in forecasters}
        names = list(calls)
        for r in range(args.rounds):
            order = benchkit.rotated(names, r)
            for request, x in requests.items():
                count = args.calls if x.shape[0] == 1 else max(1, args.calls // 20)
                for name in order:
                    samples[request][name] += time_calls(calls[name], x, count)
            for name, forecaster in forecasters.items():
                samples["forecast"][name] += time_calls(functools.partial(forecaster.forecast, steps=FORECAST_STEPS),
                                                        history, max(1, args.calls // 4))
    return samples


def table(samples: Dict[str, Dict[str, List[float]]]) -> str:
    names = list(next(iter(samples.values())))
    lines = ["| request | " + " | ".join(f"{n} p50 / p99" for n in names) + " | " +
             " | ".join(f"PyTorch / {n}" for n in names if n != "PyTorch" and "PyTorch" in names) + " |"]
    lines.append("|" + "---|" * (len(lines[0].split("|")) - 2))
    for request, by_name in samples.items():
        if request == "forecast":
            continue
        if not request.startswith("1 window"):  # throughput: windows per second, median over the calls
            rate = {n: BATCH / float(np.median(t)) for n, t in by_name.items()}
            cells = [f"{rate[n]:,.0f} windows/s" for n in names]
            ratios = [f"{rate[n] / rate['PyTorch']:.2f}x" for n in names if n != "PyTorch" and "PyTorch" in names]
        else:
            p50 = {n: float(np.percentile(t, 50)) * 1e6 for n, t in by_name.items()}
            cells = [f"{p50[n]:.0f} / {float(np.percentile(by_name[n], 99)) * 1e6:.0f} us" for n in names]
            ratios = [f"{p50['PyTorch'] / p50[n]:.2f}x" for n in names if n != "PyTorch" and "PyTorch" in names]
        lines.append(f"| {request} | " + " | ".join(cells + ratios) + " |")
    lines.append("")
    for name, forecast in samples["forecast"].items():
        how = "" if name == "Predictor" else " through executors"
        lines.append(f"Predictor.forecast{how}, {FORECAST_STEPS} steps of one series (window {FORECAST_WINDOW}): p50 "
                     f"{np.percentile(forecast, 50) * 1e3:.2f} ms, p99 {np.percentile(forecast, 99) * 1e3:.2f} ms")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=benchkit.positive_int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--calls", type=benchkit.positive_int, default=200,
                        help="one-window calls per request, implementation and round (default 200; the 1000-window "
                             "request gets a twentieth, the forecast a quarter)")
    parser.add_argument("--checkpoint", help="time a trained model's weights (default: seeded initial weights)")
    parser.add_argument("--json", help="write the per-call times (seconds) here")
    args = parser.parse_args(argv)
    before = os.getloadavg()
    samples = run(args)
    after = os.getloadavg()
    print(table(samples))
    engine = os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice (the default)")
    print(f"load average before {before[0]:.2f}, after {after[0]:.2f} (1 min; {os.cpu_count()} cores); MXNet engine "
          f"{engine}")
    if args.json:
        benchkit.write_json(args.json, {"samples": samples, "load": [before, after]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
