#!/usr/bin/env python
"""Serve an exported model with onnxruntime and numpy alone (no MXNet, no sinlstm_sym).

    sinlstm-export RUN_DIR model.onnx
    python examples/serve_onnx.py model.onnx                    # a sine model: predicts sin(t) / 2
    python examples/serve_onnx.py model.onnx --values 3,5,8,13  # a series model: one window of past values
"""
import argparse
import sys

import numpy as np
import onnxruntime as ort


def load(path):
    """An onnxruntime session on the exported file (one thread: lowest latency per request)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def predict(session, windows):
    """Outputs for windows (N, L): (N, L) for a 'sequence' model, (N,) for a 'last' model."""
    return session.run(None, {"windows": np.asarray(windows, dtype=np.float64)})[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the .onnx file written by sinlstm-export")
    parser.add_argument("--values", help="one window of comma-separated values (default: a sine window)")
    args = parser.parse_args(argv)
    session = load(args.model)
    meta = session.get_modelmeta().custom_metadata_map  # label_mode, feature, scaling, step, ...
    if args.values:
        windows = np.array([[float(v) for v in args.values.split(",")]])
    else:  # two sine windows of 20 steps from t0 = 0.1 and 0.5: time stamps or values, as the model was trained
        times = np.array([[0.1], [0.5]]) + float(meta["step"]) * np.arange(20)
        windows = times if meta["feature"] == "time" else np.sin(times) / 2
    out = predict(session, windows)
    print(f"label_mode={meta['label_mode']} feature={meta['feature']} windows {windows.shape} -> outputs {out.shape}")
    print(np.array2string(out, precision=4, max_line_width=110))
    return 0


if __name__ == "__main__":
    sys.exit(main())
