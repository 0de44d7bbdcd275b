"""Logging for `spigot serve`: one line per record, as text or as JSON.

`--log-format json` writes one object per line (time, level, logger, message, and for the
access log the request's id, method, route, status, bytes and duration), which log
shippers read without a parser of their own. Nothing here ever sees a credential: the
access log is given the redacted target (server/accesslog.py) and never headers.

Records are written by a thread of their own, never by the event loop: a log is a pipe
or a socket (journald, a container runtime, `2>&1 | tee`), and a reader that falls
behind would otherwise stop every request at its next log line.
"""

from __future__ import annotations

import json
import logging
import os
import select
import sys
import threading
import time
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


# Lines waiting for the writer, at most; past it a line is dropped and counted. About a
# thousand access lines: what a reader may fall behind by before anything is lost.
QUEUE_BYTES = 256 * 1024
# The writer lets lines gather this long after the first, then writes them all at once:
# one write and one wake-up a batch, where a thread hand-off a line cost a busy server a
# quarter of its small requests (measured with wrk on 4 KiB ranges, the access log on).
BATCH_SECONDS = 0.01
# How long an exiting process waits for its last lines to be written.
EXIT_FLUSH_SECONDS = 2.0


class BackgroundHandler(logging.Handler):
    """Formats a record in the thread that logs it, as any handler does, and leaves the
    writing to a thread of its own. The writer uses os.write on the descriptor, not
    sys.stderr: a stream's lock, held while its reader makes a write wait, is one that
    the interpreter's flush at exit takes too.

    When the reader is so slow that QUEUE_BYTES wait, a line is dropped rather than
    waited for, and the writer says how many were lost once it can write again.
    logging.shutdown, at exit, calls `flush` and `close`; both wait a bounded time."""

    def __init__(self, fd: int, limit: int = QUEUE_BYTES) -> None:
        super().__init__()
        self.fd, self.limit = fd, limit
        self._lines: list[bytes] = []
        self._queued = self._dropped = 0
        self._state = threading.Condition()  # guards the three above
        self._wake = threading.Event()
        self._closing = False
        self._writer = threading.Thread(target=self._write_batches, name="spigot-log", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception:  # as any handler: a record that cannot be formatted is reported
            self.handleError(record)
            return
        with self._state:
            if self._queued + len(line) > self.limit:
                self._dropped += 1
                return
            self._lines.append(line)
            self._queued += len(line)
        if not self._wake.is_set():  # one set a batch: the writer clears it
            self._wake.set()

    def _write_batches(self) -> None:
        while True:
            self._wake.wait()
            if not self._closing:
                time.sleep(BATCH_SECONDS)
            self._wake.clear()
            with self._state:
                lines, self._lines = self._lines, []
                dropped, self._dropped = self._dropped, 0
            taken = sum(map(len, lines))
            if dropped:  # they were dropped after these were queued
                lines.append(dropped_notice(dropped, self.formatter))
            self._write(b"".join(lines))
            with self._state:
                self._queued -= taken
                self._state.notify_all()
            if self._closing and not self._lines:
                return

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:  # a stderr its parent made non-blocking: wait here
                select.select([], [self.fd], [], 1.0)
            except OSError:  # stderr closed: there is nowhere left to say so
                return

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> None:
        """Wait, at most `timeout`, until every line logged so far is written."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._state:
            while self._queued and (left := deadline - time.monotonic()) > 0:
                self._state.wait(left)

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._writer.join(EXIT_FLUSH_SECONDS)
        super().close()


def dropped_notice(count: int, formatter: logging.Formatter | None) -> bytes:
    record = logging.LogRecord(
        "spigot", logging.WARNING, __file__, 0,
        "%d log lines were dropped: the log's reader was not keeping up", (count,), None,
    )  # fmt: skip
    return ((formatter or logging.Formatter()).format(record) + "\n").encode()


_handler: BackgroundHandler | None = None


def flush(timeout: float = EXIT_FLUSH_SECONDS) -> None:
    """Let the queued lines out before a last word printed straight to stderr (a failed
    start, say), so that it is the last line, as it would be without the queue."""
    if _handler is not None:
        _handler.flush(timeout)


def configure(settings: Settings) -> None:
    global _handler
    front = BackgroundHandler(sys.stderr.fileno())
    if settings.log_format == "json":
        front.setFormatter(JsonFormatter())
    else:
        front.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    _handler = front
    root = logging.getLogger()
    root.handlers[:] = [front]
    root.setLevel(settings.log_level_number)
    logging.getLogger("aiohttp.server").addFilter(BadRequestsInOneLine())
    # The AWS SDK narrates at INFO (which credential source it found, every retry);
    # spigot's own lines say what matters, so the SDK speaks only of problems.
    for chatty in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(chatty).setLevel(max(settings.log_level_number, logging.WARNING))
