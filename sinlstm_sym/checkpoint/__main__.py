"""``python -m sinlstm_sym.checkpoint convert OLD_DIR NEW_DIR --allow-pickle``: format 1 to format 2."""
import argparse
import logging
import sys
from typing import List, Optional

from .legacy import convert_checkpoint


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m sinlstm_sym.checkpoint convert OLD_DIR NEW_DIR --allow-pickle``."""
    parser = argparse.ArgumentParser(prog="python -m sinlstm_sym.checkpoint",
                                     description="Convert a format-1 (sinlstm-sym 0.1) checkpoint to format 2.")
    commands = parser.add_subparsers(dest="command", required=True)
    convert = commands.add_parser("convert", help="rewrite OLD_DIR's latest checkpoint without pickles in NEW_DIR")
    convert.add_argument("old_dir")
    convert.add_argument("new_dir")
    convert.add_argument("--allow-pickle", action="store_true",
                         help="required: the old optimizer state is a pickle, which can run any code; "
                              "give it only for checkpoints you trust")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        final = convert_checkpoint(args.old_dir, args.new_dir, allow_pickle=args.allow_pickle)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
