"""Many uploads at once, each stalled half-way: spigot's memory must grow by a bounded share
per connection, not by what each client has sent (in a spigot process, on uvloop).

Two things once held a body's bytes per connection here:
- a body taken from the socket (server/bodies/direct.py) kept what aiohttp had read before
  it, up to a few hundred KiB, until the body ended;
- uvloop's transports read up to 256 KiB at a time, past the small window each of many
  uploads gets (server/serving/guard.py now sizes each read).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.bodies.chunks import _set_recv_size
from server.serving.guard import READ_SIZE, Book, Guarded
from server.settings import Settings
from tests.conftest import SpigotProcess, start_spigot, stop_spigot

BACKENDS = ("local", "s3")

KIB, MIB = 1 << 10, 1 << 20
UPLOADS = 128
SIZE = 1 * MIB  # declared; over the direct receive's 1 MiB minimum on local disk
FIRST = 512 * KIB  # what each sends before it stalls
# Per stalled upload, measured 2026-12-02 (128 at once): local disk 185-196 KiB (399 when
# the direct receive kept aiohttp's read-ahead), S3 303-339 KiB (417 with uvloop's reads of
# 256 KiB). What is left is each connection's handler, its share of the receive and spool
# budgets, and heap the allocator keeps (malloc_trim gave back 26 MiB of S3's 63).
PER_UPLOAD = {"local": 300 * KIB, "s3": 460 * KIB}


@pytest.fixture
def server(data_dir: Path, backend_args: tuple[str, ...]) -> Iterator[SpigotProcess]:
    spigot = start_spigot(data_dir, *backend_args, "--max-connections-per-ip", "0")
    yield spigot
    stop_spigot(spigot)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * KIB
    raise RuntimeError("no VmRSS")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return bytes(resp.read())


def body(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (SIZE // 32)


async def test_stalled_uploads_hold_a_bounded_share_each(
    server: SpigotProcess, backend: str
) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    assert await asyncio.to_thread(fetch, f"{server.url}/healthz")
    before = rss(server.pid)
    streams = []
    for i in range(UPLOADS):
        reader, writer = await asyncio.open_connection(host, int(port))
        head = f"PUT /files/u{i}.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n"
        writer.write(head.encode() + body(i)[:FIRST])
        streams.append((reader, writer))
    await asyncio.sleep(3)  # every first half is in spigot's hands, and then some
    held = rss(server.pid) - before
    for i, (_, writer) in enumerate(streams):
        writer.write(body(i)[FIRST:])
    ids = []
    for reader, writer in streams:
        status = await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)
        assert status.startswith(b"HTTP/1.1 201 "), status
        headers = await reader.readuntil(b"\r\n\r\n")
        length = int(headers.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        ids.append(json.loads(await reader.readexactly(length))["id"])
        writer.close()
    for i in (0, UPLOADS - 1):
        got = await asyncio.to_thread(fetch, f"{server.url}/files/{ids[i]}")
        assert hashlib.sha256(got).digest() == hashlib.sha256(body(i)).digest()
    per = held / UPLOADS / KIB
    assert held < UPLOADS * PER_UPLOAD[backend], f"{per:.0f} KiB per stalled upload"


class Inner(asyncio.Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


class Transport:
    """What _set_recv_size looks at: the transport's protocol."""

    def __init__(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.protocol


def test_the_connection_protocol_reads_no_more_than_the_body_s_window() -> None:
    inner = Inner()
    guarded = Guarded(inner, Settings(header_timeout=0), Book(0, 0))
    assert len(guarded.get_buffer(-1)) == READ_SIZE  # before a body sets its window
    _set_recv_size(Transport(guarded), 32 * KIB)  # type: ignore[arg-type]
    buffer = guarded.get_buffer(1 << 20)
    assert len(buffer) == 32 * KIB  # whatever the transport suggests
    buffer[:5] = b"hello"
    guarded.buffer_updated(5)
    buffer = guarded.get_buffer(-1)  # the next read reuses the buffer: the bytes were copied
    buffer[:5] = b"world"
    guarded.buffer_updated(5)
    assert inner.received == [b"hello", b"world"]
    assert all(type(data) is bytes for data in inner.received)
