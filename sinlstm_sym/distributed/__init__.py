"""Training on several processes with MXNet's parameter server (``kvstore='dist_sync'`` / ``'dist_async'``).

:mod:`.launcher` starts and supervises a single-machine job (``python -m sinlstm_sym.launch`` or
``python -m sinlstm_sym.distributed``); :mod:`.worker` holds what a worker needs: exit hooks so that a
failing worker ends the job instead of hanging, a kvstore created only under the launcher, rank-prefixed
logging and the final pull of ``dist_async``.
"""
from .launcher import LAUNCHED_ENV  # the function: sinlstm_sym.distributed.launcher.launch
from .worker import RankLogAdapter, create_kvstore, install_exit_hooks, pull_final_params

__all__ = ["LAUNCHED_ENV", "RankLogAdapter", "create_kvstore", "install_exit_hooks",
           "pull_final_params"]
