"""Command line: error per length of a checkpointed model.

``sinlstm-evaluate DIR`` (or ``python -m sinlstm_sym.cli.evaluate DIR``)
`` [--lengths 1-20] [--plot out.png] [--json out.json] [--csv out.csv]``
prints a table of MSE and max absolute error per length on fresh windows (trained
lengths marked). ``--plot out.png`` saves the error per length there and prediction vs
label per step (one window per length) beside it as ``out-steps.png``.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from .args import int_list
from ..evaluation import evaluate
from ..predictor import Predictor


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="sinlstm-evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint directory written by fit(checkpoint=DIR)")
    parser.add_argument("--lengths", type=int_list, default=list(range(1, 21)), help="e.g. '1-20' or '1-9,12,16'")
    parser.add_argument("--num-samples", type=int, default=3000, help="fresh windows per length (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh windows (default 0)")
    parser.add_argument("--plot", metavar="OUT.png", help="error per length; per-step picture as OUT-steps.png")
    parser.add_argument("--json", metavar="OUT.json", help="write the rows as JSON")
    parser.add_argument("--csv", metavar="OUT.csv", help="write the rows as CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        predictor = Predictor.load(args.checkpoint)
        result = evaluate(predictor, args.lengths, num_samples=args.num_samples, seed=args.seed)
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result)
    if args.json:
        result.write_json(args.json)
    if args.csv:
        result.write_csv(args.csv)
    if args.plot:
        from ..plotting import plot_error_per_length, plot_predictions
        out = Path(args.plot)
        steps = out.with_name(out.stem + "-steps" + out.suffix)
        plot_error_per_length(result.rows, str(out))
        plot_predictions(predictor, args.lengths, str(steps), seed=args.seed)
        print(f"saved {out} and {steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
