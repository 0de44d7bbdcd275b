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

import atexit
import copy
import json
import logging
import logging.handlers
import os
import queue
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
        elif record.exc_text:  # formatted already, before the record was queued
            line["exception"] = record.exc_text
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


FORMATTER = logging.Formatter()
# Records waiting for the writer. A record is formatted before it waits (QueueHandler's
# prepare), so each is a few hundred bytes and the queue a few hundred KiB at most.
QUEUE_RECORDS = 1024
# How long an exiting process waits for its last lines to be written.
EXIT_FLUSH_SECONDS = 2.0


class DroppingQueueHandler(logging.handlers.QueueHandler):
    """The stdlib's answer to handlers that block, with a bounded queue. When the log's
    reader is so slow that the queue is full, a record is dropped and counted rather
    than waited for: the writer says how many were lost once it can write again."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self._dropped = 0
        self._lock = threading.Lock()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Make the record plain data before another thread sees it: the message merged
        with its arguments, a traceback as text. Unlike the stdlib's own prepare, the
        traceback stays apart from the message, for the JSON lines' "exception"."""
        ready = copy.copy(record)
        ready.msg, ready.args = record.getMessage(), None
        if record.exc_info:
            ready.exc_text = record.exc_text or FORMATTER.formatException(record.exc_info)
        ready.exc_info = None
        return ready

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def take_dropped(self) -> int:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        return dropped


class LogWriter(threading.Thread):
    """Writes the queued records to a descriptor, for as long as its reader makes each
    write wait. It writes with os.write, not through sys.stderr and a logging.Handler:
    their locks would be held while it waits, and logging.shutdown and the interpreter's
    own flush at exit take both, so a reader that never reads would keep the process
    from exiting. A daemon, for the same reason; `close` gives the last lines a bounded
    time to get out."""

    def __init__(
        self,
        records: queue.Queue[logging.LogRecord | None],
        source: DroppingQueueHandler,
        formatter: logging.Formatter,
        fd: int,
    ) -> None:
        super().__init__(name="spigot-log", daemon=True)
        self.records, self.source, self.formatter, self.fd = records, source, formatter, fd

    def run(self) -> None:
        while (record := self.records.get()) is not None:
            if dropped := self.source.take_dropped():
                self.write(dropped_notice(dropped))
            self.write(record)
            self.records.task_done()
        if dropped := self.source.take_dropped():
            self.write(dropped_notice(dropped))

    def flush(self, timeout: float) -> None:
        """Wait, at most `timeout`, until every queued record is written."""
        deadline = time.monotonic() + timeout
        with self.records.all_tasks_done:
            while self.records.unfinished_tasks and (left := deadline - time.monotonic()) > 0:
                self.records.all_tasks_done.wait(left)

    def write(self, record: logging.LogRecord) -> None:
        line = memoryview((self.formatter.format(record) + "\n").encode("utf-8", "replace"))
        try:
            while line:
                line = line[os.write(self.fd, line) :]
        except OSError:  # stderr closed: there is nowhere left to say so
            pass

    def close(self, timeout: float = EXIT_FLUSH_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        try:
            self.records.put(None, timeout=timeout)
        except queue.Full:
            return
        self.join(max(0.0, deadline - time.monotonic()))


def dropped_notice(count: int) -> logging.LogRecord:
    return logging.LogRecord(
        "spigot", logging.WARNING, __file__, 0,
        "%d log lines were dropped: the log's reader was not keeping up", (count,), None,
    )  # fmt: skip


_writer: LogWriter | None = None


def flush(timeout: float = EXIT_FLUSH_SECONDS) -> None:
    """Let the queued lines out before a last word printed straight to stderr (a failed
    start, say), so that it is the last line, as it would be without the queue."""
    if _writer is not None:
        _writer.flush(timeout)


def configure(settings: Settings) -> None:
    global _writer
    formatter = (
        JsonFormatter()
        if settings.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUE_RECORDS)
    front = DroppingQueueHandler(records)
    writer = LogWriter(records, front, formatter, sys.stderr.fileno())
    writer.start()
    atexit.register(writer.close)
    _writer = writer
    root = logging.getLogger()
    root.handlers[:] = [front]
    root.setLevel(settings.log_level_number)
    logging.getLogger("aiohttp.server").addFilter(BadRequestsInOneLine())
    # The AWS SDK narrates at INFO (which credential source it found, every retry);
    # spigot's own lines say what matters, so the SDK speaks only of problems.
    for chatty in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(chatty).setLevel(max(settings.log_level_number, logging.WARNING))
