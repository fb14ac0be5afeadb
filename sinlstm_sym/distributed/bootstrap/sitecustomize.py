"""Run by Python at start-up in a worker the launcher started (its directory is first on ``PYTHONPATH``):
installs the exit hooks (:func:`sinlstm_sym.distributed.install_exit_hooks`), then runs the ``sitecustomize``
it shadows, if there is one."""
import importlib
import os
import sys


def _run_shadowed(here: str) -> None:
    """Import the next ``sitecustomize`` on the path (a site's own), as Python would have without this one."""
    me = sys.modules[__name__]
    path = sys.path[:]
    sys.path[:] = [p for p in path if os.path.abspath(p or os.curdir) != here]
    del sys.modules["sitecustomize"]
    try:
        importlib.import_module("sitecustomize")
    except ModuleNotFoundError as err:
        if err.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = path
        sys.modules["sitecustomize"] = me


def _bootstrap() -> None:
    if os.environ.get("SINLSTM_LAUNCHED") == "1":  # LAUNCHED_ENV; not imported: the package is not loaded yet
        from sinlstm_sym.distributed.worker import install_exit_hooks
        install_exit_hooks()
    _run_shadowed(os.path.dirname(os.path.abspath(__file__)))


if __name__ == "sitecustomize":  # started by Python as a worker's sitecustomize, not imported as a module
    _bootstrap()
