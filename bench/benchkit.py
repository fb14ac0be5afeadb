"""What the benchmark tools share: one measurement per subprocess, the machine's load, JSON output and
PyTorch's copy of the model.

The tools run as scripts (``python bench/TOOL.py``), so this module is imported by its plain name. It
imports only the standard library at module level: a parent process that imports MXNet, torch or numpy
would inflate its children's ``ru_maxrss`` (Linux carries the high-water mark across exec).
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

RESULT_MARK = "@@RESULT@@"
T = TypeVar("T")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, minimum: int) -> int:
    value = int(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def add_load_options(parser: argparse.ArgumentParser, max_other_load: float = 0.3, quiet_wait: float = 20.0,
                     retries: bool = True) -> None:
    """``--max-other-load``, ``--quiet-wait`` (and ``--retries``): waiting for a quiet machine before a
    measurement (and repeating one during which other processes were busy)."""
    repeat = (" and repeat a measurement during which they used more (up to --retries times)" if retries else "")
    parser.add_argument("--max-other-load", type=float, default=max_other_load,
                        help="before each measurement wait (up to --quiet-wait s) until other processes use at most "
                             f"this many cores{repeat}; 'inf' (or a negative value) turns this off "
                             f"(default {max_other_load})")
    parser.add_argument("--quiet-wait", type=float, default=quiet_wait,
                        help=f"max seconds to wait for a quiet machine; 0 never waits (default {quiet_wait:g})")
    if retries:
        parser.add_argument("--retries", type=int, default=2, help="re-runs of a noisy measurement (default 2)")


def load_checked(args: argparse.Namespace) -> bool:
    """Whether ``args`` (of :func:`add_load_options`) ask to wait for quiet and to repeat noisy measurements."""
    return 0 <= args.max_other_load < math.inf


def busy_cpu_seconds() -> Optional[float]:
    """CPU-seconds the whole machine (every process) has spent, from /proc/stat; None where unavailable."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU-seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_quiet(max_load: float, max_wait: float, probe: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes keep at most ``max_load`` cores busy for ``probe`` s.

    Returns the seconds waited; 0 at once when ``max_wait <= 0``, ``max_load`` is infinite or negative, or
    the machine's CPU time cannot be read.
    """
    if max_wait <= 0 or not 0 <= max_load < math.inf:
        return 0.0
    start = time.perf_counter()
    while True:
        before = busy_cpu_seconds()
        if before is None:
            return 0.0
        time.sleep(probe)
        after = busy_cpu_seconds()
        load = ((after or before) - before) / probe
        if load <= max_load or time.perf_counter() - start >= max_wait:
            return time.perf_counter() - start


def emit_result(result: Mapping[str, Any]) -> None:
    """The child's side of :func:`run_child`: its result, as the last line of its standard output."""
    sys.stdout.write("\n" + RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_child(argv: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout: Optional[float] = None,
              cwd: Optional[str] = None) -> Dict[str, Any]:
    """Run one measurement child; return what it passed to :func:`emit_result`, plus how busy the rest of the
    machine was meanwhile.

    Added keys: ``child_wall`` (seconds), ``child_cpu_seconds`` and ``foreign_load`` = (machine busy
    CPU-seconds - the child's) / wall seconds, the average number of cores other processes kept busy
    while the child ran (None where /proc/stat cannot be read).

    Raises
    ------
    SystemExit
        The child failed or printed no result (its output's tail is in the message).
    """
    busy0, kids0, start = busy_cpu_seconds(), children_cpu_seconds(), time.perf_counter()
    proc = subprocess.run(list(argv), env=None if env is None else dict(env), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    busy1, kids1, wall = busy_cpu_seconds(), children_cpu_seconds(), time.perf_counter() - start
    marker = proc.stdout.rfind(RESULT_MARK)
    if proc.returncode != 0 or marker < 0:
        raise SystemExit(f"measurement child {' '.join(argv[1:3])} ... failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    out: Dict[str, Any] = json.loads(proc.stdout[marker + len(RESULT_MARK):].strip())
    own = kids1 - kids0
    out["child_wall"], out["child_cpu_seconds"] = wall, own
    out["foreign_load"] = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - own) / wall
    return out


def peak_rss_mib() -> Tuple[float, float]:
    """(VmHWM of this process's address space, its ``ru_maxrss``), MiB; VmHWM is NaN off Linux."""
    hwm = math.nan
    try:
        with open("/proc/self/status") as fh:
            hwm = next((int(line.split()[1]) / 1024.0 for line in fh if line.startswith("VmHWM:")), math.nan)
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return hwm, maxrss / (2.0 ** 20 if sys.platform == "darwin" else 1024.0)


def torch_version(env: Optional[Mapping[str, str]] = None) -> Tuple[Optional[str], str]:
    """(torch's version, "") if a child process can import torch, else (None, the import error's last line)."""
    proc = subprocess.run([sys.executable, "-c", "import sys, torch; sys.stdout.write(torch.__version__)"],
                          env=None if env is None else dict(env), capture_output=True, text=True)
    if proc.returncode == 0:
        return proc.stdout.strip(), ""
    return None, (proc.stderr.strip().splitlines() or ["torch does not import"])[-1]


def torch_lstm_layers(params: Mapping[str, Any], hidden_sizes: Sequence[int]) -> Any:
    """Stacked ``torch.nn.LSTM`` layers (batch first) holding the library's weights ``lstm{i}_*``.

    torch's gate order (i, f, g, o) is MXNet's, so the weights copy over unchanged. Returns a
    ``torch.nn.ModuleList``; the last layer's hidden state (size 1) is the prediction.
    """
    import numpy as np
    import torch
    sizes = [1] + list(hidden_sizes)
    layers = torch.nn.ModuleList(torch.nn.LSTM(sizes[i], sizes[i + 1], batch_first=True)
                                 for i in range(len(hidden_sizes)))
    with torch.no_grad():
        for i, layer in enumerate(layers):
            for ours, theirs in (("i2h_weight", "weight_ih_l0"), ("h2h_weight", "weight_hh_l0"),
                                 ("i2h_bias", "bias_ih_l0"), ("h2h_bias", "bias_hh_l0")):
                getattr(layer, theirs).copy_(torch.from_numpy(np.asarray(params[f"lstm{i}_{ours}"])))
    return layers


def rotated(items: Sequence[T], shift: int) -> List[T]:
    """``items`` starting at index ``shift`` (modulo its length): who runs first changes round by round."""
    if not items:
        return []
    shift %= len(items)
    return list(items[shift:]) + list(items[:shift])


def write_json(path: str, doc: Any) -> None:
    """Write ``doc`` as indented JSON to ``path`` (through a temporary name, so a reader never sees half)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(partial, target)


def load_average() -> float:
    """The machine's 1-minute load average."""
    return os.getloadavg()[0]
