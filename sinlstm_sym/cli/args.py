"""argparse pieces shared by the command-line tools: a parser whose errors are one line, and value types
that refuse a bad value while the command line is read, before anything else happens."""
import argparse
import json
import sys
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple

from ..constants import MAX_LIST_VALUES
from ..core.outputs import PLOT_SUFFIXES, check_output_dir, check_output_file

ERROR_EXIT = 2


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (``prog: error: ...``) and exit with code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(ERROR_EXIT, f"{self.prog}: error: {message} (--help lists the flags)\n")


def fail(parser: argparse.ArgumentParser, flag: str, message: str) -> NoReturn:
    """Refuse ``flag`` with ``message`` (one line, exit code 2)."""
    parser.error(f"argument {flag}: {' '.join(message.split())}")


def int_list(text: str) -> List[int]:
    """'1-9,12,16' -> [1, 2, ..., 9, 12, 16] (every value an int >= 1, at most ``MAX_LIST_VALUES`` of them,
    counted before any range is expanded)."""
    accepted = f"expected ints >= 1 and ranges such as '1-9,12', got {text!r}"
    ranges: List[Tuple[int, int]] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            ranges.append((int(lo), int(hi) if hi else int(lo)))
    except ValueError:
        raise argparse.ArgumentTypeError(accepted) from None
    ranges = [(lo, hi) for lo, hi in ranges if hi >= lo]
    if not ranges or min(lo for lo, _ in ranges) < 1:
        raise argparse.ArgumentTypeError(accepted)
    count = sum(hi - lo + 1 for lo, hi in ranges)
    if count > MAX_LIST_VALUES:
        raise argparse.ArgumentTypeError(f"at most {MAX_LIST_VALUES} values, got {count} in {text!r}")
    return [value for lo, hi in ranges for value in range(lo, hi + 1)]


def float_list(text: str) -> List[float]:
    """'1,2.5,3' -> [1.0, 2.5, 3.0]."""
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def json_dict(text: str) -> Dict[str, Any]:
    """A JSON object such as '{"learning_rate": 0.01}'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"learning_rate\": 0.01}}': {err}") \
            from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def json_dict_or_null(text: str) -> Optional[Dict[str, Any]]:
    """A JSON object, or ``null`` (None)."""
    return None if text.strip() == "null" else json_dict(text)


def int_at_least(minimum: int, maximum: Optional[int] = None) -> Callable[[str], int]:
    """An argparse type: an int >= ``minimum`` (and <= ``maximum`` when given)."""
    expected = f"an int >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    parse.__name__ = expected[3:]
    return parse


def _checked(check: Callable[[str], Any]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            check(text)
        except (ValueError, TypeError, FileNotFoundError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    return parse


plot_file = _checked(lambda text: check_output_file("the file", text, PLOT_SUFFIXES))
json_file = _checked(lambda text: check_output_file("the file", text, (".json",)))
csv_file = _checked(lambda text: check_output_file("the file", text, (".csv",)))
forecast_file = _checked(lambda text: check_output_file("the file", text, (".csv", ".json")))


def needs_matplotlib(parser: argparse.ArgumentParser, flag: str) -> None:
    """Refuse ``flag`` now if matplotlib (the ``plot`` extra) is missing, not after the work."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail(parser, flag, "needs matplotlib: pip install 'sinlstm-sym[plot]'")


def resume_command(argv: List[str]) -> str:
    """The command line that resumes the run started with ``argv``."""
    import shlex
    args = list(argv) + ([] if "--resume" in argv else ["--resume"])
    return " ".join(shlex.quote(a) for a in [sys.argv[0] if sys.argv and sys.argv[0] else "sinlstm-train", *args])


def check_output_flags(parser: argparse.ArgumentParser, checkpoint: Optional[str], plot: Optional[str]) -> None:
    """Refuse now a ``--checkpoint`` directory that cannot be written, or ``--plot`` without matplotlib."""
    if checkpoint is not None:
        try:
            check_output_dir("the directory", checkpoint)
        except (ValueError, TypeError) as err:
            fail(parser, "--checkpoint", str(err))
    if plot:
        needs_matplotlib(parser, "--plot")
