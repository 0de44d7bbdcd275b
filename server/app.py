"""The aiohttp application: settings and store in, routes and middleware wired up."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from storage import DataStore

from .context import SETTINGS, STORE
from .errors import json_errors
from .routes import add_routes
from .settings import Settings
from .sweeper import sweeper

# aiohttp's default 64 KiB read buffer makes the socket pause and resume every few
# chunks on a fast upload; 1 MiB keeps the memory bound small and the CPU on the payload.
READ_BUFSIZE = 1 << 20


def create_app(settings: Settings, store: DataStore) -> web.Application:
    app = web.Application(middlewares=[json_errors], handler_args={"read_bufsize": READ_BUFSIZE})
    app[SETTINGS] = settings
    app[STORE] = store
    app.cleanup_ctx.append(_store_lifecycle)
    app.cleanup_ctx.append(sweeper)
    add_routes(app)
    return app


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.start()
    yield
    await store.close()
