"""`GET /healthz` (liveness: the process answers) and `GET /readyz` (readiness: the store
can take work now: the directory is writable, the bucket answers). A load balancer sends
traffic on /readyz; an orchestrator restarts on /healthz."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from storage import ReadyCheck, StorageError

from ..context import store_of

READY_TIMEOUT = 5.0


async def healthz(request: web.Request) -> web.Response:
    # `pid`: which worker answered, under --workers
    body = {"status": "ok", "storage": store_of(request).describe(), "pid": os.getpid()}
    return web.json_response(body)


async def readyz(request: web.Request) -> web.Response:
    store = store_of(request)
    if isinstance(store, ReadyCheck):
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await store.check_ready()
        except (StorageError, TimeoutError) as exc:
            why = str(exc) or "the storage did not answer in time"
            return web.json_response(
                {
                    "status": "unavailable",
                    "storage": store.describe(),
                    "error": {"code": "storage_unavailable", "message": why},
                },
                status=503,
                headers={"Cache-Control": "no-store"},
            )
    return web.json_response(
        {"status": "ready", "storage": store.describe()}, headers={"Cache-Control": "no-store"}
    )
