"""Flip one bit of one byte of each checkpoint file in turn and load (used by tests/unit/checkpoint/test_integrity.py).

``python flip_bytes.py RUN_DIR OUT.json``: every byte of this library's JSON files, the first,
last and eight evenly spaced bytes of MXNet's files; after each flip, ``load_checkpoint`` and
(every seventh byte of the JSON files, every flip of the others) ``Predictor.load``. Writes
one record per flip: the file, the position, the errors (type and message) and how many
times MXNet's array reader was called; the byte is restored after.
"""
import json
import sys
from pathlib import Path

import mxnet as mx

from sinlstm_sym.checkpoint import load_checkpoint
from sinlstm_sym.infer.predictor import Predictor

calls = []
_real = mx.nd.load_frombuffer


def counting_load(data):
    calls.append(len(data))
    return _real(data)


mx.nd.load_frombuffer = counting_load
OURS = ("latest.json", "config.json", "optimizer-state.json")


def outcome(load, run):
    try:
        load(run)
    except Exception as err:  # recorded and judged by the test
        return [type(err).__name__, str(err)]
    return None


if __name__ == "__main__":
    run, out = Path(sys.argv[1]), sys.argv[2]
    ckpt = load_checkpoint(run).path
    calls.clear()
    files = [run / "latest.json"] + sorted(ckpt.iterdir())
    records = []
    for path in files:
        original = path.read_bytes()
        n = len(original)
        positions = range(n) if path.name in OURS else sorted({0, n - 1, *range(0, n, max(1, n // 8))})
        for pos in positions:
            flipped = bytearray(original)
            flipped[pos] ^= 0x01
            path.write_bytes(bytes(flipped))
            del calls[:]
            errors = [outcome(load_checkpoint, run)]
            if pos % 7 == 0 or path.name not in OURS:  # Predictor.load goes through load_checkpoint too
                errors.append(outcome(Predictor.load, run))
            records.append({"file": path.name, "pos": pos, "errors": errors, "mxnet_reads": len(calls)})
            path.write_bytes(original)
    with open(out, "w") as handle:
        json.dump(records, handle)
