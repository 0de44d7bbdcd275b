"""`GET`/`HEAD /proxy?url=...&expires=...&sig=...`: stream a remote file, safely.

Bytes are passed on as the upstream delivers them, with a bounded window in between, so a
slow client slows the upstream instead of filling memory (server/proxy/relay.py). Headers go both
ways through allowlists, as in go-camo: no cookies or credentials reach the upstream, and
nothing but describing headers come back. Signing, address checks and redirects: see
server/protocol/signing.py, server/protocol/ssrf.py and server/proxy/upstream.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping

import aiohttp
from aiohttp import web

from ..context import SETTINGS, settings_of
from ..errors import ApiError
from ..ops import metrics
from ..protocol import signing
from ..protocol.media import type_allowed
from ..protocol.ssrf import Refused
from ..proxy.relay import RELAY_FAILURES, relay_body
from ..proxy.upstream import Timeouts, guarded_session, open_upstream
from ..settings import Settings

log = logging.getLogger("spigot.proxy")

FORWARD_REQUEST = ("Accept", "Accept-Language", "Range", "If-None-Match", "If-Modified-Since")
FORWARD_RESPONSE = (
    "Content-Type",
    # No Accept-Encoding goes up, but an upstream may still send stored encoded bytes (an
    # S3 object with Content-Encoding: gzip); the bytes pass through as sent, so must this.
    "Content-Encoding",
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "Cache-Control",
    "Expires",
)
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    # Media may display; nothing in a proxied document may run or load anything.
    "Content-Security-Policy": "default-src 'none'; img-src data:; media-src data:; "
    "style-src 'unsafe-inline'; sandbox",
}

UPSTREAM = web.AppKey("upstream", aiohttp.ClientSession)


def timeouts(settings: Settings) -> Timeouts:
    return Timeouts(
        settings.proxy_connect_timeout,
        settings.proxy_first_byte_timeout,
        settings.proxy_idle_timeout,
    )


async def upstream_session(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one guarded client session, shared by all proxy requests."""
    settings = app[SETTINGS]
    app[UPSTREAM] = guarded_session(timeouts(settings), settings.insecure_proxy_allow_private)
    yield
    await app[UPSTREAM].close()


def authorise(request: web.Request, settings: Settings, url: str) -> None:
    if settings.insecure_proxy_unsigned:
        return
    if not settings.secret:
        raise ApiError(
            403, "proxy_disabled", "the proxy needs --secret (or --insecure-proxy-unsigned)"
        )
    why = signing.verify(
        settings.secret, url, request.query.get("expires"), request.query.get("sig"), time.time()
    )
    if why is not None:
        raise ApiError(403, "bad_signature", why)


async def reach(
    request: web.Request,
    method: str,
    url: str,
    headers: Mapping[str, str],
    counted: bool = True,
) -> aiohttp.ClientResponse:
    """The upstream's response head, through the guarded session, or the 4xx/5xx that says
    why not: a refused target 403, slowness 504, no connection 502. `counted` adds the
    failures to the proxy's error metrics (the proxy's own requests, not a metadata look)."""
    settings = settings_of(request)
    try:
        return await open_upstream(
            request.app[UPSTREAM],
            method,
            url,
            headers,
            timeouts(settings),
            settings.insecure_proxy_allow_private,
        )
    except Refused as exc:
        raise ApiError(403, "refused_target", str(exc)) from None
    except TimeoutError:
        if counted:
            metrics.PROXY_ERRORS.labels("timeout").inc()
        raise ApiError(504, "upstream_timeout", "the upstream did not answer in time") from None
    except aiohttp.ClientError as exc:
        if counted:
            metrics.PROXY_ERRORS.labels("unreachable").inc()
        raise ApiError(
            502, "upstream_unreachable", f"could not reach the upstream: {exc}"
        ) from None


async def proxy(request: web.Request) -> web.StreamResponse:
    settings = settings_of(request)
    url = request.query.get("url")
    if not url:
        raise ApiError(400, "missing_url", "pass the target as ?url=")
    authorise(request, settings, url)
    forward = {h: request.headers[h] for h in FORWARD_REQUEST if h in request.headers}
    upstream = await reach(request, request.method, url, forward)
    try:
        return await relay(request, settings, upstream)
    finally:
        upstream.release()


async def relay(
    request: web.Request, settings: Settings, upstream: aiohttp.ClientResponse
) -> web.StreamResponse:
    if upstream.status >= 500:
        metrics.PROXY_ERRORS.labels("status").inc()
        raise ApiError(502, "upstream_error", f"the upstream answered {upstream.status}")
    if upstream.status >= 400 and upstream.status != 416:
        raise ApiError(
            upstream.status, "upstream_refused", f"the upstream answered {upstream.status}"
        )
    content_type = upstream.headers.get("Content-Type", "application/octet-stream")
    if upstream.status != 304 and not type_allowed(content_type, settings.proxy_content_types):
        raise ApiError(415, "type_not_allowed", f"{content_type} is not proxied here")
    cap = settings.proxy_max_size
    if cap and (upstream.content_length or 0) > cap:
        raise ApiError(413, "too_large", f"the upstream body is larger than {cap} bytes")

    headers = {h: upstream.headers[h] for h in FORWARD_RESPONSE if h in upstream.headers}
    resp = web.StreamResponse(status=upstream.status, headers={**headers, **ALWAYS})
    if upstream.content_length is not None:
        resp.content_length = upstream.content_length
    await resp.prepare(request)
    if request.method == "HEAD" or upstream.status == 304:
        await resp.write_eof()
        return resp
    try:
        sent = await relay_body(request, resp, upstream, settings)
    except RELAY_FAILURES as exc:
        metrics.PROXY_ERRORS.labels("body").inc()
        # Ending cleanly would hand the client a truncated file that looks whole: reset the
        # connection instead, so it can tell.
        log.info("relaying the upstream body failed: %s", exc)
        if request.transport is not None:
            request.transport.abort()
        return resp
    metrics.PROXY_BYTES.inc(sent)
    await resp.write_eof()
    return resp
