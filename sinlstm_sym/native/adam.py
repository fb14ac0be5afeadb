"""MXNet's Adam, all parameters of one device updated by one native operator call.

:class:`FusedAdam` is :class:`mx.optimizer.Adam` (same arguments, states, update counts and
learning-rate schedule) whose updater hands it every parameter at once; it computes each
parameter's bias-corrected learning rate as Adam does and updates all of them in one call of the
native ``sinlstm_adam_update`` operator, which applies MXNet 1.9.1's ``adam_update`` arithmetic
element for element (bit-identical results). Parameters the operator does not take (not float32,
not dense, not on a CPU, or the operator not loaded) are updated by Adam's own code.
"""
import math
from typing import Any, Dict, List, Sequence, Tuple

import mxnet as mx
import numpy as np

from .build import ADAM_OP_NAME

__all__ = ["FusedAdam", "MAX_FUSED_PARAMETERS"]

MAX_FUSED_PARAMETERS = 1024  # parameters per operator call (the updater's aggregate_num)


class FusedAdam(mx.optimizer.Adam):
    """:class:`mx.optimizer.Adam` with one native operator call per update for all parameters of a device.

    A checkpoint records its state as Adam's (``state_name``): the two resume into each other.
    """

    state_name = "Adam"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aggregate_num = MAX_FUSED_PARAMETERS  # MXNet's Updater then passes lists of parameters
        self._fusable: Dict[Tuple[int, ...], bool] = {}  # by the arrays' handles: checked once per set

    def update_multi_precision(self, index: Any, weight: Any, grad: Any, state: Any) -> None:
        if not isinstance(index, (list, tuple)):
            super().update_multi_precision(index, weight, grad, state)
            return
        operator = getattr(mx.nd, ADAM_OP_NAME, None)
        if operator is None or not self._takes(weight, grad, state):
            for i, w, g, s in zip(index, weight, grad, state):
                super().update_multi_precision(i, w, g, s)
            return
        indices = list(index)
        # as Adam.update does for each index in turn: count, then learning rate and weight decay
        self._update_count(indices)
        lrs: List[float] = self._get_lrs(indices)
        wds: List[float] = self._get_wds(indices)
        for k, i in enumerate(indices):
            t = self._index_update_count[i]
            coef1 = 1. - self.beta1 ** t
            coef2 = 1. - self.beta2 ** t
            lrs[k] *= math.sqrt(coef2) / coef1
        kwargs = {"beta1": self.beta1, "beta2": self.beta2, "epsilon": self.epsilon,
                  "rescale_grad": self.rescale_grad}
        if self.clip_gradient:
            kwargs["clip_gradient"] = self.clip_gradient
        means = [s[0] for s in state]
        variances = [s[1] for s in state]
        # str() of each value, as MXNet's generated adam_update passes its arguments
        operator(*weight, *grad, *means, *variances, out=list(weight), lrs=",".join(str(lr) for lr in lrs),
                 wds=",".join(str(wd) for wd in wds), **kwargs)

    def _takes(self, weights: Sequence[Any], grads: Sequence[Any], states: Sequence[Any]) -> bool:
        """Whether the operator takes all these parameters; asked of MXNet once per set of arrays."""
        arrays = [*weights, *grads, *(part for s in states if isinstance(s, tuple) for part in s)]
        key = tuple(a.handle.value if isinstance(a, mx.nd.NDArray) else id(a) for a in arrays)
        if key not in self._fusable:
            self._fusable[key] = all(_fusable(w, g, s) for w, g, s in zip(weights, grads, states))
        return self._fusable[key]


def _fusable(weight: Any, grad: Any, state: Any) -> bool:
    """Whether the native operator takes this parameter (else Adam's own update does)."""
    arrays: Sequence[Any] = (weight, grad, *state) if isinstance(state, tuple) else ()
    return len(arrays) == 4 and all(
        isinstance(a, mx.nd.NDArray) and a.stype == "default" and a.dtype == np.float32
        and a.context.device_type == "cpu" for a in arrays)
