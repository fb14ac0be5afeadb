"""Accuracy figures quoted in docs/results.md: per-length error, Gluon parity, forecast error.

Usage: python bench/accuracy_figures.py [--checkpoint DIR]
"""
import argparse
import logging
import tempfile

import numpy as np

from sinlstm_sym import fit
from sinlstm_sym.infer.evaluation import evaluate
from sinlstm_sym.reference.gluon import build_gluon_model, copy_params_to_gluon, gluon_predict
from sinlstm_sym.infer.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None, help="where to keep the default model (default: a temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    directory = args.checkpoint or tempfile.mkdtemp(prefix="sinlstm-figures-")
    result = fit(seed=0, log_every=1000, checkpoint=directory)  # the example's defaults
    print(f"default model (checkpoint {directory}): error per length, 3000 fresh windows, seed 0")
    print(evaluate(directory, range(1, 21), num_samples=3000, seed=0))

    net = build_gluon_model()
    copy_params_to_gluon(result.arg_params(), net)
    for cell in ("fused", "unrolled"):
        rng = np.random.default_rng(0)
        predictor = Predictor(result.arg_params(), cell=cell)
        worst = max(float(np.abs(gluon_predict(net, x) - predictor.predict(x)).max())
                    for x in (rng.uniform(0, 1.2, size=(500, length)) for length in range(1, 13)))
        print(f"parity, Gluon vs symbolic ({cell}), lengths 1..12, 500 windows each: max abs diff {worst:.2e}")

    fixed = fit(seed=0, buckets=[9], label_mode="last", log_every=1000).predictor(trained_lengths=[9])
    print("fixed 9-step model (last label), error on other lengths:")
    print(evaluate(fixed, [1, 5, 9, 12], num_samples=3000, seed=0))

    value = fit(seed=0, feature="value", log_every=1000).predictor(trained_lengths=range(1, 10))
    t0 = np.random.default_rng(7).uniform(0.0, 0.5, size=1000)
    history = np.sin(t0[:, None] + 0.01 * np.arange(9)) / 2
    truth = np.sin(t0[:, None] + 0.01 * np.arange(9, 59)) / 2
    error = np.abs(value.forecast(history, 50) - truth)
    print(f"forecast (feature='value'), 1000 histories of 9 values: abs error one step ahead mean "
          f"{error[:, 0].mean():.4f} max {error[:, 0].max():.4f}; after 50 steps mean {error[:, -1].mean():.4f} "
          f"max {error[:, -1].max():.4f}")


if __name__ == "__main__":
    main()
