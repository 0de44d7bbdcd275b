"""A slow client must slow the upstream, not fill the proxy's memory: 160 MiB at 5 MB/s,
relayed both ways (spliced in the kernel, and copied through the process)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import start_spigot, stop_spigot
from tests.processes import peak_rss

BACKENDS = ("local",)  # the S3 backend has its own tests of this kind

MIB = 1 << 20
SIZE = 160 * MIB  # 32 s at RATE: far past the 64 MiB an unthrottled upstream would run ahead
RATE = 5_000_000  # bytes per second
BLOCK = bytes(range(256)) * 4096  # 1 MiB


class BigUpstream:
    def __init__(self) -> None:
        self.sent = 0

    async def serve(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = SIZE
        await resp.prepare(request)
        for _ in range(SIZE // MIB):
            await resp.write(BLOCK)  # waits whenever the proxy stops reading
            self.sent += MIB
        return resp


async def slow_get(host: str, port: int, path: str, upstream: BigUpstream) -> tuple[int, str]:
    """Read at RATE; returns what arrived and its sha256, and checks along the way that the
    upstream never runs far ahead of the reader."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=256 * 1024)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    digest, received = hashlib.sha256(), 0
    tick = 0.1
    while chunk := await reader.read(int(RATE * tick)):
        digest.update(chunk)
        received += len(chunk)
        # What is in between: the relay's window and the kernel's socket buffers on both
        # hops, which autotune up to a few tens of MiB on loopback. Unthrottled, the
        # upstream would be hundreds of MiB ahead within seconds.
        ahead = upstream.sent - received
        assert ahead < 64 * MIB, f"the upstream ran {ahead / MIB:.0f} MiB ahead of the client"
        await asyncio.sleep(len(chunk) / RATE)
    writer.close()
    return received, digest.hexdigest()


@pytest.mark.parametrize("relay_args", [(), ("--proxy-no-splice",)], ids=["spliced", "copied"])
async def test_slow_client_keeps_proxy_memory_bounded(
    data_dir: Path, relay_args: tuple[str, ...]
) -> None:
    big = BigUpstream()
    app = web.Application()
    app.router.add_get("/big", big.serve)
    upstream = TestServer(app, host="127.0.0.1")
    await upstream.start_server()
    proxy = await asyncio.to_thread(
        start_spigot,
        data_dir,
        "--insecure-proxy-allow-private",
        "--insecure-proxy-unsigned",
        *relay_args,
    )
    try:
        host, port = proxy.url.removeprefix("http://").split(":")
        path = "/proxy?url=" + quote(str(upstream.make_url("/big")), safe="")
        before = peak_rss(proxy.pid)
        received, digest = await slow_get(host, int(port), path, big)
        after = peak_rss(proxy.pid)
    finally:
        await asyncio.to_thread(stop_spigot, proxy)
        await upstream.close()
    expected = hashlib.sha256()
    for _ in range(SIZE // MIB):
        expected.update(BLOCK)
    assert received == SIZE and digest == expected.hexdigest()
    assert after - before < 16 * MIB, f"proxy grew by {(after - before) / MIB:.1f} MiB"
