"""Hostile and broken clients against a real `spigot serve`: heads that never end, bodies
that stop, readers that never read, floods of connections. Each ends within its timeout,
stalled PATCHes keep exactly what arrived, and a normal client is answered throughout."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SpigotProcess, start_spigot, stop_spigot

HEADER_TIMEOUT = 2.0
NETWORK_TIMEOUT = 3.0
TUS = {"Tus-Resumable": "1.0.0"}


def address(server: SpigotProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def raw(server: SpigotProcess, data: bytes, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(address(server), timeout=30, source_address=(source, 0))
    if data:
        sock.sendall(data)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server ended the connection within `seconds`, and what it said."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return True, got
            got += chunk
    except ConnectionResetError:
        return True, got
    finally:
        sock.close()
    return False, got


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def head(server: SpigotProcess, path: str) -> int:
    request = urllib.request.Request(f"{server.url}{path}", method="HEAD", headers=TUS)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.headers["Upload-Offset"])


def create(server: SpigotProcess, length: int) -> str:
    request = urllib.request.Request(
        f"{server.url}/files/", method="POST", headers={**TUS, "Upload-Length": str(length)}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return "/files/" + resp.headers["Location"].rsplit("/", 1)[1]


@pytest.fixture
def server(data_dir: Path) -> Iterator[SpigotProcess]:
    spigot = start_spigot(
        data_dir,
        "--header-timeout",
        f"{HEADER_TIMEOUT}s",
        "--network-timeout",
        f"{NETWORK_TIMEOUT}s",
    )
    yield spigot
    stop_spigot(spigot)


class Prober(threading.Thread):
    """A normal client asking /healthz every 100 ms, on a new connection each time."""

    def __init__(self, server: SpigotProcess) -> None:
        super().__init__(daemon=True)
        self.server, self.stop, self.worst, self.failures = server, threading.Event(), 0.0, []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"{self.server.url}/healthz", timeout=5) as resp:
                    assert resp.status == 200
            except Exception as exc:
                self.failures.append(repr(exc))
            self.worst = max(self.worst, time.monotonic() - started)
            time.sleep(0.1)


def test_half_heads_and_stalled_bodies_end_while_others_are_served(
    server: SpigotProcess, data_dir: Path
) -> None:
    prober = Prober(server)
    prober.start()
    heads = [raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(300)]
    heads_opened = time.monotonic()
    patches = []
    for i in range(50):
        path = create(server, 1 << 20)
        sent = 1000 + i * 37
        head_bytes = (
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            "Content-Type: application/offset+octet-stream\r\nContent-Length: 1048576\r\n\r\n"
        ).encode()
        patches.append((path, sent, raw(server, head_bytes + os.urandom(sent))))
    puts = [
        raw(server, b"PUT /files/stalled.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
            + os.urandom(5000))
        for _ in range(50)
    ]  # fmt: skip
    bodies_opened = time.monotonic()

    for sock in heads:
        done, said = closed_within(
            sock, max(0.1, heads_opened + HEADER_TIMEOUT + 2 - time.monotonic())
        )
        assert done, "a half-sent head outlived --header-timeout + 2 s"
        assert said == b""  # closed, not answered: there was no request
    for _, _, sock in patches:
        done, said = closed_within(
            sock, max(0.1, bodies_opened + NETWORK_TIMEOUT + 2 - time.monotonic())
        )
        assert done and status_of(said) == 408, said[:200]
        assert b'"body_timeout"' in said
    for sock in puts:
        done, said = closed_within(
            sock, max(0.1, bodies_opened + NETWORK_TIMEOUT + 2 - time.monotonic())
        )
        assert done and status_of(said) == 408, said[:200]
    prober.stop.set()
    prober.join()
    assert prober.failures == []
    assert prober.worst < 1.0, f"a normal request took {prober.worst:.2f} s"

    # every stalled PATCH kept exactly what arrived, and its lock is free again
    for path, sent, _ in patches:
        assert head(server, path) == sent
    # the stalled one-shot uploads left nothing
    with urllib.request.urlopen(f"{server.url}/files/", timeout=10) as resp:
        assert json.loads(resp.read()) == []
    leftovers = [p.name for p in data_dir.glob("*") if p.is_file() and "." not in p.name]
    assert len(leftovers) == len(patches)  # the tus uploads' data (beside .info, .lock)


def test_a_reader_that_takes_nothing_is_dropped(server: SpigotProcess, tmp_path: Path) -> None:
    body = os.urandom(64 << 20)
    put = urllib.request.Request(f"{server.url}/files/big.bin", data=body, method="PUT")
    with urllib.request.urlopen(put, timeout=30) as resp:
        file_id = json.loads(resp.read())["id"]
    sock = raw(server, f"GET /files/{file_id} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(NETWORK_TIMEOUT + 3)  # reading nothing
    done, said = closed_within(sock, 10)  # now read: a reset, or what was held, then the end
    assert done, "the server still held the connection of a reader that took nothing"
    assert len(said) < len(body) and status_of(said) in (0, 200)  # cut off, never whole
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as resp:
        assert resp.status == 200


def test_idle_keep_alive_connections_close(data_dir: Path) -> None:
    spigot = start_spigot(data_dir, "--keepalive-timeout", "1s")
    try:
        sock = raw(spigot, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        first = sock.recv(65536)
        assert status_of(first) == 200
        started = time.monotonic()
        done, _ = closed_within(sock, 5)
        assert done and 0.5 < time.monotonic() - started < 3
    finally:
        stop_spigot(spigot)


def test_connection_caps_answer_503_with_retry_after(data_dir: Path) -> None:
    spigot = start_spigot(data_dir, "--max-connections", "6", "--max-connections-per-ip", "3")
    try:
        mine = [raw(spigot, b"") for _ in range(3)]
        time.sleep(0.2)
        extra = raw(spigot, b"")
        done, said = closed_within(extra, 5)
        assert done and status_of(said) == 503
        assert b"Retry-After: 1\r\n" in said and b"application/json" in said
        assert json.loads(said.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_many_connections"
        # another address still gets in, up to the server's own cap
        others = [raw(spigot, b"", source="127.0.0.2") for _ in range(3)]
        time.sleep(0.2)
        full = raw(spigot, b"", source="127.0.0.3")
        done, said = closed_within(full, 5)
        assert done and status_of(said) == 503 and b"its 6 connections" in said
        for sock in mine + others:
            sock.close()
        time.sleep(0.3)
        with urllib.request.urlopen(f"{spigot.url}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        stop_spigot(spigot)
