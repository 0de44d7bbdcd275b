"""CORS for browsers on other origins (tus-js-client, Uppy, fetch, EventSource).

Off unless `--cors-origin` names origins (or `*`). A named origin is echoed with
`Access-Control-Allow-Credentials: true`, so cookies (`--auth hook`) work from it; `*` never
carries credentials, as the Fetch standard requires. Bearer tokens need no credentials
mode: `Authorization` is simply an allowed header. Preflights are answered before routing
reaches a handler, so every route is covered; the response headers are added in
`on_response_prepare`, the one place that also reaches streamed responses (downloads, SSE)
before their headers go out.
"""

from __future__ import annotations

from aiohttp import web

from .context import SETTINGS
from .errors import Handler

EXPOSED = ", ".join(
    [
        "Location",
        "Upload-Offset",
        "Upload-Length",
        "Upload-Expires",
        "Upload-Metadata",
        "Upload-Defer-Length",
        "Upload-Concat",
        "Upload-Complete",
        "Upload-Incomplete",
        "Upload-Limit",
        "Upload-Draft-Interop-Version",
        "Repr-Digest",
        "Tus-Resumable",
        "Tus-Version",
        "Tus-Extension",
        "Tus-Max-Size",
        "Tus-Checksum-Algorithm",
        "Content-Range",
        "Accept-Ranges",
        "ETag",
        "Content-Disposition",
        "Content-Length",
        "WWW-Authenticate",
        "Link",  # the listing's next page
        "X-Total-Count",
    ]
)
ALLOWED_HEADERS = ", ".join(
    [
        "Authorization",
        "Tus-Resumable",
        "Upload-Length",
        "Upload-Metadata",
        "Upload-Offset",
        "Upload-Defer-Length",
        "Upload-Checksum",
        "Upload-Concat",
        "Upload-Complete",
        "Upload-Incomplete",
        "Upload-Draft-Interop-Version",
        "Repr-Digest",
        "Content-Digest",
        "X-HTTP-Method-Override",
        "X-Request-ID",
        "X-Requested-With",
        "X-Progress-ID",
        "Content-Type",
        "Content-Disposition",
        "Range",
        "If-Range",
        "If-Match",
        "If-None-Match",
        "If-Modified-Since",
        "If-Unmodified-Since",
        "Last-Event-ID",
    ]
)
METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def allowed_origin(request: web.BaseRequest, origins: tuple[str, ...]) -> str | None:
    origin = request.headers.get("Origin")
    if not origins or origin is None:
        return None
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in origins else None


@web.middleware
async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = allowed_origin(request, request.app[SETTINGS].cors_origin)
    if (
        request.method == "OPTIONS"
        and origin is not None
        and "Access-Control-Request-Method" in request.headers
    ):
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": METHODS,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": "86400",
            },
        )
    return await handler(request)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    origin = allowed_origin(request, request.app[SETTINGS].cors_origin)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    if origin != "*":
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers.add("Vary", "Origin")
