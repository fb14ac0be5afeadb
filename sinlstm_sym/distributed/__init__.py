"""Distributed training glue: the ps-lite launcher, worker exit hooks, rank logging, the final pull."""
import logging
from typing import Any, MutableMapping, Tuple

import mxnet as mx

from .launch import LAUNCHED_ENV, install_worker_excepthook

__all__ = ["LAUNCHED_ENV", "RankLogAdapter", "create_kvstore", "install_worker_excepthook",
           "pull_final_params"]


class RankLogAdapter(logging.LoggerAdapter):
    """Prefix every message with the worker's rank: ``[worker r/n] ...``."""

    def __init__(self, logger: logging.Logger, rank: int, num_workers: int) -> None:
        super().__init__(logger, {"rank": rank, "num_workers": num_workers})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> Tuple[Any, MutableMapping[str, Any]]:
        extra: Any = self.extra
        return f"[worker {extra['rank']}/{extra['num_workers']}] {msg}", kwargs


def create_kvstore(name: str) -> mx.kv.KVStore:
    """A distributed kvstore; under the launcher an uncaught error then ends this worker instead of hanging."""
    install_worker_excepthook()
    return mx.kv.create(name)


def pull_final_params(module: mx.mod.BucketingModule, kv: mx.kv.KVStore) -> None:
    """After ``dist_async`` training: wait for every worker's last push, then pull the servers' weights."""
    mx.nd.waitall()  # this worker's pushes are engine operations: let them all leave before the barrier
    kv._barrier()  # noqa: SLF001 - MXNet 1.9.1 has no public barrier
    arg_params, aux_params = module.get_params()
    for name, value in arg_params.items():
        kv.pull(name, out=value)
    module.set_params(arg_params, aux_params)
