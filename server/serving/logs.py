"""Logging for `spigot serve`: one line per record, as text or as JSON.

`--log-format json` writes one object per line (time, level, logger, message, and for the
access log the request's id, method, route, status, bytes and duration), which log
shippers read without a parser of their own. Nothing here ever sees a credential: the
access log is given the redacted target (server/accesslog.py) and never headers.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from ..settings import Settings

# What an access-log record carries beyond its message (server/accesslog.py sets them).
ACCESS_FIELDS = ("request_id", "method", "route", "target", "status", "bytes", "duration")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"))


class BadRequestsInOneLine(logging.Filter):
    """aiohttp logs every malformed request at ERROR with a traceback. Anyone can send
    those, as fast as they like, so each becomes one INFO line, as nginx's "client sent
    invalid request": a hostile client cannot flood the log, or block a server whose log
    is a pipe nobody drains."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        record.msg, record.args = "bad request from %s: %s", (remote, first)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger().isEnabledFor(logging.INFO)


def configure(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level_number)
    logging.getLogger("aiohttp.server").addFilter(BadRequestsInOneLine())
    # The AWS SDK narrates at INFO (which credential source it found, every retry);
    # spigot's own lines say what matters, so the SDK speaks only of problems.
    for chatty in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(chatty).setLevel(max(settings.log_level_number, logging.WARNING))
