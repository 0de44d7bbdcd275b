"""The access log, one line a request, with every credential in the URL redacted.

aiohttp's own access log prints the request line as sent, and links carry their grant in
the query (`sig=`, `?access_token=` for EventSource): a log line would then be a working
credential for whoever reads the logs. Headers (Authorization, Cookie) are never logged.
Each line carries the request's id (X-Request-ID); under `--log-format json` its fields
are the JSON object's (server/serving/logs.py).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .ops.middleware import REQUEST_ID, route_of
from .protocol.links import redact


def target(request: web.BaseRequest) -> str:
    query = request.query_string
    return f"{request.path}?{redact(query)}" if query else request.path


class AccessLogger(AbstractAccessLogger):
    @property
    def enabled(self) -> bool:
        """aiohttp skips `log` (and timing the request) when this is false: at
        `--log-level warning` a line a request is work for nothing."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        version = f"{request.version.major}.{request.version.minor}"
        rid = request.get(REQUEST_ID, "-")
        where = target(request)
        route = route_of(request) if isinstance(request, web.Request) else "unmatched"
        self.logger.info(
            '%s "%s %s HTTP/%s" %d %d %.3fs "%s" %s',
            request.remote,
            request.method,
            where,
            version,
            response.status,
            response.body_length,
            time,
            request.headers.get("User-Agent", "-"),
            rid,
            extra={
                "request_id": rid,
                "method": request.method,
                "route": route,
                "target": where,
                "status": response.status,
                "bytes": response.body_length,
                "duration": round(time, 6),
            },
        )
