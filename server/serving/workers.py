"""`spigot serve --workers N`: a parent that starts N serving processes on one listening
socket (the kernel hands each new connection to one of them) and keeps them running.

- Each worker is a fresh `spigot` process, given the socket by descriptor
  (SPIGOT_WORKER_FD) and the same arguments, as gunicorn re-executes its workers: nothing
  the parent loaded or started is shared by accident.
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
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import FrameType

from ..settings import Settings

log = logging.getLogger("spigot")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_FD = "SPIGOT_WORKER_FD"  # not a setting: the parent's handshake with its workers
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
    fd = sock.fileno()
    env = {**os.environ, WORKER_FD: str(fd), "PROMETHEUS_MULTIPROC_DIR": directory}
    command = [sys.executable, "-m", "server", *sys.argv[1:]]
    children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    signals = 0

    def spawn() -> None:
        child = subprocess.Popen(command, pass_fds=[fd], env=env)
        children[child.pid] = (child, time.monotonic())

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal signals
        signals += 1
        for child, _ in list(children.values()):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM if signals == 1 else signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for _ in range(settings.workers):
        spawn()
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


def worker_socket() -> socket.socket | None:
    """In a worker: the parent's listening socket. A worker also asks the kernel for a
    SIGTERM should its parent die, so none is left serving alone (PR_SET_PDEATHSIG)."""
    fd = os.environ.pop(WORKER_FD, None)
    if fd is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return socket.socket(fileno=int(fd))


def describe(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"status {code}"
