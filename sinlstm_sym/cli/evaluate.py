"""``sinlstm-evaluate`` (also ``python -m sinlstm_sym.cli.evaluate``): error per length of a checkpoint.

Prints a table of MSE and max absolute error per length on fresh windows (lengths that had a
training batch marked). --plot OUT.png saves the error per length there and prediction vs label
per step (one window per length) beside it as OUT-steps.png. Every flag and output path is checked
before the model is loaded (an output inside the checkpoint being read is refused, exit 2), and the
output files are written all or none. --list verifies every checkpoint of the run and marks the
damaged ones.

Examples
--------
sinlstm-evaluate run1
sinlstm-evaluate run1/ckpt-00002000 --lengths 1-9,12 --json err.json --csv err.csv
sinlstm-evaluate run1 --plot err.png
sinlstm-evaluate run1 --list
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ..infer.evaluation import evaluate
from ..config.limits import check_evaluation
from ..core.outputs import AtomicOutputs, check_output_file
from ..infer.predictor import Predictor
from .args import Parser, csv_file, fail, int_at_least, int_list, json_file, needs_matplotlib, plot_file


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="sinlstm-evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint directory written by fit(checkpoint=DIR)")
    parser.add_argument("--lengths", type=int_list, default=list(range(1, 21)), help="e.g. '1-20' or '1-9,12,16'")
    parser.add_argument("--num-samples", type=int_at_least(1), default=3000,
                        help="fresh windows per length (default 3000)")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the fresh windows (default 0)")
    parser.add_argument("--plot", metavar="OUT.png", type=plot_file,
                        help="error per length; per-step picture as OUT-steps.png (.png, .pdf or .svg)")
    parser.add_argument("--json", metavar="OUT.json", type=json_file, help="write the rows as JSON")
    parser.add_argument("--csv", metavar="OUT.csv", type=csv_file, help="write the rows as CSV")
    parser.add_argument("--list", action="store_true", help="list the checkpoints of the run and exit")
    return parser


def _steps_path(plot: str) -> Path:
    out = Path(plot)
    return out.with_name(out.stem + "-steps" + out.suffix)


def _refuse_outputs_inside_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 naming the flag when an output would land in the checkpoint being read (or its run directory)."""
    from ..checkpoint import RunDirectory
    source = Path(args.checkpoint).resolve()
    read = [source, source.parent] if RunDirectory(source).is_checkpoint() else [source]
    outputs = [("--json", args.json), ("--csv", args.csv), ("--plot", args.plot),
               ("--plot", _steps_path(args.plot) if args.plot else None)]
    for flag, path in outputs:
        if path is None:
            continue
        out = Path(path).resolve()
        inside = next((d for d in read if out == d or d in out.parents), None)
        if inside is not None:
            fail(parser, flag, f"{path} is inside {inside}, the checkpoint being read; outputs never overwrite "
                 "inputs: write it elsewhere")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _refuse_outputs_inside_inputs(parser, args)
    if args.plot:
        needs_matplotlib(parser, "--plot")
        try:
            check_output_file("the file", _steps_path(args.plot), (Path(args.plot).suffix.lower(),))
        except (ValueError, FileNotFoundError) as err:
            fail(parser, "--plot", str(err))
    try:
        check_evaluation(args.lengths, args.num_samples, lengths_name="--lengths", samples_name="--num-samples")
    except ValueError as err:
        fail(parser, "--lengths/--num-samples", str(err))
    logging.basicConfig(level=logging.WARNING)
    if args.list:
        return _list(parser, args.checkpoint)
    try:
        predictor = Predictor.load(args.checkpoint)
    except (FileNotFoundError, ValueError, TypeError) as err:
        fail(parser, "checkpoint", str(err))
    try:
        check_evaluation(args.lengths, args.num_samples, predictor.hidden_sizes, predictor.cell,
                         predictor.batch_size, lengths_name="--lengths", samples_name="--num-samples")
    except ValueError as err:
        fail(parser, "--lengths/--num-samples", str(err))
    result = evaluate(predictor, args.lengths, num_samples=args.num_samples, seed=args.seed)
    written: List[Path] = []
    with AtomicOutputs() as outputs:
        if args.json:
            result.write_json(outputs.stage(args.json))
            written.append(Path(args.json))
        if args.csv:
            result.write_csv(outputs.stage(args.csv))
            written.append(Path(args.csv))
        if args.plot:
            from ..infer.plotting import plot_error_per_length, plot_predictions
            plot_error_per_length(result.rows, str(outputs.stage(args.plot)))
            plot_predictions(predictor, args.lengths, str(outputs.stage(_steps_path(args.plot))), seed=args.seed)
            written += [Path(args.plot), _steps_path(args.plot)]
    print(result)
    if written:
        print("saved " + ", ".join(map(str, written)))
    return 0


def _list(parser: argparse.ArgumentParser, directory: str) -> int:
    from ..checkpoint import list_checkpoints
    try:
        entries = list_checkpoints(directory)
    except (FileNotFoundError, ValueError) as err:
        fail(parser, "checkpoint", str(err))
    print(f"{'checkpoint':<16} {'epoch':>5} {'batch':>6} {'updates':>8}  latest")
    for entry in entries:
        if entry.damaged is not None:
            print(f"{entry.name:<16} {'-':>5} {'-':>6} {entry.global_batch:>8}  {'yes' if entry.latest else ''}"
                  f"  DAMAGED: {' '.join(entry.damaged.split())}")
            continue
        print(f"{entry.name:<16} {entry.epoch:>5} {entry.batch:>6} {entry.global_batch:>8}  "
              f"{'yes' if entry.latest else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
