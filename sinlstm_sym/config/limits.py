"""Upper bounds on sizes, derived from the memory available, checked before anything is allocated.

Each estimate is a documented figure per window, step and hidden unit (see the constants in
:mod:`sinlstm_sym.constants`); it is computed in time proportional to the number of lengths
asked for, never to their values. A request whose estimate exceeds ``MEMORY_SHARE`` of the
memory available now is refused with a ``ValueError`` that names the setting and the figure.
"""
import os
from typing import Optional, Sequence

from ..core.checks import check_condition
from ..constants import (BUCKET_OVERHEAD_BYTES, DEFAULT_CELL, EVAL_BYTES_PER_ROW_STEP, EVAL_BYTES_PER_WINDOW_STEP,
                        FALLBACK_MEMORY_BYTES, MEMORY_SHARE, PARAMETER_COPIES, PREDICT_BYTES_PER_UNIT_STEP,
                        PREDICT_CHUNK_BYTES, TRAIN_BYTES_PER_UNIT_STEP)
from ..recurrence.cells import requested_bytes_per_layer_step
from ..recurrence.params import parameter_count


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``, else free pages, else a fixed assumption)."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return FALLBACK_MEMORY_BYTES


def memory_ceiling() -> int:
    """The most memory one request may be estimated to need."""
    return int(available_memory() * MEMORY_SHARE)


def format_bytes(count: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_memory(what: str, needed: int, ceiling: Optional[int] = None) -> None:
    """Refuse ``what`` (a sentence naming the setting) if ``needed`` bytes exceed the ceiling."""
    limit = memory_ceiling() if ceiling is None else ceiling
    check_condition(needed <= limit, f"{what} needs about {format_bytes(needed)} of memory, more than the "
                    f"{format_bytes(limit)} allowed ({MEMORY_SHARE:.0%} of the memory available now)")


def units(hidden_sizes: Sequence[int]) -> int:
    """Hidden units of the stack plus the input and the output."""
    return sum(hidden_sizes) + 2


def per_step_bytes(cell: str) -> int:
    """Memory per step and layer that does not depend on the number of windows (graph or operator state), as
    the cell declares it; for ``'auto'`` (or a cell that may fall back) that of the most demanding candidate."""
    return requested_bytes_per_layer_step(cell)


def predict_bytes(rows: int, length: int, hidden_sizes: Sequence[int], cell: str) -> int:
    """Estimated memory of a forward pass over ``rows`` windows of ``length`` steps."""
    graph = per_step_bytes(cell) * len(hidden_sizes) * length
    return rows * length * units(hidden_sizes) * PREDICT_BYTES_PER_UNIT_STEP + graph


def chunk_rows(length: int, hidden_sizes: Sequence[int], batch_size: int) -> int:
    """Windows per prediction chunk of ``length`` steps: ``batch_size`` unless that exceeds the chunk budget."""
    per_window = length * units(hidden_sizes) * PREDICT_BYTES_PER_UNIT_STEP
    return max(1, min(batch_size, PREDICT_CHUNK_BYTES // per_window))


def training_bytes(buckets: Sequence[int], batch_size: int, hidden_sizes: Sequence[int], cell: str) -> int:
    """Estimated memory of binding one executor per bucket (they share the longest bucket's activations), with
    the parameters, their gradients and two optimizer states."""
    longest = max(buckets)
    graph = per_step_bytes(cell) * len(hidden_sizes) * sum(buckets)
    return (batch_size * longest * units(hidden_sizes) * TRAIN_BYTES_PER_UNIT_STEP
            + BUCKET_OVERHEAD_BYTES * len(buckets) + graph + PARAMETER_COPIES * 4 * parameter_count(hidden_sizes))


def check_training(buckets: Sequence[int], batch_size: int, hidden_sizes: Sequence[int], cell: str,
                   buckets_name: str = "buckets") -> None:
    """Refuse a training whose buckets, batch and model would not fit in memory."""
    check_memory(f"{buckets_name} (longest {max(buckets)}, {len(buckets)} lengths) with batch_size={batch_size} and "
                 f"hidden_sizes={list(hidden_sizes)}", training_bytes(buckets, batch_size, hidden_sizes, cell))


def evaluation_bytes(lengths: Sequence[int], num_samples: int, hidden_sizes: Optional[Sequence[int]] = None,
                     cell: str = DEFAULT_CELL, batch_size: int = 1024) -> int:
    """Estimated memory of an error table: its rows, one length's windows at a time and (given the model's
    ``hidden_sizes``) one prediction chunk of the longest length."""
    longest = max(lengths)
    needed = EVAL_BYTES_PER_ROW_STEP * sum(lengths) + EVAL_BYTES_PER_WINDOW_STEP * num_samples * longest
    if hidden_sizes is not None:
        needed += predict_bytes(chunk_rows(longest, hidden_sizes, batch_size), longest, hidden_sizes, cell)
    return needed


def check_evaluation(lengths: Sequence[int], num_samples: int, hidden_sizes: Optional[Sequence[int]] = None,
                     cell: str = DEFAULT_CELL, batch_size: int = 1024, lengths_name: str = "lengths",
                     samples_name: str = "num_samples") -> None:
    """Refuse an error table of ``lengths`` x ``num_samples`` windows that would not fit in memory."""
    check_memory(f"{lengths_name} (longest {max(lengths)}, {len(lengths)} lengths) with {samples_name} "
                 f"{num_samples}", evaluation_bytes(lengths, num_samples, hidden_sizes, cell, batch_size))


def check_validation(lengths: Sequence[int], num_samples: int, batch_size: int, hidden_sizes: Sequence[int],
                     cell: str) -> None:
    """Refuse a held-out set that would not fit in memory: its windows are kept (float32 inputs and labels) and
    each length is scored through an executor of the training module."""
    needed = 8 * num_samples * sum(lengths) + training_bytes(lengths, batch_size, hidden_sizes, cell)
    check_memory(f"validation_lengths (longest {max(lengths)}, {len(lengths)} lengths) with validation_samples="
                 f"{num_samples}, batch_size={batch_size} and hidden_sizes={list(hidden_sizes)}", needed)
