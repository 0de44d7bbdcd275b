"""Every request's id and its metrics.

The id is the one a proxy sent (nginx's `$request_id`, deploy/nginx/spigot.conf) when it is
safe to log and echo, else a fresh one. It is echoed as `X-Request-ID`, written in the
access log, and passed on to hooks (a context variable, so work a handler detaches keeps
it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar

from aiohttp import web

from ..protocol.request_id import request_id
from . import metrics

REQUEST_ID = web.RequestKey("request_id", str)
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("spigot_request_id", default=None)
OpenConnections = Callable[[], int]
CONNECTIONS: web.AppKey[OpenConnections] = web.AppKey("open_connections")  # `spigot serve`

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})


def route_of(request: web.Request) -> str:
    """The route's pattern, `/files/{id}`; never the path, whose ids are unbounded."""
    try:
        resource = request.match_info.route.resource
    except AssertionError:  # a request aiohttp refused before routing (bad framing)
        return "unmatched"
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id(request.headers.get("X-Request-ID"))
    request[REQUEST_ID] = rid
    CURRENT_REQUEST_ID.set(rid)  # the handler's task has its own context: no reset needed
    route = route_of(request)
    uploading = request.method in UPLOAD_METHODS and request.body_exists
    if uploading:
        metrics.UPLOADS_IN_FLIGHT.inc()
    started = time.perf_counter()
    status, sent = 500, 0
    try:
        response = await handler(request)
        status = response.status
        transport = request.transport
        if type(response) is web.Response and transport is not None and not transport.is_closing():
            # sent here, so its size and time are known; a client gone meanwhile is routine
            with contextlib.suppress(ConnectionError):
                await response.prepare(request)
                await response.write_eof()
        # headers included, as nginx's $bytes_sent; a FileResponse (the page's assets)
        # sends itself later, and is counted by its length
        sent = response.body_length if response.prepared else (response.content_length or 0)
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if uploading:
            metrics.UPLOADS_IN_FLIGHT.dec()
        metrics.requests_of(request.method, route, status).inc()
        metrics.duration_of(route).observe(time.perf_counter() - started)
        received = getattr(request.content, "total_bytes", 0)
        if received:
            metrics.RECEIVED.inc(received)
        metrics.SENT.inc(sent)


# aiohttp would say `Server: Python/3.11 aiohttp/3.14.5`: versions an attacker can match
# to advisories, and nothing a client needs (nginx's `server_tokens off`, likewise).
SERVER = "spigot"


async def stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare, so streamed responses get them too: the request's id, and a
    Server header that names no versions."""
    response.headers["Server"] = SERVER
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers["X-Request-ID"] = rid


async def count_connections(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: keep the open-connections gauge fresh, once a second, in each worker
    (a scrape also refreshes it, see routes/metrics.py)."""

    async def loop() -> None:
        while True:
            refresh_connections(app)
            await asyncio.sleep(1.0)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def refresh_connections(app: web.Application) -> None:
    counter = app.get(CONNECTIONS)
    if counter is not None:
        metrics.CONNECTIONS.set(counter())
