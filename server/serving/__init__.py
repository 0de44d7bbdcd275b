"""`spigot serve`: one process (`single.py`), or a parent that forks `--workers N` of them
onto one listening socket and keeps them running (`workers.py`); a drain that lets
uploads finish on SIGTERM (`drain.py`); logging (`logs.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import sys
from collections.abc import Coroutine
from typing import Any

from storage.errors import StorageUnavailable

from ..settings import Settings
from . import logs


def run(settings: Settings) -> None:
    """Serve until SIGTERM. Binds the socket first, so `--port 0` can report its port and
    every worker shares it."""
    from .workers import STARTUP_FAILED, reserve, supervise, worker_socket

    raise_descriptor_limit()
    logs.configure(settings)
    inherited = worker_socket(settings.host)
    if inherited is None and settings.workers > 1:
        supervise(settings, reserve(settings.host, settings.port))
        return
    from .single import serve

    sock = inherited or create_socket(settings)
    try:
        _run_loop(serve(settings, sock, announce=inherited is None), settings.event_loop)
    except KeyboardInterrupt:
        pass
    except StorageUnavailable as exc:
        if inherited is None:
            raise
        logs.flush()
        print(f"spigot: error: storage {settings.storage}: {exc}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILED) from None


def _run_loop(main: Coroutine[Any, Any, None], loop: str) -> None:
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def create_socket(settings: Settings) -> socket.socket:
    return socket.create_server((settings.host, settings.port), reuse_port=False)


def raise_descriptor_limit() -> None:
    """Lift the soft limit on open files to the hard one, as Go's runtime and nginx's
    worker_rlimit_nofile do. Debian's soft default (1024) is spent by a few hundred
    proxied downloads: each holds two sockets, and a splice four more descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):  # then the soft limit stands
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
