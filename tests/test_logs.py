"""The log is written by a thread of its own (server/serving/logs.py): a reader that stops
reading costs log lines, counted and reported, never a request."""

from __future__ import annotations

import http.client
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from server.serving.logs import DroppingQueueHandler, JsonFormatter, LogWriter
from tests import processes
from tests.conftest import ROOT

PIPE_BYTES = 64 * 1024  # Linux's default pipe buffer
REQUESTS = 2000  # each logs a line of more than 250 bytes: 8 pipes' worth


def test_a_log_nobody_reads_does_not_stop_the_server(data_dir: Path) -> None:
    """stderr is a pipe the test never reads while it sends requests, each of which logs an
    access line: eight times the pipe's buffer. Before the log had its own thread, the
    server stopped at its ~430th request, in the write of a log line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--storage", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "SPIGOT_LOG_LEVEL": "info"},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().split()[2].decode()
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        for n in range(REQUESTS):
            get_healthz(conn, n)
        # Now read. The writer resumes; ask until a request's line gets out, which means
        # everything logged before it is written or counted.
        chunks: list[bytes] = []
        reader = threading.Thread(target=drain, args=(proc.stderr.fileno(), chunks))
        reader.start()
        sent, deadline = REQUESTS, time.monotonic() + 10
        while f'"{sent - 1:05d}x'.encode() not in b"".join(chunks):
            assert time.monotonic() < deadline, "no request's line got out"
            time.sleep(0.05)
            get_healthz(conn, sent)
            sent += 1
        conn.close()
    finally:
        processes.stop(proc)
    assert proc.returncode == 0
    reader.join(10)
    lines = b"".join(chunks).decode().splitlines()
    dropped = sum(
        int(line.split(" WARNING spigot ")[1].split()[0]) for line in lines if "dropped" in line
    )
    written = sum('"GET /healthz HTTP/1.1" 200' in line for line in lines)
    assert dropped > 0 and written > 0
    assert dropped + written == sent  # each request's line is written or counted


def get_healthz(conn: http.client.HTTPConnection, n: int) -> None:
    conn.request("GET", "/healthz", headers={"User-Agent": f"{n:05d}" + "x" * 200})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"


def drain(fd: int, into: list[bytes]) -> None:
    while chunk := os.read(fd, PIPE_BYTES):
        into.append(chunk)


def test_a_full_queue_drops_and_counts() -> None:
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(2)
    handler = DroppingQueueHandler(records)
    log = logging.getLogger("tests.logs.full")
    log.addHandler(handler)
    log.propagate = False
    try:
        for n in range(5):
            log.warning("line %d", n)
    finally:
        log.removeHandler(handler)
    assert [r.msg for r in (records.get_nowait(), records.get_nowait())] == ["line 0", "line 1"]
    assert handler.take_dropped() == 3
    assert handler.take_dropped() == 0


def test_a_queued_traceback_stays_the_json_line_s_exception() -> None:
    """The record is made plain data before it is queued, the traceback text apart from
    the message, so a JSON line's "message" stays one line; `flush` returns once it is
    written."""
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(4)
    handler = DroppingQueueHandler(records)
    read_end, write_end = os.pipe()
    writer = LogWriter(records, handler, JsonFormatter(), write_end)
    writer.start()
    try:
        raise ValueError("the cause")
    except ValueError:
        record = logging.LogRecord("spigot", logging.ERROR, "f", 1, "failed %s", ("x",), None)
        record.exc_info = sys.exc_info()
        handler.handle(record)
    writer.flush(timeout=5)
    os.set_blocking(read_end, False)
    (written,) = os.read(read_end, PIPE_BYTES).splitlines()  # all there, without waiting
    line = json.loads(written)
    assert line["message"] == "failed x" and line["level"] == "error"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: the cause")
    writer.close()
    assert not writer.is_alive()
    os.close(read_end)
    os.close(write_end)
