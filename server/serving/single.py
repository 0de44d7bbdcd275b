"""One serving process: the application on a socket it is handed, until SIGTERM.

SIGTERM: stop listening, let requests in flight finish within --shutdown-timeout
(drain.py), then aiohttp closes what is left; its own timeout is only for the last
responses to be written. A second SIGTERM exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

from aiohttp import web

from ..accesslog import AccessLogger
from ..app import create_app
from ..ops.middleware import CONNECTIONS
from ..routes.metrics import open_metrics
from ..settings import Settings
from ..storage_factory import open_store
from .arenas import limit_arenas
from .drain import DRAIN
from .guard import guarded, mark
from .workers import say_listening

log = logging.getLogger("spigot")


async def serve(settings: Settings, sock: socket.socket, announce: bool = True) -> None:
    limit_arenas()  # before the store starts its threads
    store = open_store(settings)
    app = create_app(settings, store)
    app.middlewares.insert(0, mark)  # the connection guard's view of requests
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log_class=AccessLogger,
        shutdown_timeout=5.0,
        keepalive_timeout=settings.keepalive_timeout,
        # After an early answer (413, 408) aiohttp reads and drops what the client still
        # sends, so the client sees the answer rather than a reset; a client that sends
        # nothing more is not waited on for aiohttp's default 10 s.
        lingering_time=1.0,
    )
    await runner.setup()
    assert runner.server is not None
    app[CONNECTIONS] = lambda: len(runner.server.connections) if runner.server else 0
    # aiohttp's SockSite, but each connection wrapped in its guard (guard.py)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(guarded(runner.server, settings), sock=sock, backlog=1024)
    say_listening()  # to the parent, under --workers
    metrics_runner = await metrics_site(settings, app) if settings.metrics_port else None
    if announce:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"spigot serving http://{shown}:{port} storage={store.describe()}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal: now
            loop.add_signal_handler(signum, os._exit, 1)
        listener.close()  # no new connections
        drain = app[DRAIN]
        left = settings.shutdown_timeout
        log.info("stopping: %d requests in flight get %gs", drain.in_flight, left)
        cut = await drain.drain(app, left)
        if cut:
            log.warning("stopping: %d requests were cut at the deadline", cut)
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()


async def metrics_site(settings: Settings, main: web.Application) -> web.AppRunner:
    """--metrics-port: /metrics alone, on loopback, beside the main port. With workers,
    each binds it with SO_REUSEPORT, and each answers with every worker's samples."""
    app = web.Application()
    app[CONNECTIONS] = main[CONNECTIONS]
    app.router.add_get("/metrics", open_metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    assert settings.metrics_port is not None
    site = web.TCPSite(runner, "127.0.0.1", settings.metrics_port, reuse_port=True)
    await site.start()
    return runner
