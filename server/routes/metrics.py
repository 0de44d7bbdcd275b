"""`GET /metrics`: the Prometheus text format (server/ops/metrics.py).

Who may read it: with `--metrics-token`, whoever sends that bearer token; else, under
`--auth none`, anyone (spigot is on loopback then), and with auth on, an `admin` token.
With `--metrics-port` it is served on its own loopback port instead, open there, and not
on the main port at all.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from ..auth import Need, authenticate
from ..auth import errors as auth_errors
from ..context import settings_of
from ..ops.metrics import exposition
from ..ops.middleware import refresh_connections
from ..protocol.bearer import BadAuthorization, bearer_token

ADMIN = Need(("admin",))


async def metrics(request: web.Request) -> web.Response:
    settings = settings_of(request)
    if settings.metrics_token:
        try:
            token = bearer_token(request.headers.get("Authorization"))
        except BadAuthorization as exc:
            raise auth_errors.invalid_request(str(exc)) from None
        if token is None:
            raise auth_errors.missing()
        if not hmac.compare_digest(token.encode(), settings.metrics_token.encode()):
            raise auth_errors.invalid_token("not the metrics token")
    elif settings.auth != "none":
        await authenticate(request, ADMIN)
    return scrape(request.app)


async def open_metrics(request: web.Request) -> web.Response:
    """The --metrics-port listener: loopback only, so no credential."""
    return scrape(request.app)


def scrape(app: web.Application) -> web.Response:
    refresh_connections(app)
    body, content_type = exposition()
    resp = web.Response(body=body, headers={"Cache-Control": "no-store"})
    resp.headers["Content-Type"] = content_type
    return resp
