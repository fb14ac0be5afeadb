"""Turn the user's ``ctx`` argument into a list of ``mx.Context``: its form when a configuration is made,
the machine's devices only when something is trained or predicted on them."""
from typing import List, Sequence, Tuple, Union

import mxnet as mx

from .checks import check_condition
from ..constants import MAX_DEVICE_ID

ContextSpec = Union[None, str, mx.Context, Sequence[Union[str, mx.Context]]]
_ACCEPTED = "None, 'cpu', 'cpu:0,1', 'gpu', 'gpu:0,1', an mx.Context or a list of them"


def _parse_string(spec: str) -> List[mx.Context]:
    text = spec.strip().lower()
    if text.endswith(")") and "(" in text:  # str(mx.Context), e.g. 'cpu(0)', as version 0.1 stored it
        text = text[:-1].replace("(", ":", 1)
    kind, _, ids = text.partition(":")
    check_condition(kind in ("cpu", "gpu"), f"ctx must be {_ACCEPTED}, got {spec!r}")
    if not ids:
        return [mx.Context(kind, 0)]
    try:
        numbers = [int(i) for i in ids.split(",")]
    except ValueError:
        raise ValueError(f"ctx device ids must be comma-separated ints such as 'gpu:0,1', got {spec!r}") from None
    check_condition(all(n >= 0 for n in numbers) and len(set(numbers)) == len(numbers),
                    f"ctx device ids must be distinct non-negative ints, got {spec!r}")
    check_condition(max(numbers) <= MAX_DEVICE_ID, f"ctx device ids must be <= {MAX_DEVICE_ID}, got {spec!r}")
    return [mx.Context(kind, n) for n in numbers]


def _one(spec: object) -> List[mx.Context]:
    if isinstance(spec, mx.Context):
        check_condition(0 <= spec.device_id <= MAX_DEVICE_ID,
                        f"ctx device ids must be in [0, {MAX_DEVICE_ID}], got {spec!r}")
        return [spec]
    if isinstance(spec, str):
        return _parse_string(spec)
    raise TypeError(f"ctx must be {_ACCEPTED}, got {spec!r} ({type(spec).__name__})")


def parse_contexts(ctx: ContextSpec) -> List[mx.Context]:
    """The contexts ``ctx`` names, checked for form only: no device is probed (a configuration read on
    another machine, e.g. a GPU-trained checkpoint on a CPU-only host, stays readable)."""
    if ctx is None:
        contexts = [mx.cpu()]
    elif isinstance(ctx, (str, mx.Context)):
        contexts = _one(ctx)
    elif isinstance(ctx, (list, tuple)):
        check_condition(len(ctx) > 0, f"ctx must not be an empty list; accepted: {_ACCEPTED}")
        contexts = [c for item in ctx for c in _one(item)]
    else:
        raise TypeError(f"ctx must be {_ACCEPTED}, got {ctx!r} ({type(ctx).__name__})")
    check_condition(len(set(map(str, contexts))) == len(contexts), f"ctx lists a device twice: {contexts}")
    return contexts


def context_strings(ctx: ContextSpec) -> Tuple[str, ...]:
    """``ctx`` as ``'cpu:0'``-style strings (what a configuration stores), checked for form only."""
    return tuple(f"{c.device_type}:{c.device_id}" for c in parse_contexts(ctx))


def resolve_contexts(ctx: ContextSpec) -> List[mx.Context]:
    """The contexts to train or predict on, checked against this machine: raises before binding if a GPU
    is asked for and absent."""
    contexts = parse_contexts(ctx)
    gpus = [c for c in contexts if c.device_type == "gpu"]
    if gpus:
        available = mx.context.num_gpus()
        check_condition(available > 0, f"ctx asks for {gpus} but MXNet sees no GPU (mx.context.num_gpus() == 0): "
                        "install the GPU build with pip install '.[cu112]' (instead of '.[cpu]') on a host "
                        "with CUDA 11.2, cuDNN 8 and NCCL, or use ctx='cpu'")
        missing = [c for c in gpus if c.device_id >= available]
        check_condition(not missing, f"ctx asks for {missing} but only {available} GPU(s) are visible")
    return contexts
