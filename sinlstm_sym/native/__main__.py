"""``python -m sinlstm_sym.native --build [--force]``: build the native operator ahead of use and report."""
import argparse
import logging
import sys
import time

from .build import BuildError, build_library, cache_dir, describe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sinlstm_sym.native", description=__doc__)
    parser.add_argument("--build", action="store_true", help="compile the operator into the cache (if needed)")
    parser.add_argument("--force", action="store_true", help="compile even if the cache holds a build")
    parser.add_argument("--load", action="store_true", help="also load it into MXNet (checks the registration)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not (args.build or args.force or args.load):
        parser.print_help()
        return 2
    try:
        result = build_library(force=args.force)
    except BuildError as err:
        print(f"native operator NOT built (cache {cache_dir()}): {err}", file=sys.stderr)
        return 1
    print(describe(result))
    if args.load:
        import mxnet as mx
        start = time.perf_counter()
        mx.library.load(str(result.path), verbose=False)
        print(f"loaded into MXNet {mx.__version__} in {time.perf_counter() - start:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
