"""Command line: a checkpointed model as a standard ONNX file.

``sinlstm-export CHECKPOINT_DIR model.onnx [--latest] [--opset 17]`` (or ``python -m sinlstm_sym.cli.export``)
writes the model (the best checkpoint by validation when the run kept one, else the latest) as ONNX:
input ``windows`` (double, batch x length), output ``prediction`` (double, batch x length, or batch for a
``label_mode='last'`` model), a series model's scaling inside the graph, its settings in the metadata.
onnxruntime runs it without MXNet (see ``examples/serve_onnx.py``). Needs the ``onnx`` extra
(``pip install 'sinlstm-sym[onnx]'``). Every argument is checked before the model is loaded; the file is
written to a temporary name and renamed.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from ..core.outputs import check_output_file
from .args import Parser, fail, int_at_least


def _onnx_file(text: str) -> str:
    try:
        check_output_file("the file", text, (".onnx",))
    except (ValueError, TypeError, FileNotFoundError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sinlstm-export``.

    Returns
    -------
    argparse.ArgumentParser
        A parser whose errors are one line and exit with code 2.

    Examples
    --------
    >>> build_parser().parse_args(["run", "model.onnx"]).opset is None  # doctest: +SKIP
    True
    """
    parser = Parser(prog="sinlstm-export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint directory written by fit(checkpoint=DIR), or one ckpt-N in it")
    parser.add_argument("output", metavar="OUT.onnx", type=_onnx_file, help="the ONNX file to write")
    parser.add_argument("--latest", action="store_true",
                        help="export the latest checkpoint, not the best one by validation")
    parser.add_argument("--opset", type=int_at_least(1), default=None, help="ONNX opset (default 17, at least 14)")
    return parser


def _check_before_loading(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 for an output inside the checkpoint being read, a bad opset, or onnx missing."""
    from ..checkpoint import RunDirectory
    from ..infer.onnx_export import MIN_OPSET, require_onnx
    source = Path(args.checkpoint).resolve()
    read = [source, source.parent] if RunDirectory(source).is_checkpoint() else [source]
    out = Path(args.output).resolve()
    inside = next((d for d in read if d in out.parents), None)
    if inside is not None:
        fail(parser, "OUT.onnx", f"{args.output} is inside {inside}, the checkpoint being read; outputs never "
             "overwrite inputs: write it elsewhere")
    try:
        onnx = require_onnx()
    except ImportError as err:
        fail(parser, "OUT.onnx", str(err))
    newest = int(onnx.defs.onnx_opset_version())
    if args.opset is not None and not MIN_OPSET <= args.opset <= newest:
        fail(parser, "--opset", f"expected an opset between {MIN_OPSET} and {newest} (the installed onnx "
             f"{onnx.__version__}), got {args.opset}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``sinlstm-export`` on ``argv`` (default: the process' arguments).

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments, without the program name.

    Returns
    -------
    int
        0 once the file is written (bad arguments exit with code 2 before the model is loaded).

    Raises
    ------
    SystemExit
        With code 2 for a bad argument or a checkpoint that cannot be read (one line on stderr).

    Examples
    --------
    >>> main(["run", "model.onnx"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_before_loading(parser, args)
    logging.basicConfig(level=logging.WARNING)
    from ..infer.predictor import Predictor
    predictor: Any = None
    try:
        predictor = Predictor.load(args.checkpoint, best=not args.latest)
    except (FileNotFoundError, ValueError, TypeError) as err:
        fail(parser, "checkpoint", str(err))
    path = predictor.export_onnx(args.output, opset=args.opset)
    scaling = "" if predictor.scaling is None else f", scaling {tuple(predictor.scaling)} inside"
    print(f"saved {path} (label_mode={predictor.label_mode}, feature={predictor.feature}, hidden_sizes="
          f"{list(predictor.hidden_sizes)}{scaling})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
