"""The single-machine ps-lite launcher ``sinlstm_sym.distributed.launcher``: argument checks and CLI, the
worker exit hooks, a real 2-worker ``dist_sync`` job, and teardown when a worker fails (exception in any
thread, ``sys.exit(3)``), a server dies, the job times out or the launcher itself is killed. Everything runs
on 127.0.0.1; after each job no process carrying the job's marker may be left."""
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from machine_load import scaled, skip_if_overloaded
from sinlstm_sym.distributed import install_exit_hooks
from sinlstm_sym.distributed import launcher as launch_module
from sinlstm_sym.distributed.launcher import LAUNCHED_ENV, launch, main, worker_environment

PY = sys.executable
MARKER_VAR = "SINLSTM_TEST_JOB"
JOB_TIMEOUT = scaled(40.0)  # bounds every job started in-process; failures must end far sooner

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the launcher's tests need Linux /proc")


def _environ(pid: str) -> Dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:  # gone, or a zombie
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def job_pids(marker: str) -> List[int]:
    """Live processes (zombies excluded) whose environment or command line carries ``marker``."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        found = []
        for proc in psutil.process_iter(["environ", "cmdline", "status"]):
            info = proc.info
            environ = info["environ"] or {}
            if (marker in " ".join(info["cmdline"] or []) or environ.get(MARKER_VAR) == marker) \
                    and info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        return found
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline or _environ(pid).get(MARKER_VAR) == marker:
            found.append(int(pid))
    return found


def assert_nothing_left(marker: str, within: float = 5.0) -> None:
    end = time.monotonic() + scaled(within)
    while job_pids(marker) and time.monotonic() < end:
        time.sleep(0.1)
    left = job_pids(marker)
    assert not left, "left behind: " + "; ".join(f"{p}: {_environ(str(p)).get('DMLC_ROLE')}" for p in left)


@pytest.fixture
def marker() -> str:
    return f"job-{uuid.uuid4().hex}"


def run_job(command: List[str], marker: str, **kwargs) -> Tuple[int, float]:
    """``launch`` with the marker in every process's environment; returns (exit status, seconds)."""
    skip_if_overloaded()
    kwargs.setdefault("timeout", JOB_TIMEOUT)
    start = time.monotonic()
    status = launch(command, env={MARKER_VAR: marker}, **kwargs)
    return status, time.monotonic() - start


# --- arguments ---------------------------------------------------------------------------------------

OK = dict(command=[PY, "-c", "pass"], num_workers=1)
BAD = [
    ("command", "python train.py", TypeError),
    ("command", [], ValueError),
    ("command", [PY, 3], TypeError),
    ("command", None, TypeError),
    ("command", ["no-such-program-for-sinlstm"], ValueError),
    ("command", ["/nonexistent/python"], ValueError),
    ("num_workers", 0, ValueError),
    ("num_workers", -2, ValueError),
    ("num_workers", 2.0, TypeError),
    ("num_workers", True, TypeError),
    ("num_workers", "2", TypeError),
    ("num_servers", 0, ValueError),
    ("num_servers", 1.5, TypeError),
    ("host", "", ValueError),
    ("host", None, TypeError),
    ("host", 127, TypeError),
    ("host", "no-such-host.invalid", ValueError),
    ("host", "192.0.2.1", ValueError),
    ("host", "0.0.0.0", ValueError),  # TEST-NET-1: not an address of this machine
    ("port", 0, ValueError),
    ("port", 65536, ValueError),
    ("port", "9000", TypeError),
    ("port", 9000.0, TypeError),
    ("timeout", 0, ValueError),
    ("timeout", -1.0, ValueError),
    ("timeout", float("nan"), ValueError),
    ("timeout", float("inf"), ValueError),
    ("timeout", "10", TypeError),
    ("env", ["A=1"], TypeError),
    ("env", {"A": 1}, TypeError),
    ("env", {1: "a"}, TypeError),
    ("env", {"": "a"}, ValueError),
    ("env", {"A=B": "a"}, ValueError),
    ("env", {"DMLC_ROLE": "worker"}, ValueError),
    ("env", {"DMLC_PS_ROOT_PORT": "9000"}, ValueError),
    ("env", {"PORT": "9000"}, ValueError),
    ("env", {LAUNCHED_ENV: "0"}, ValueError),
]


@pytest.mark.parametrize("name, value, error", BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_launch_rejects_bad_argument_before_starting_anything(name, value, error):
    with pytest.raises(error, match=re.escape(name)) as info:
        launch(**dict(OK, **{name: value}))
    assert isinstance(info.value, error) and info.value.settings == (name,)  # the command line names its flag


def test_launch_rejects_a_port_in_use():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(ValueError, match="port"):
            launch(**OK, port=sock.getsockname()[1])


@pytest.mark.parametrize("module", ["sinlstm_sym.launch", "sinlstm_sym.distributed"])
def test_cli_help_explains_every_flag_without_runpy_warning(module):
    out = subprocess.run([PY, "-m", module, "--help"], capture_output=True, text=True, timeout=scaled(60))
    assert out.returncode == 0, out.stderr
    for flag in ("--num-workers", "--num-servers", "--host", "--port", "--timeout", "-- COMMAND", "124"):
        assert flag in out.stdout
    assert "RuntimeWarning" not in out.stderr and "Warning" not in out.stderr, out.stderr


@pytest.mark.parametrize("argv", [["-n", "2"], ["-n", "2", "--"], ["-n", "2", "python"]])
def test_cli_without_command_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, flag, name", [(["-n", "0", "--", PY], "-n/--num-workers", "num_workers"),
                                              (["-n", "1", "-s", "0", "--", PY], "-s/--num-servers", "num_servers"),
                                              (["-n", "1", "--timeout", "-3", "--", PY], "--timeout", "timeout"),
                                              (["-n", "1", "--port", "70000", "--", PY], "--port", "port"),
                                              (["-n", "1", "--host", "", "--", PY], "--host", "host"),
                                              (["-n", "1", "--", "no-such-program-for-sinlstm"], "COMMAND",
                                               "command")])
def test_cli_bad_value_prints_error_and_exits_2(argv, flag, name, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m sinlstm_sym.launch: error: argument {flag}: ") and name in err
    assert len(err.strip().splitlines()) == 1


# --- the worker exit hooks ---------------------------------------------------------------------------

def test_exit_hooks_are_not_installed_outside_the_launcher(monkeypatch):
    monkeypatch.delenv(LAUNCHED_ENV, raising=False)
    before = sys.excepthook, threading.excepthook, sys.exit
    assert install_exit_hooks() is False
    assert (sys.excepthook, threading.excepthook, sys.exit) == before


def test_importing_the_package_outside_the_launcher_changes_no_hook():
    code = ("import sys, threading; before = (sys.excepthook, threading.excepthook, sys.exit); import sinlstm_sym; "
            "assert (sys.excepthook, threading.excepthook, sys.exit) == before")
    env = {k: v for k, v in os.environ.items() if k != LAUNCHED_ENV}
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=scaled(60), env=env)
    assert out.returncode == 0, out.stderr


def test_importing_the_package_under_the_launcher_changes_no_hook():
    code = ("import sys, threading; before = (sys.excepthook, threading.excepthook, sys.exit); import sinlstm_sym; "
            "assert (sys.excepthook, threading.excepthook, sys.exit) == before")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=scaled(60),
                         env=dict(os.environ, **{LAUNCHED_ENV: "1"}))
    assert out.returncode == 0, out.stderr


def test_worker_bootstrap_installs_the_hooks_and_runs_the_site_customization_it_shadows(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['SITE_CUSTOMIZED'] = 'yes'\n")
    env = worker_environment(dict(os.environ, PYTHONPATH=str(site)))
    assert env[LAUNCHED_ENV] == "1" and env["PYTHONPATH"].split(os.pathsep)[1:] == [str(site)]
    code = ("import os, sys, threading; print(sys.exit.__module__, threading.excepthook.__module__, "
            "os.environ.get('SITE_CUSTOMIZED'), 'sinlstm_sym' in sys.modules)")
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=scaled(60), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sinlstm_sym.distributed.worker", "sinlstm_sym.distributed.worker", "yes", "True"]
    assert worker_environment(env)["PYTHONPATH"] == env["PYTHONPATH"]  # the bootstrap is added once


# A stand-in for a dist kvstore: freeing it blocks, like MXNet's shutdown barrier when a peer never comes.
HOOK_SCRIPT = textwrap.dedent("""
    import atexit, sys, threading, time
    import sinlstm_sym

    class Barrier:
        def __del__(self):
            print("barrier entered", flush=True)
            time.sleep(1000)

    def main(mode):
        kv = Barrier()
        print("buffered output", end="")
        try:
            if mode == "raise":
                raise ValueError("worker failure 42")
            if mode == "exit3":
                sys.exit(3)
            if mode == "exit-message":
                sys.exit("fatal: bad shard")
            if mode == "thread":
                def fail():
                    raise RuntimeError("thread failure 7")
                threading.Thread(target=fail, name="loader").start()
                time.sleep(1000)
            if mode == "thread-exit":
                threading.Thread(target=sys.exit, args=(5,)).start()
            if mode == "caught":
                try:
                    sys.exit(3)
                except SystemExit as exc:
                    print(" caught", exc.code, end="")
        finally:
            print(" finally ran", end="")
        del kv.__class__.__del__  # a normal end does not wait (the real barrier would complete)

    atexit.register(print, " atexit ran")
    main(sys.argv[1])
    if sys.argv[1] == "exit0":
        sys.exit(0)
""")


@pytest.mark.parametrize("mode, status, stdout, stderr", [
    ("raise", 1, "buffered output finally ran", "ValueError: worker failure 42"),
    ("exit3", 3, "buffered output finally ran", "exit status 3; exiting with code 3"),
    ("exit-message", 1, "buffered output finally ran", "fatal: bad shard\n"),
    ("thread", 1, "buffered output", "RuntimeError: thread failure 7"),
])
def test_exit_hooks_end_a_failing_worker_before_the_barrier(tmp_path, mode, status, stdout, stderr):
    script = tmp_path / "hook.py"
    script.write_text(HOOK_SCRIPT)
    env = worker_environment(os.environ)  # as the launcher starts a worker: its bootstrap installs the hooks
    start = time.monotonic()
    out = subprocess.run([PY, str(script), mode], capture_output=True, text=True, timeout=scaled(60), env=env)
    assert time.monotonic() - start < scaled(30)  # importing MXNet takes seconds under load; the barrier 1000 s
    assert out.returncode == status, out.stderr
    assert out.stdout == stdout  # flushed; no barrier entered, no atexit handler run
    assert stderr in out.stderr
    assert f"{LAUNCHED_ENV}=1: " in out.stderr and f"exiting with code {status} without waiting" in out.stderr
    if mode == "thread":
        assert "Exception in thread loader" in out.stderr and "Traceback" in out.stderr


@pytest.mark.parametrize("mode, stdout", [
    ("caught", "buffered output caught 3 finally ran atexit ran\n"),  # a caught sys.exit(3) changes nothing
    ("thread-exit", "buffered output finally ran atexit ran\n"),  # sys.exit in a thread ends only that thread
    ("exit0", "buffered output finally ran atexit ran\n"),  # a normal exit: atexit (and MXNet's barrier) as usual
])
def test_exit_hooks_leave_normal_exits_alone(tmp_path, mode, stdout):
    script = tmp_path / "hook.py"
    script.write_text(HOOK_SCRIPT)
    env = worker_environment(os.environ)  # as the launcher starts a worker: its bootstrap installs the hooks
    out = subprocess.run([PY, str(script), mode], capture_output=True, text=True, timeout=scaled(60), env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == stdout
    assert "without waiting" not in out.stderr


# --- real jobs -------------------------------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import json, os, sys, threading, time
    import sinlstm_sym  # the launcher's bootstrap installed the exit hooks before this script ran
    import mxnet as mx

    def fail(mode):
        if mode == "raise":
            raise RuntimeError("worker rank 1 fails mid-job")
        if mode == "exit3":
            sys.exit(3)
        if mode == "thread":
            def crash():
                raise RuntimeError("worker rank 1 thread fails mid-job")
            threading.Thread(target=crash).start()
            time.sleep(1000)

    def main(out_dir, mode):
        kv = mx.kv.create("dist_sync")  # a local: freed (barrier) while Python unwinds
        assert kv.num_workers == 2 and kv.rank in (0, 1), (kv.num_workers, kv.rank)
        kv.init(7, mx.nd.zeros((3,)))
        pulled = []
        for step in range(2):
            if kv.rank == 1 and step == 1:
                fail(mode)
            kv.push(7, mx.nd.ones((3,)) * (kv.rank + 1) * (step + 1))
            out = mx.nd.zeros((3,))
            kv.pull(7, out=out)
            pulled.append(out.asnumpy().tolist())
        env = {k: os.environ.get(k) for k in ("DMLC_NODE_HOST", "DMLC_PS_ROOT_URI", "SINLSTM_LAUNCHED")}
        with open(os.path.join(out_dir, "rank%d.json" % kv.rank), "w") as f:
            json.dump({"rank": kv.rank, "pulled": pulled, "env": env}, f)

    main(sys.argv[1], sys.argv[2])
""")


@pytest.fixture
def worker_script(tmp_path: Path) -> Path:
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return path


@pytest.mark.slow
def test_two_worker_dist_sync_job(worker_script, tmp_path, marker, caplog):
    caplog.set_level(logging.INFO, logger=launch_module.__name__)
    status, _ = run_job([PY, str(worker_script), str(tmp_path), "ok"], marker, num_workers=2, num_servers=1)
    assert status == 0, caplog.text
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("rank*.json"))]
    assert {r["rank"] for r in results} == {0, 1}
    for r in results:  # without an optimizer, a dist_sync server stores the sum of the round's pushes
        assert r["pulled"] == [[3.0] * 3, [6.0] * 3]
        assert r["env"] == {"DMLC_NODE_HOST": "127.0.0.1", "DMLC_PS_ROOT_URI": "127.0.0.1", "SINLSTM_LAUNCHED": "1"}
    assert_nothing_left(marker)


@pytest.mark.slow
@pytest.mark.parametrize("mode, code", [("raise", 1), ("exit3", 3), ("thread", 1)])
def test_failing_worker_ends_the_job(worker_script, tmp_path, marker, caplog, mode, code):
    # rank 1 fails while rank 0 waits for its push: without the exit hooks both would wait forever
    status, seconds = run_job([PY, str(worker_script), str(tmp_path), mode], marker, num_workers=2)
    assert status == code, caplog.text
    assert seconds < scaled(10.0)
    assert re.search(rf"worker \d \(pid \d+\) exited with code {code}", caplog.text)
    assert not list(tmp_path.glob("rank*.json"))
    assert_nothing_left(marker)


@pytest.mark.slow
def test_timeout_kills_everything_and_returns_124(marker, caplog):
    status, seconds = run_job([PY, "-c", "import time; time.sleep(1000)"], marker, num_workers=2, timeout=3)
    assert status == 124
    assert seconds < scaled(8.0)
    assert "timeout" in caplog.text
    assert_nothing_left(marker)


@pytest.mark.slow
def test_failing_worker_kills_its_own_children_too(marker, caplog):
    # The worker leaves a grandchild in its process group and fails: the launcher kills the group.
    status, seconds = run_job(["sh", "-c", "sleep 1000 & exit 3"], marker, num_workers=2)
    assert status == 3
    assert seconds < scaled(10.0)
    assert re.search(r"worker \d \(pid \d+\) exited with code 3", caplog.text)
    assert_nothing_left(marker)


@pytest.mark.slow
def test_scheduler_and_servers_are_stopped_when_workers_succeed_without_kvstore(marker, caplog):
    # Nobody registers with ps-lite, so scheduler and servers would wait forever; so would the grandchild.
    caplog.set_level(logging.INFO, logger=launch_module.__name__)
    status, seconds = run_job(["sh", "-c", "sleep 1000 & exit 0"], marker, num_workers=2, num_servers=2)
    assert status == 0
    assert seconds < scaled(15.0)
    assert "all 2 workers exited with code 0" in caplog.text
    assert re.search(r"scheduler 0 \(pid \d+\) still runs", caplog.text)
    assert_nothing_left(marker)


def _wait_for_role(marker: str, role: str, within: float = 20.0) -> int:
    within = scaled(within)
    end = time.monotonic() + within
    while time.monotonic() < end:
        for pid in job_pids(marker):
            if _environ(str(pid)).get("DMLC_ROLE") == role:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no {role} of job {marker} appeared within {within} s")


@pytest.mark.slow
def test_dead_server_ends_the_job(marker, caplog):
    killed: List[Optional[int]] = []

    def kill_server() -> None:
        try:
            pid = _wait_for_role(marker, "server")
            _wait_for_role(marker, "worker")
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except AssertionError:
            killed.append(None)

    thread = threading.Thread(target=kill_server)
    thread.start()
    try:
        status, _ = run_job([PY, "-c", "import time; time.sleep(1000)"], marker, num_workers=1)
    finally:
        thread.join(scaled(30))
    assert killed and killed[0] is not None
    assert status == 128 + signal.SIGKILL
    assert f"server 0 (pid {killed[0]}) was killed by SIGKILL" in caplog.text
    assert_nothing_left(marker)


def _start_cli(marker: str, command: List[str]) -> subprocess.Popen:
    skip_if_overloaded()
    env = dict(os.environ, **{MARKER_VAR: marker})
    return subprocess.Popen([PY, "-m", "sinlstm_sym.launch", "-n", "2", "-s", "1", "--timeout", str(JOB_TIMEOUT),
                             "--", *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_killing_the_launcher_kills_its_children(marker):
    launcher = _start_cli(marker, [PY, "-c", "import time; time.sleep(1000)"])
    try:
        end = time.monotonic() + scaled(20)
        while len(job_pids(marker)) < 5 and time.monotonic() < end:  # launcher, scheduler, server, 2 workers
            time.sleep(0.1)
        assert len(job_pids(marker)) == 5
        launcher.kill()
        launcher.wait(10)
        assert_nothing_left(marker, within=5.0)
    finally:
        launcher.kill()
        launcher.communicate(timeout=scaled(10))


@pytest.mark.slow
def test_sigterm_to_the_launcher_tears_the_job_down(marker):
    launcher = _start_cli(marker, [PY, "-c", "import time; time.sleep(1000)"])
    try:
        _wait_for_role(marker, "worker")
        launcher.send_signal(signal.SIGTERM)
        output, _ = launcher.communicate(timeout=scaled(10))
        assert launcher.returncode == 128 + signal.SIGTERM
        assert "received SIGTERM" in output
        assert_nothing_left(marker)
    finally:
        launcher.kill()
        launcher.communicate(timeout=scaled(10))


# --- what the machine holds, signals and the timeout while starting ------------------------------------

def test_a_job_larger_than_the_machine_is_refused_before_anything_starts(marker, capsys):
    cap, why = launch_module.max_processes()
    assert cap >= 3 and f"by {launch_module.PROCESSES_PER_CPU} per CPU core, {os.cpu_count()} cores" in why
    with pytest.raises(ValueError, match=rf"num_workers={cap - 1} and num_servers=1 make {cap + 1} processes with "
                       rf"the scheduler, more than this machine holds: at most {cap} \(") as info:
        run_job(["/bin/sleep", "600"], marker, num_workers=cap - 1, num_servers=1)
    assert info.value.settings == ("num_workers", "num_servers")
    assert not job_pids(marker)
    start = time.monotonic()
    assert main(["-n", "3000", "--timeout", "6", "--", "/bin/sleep", "600"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and time.monotonic() - start < scaled(5)
    assert err.startswith("python -m sinlstm_sym.launch: error: argument -n/--num-workers and -s/--num-servers: "
                          "num_workers=3000 and num_servers=1 make 3002 processes")


def _slow_starts(monkeypatch, every_start):
    """Starting a process runs ``every_start(job, role)`` first; no scheduler is waited for (the workers are
    /bin/sleep)."""
    started: List[str] = []
    real_start = launch_module._Job._start

    def start(job, role, index, argv):
        started.append(role)
        every_start(job, role)
        return real_start(job, role, index, argv)

    monkeypatch.setattr(launch_module._Job, "_start", start)
    monkeypatch.setattr(launch_module._Job, "_wait_for_scheduler", lambda job: None)
    return started


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals need the main thread")
def test_a_signal_while_workers_start_stops_the_job_at_once(monkeypatch, marker, caplog):
    def signal_at_the_third_worker(job, role):
        if role == "worker" and started.count("worker") == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # its handler is the job's: it only records the signal

    started = _slow_starts(monkeypatch, signal_at_the_third_worker)
    status, seconds = run_job(["/bin/sleep", "600"], marker, num_workers=8)
    assert status == 128 + signal.SIGTERM and "received SIGTERM" in caplog.text
    assert started.count("worker") == 3  # none started after the signal
    assert seconds < scaled(8)
    assert_nothing_left(marker)


def test_the_timeout_counts_while_workers_start(monkeypatch, marker, caplog):
    started = _slow_starts(monkeypatch, lambda job, role: time.sleep(0.4 if role == "worker" else 0))
    status, seconds = run_job(["/bin/sleep", "600"], marker, num_workers=8, timeout=1.0)
    assert status == 124 and "timeout" in caplog.text
    assert 2 <= started.count("worker") <= 4  # 8 starts would take 3.2 s
    assert seconds < scaled(1.0 + 0.4 + launch_module.KILL_GRACE + 2)
    assert_nothing_left(marker)
