"""The log is written by a thread of its own (server/serving/logs.py): a reader that stops
reading costs log lines, counted and reported, never a request."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from server.serving.logs import QUEUE_BYTES, BackgroundHandler, JsonFormatter
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
            get_healthz(conn, f"early-{n}")
        # Now read. The writer resumes; ask until a new request's line gets out, so that
        # every line before it was logged, and is written or counted.
        chunks: list[bytes] = []
        reader = threading.Thread(target=drain, args=(proc.stderr.fileno(), chunks))
        reader.start()
        sent, deadline = REQUESTS, time.monotonic() + 10
        while b'"late-' not in b"".join(chunks):
            assert time.monotonic() < deadline, "no request's line got out"
            get_healthz(conn, f"late-{sent}")
            sent += 1
            time.sleep(0.05)
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


def get_healthz(conn: http.client.HTTPConnection, agent: str) -> None:
    conn.request("GET", "/healthz", headers={"User-Agent": agent + "x" * 200})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"


def drain(fd: int, into: list[bytes]) -> None:
    while chunk := os.read(fd, PIPE_BYTES):
        into.append(chunk)


def test_a_full_queue_drops_and_counts() -> None:
    """The writer is stuck on a full pipe; past the limit a line is dropped, and once the
    pipe is read the lines kept come out, then how many were not."""
    assert five_lines_through_a_full_pipe(blocking=True, limit=2 * len(b"line 0\n")) == [
        "line 0",
        "line 1",
        "3 log lines were dropped: the log's reader was not keeping up",
    ]


def test_a_non_blocking_stderr_that_is_full_loses_nothing() -> None:
    """A parent may hand over a stderr in non-blocking mode: the writer then waits for
    room rather than take "would block" for a closed log."""
    lines = five_lines_through_a_full_pipe(blocking=False, limit=QUEUE_BYTES)
    assert lines == [f"line {n}" for n in range(5)]


def five_lines_through_a_full_pipe(blocking: bool, limit: int) -> list[str]:
    """Five lines logged while the pipe is full; the lines that come out once it is read."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"-" * 4096)
    os.set_blocking(write_end, blocking)
    handler = BackgroundHandler(write_end, limit)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for n in range(5):
        handler.handle(logging.LogRecord("t", logging.INFO, "f", 1, "line %d", (n,), None))
    time.sleep(0.1)  # the writer has met the full pipe
    chunks: list[bytes] = []
    reader = threading.Thread(target=drain, args=(read_end, chunks))
    reader.start()
    handler.flush(timeout=5)
    handler.close()
    os.close(write_end)
    reader.join(5)
    os.close(read_end)
    return b"".join(chunks).lstrip(b"-").decode().splitlines()


def test_a_traceback_is_the_json_line_s_exception_and_flush_waits_for_it() -> None:
    read_end, write_end = os.pipe()
    handler = BackgroundHandler(write_end)
    handler.setFormatter(JsonFormatter())
    try:
        raise ValueError("the cause")
    except ValueError:
        record = logging.LogRecord("spigot", logging.ERROR, "f", 1, "failed %s", ("x",), None)
        record.exc_info = sys.exc_info()
        handler.handle(record)
    handler.flush(timeout=5)
    os.set_blocking(read_end, False)
    (written,) = os.read(read_end, PIPE_BYTES).splitlines()  # all there, without waiting
    line = json.loads(written)
    assert line["message"] == "failed x" and line["level"] == "error"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: the cause")
    handler.close()
    os.close(read_end)
    os.close(write_end)
