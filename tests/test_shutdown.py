"""Graceful shutdown of a real `spigot serve` process, on both backends.

On SIGTERM spigot stops accepting connections and gives requests in flight up to
--shutdown-timeout. A one-shot upload that finishes in time is complete, and one that does
not leaves nothing. A PATCH cut at the deadline keeps every byte it stored, and HEAD says
so after a restart. Event streams get a last comment and close at once. A second SIGTERM
exits at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import SpigotProcess, start_spigot, stop_spigot

MIB = 1 << 20


class Raw:
    """One HTTP/1.1 request whose body is sent by hand, so a test can stop halfway."""

    def __init__(self, url: str, method: str, path: str, headers: dict[str, str]) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, bytes]:
        """The status and whatever body came, or (0, b"") if the connection just closed."""
        got = b""
        try:
            while chunk := self.sock.recv(65536):
                got += chunk
                head, sep, body = got.partition(b"\r\n\r\n")
                if sep and b"content-length" in head.lower():
                    length = int(
                        next(
                            line.split(b":", 1)[1]
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length")
                        )
                    )
                    if len(body) >= length:
                        break
        except (ConnectionResetError, TimeoutError):
            pass
        finally:
            self.sock.close()
        if not got:
            return 0, b""
        return int(got.split(b" ", 2)[1]), got.partition(b"\r\n\r\n")[2]


def exited_within(server: SpigotProcess, seconds: float) -> int:
    return server.proc.wait(seconds)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def listing(server: SpigotProcess) -> list[dict[str, object]]:
    return json.loads(get(f"{server.url}/files/")[2])


def test_a_one_shot_upload_that_finishes_in_time_is_complete(
    data_dir: Path, backend_args: tuple[str, ...]
) -> None:
    server = start_spigot(data_dir, *backend_args, "--shutdown-timeout", "20s")
    data = os.urandom(6 * MIB)
    up = Raw(server.url, "PUT", "/files/kept.bin", {"Content-Length": str(len(data))})
    up.send(data[: 2 * MIB])
    time.sleep(0.5)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(OSError):  # no longer listening
        socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=2)
    up.send(data[2 * MIB :])
    status, body = up.response()
    assert status == 201, body
    assert json.loads(body)["sha256"] == hashlib.sha256(data).hexdigest()
    assert exited_within(server, 10) == 0
    again = start_spigot(data_dir, *backend_args)
    try:
        file_id = json.loads(body)["id"]
        status, _, got = get(f"{again.url}/files/{file_id}")
        assert status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    finally:
        stop_spigot(again)


def test_a_one_shot_upload_cut_at_the_deadline_leaves_nothing(
    data_dir: Path, backend_args: tuple[str, ...]
) -> None:
    server = start_spigot(data_dir, *backend_args, "--shutdown-timeout", "1s")
    up = Raw(server.url, "PUT", "/files/cut.bin", {"Content-Length": str(8 * MIB)})
    up.send(os.urandom(3 * MIB))
    time.sleep(0.5)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert exited_within(server, 10) == 0
    assert time.monotonic() - started < 5
    status, _ = up.response()
    assert status in (0, 503)  # cut off, or told so
    again = start_spigot(data_dir, *backend_args)
    try:
        assert listing(again) == []
        if not backend_args:  # local disk: not a byte of it anywhere
            leftovers = [p for p in data_dir.rglob("*") if p.is_file()]
            assert leftovers == [], leftovers
    finally:
        stop_spigot(again)


def test_a_patch_cut_at_the_deadline_keeps_its_bytes(
    data_dir: Path, backend_args: tuple[str, ...]
) -> None:
    server = start_spigot(data_dir, *backend_args, "--shutdown-timeout", "1s")
    data = os.urandom(8 * MIB)
    tus = {"Tus-Resumable": "1.0.0"}
    made = urllib.request.Request(
        f"{server.url}/files/", method="POST", headers={**tus, "Upload-Length": str(len(data))}
    )
    with urllib.request.urlopen(made, timeout=10) as resp:
        path = resp.headers["Location"].split("/files/", 1)[1]
    headers = {
        **tus,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(len(data)),
    }
    patch = Raw(server.url, "PATCH", f"/files/{path}", headers)
    sent = 5 * MIB + 12345
    patch.send(data[:sent])
    time.sleep(1.0)  # all of it in spigot's hands
    server.proc.send_signal(signal.SIGTERM)
    assert exited_within(server, 10) == 0
    patch.response()
    again = start_spigot(data_dir, *backend_args)
    try:
        head = urllib.request.Request(f"{again.url}/files/{path}", method="HEAD", headers=tus)
        with urllib.request.urlopen(head, timeout=10) as resp:
            assert resp.headers["Upload-Offset"] == str(sent)
        rest = urllib.request.Request(
            f"{again.url}/files/{path}",
            method="PATCH",
            data=data[sent:],
            headers={
                **tus,
                "Upload-Offset": str(sent),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        with urllib.request.urlopen(rest, timeout=30) as resp:
            assert resp.status == 204
        status, headers_got, got = get(f"{again.url}/files/{path}")
        assert status == 200 and got == data
        assert headers_got["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    finally:
        stop_spigot(again)


def test_event_streams_end_with_a_comment_and_do_not_hold_the_drain(
    data_dir: Path, backend_args: tuple[str, ...]
) -> None:
    server = start_spigot(data_dir, *backend_args, "--shutdown-timeout", "30s")
    made = urllib.request.Request(
        f"{server.url}/files/",
        method="POST",
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "10"},
    )
    with urllib.request.urlopen(made, timeout=10) as resp:
        path = resp.headers["Location"].split("/files/", 1)[1]
    stream = urllib.request.urlopen(f"{server.url}/files/{path}/events", timeout=10)
    first = stream.readline()
    assert first.startswith(b"id: ")
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    rest = stream.read()  # to the end: the stream closes
    assert rest.endswith(b": spigot is shutting down; reconnect with Last-Event-ID\n\n")
    assert exited_within(server, 10) == 0
    assert time.monotonic() - started < 5


def test_a_second_sigterm_exits_at_once(data_dir: Path, backend_args: tuple[str, ...]) -> None:
    server = start_spigot(data_dir, *backend_args, "--shutdown-timeout", "60s")
    up = Raw(server.url, "PUT", "/files/slow.bin", {"Content-Length": str(8 * MIB)})
    up.send(b"x" * MIB)
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert server.proc.poll() is None  # draining: the upload may still finish
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert exited_within(server, 5) == 1
    assert time.monotonic() - started < 2
    up.response()
