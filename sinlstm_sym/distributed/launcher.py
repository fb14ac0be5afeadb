"""Single-machine launcher for MXNet's parameter-server kvstore (``dist_sync`` / ``dist_async``).

``python -m sinlstm_sym.launch -n 2 -s 1 -- python train.py`` starts a ps-lite scheduler, ``-s`` servers and
``-n`` workers (each one runs the command) on this machine, all bound to ``--host`` (default: loopback only),
and supervises them. It replaces ``python -m mxnet.tools.launch --launcher local``, whose tracker calls
``Thread.isAlive()`` (removed in Python 3.9), crashes and leaves the scheduler running.

Every process gets ``DMLC_ROLE`` (``scheduler``, ``server`` or ``worker``), ``DMLC_PS_ROOT_URI`` and
``DMLC_PS_ROOT_PORT`` (the scheduler's address), ``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER`` and
``DMLC_NODE_HOST`` (the address servers and workers bind to; without it they bind to a network interface).
Inherited ``DMLC_*`` and ``PORT`` variables are dropped: ps-lite reads ``PORT`` as a node's port. Workers also
get ``SINLSTM_LAUNCHED=1``, and everyone ``MXNET_SUBGRAPH_VERBOSE=0`` unless it is set. Scheduler and servers
are ``python -c "import mxnet"``: MXNet's package runs the ps-lite node at import time when ``DMLC_ROLE`` is
``scheduler`` or ``server``, and the process exits 0 once every worker has closed its kvstore (workers may
still run after that). Before that import they install a ``sys.unraisablehook``
(:data:`sinlstm_sym.core.callback_errors.SERVER_NODE_CODE`): a server runs the optimizer's update, which MXNet calls
from C, so an exception there would only be printed; it ends the server with code 1 instead, hence the job. A
worker's rank is ``kv.rank``, assigned by the scheduler, not the launch order.

ps-lite detects no failure: a dead node leaves the others waiting forever. So the launcher ends the whole
job (SIGTERM to every process group, SIGKILL 2 s later) as soon as any process exits non-zero or is killed,
and returns that exit code (``128 + N`` for signal ``N``); on ``timeout`` it returns 124; on SIGINT, SIGTERM
or SIGHUP it returns ``128 + N``. If the launcher itself is killed, the kernel kills its children (Linux).

A worker that fails would leave the others waiting in MXNet's shutdown barrier, and wait there itself.
The launcher starts every worker with ``SINLSTM_LAUNCHED=1`` and its bootstrap first on ``PYTHONPATH``
(:func:`worker_environment`), whose ``sitecustomize`` installs exit hooks when the worker's Python starts
(:func:`sinlstm_sym.distributed.install_exit_hooks`; importing sinlstm_sym changes nothing): an uncaught
exception in any thread ends the worker with code 1, ``sys.exit(n)`` with ``n`` non-zero with code ``n``,
without entering that barrier. Python exposes no hook for a bare ``raise SystemExit(n)`` or ``exit(n)``: such
a worker still waits, and only ``timeout`` ends the job. A worker whose command replaces ``PYTHONPATH`` calls
``install_exit_hooks()`` itself (``fit`` does when it creates a ``dist_*`` kvstore).

Several machines (documented, not tested here): start the same processes on each host by hand, through
ssh or a cluster scheduler, with ``DMLC_PS_ROOT_URI`` = the scheduler host's address as the other hosts
reach it, ``DMLC_PS_ROOT_PORT`` = a free port there, ``DMLC_NUM_SERVER`` / ``DMLC_NUM_WORKER`` = the totals over
all hosts and ``DMLC_NODE_HOST`` = the address of the host the process runs on; then one
``DMLC_ROLE=scheduler python -c "import mxnet"`` on the scheduler host, ``DMLC_ROLE=server python -c "import
mxnet"`` per server (with ``SERVER_NODE_CODE`` in place of ``import mxnet`` to fail on an updater exception) and
``DMLC_ROLE=worker SINLSTM_LAUNCHED=1 python train.py`` per worker. Stopping every
process when one fails is then up to whoever started them.
"""
import argparse
import ctypes
import resource
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping as MappingABC, Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..core.callback_errors import SERVER_NODE_CODE
from ..core.checks import SettingValueError, check_condition, check_float, check_int, naming, settings_of
from ..config.limits import available_memory, format_bytes
from ..constants import MEMORY_SHARE
from .bootstrap import BOOTSTRAP_DIR

logger = logging.getLogger(__name__)

LAUNCHED_ENV = "SINLSTM_LAUNCHED"
TIMEOUT_EXIT_CODE = 124
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
SHUTDOWN_GRACE = 3.0  # seconds scheduler and servers get to exit by themselves once every worker succeeded
SCHEDULER_START_TIMEOUT = 60.0  # seconds for the scheduler to listen on its port
_POLL = 0.05
_MANAGED_ENV = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER",
                "DMLC_NODE_HOST", "DMLC_RANK", "PORT", LAUNCHED_ENV)
_PR_SET_PDEATHSIG = 1
# What one machine holds: every process of a job (scheduler, servers, workers) may import MXNet (about 190 MiB
# resident each, measured with `python -c "import mxnet"`) and run its threads.
PROCESSES_PER_CPU = 16
NODE_MEMORY_BYTES = 200 << 20
NODE_TASKS = 16  # threads an MXNet process may start: RLIMIT_NPROC counts them
_FLAGS = {"num_workers": "-n/--num-workers", "num_servers": "-s/--num-servers", "timeout": "--timeout",
          "port": "--port", "host": "--host", "command": "COMMAND"}
_HANDLED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


# --- argument checks -----------------------------------------------------------------------------------

def _check_command(command: Any, path: Optional[str]) -> List[str]:
    check_condition(isinstance(command, SequenceABC) and not isinstance(command, (str, bytes)),
                    f"command must be a list of strings such as ['python', 'train.py'], got {command!r}", TypeError)
    check_condition(len(command) > 0, "command must not be empty: give the worker command, e.g. ['python', 'x.py']")
    for i, item in enumerate(command):
        check_condition(isinstance(item, (str, os.PathLike)),
                        f"command must hold only strings, got {item!r} ({type(item).__name__}) at command[{i}]",
                        TypeError)
    argv = [os.fspath(item) for item in command]
    check_condition(all(isinstance(a, str) for a in argv), f"command must hold only str paths, got {command!r}",
                    TypeError)
    check_condition(shutil.which(argv[0], path=path) is not None,
                    f"command[0] must be an executable program, {argv[0]!r} is not one (searched PATH if no '/')")
    return argv


def _check_host(host: Any) -> str:
    """The IPv4 address ``host`` names; ps-lite binds to it, so it must be one of this machine's."""
    check_condition(isinstance(host, str), f"host must be a str such as '127.0.0.1', got {host!r}", TypeError)
    check_condition(host.strip() != "", "host must not be empty; use '127.0.0.1' for loopback")
    try:
        address = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
    except (OSError, UnicodeError) as err:
        raise ValueError(f"host must be an IPv4 address or a name that resolves to one, got {host!r} ({err})") from None
    check_condition(address != "0.0.0.0", f"host must be one address of this machine, not every one ({host!r})")
    return str(address)


def max_processes() -> Tuple[int, str]:
    """(the most processes a job may start on this machine, how that figure comes about): ``PROCESSES_PER_CPU``
    per CPU core, the memory available (``MEMORY_SHARE`` of it, ``NODE_MEMORY_BYTES`` per process) and the
    soft ``RLIMIT_NPROC`` (``NODE_TASKS`` threads per process), whichever is smallest."""
    cpus = os.cpu_count() or 1
    memory = available_memory()
    caps = [(PROCESSES_PER_CPU * cpus, f"{PROCESSES_PER_CPU} per CPU core, {cpus} cores"),
            (int(memory * MEMORY_SHARE) // NODE_MEMORY_BYTES,
             f"{MEMORY_SHARE:.0%} of the {format_bytes(memory)} of memory available, about "
             f"{format_bytes(NODE_MEMORY_BYTES)} per MXNet process")]
    try:
        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    except (AttributeError, ValueError, OSError):
        soft = resource.RLIM_INFINITY
    if soft != resource.RLIM_INFINITY:
        caps.append((soft // NODE_TASKS, f"RLIMIT_NPROC {soft}, {NODE_TASKS} threads per process"))
    cap, _ = min(caps)
    return max(cap, 3), "; ".join(f"{n} by {why}" for n, why in caps)


def _check_size(workers: int, servers: int) -> None:
    """Refuse a job of more processes than :func:`max_processes` allows, before anything starts."""
    total = workers + servers + 1
    cap, why = max_processes()
    if total > cap:
        raise SettingValueError(f"num_workers={workers} and num_servers={servers} make {total} processes with the "
                                f"scheduler, more than this machine holds: at most {cap} ({why})",
                                ("num_workers", "num_servers"))


def _named(setting: str, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``check(*args, **kwargs)``, its ``ValueError``/``TypeError`` naming ``setting`` (the command line's flag)."""
    with naming(setting):
        return check(*args, **kwargs)


def _check_port(port: Any) -> int:
    port = check_int("port", port, minimum=1)
    check_condition(port <= 65535, f"port must be <= 65535, got {port}")
    return port


def _bind_port(address: str, port: int, host: str) -> int:
    """Bind and release ``address:port`` (0: any free port); raise ``ValueError`` if that fails."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as err:
            if port == 0:
                raise ValueError(f"host must be an address of this machine, cannot bind to {host!r} "
                                 f"({address}): {err}") from None
            raise ValueError(f"port {port} on {host!r} ({address}) is not free: {err}") from None
        return sock.getsockname()[1]


def worker_environment(env: Mapping[str, str]) -> Dict[str, str]:
    """``env`` for a worker: ``SINLSTM_LAUNCHED=1`` and the worker bootstrap first on ``PYTHONPATH``, whose
    ``sitecustomize`` installs the exit hooks when the worker's Python starts (importing sinlstm_sym
    installs nothing)."""
    path = [BOOTSTRAP_DIR] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOTSTRAP_DIR]
    return dict(env, **{LAUNCHED_ENV: "1", "PYTHONPATH": os.pathsep.join(path)})


def _check_env(env: Any) -> Dict[str, str]:
    if env is None:
        return {}
    check_condition(isinstance(env, MappingABC), f"env must be a mapping of str to str or None, got {env!r}",
                    TypeError)
    for key, value in env.items():
        check_condition(isinstance(key, str) and isinstance(value, str),
                        f"env must map str to str, got {key!r}: {value!r}", TypeError)
        check_condition(key != "" and "=" not in key and "\0" not in key + value,
                        f"env has an invalid variable name or value: {key!r}: {value!r}")
        check_condition(key not in _MANAGED_ENV, f"env must not set {key}: the launcher sets {', '.join(_MANAGED_ENV)}")
    return dict(env)


# --- supervision ---------------------------------------------------------------------------------------

def _pdeathsig_preexec() -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` making the kernel SIGKILL the child when the launcher dies (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        logger.debug("prctl is unavailable: children will not die with the launcher")
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    launcher, sigkill = os.getpid(), int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != launcher:  # the launcher died before prctl
            os._exit(1)

    return preexec


def _exit_status(code: int) -> int:
    return 128 - code if code < 0 else code


def _describe(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name} (exit status {_exit_status(code)})"


@dataclass
class _Child:
    role: str
    index: int
    proc: subprocess.Popen
    code: Optional[int] = None  # set once the exit is seen (the process is reaped only at teardown)

    @property
    def name(self) -> str:
        return f"{self.role} {self.index} (pid {self.proc.pid})"

    def peek(self) -> Optional[int]:
        """The exit code if the process has ended, without reaping it.

        Leaving the zombie in place until teardown keeps its pid, hence its process group id, from being
        reused, so that signalling the group later cannot hit an unrelated process.
        """
        if self.code is None:
            if hasattr(os, "waitid"):
                try:
                    info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    info, self.code = None, self.proc.poll()
                if info is not None:
                    killed = info.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
                    self.code = -info.si_status if killed else info.si_status
            else:
                self.code = self.proc.poll()
        return self.code

    def signal_group(self, sig: int) -> None:
        try:
            if hasattr(os, "killpg"):
                os.killpg(self.proc.pid, sig)
            elif self.proc.returncode is None:
                self.proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class _Job:
    command: List[str]
    num_workers: int
    num_servers: int
    address: str
    port: int
    timeout: Optional[float]
    env: Dict[str, str]
    children: List[_Child] = field(default_factory=list)
    received: Optional[int] = None  # the signal that stops the job
    deadline: Optional[float] = None
    preexec: Optional[Callable[[], None]] = None

    def run(self) -> int:
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.preexec = _pdeathsig_preexec()
        previous = self._handle_signals()
        try:
            return self._run()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def _handle_signals(self) -> Dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            logger.debug("not in the main thread: SIGINT/SIGTERM will not stop the job")
            return {}

        def on_signal(signum: int, frame: Any) -> None:
            if self.received is None:
                self.received = signum

        return {sig: signal.signal(sig, on_signal) for sig in _HANDLED_SIGNALS}

    def _run(self) -> int:
        logger.info("scheduler at %s:%d, %d server(s), %d worker(s) running %s", self.address, self.port,
                    self.num_servers, self.num_workers, shlex.join(self.command))
        node = [sys.executable, "-c", SERVER_NODE_CODE]  # an exception in a server's updater ends it (status 1)
        status = self._start("scheduler", 0, node)
        if status is None:
            status = self._wait_for_scheduler()
        for role, count, argv in (("server", self.num_servers, node), ("worker", self.num_workers, self.command)):
            for index in range(count):
                if status is None:  # a signal or the timeout stops the job between two starts too
                    status = self._check() or self._start(role, index, argv)
        return self._supervise() if status is None else status

    def _start(self, role: str, index: int, argv: List[str]) -> Optional[int]:
        env = dict(self.env, DMLC_ROLE=role)
        if role == "worker":
            env = worker_environment(env)
        try:
            proc = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=self.preexec)
        except OSError as err:
            logger.error("could not start %s %d (%s): %s; stopping the job", role, index, shlex.join(argv), err)
            return 127 if isinstance(err, FileNotFoundError) else 126
        self.children.append(_Child(role, index, proc))
        logger.debug("started %s %d (pid %d)", role, index, proc.pid)
        return None

    def _check(self) -> Optional[int]:
        """The job's exit status if it must end now, else None."""
        if self.received is not None:
            logger.error("received %s: stopping the job", signal.Signals(self.received).name)
            return 128 + self.received
        if self.deadline is not None and time.monotonic() >= self.deadline:
            logger.error("timeout: the job ran for %g s; killing it. (A worker that failed without the exit hooks "
                         "of sinlstm_sym.distributed, or ended by a bare raise SystemExit(n), waits forever in "
                         "MXNet's shutdown barrier.)", self.timeout)
            return TIMEOUT_EXIT_CODE
        workers_started = any(c.role == "worker" for c in self.children)
        for child in self.children:
            if child.code is not None:
                continue
            code = child.peek()
            if code is None:
                continue
            if code != 0 or not workers_started:
                logger.error("%s %s: stopping the job", child.name, _describe(code))
                return _exit_status(code) or 1
            if child.role == "worker":
                logger.debug("%s exited with code 0", child.name)
            else:  # it passed ps-lite's final barrier: every worker has closed its kvstore
                logger.info("%s exited with code 0: ps-lite has shut down", child.name)
        return None

    def _wait_for_scheduler(self) -> Optional[int]:
        limit = time.monotonic() + SCHEDULER_START_TIMEOUT
        while True:
            try:
                socket.create_connection((self.address, self.port), timeout=1.0).close()
                return None
            except OSError:
                pass
            status = self._check()
            if status is not None:
                return status
            if time.monotonic() >= limit:
                logger.error("the scheduler (pid %d) is not listening on %s:%d after %g s: stopping the job",
                             self.children[0].proc.pid, self.address, self.port, SCHEDULER_START_TIMEOUT)
                return 1
            time.sleep(_POLL)

    def _supervise(self) -> int:
        workers = [c for c in self.children if c.role == "worker"]
        while True:
            status = self._check()
            if status is not None:
                return status
            if all(c.code is not None for c in workers):
                break
            time.sleep(_POLL)
        logger.info("all %d workers exited with code 0", len(workers))
        others = [c for c in self.children if c.role != "worker"]
        end = time.monotonic() + SHUTDOWN_GRACE
        while time.monotonic() < end and self.received is None and any(c.peek() is None for c in others):
            time.sleep(_POLL)
        for child in others:
            if child.code is None:
                logger.info("%s still runs %g s after the workers finished (a worker without a dist kvstore?): "
                            "stopping it", child.name, SHUTDOWN_GRACE)
            elif child.code != 0:
                logger.warning("%s %s after the workers finished", child.name, _describe(child.code))
        return 0

    def _stop_all(self) -> None:
        """SIGTERM every child's process group, SIGKILL them after KILL_GRACE, reap the children."""
        running = [c for c in self.children if c.peek() is None]
        if running:
            logger.info("terminating %s", ", ".join(c.name for c in running))
        for child in self.children:  # finished ones too: their own children may live on in the group
            child.signal_group(signal.SIGTERM)
        end = time.monotonic() + KILL_GRACE
        while time.monotonic() < end and any(c.peek() is None for c in running):
            time.sleep(_POLL)
        survivors = [c for c in running if c.peek() is None]
        if survivors:
            logger.warning("killing %s (still running %g s after SIGTERM)", ", ".join(c.name for c in survivors),
                           KILL_GRACE)
        if hasattr(signal, "SIGKILL"):
            for child in self.children:
                child.signal_group(signal.SIGKILL)
        for child in self.children:
            try:
                child.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not exit after SIGKILL", child.name)


def launch(command: Sequence[str], num_workers: int, num_servers: int = 1, host: str = "127.0.0.1",
           port: Optional[int] = None, timeout: Optional[float] = None,
           env: Optional[Mapping[str, str]] = None) -> int:
    """Run ``command`` as ``num_workers`` ps-lite workers with a scheduler and ``num_servers`` servers.

    Everything binds and connects to ``host`` (an address of this machine); the scheduler listens on
    ``port`` (default: a free one). ``env`` adds variables for every process (on top of ``os.environ``,
    minus its ``DMLC_*`` and ``PORT``). Returns 0 when every worker exited 0; else the exit code of the
    first process that failed (``128 + N`` if killed by signal ``N``), 124 after ``timeout`` seconds,
    ``128 + N`` if the launcher got signal ``N`` (at any moment, while it starts processes too). Every process
    of the job has ended when it returns.

    Raises
    ------
    ValueError
        for a bad argument, or a job of more processes than this machine holds (:func:`max_processes`),
        before anything starts.
    """
    workers = _named("num_workers", check_int, "num_workers", num_workers, minimum=1)
    servers = _named("num_servers", check_int, "num_servers", num_servers, minimum=1)
    _check_size(workers, servers)
    address = _named("host", _check_host, host)
    if port is not None:
        port = _named("port", _check_port, port)
    if timeout is not None:
        timeout = _named("timeout", check_float, "timeout", timeout, minimum=0.0, strict_minimum=True)
    extra = _named("env", _check_env, env)
    inherited = sorted(k for k in os.environ if k.startswith("DMLC_") or k in _MANAGED_ENV)
    child_env = {k: v for k, v in os.environ.items() if k not in inherited}
    child_env.update(extra)
    argv = _named("command", _check_command, command, child_env.get("PATH", os.defpath))
    port = _named("port" if port is not None else "host", _bind_port, address, 0 if port is None else port, host)
    if inherited:
        logger.warning("ignoring inherited %s: the launcher sets the ps-lite variables itself", ", ".join(inherited))
    child_env.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
    child_env.update(DMLC_PS_ROOT_URI=address, DMLC_PS_ROOT_PORT=str(port), DMLC_NUM_SERVER=str(servers),
                     DMLC_NUM_WORKER=str(workers), DMLC_NODE_HOST=address)
    return _Job(argv, workers, servers, address, port, timeout, child_env).run()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sinlstm_sym.launch",
        usage="%(prog)s -n WORKERS [-s SERVERS] [--host HOST] [--port PORT] [--timeout SECONDS] -- COMMAND ...",
        description="Run COMMAND as WORKERS MXNet parameter-server workers (kvstore 'dist_sync' or "
                    "'dist_async') with a scheduler and SERVERS servers on this machine; stop every process "
                    "as soon as one fails.",
        epilog="Exit status: 0 when every worker exited 0; else the exit code of the first process that failed "
               "(128+N if killed by signal N), 124 on --timeout, 128+N if the launcher got signal N, "
               "2 for bad arguments. Every worker starts with exit hooks installed (the launcher's "
               "sitecustomize, first on PYTHONPATH), so that a failing worker ends the job at once; a command "
               "that replaces PYTHONPATH calls sinlstm_sym.distributed.install_exit_hooks().")
    p.add_argument("-n", "--num-workers", type=int, required=True, metavar="WORKERS",
                   help="number of worker processes, each running COMMAND (ranks come from kv.rank)")
    p.add_argument("-s", "--num-servers", type=int, default=1, metavar="SERVERS",
                   help="number of ps-lite server processes (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address of this machine that every process binds to and connects to "
                        "(default: %(default)s, loopback only)")
    p.add_argument("--port", type=int, default=None, help="the scheduler's port (default: a free port on HOST)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="kill the whole job after SECONDS and exit with 124 (default: no limit)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: ``python -m sinlstm_sym.launch -n 2 -s 1 -- python train.py``."""
    args = list(sys.argv[1:] if argv is None else argv)
    split = args.index("--") if "--" in args else len(args)
    options, command = args[:split], args[split + 1:]
    parser = _parser()
    parsed = parser.parse_args(options)
    if not command:
        parser.error("missing COMMAND: give the worker command after '--', e.g. -- python train.py")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launch %(levelname)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return launch(command, parsed.num_workers, parsed.num_servers, host=parsed.host, port=parsed.port,
                      timeout=parsed.timeout)
    except (ValueError, TypeError) as err:
        flags = " and ".join(_FLAGS[name] for name in settings_of(err) if name in _FLAGS)
        print(f"{parser.prog}: error: {'argument ' + flags + ': ' if flags else ''}{err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the job's own handlers were in place
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
