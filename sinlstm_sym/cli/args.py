"""argparse value types shared by the command-line tools."""
import argparse
import json
from typing import Any, Dict, List


def int_list(text: str) -> List[int]:
    """'1-9,12,16' -> [1, 2, ..., 9, 12, 16]."""
    values: List[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            values.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ints and ranges such as '1-9,12', got {text!r}") from None
    return values


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
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"learning_rate\": 0.01}}': {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value
