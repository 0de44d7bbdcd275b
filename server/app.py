"""The aiohttp application: settings and store in, routes and middleware wired up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from storage import CallObserver, DataStore

from . import cors
from .auth import authenticator_lifecycle
from .bodies import close_if_body_unread
from .context import LIFECYCLE, SETTINGS, STORE
from .errors import json_errors
from .lifecycle import Lifecycle
from .lifecycle.hooks import Hooks, WebHook
from .ops.metrics import observe_s3_call
from .ops.middleware import count_connections, observe, stamp_response
from .routes import add_routes
from .serving.drain import DRAIN, Drain
from .settings import Settings
from .sweeper import sweeper

# A connection's first read window; an upload body's is then sized by how many arrive at
# once (bodies.RECEIVE).
READ_BUFSIZE = 1 << 16


def create_app(settings: Settings, store: DataStore, hooks: Hooks | None = None) -> web.Application:
    """The application. `hooks` are Python callables for embedders (server.lifecycle.hooks)."""
    # CORS costs a middleware and a response hook on every request, so it is wired in only
    # when origins are configured.
    drain = Drain()
    middlewares = [observe, drain.middleware, close_if_body_unread, json_errors]
    if settings.cors_origin:
        middlewares.insert(2, cors.preflight)
    # A body is stored as sent, as nginx, tusd and S3 store it. aiohttp would otherwise
    # decode a Content-Encoding: a gzip body stored no longer matched its Content-Length
    # (or a tus offset), a bomb's few bytes became gigabytes on disk, and bytes that were
    # not gzip at all were a 500.
    handler_args = {"read_bufsize": READ_BUFSIZE, "auto_decompress": False}
    app = web.Application(middlewares=middlewares, handler_args=handler_args)
    app[DRAIN] = drain
    if settings.cors_origin:
        app.on_response_prepare.append(cors.add_headers)
    app.on_response_prepare.append(stamp_response)
    app.cleanup_ctx.append(count_connections)
    if isinstance(store, CallObserver):
        store.observe_calls(observe_s3_call)
    app[SETTINGS] = settings
    app[STORE] = store
    webhook = WebHook(settings.hook_url) if settings.hook_url else None
    app[LIFECYCLE] = Lifecycle(hooks or Hooks(), webhook)
    app.cleanup_ctx.append(_store_lifecycle)
    app.cleanup_ctx.append(authenticator_lifecycle)
    if webhook is not None:
        app.cleanup_ctx.append(_webhook_lifecycle(webhook))
    app.cleanup_ctx.append(sweeper)
    app.on_shutdown.append(_end_event_streams)
    add_routes(app)
    return app


async def _end_event_streams(app: web.Application) -> None:
    """First thing on shutdown: event streams would otherwise hold the drain to its end."""
    app[LIFECYCLE].events.close()


def _webhook_lifecycle(webhook: WebHook) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        await webhook.start()
        yield
        await webhook.close()

    return run


async def _store_lifecycle(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.start()
    yield
    await store.close()
