"""spigot's JSON error body for HTTP that aiohttp's parser refuses.

aiohttp answers a request it cannot parse (bad framing, a smuggling attempt, a head too
large) itself, before any middleware runs, with a plain-text 400. Its `handle_error` makes
that answer, on each connection's protocol object; the connection guard, which holds that
object, switches it to a subclass whose only change is the body. aiohttp stays in charge of
the rest: the log line, the closed connection, and no answer once a response has begun.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..ops.middleware import SERVER


class JsonErrors(RequestHandler):
    """aiohttp's connection protocol, answering what its parser refuses in JSON."""

    __slots__ = ()  # the same layout, so a connection's class can be switched to this

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if answered
        if status >= 500:
            code, text = "internal_error", HTTPStatus.INTERNAL_SERVER_ERROR.phrase
        else:  # the parser's message, whose later lines quote the raw bytes
            lines = (message or "").strip().splitlines() or [HTTPStatus.BAD_REQUEST.phrase]
            code, text = "bad_http", f"malformed HTTP request: {lines[0]}"
        body = json.dumps({"error": {"code": code, "message": text}})
        resp = web.Response(
            status=status,
            text=body,
            content_type="application/json",
            headers={"Server": SERVER},  # as every other answer (server/ops/middleware.py)
        )
        resp.force_close()
        return resp


def answer_in_json(protocol: RequestHandler) -> None:
    """Switch one connection's protocol to JsonErrors (aiohttp builds it; RequestHandler's
    constructor takes private arguments, and its slots allow no per-object method)."""
    protocol.__class__ = JsonErrors
