"""`spigot serve --workers N`: a parent that starts N serving processes on one port and
keeps them running.

- Each worker listens on the port itself with SO_REUSEPORT, as nginx's `reuseport` does:
  the kernel spreads new connections across the workers by their addresses. (One shared
  accept queue sends nearly every connection to whichever worker wakes first.) The parent
  binds the port first without listening: that resolves `--port 0` and holds the port,
  and takes no connections.
- Each worker is a fresh `spigot` process with the same arguments (SPIGOT_WORKER_PORT
  says where to listen), as gunicorn re-executes its workers: nothing the parent loaded
  or started is shared by accident.
- A worker that dies is restarted; one that could not start at all (its storage is
  unavailable, exit status 3) stops the whole server with its reason, rather than a loop
  of restarts.
- SIGTERM on the parent is passed to every worker, each drains (drain.py), and the parent
  exits when they have; a second SIGTERM kills them at once.
- Metrics: every worker gets PROMETHEUS_MULTIPROC_DIR, a fresh directory, so /metrics on
  any worker sums them all; a dead worker's live gauges are dropped (mark_process_dead).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

from ..settings import Settings
from . import logs

log = logging.getLogger("spigot")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_PORT = "SPIGOT_WORKER_PORT"  # not settings: the parent's word to its workers,
WORKER_READY = "SPIGOT_WORKER_READY"  # and their answer
STARTUP_FAILED = 3
RESTART_PAUSE = 1.0  # a worker that keeps dying is restarted at most this often


def supervise(settings: Settings, sock: socket.socket) -> None:
    made = None
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = made = tempfile.mkdtemp(prefix="spigot-metrics-")
    from prometheus_client import multiprocess

    from ..storage_factory import open_store

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    where = open_store(settings).describe()
    env = {**os.environ, WORKER_PORT: str(port), "PROMETHEUS_MULTIPROC_DIR": directory}
    command = [sys.executable, "-m", "server", *sys.argv[1:]]
    children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    signals = 0

    def spawn(ready: int | None = None) -> None:
        extra, fds = ({WORKER_READY: str(ready)}, [ready]) if ready is not None else ({}, [])
        child = subprocess.Popen(command, env={**env, **extra}, pass_fds=fds)
        children[child.pid] = (child, time.monotonic())

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal signals
        signals += 1
        for child, _ in list(children.values()):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM if signals == 1 else signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ready_from, ready_to = os.pipe()
    for _ in range(settings.workers):
        spawn(ready_to)
    os.close(ready_to)
    if not all_listening(ready_from, [child for child, _ in children.values()]):
        on_signal(signal.SIGTERM, None)
        for child, _ in children.values():
            child.wait()
        logs.flush()
        raise SystemExit("spigot: error: the workers did not start (see above)")
    print(
        f"spigot serving http://{shown}:{port} storage={where} workers={settings.workers}",
        flush=True,
    )
    failure = None
    try:
        while children:
            pid, status = os.wait()
            entry = children.pop(pid, None)
            if entry is None:
                continue
            child, started = entry
            child.returncode = code = os.waitstatus_to_exitcode(status)
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
            if signals:
                continue
            if code == STARTUP_FAILED:
                failure = "a worker could not start (see above)"
                on_signal(signal.SIGTERM, None)
                continue
            log.warning("worker %d exited (%s); starting another", pid, describe(code))
            if time.monotonic() - started < RESTART_PAUSE:
                time.sleep(RESTART_PAUSE)
            spawn()
    finally:
        sock.close()
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
    if failure is not None:
        raise SystemExit(f"spigot: error: {failure}")
    if signals > 1:
        raise SystemExit(1)


def all_listening(ready: int, workers: list[subprocess.Popen[bytes]], timeout: float = 60) -> bool:
    """Wait until every worker says it listens (a byte each on the pipe): the start-up
    line promises that all of them do. False if one exits first, or time runs out."""
    got = 0
    deadline = time.monotonic() + timeout
    try:
        while got < len(workers) and time.monotonic() < deadline:
            if any(w.poll() is not None for w in workers):
                return False
            if select.select([ready], [], [], 0.2)[0]:
                chunk = os.read(ready, len(workers))
                if not chunk:  # every write end closed: they all exited
                    return False
                got += len(chunk)
    finally:
        os.close(ready)
    return got >= len(workers)


def say_listening() -> None:
    """In a worker, once its socket is serving: tell the parent (all_listening)."""
    fd = os.environ.pop(WORKER_READY, None)
    if fd is not None:
        os.write(int(fd), b".")
        os.close(int(fd))


def reserve(host: str, port: int) -> socket.socket:
    """The parent's hold on the port: bound with SO_REUSEPORT, never listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def worker_socket(host: str) -> socket.socket | None:
    """In a worker: its own listening socket on the parent's port. A worker also asks the
    kernel for a SIGTERM should its parent die, so none is left serving alone
    (PR_SET_PDEATHSIG)."""
    port = os.environ.pop(WORKER_PORT, None)
    if port is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return socket.create_server((host, int(port)), reuse_port=True)


def describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"status {code}"
