"""Per-batch loss sums kept on the device until a log point, at one operator per batch.

:func:`batch_square_sum` costs four operators per batch (difference, square, mean over steps,
sum over windows). :class:`PendingSquareSums` runs only the difference per batch and the other
three once for a stack of batches of one shape: the mean of each row and the sum of each batch
reduce the same elements in the same order as for one batch alone, so the values are the same
float32 numbers, bit for bit.
"""
from typing import Dict, List, Tuple

import mxnet as mx
import numpy as np

from ..core.checks import check_int
from ..constants import LOSS_CONDENSE_BATCHES

__all__ = ["batch_loss_sum", "batch_square_sum", "PendingSquareSums"]


def _rows(output: mx.nd.NDArray, label: mx.nd.NDArray, pad: int) -> Tuple[mx.nd.NDArray, mx.nd.NDArray]:
    """``output`` and ``label`` without the padding rows, the label on the output's device."""
    if pad:
        rows = output.shape[0] - pad
        output, label = output[:rows], label[:rows]
    if label.context != output.context:
        label = label.as_in_context(output.context)
    return output, label


def batch_loss_sum(output: mx.nd.NDArray, label: mx.nd.NDArray, pad: int = 0) -> mx.nd.NDArray:
    """``sum over windows of 0.5 * mean over steps (pred - label)^2`` on the device, padding rows left out."""
    return 0.5 * batch_square_sum(output, label, pad)


def batch_square_sum(output: mx.nd.NDArray, label: mx.nd.NDArray, pad: int = 0) -> mx.nd.NDArray:
    """``sum over windows of mean over steps (pred - label)^2`` on the device (twice
    :func:`batch_loss_sum`, exactly: the factor 0.5 is a power of two), padding rows left out; four
    operators when there is no padding and the label is on the output's device."""
    output, label = _rows(output, label, pad)
    return mx.nd.mean(mx.nd.square(output - label), axis=1).sum()


class PendingSquareSums:
    """:func:`batch_square_sum` of every batch added, read in one device sync by :meth:`read`.

    :meth:`add` runs one operator (``output - label``; the output array may be overwritten by the
    next forward pass afterwards). Every ``condense_every`` batches, and at :meth:`read`, the held
    differences are reduced per shape, so at most ``condense_every`` of them are held.
    """

    def __init__(self, condense_every: int = LOSS_CONDENSE_BATCHES) -> None:
        self.condense_every = check_int("condense_every", condense_every, minimum=1)
        self._diffs: List[mx.nd.NDArray] = []  # differences of the batches not yet reduced
        self._parts: List[Tuple[List[int], mx.nd.NDArray]] = []  # (batch positions, their sums) reduced
        self._count = 0  # batches added since the last read

    def __len__(self) -> int:
        return self._count

    def add(self, output: mx.nd.NDArray, label: mx.nd.NDArray, pad: int = 0) -> None:
        """Hold ``batch_square_sum(output, label, pad)`` (as an unreduced difference for now)."""
        output, label = _rows(output, label, pad)
        self._diffs.append(output - label)
        self._count += 1
        if len(self._diffs) >= self.condense_every:
            self._condense()

    def _condense(self) -> None:
        """Reduce the held differences: per shape, the square, mean over steps and per-batch sum of their stack."""
        first = self._count - len(self._diffs)  # position of the first held difference
        groups: Dict[Tuple[int, ...], List[int]] = {}
        for i, diff in enumerate(self._diffs):
            groups.setdefault(diff.shape, []).append(i)
        for shape, members in groups.items():
            stack = (self._diffs[members[0]] if len(members) == 1
                     else mx.nd.concat(*[self._diffs[i] for i in members], dim=0))
            means = mx.nd.mean(mx.nd.square(stack), axis=1)  # (batches * windows,)
            sums = means.reshape((len(members), shape[0])).sum(axis=1)
            self._parts.append(([first + i for i in members], sums))
        self._diffs = []

    def read(self) -> np.ndarray:
        """The sums of the batches added since the last read, in the order added (float32; one device sync)."""
        self._condense()
        if not self._parts:
            return np.zeros(0, dtype=np.float32)
        values = mx.nd.concat(*[sums for _, sums in self._parts], dim=0).asnumpy()
        order = np.concatenate([np.asarray(positions) for positions, _ in self._parts])
        out = np.empty(self._count, dtype=values.dtype)
        out[order] = values
        self._parts, self._count = [], 0
        return out
