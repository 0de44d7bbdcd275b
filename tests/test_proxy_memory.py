"""Proxied bodies against clients that read slowly or not at all, in a spigot process (on
uvloop, the default), each of the three ways a body is relayed: spliced in the kernel,
decrypted into one window (a TLS upstream), and copied through aiohttp's reader.

- A slow client must slow the upstream, not fill the proxy's memory: 160 MiB at 5 MB/s.
- A client that stops reading is let go after --network-timeout, and so is its upstream.
- Relays one after another leave no memory behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import SpigotProcess, file_sha256, start_spigot, stop_spigot
from tests.processes import peak_rss
from tests.test_deploy_nginx import self_signed
from tests.tools import require

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


@dataclass
class Relay:
    """A spigot process relaying from an upstream in this test's loop, one way."""

    name: str
    tmp: Path
    data_dir: Path
    upstream: TestServer | None = None
    proxy: SpigotProcess | None = None

    async def start(self, app: web.Application, *args: str) -> None:
        """Serve `app` as the upstream (over TLS for "decrypted"), then start spigot."""
        env: dict[str, str] = {}
        context = None
        if self.name == "decrypted":
            cert, key = self_signed(self.tmp, "localhost", "127.0.0.1")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            env["SSL_CERT_FILE"] = str(cert)  # trusted as an operator's private CA would be
        self.upstream = TestServer(app, host="127.0.0.1")
        await self.upstream.start_server(ssl=context)
        mode = ("--proxy-no-splice",) if self.name == "copied" else ()
        flags = ("--insecure-proxy-allow-private", "--insecure-proxy-unsigned", *mode, *args)
        self.proxy = await asyncio.to_thread(start_spigot, self.data_dir, *flags, env=env)

    def path(self, upstream_path: str) -> str:
        assert self.upstream is not None
        return "/proxy?url=" + quote(str(self.upstream.make_url(upstream_path)), safe="")

    @property
    def address(self) -> tuple[str, int]:
        assert self.proxy is not None
        host, port = self.proxy.url.removeprefix("http://").split(":")
        return host, int(port)


@pytest.fixture(params=["spliced", "decrypted", "copied"])
async def relay(
    request: pytest.FixtureRequest, tmp_path: Path, data_dir: Path
) -> AsyncIterator[Relay]:
    made = Relay(request.param, tmp_path, data_dir)
    yield made
    if made.proxy is not None:
        await asyncio.to_thread(stop_spigot, made.proxy)
    if made.upstream is not None:
        await made.upstream.close()


async def test_slow_client_keeps_proxy_memory_bounded(relay: Relay) -> None:
    big = BigUpstream()
    app = web.Application()
    app.router.add_get("/big", big.serve)
    await relay.start(app)
    assert relay.proxy is not None
    before = peak_rss(relay.proxy.pid)
    received, digest = await slow_get(*relay.address, relay.path("/big"), big)
    after = peak_rss(relay.proxy.pid)
    expected = hashlib.sha256()
    for _ in range(SIZE // MIB):
        expected.update(BLOCK)
    assert received == SIZE and digest == expected.hexdigest()
    assert after - before < 16 * MIB, f"proxy grew by {(after - before) / MIB:.1f} MiB"


STALL = 2.0  # --network-timeout for the test below


async def test_a_client_that_stops_reading_is_let_go(relay: Relay) -> None:
    """It takes the headers and a little, then nothing: spigot must shut its connection
    and let go of the upstream once --network-timeout passes without progress. (spliced
    and decrypted bodies bypass the transport, so its own guard cannot see them.)"""
    ended = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = 1 << 40
        await resp.prepare(request)
        try:
            while True:
                await resp.write(BLOCK)
        finally:
            ended.set()

    app = web.Application()
    app.router.add_get("/endless", endless)
    await relay.start(app, "--network-timeout", f"{STALL}s")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, relay.address)
    with sock:
        request = f"GET {relay.path('/endless')} HTTP/1.1\r\nHost: x\r\n\r\n"
        # Taken before the request: spigot's clock may start before the first bytes reach
        # us (a copied relay's transport pauses as soon as the buffers fill, and our one
        # read below need not resume it), so a later mark could be up to a read too late.
        started = time.monotonic()
        await loop.sock_sendall(sock, request.encode())
        first = await loop.sock_recv(sock, 65536)
        assert first.startswith(b"HTTP/1.1 200 "), first[:200]
        # Reading nothing from here on. The socket watch polls each second.
        await asyncio.wait_for(ended.wait(), STALL + 10)
        assert time.monotonic() - started >= STALL  # not before the timeout
        # What was held in the buffers arrives, then the end: never 1 TiB.
        taken = len(first)
        async with asyncio.timeout(10):
            with contextlib.suppress(ConnectionResetError):
                while chunk := await loop.sock_recv(sock, 1 << 20):
                    taken += len(chunk)
        assert taken < 256 * MIB


async def test_relays_one_after_another_leave_no_memory_behind(relay: Relay) -> None:
    """Found on uvloop: its SSL protocol keeps the last buffered protocol it was given,
    and a window that referred back to its transport made a cycle the collector cannot
    free, 1 MiB of buffer each time."""
    payload = relay.tmp / "payload.bin"
    payload.write_bytes(b"".join(bytes([i]) * MIB for i in range(8)))  # a test's 8 MiB

    async def file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(payload, headers={"Content-Type": "video/mp4"})

    app = web.Application()
    app.router.add_get("/file", file)
    await relay.start(app)
    assert relay.proxy is not None
    url = relay.proxy.url + relay.path("/file")
    got = relay.tmp / "got.bin"
    curl = [require("curl"), "-sS", "--fail", "-o", str(got), url]

    def fetch() -> None:
        subprocess.run(curl, check=True, timeout=60)
        assert file_sha256(got) == file_sha256(payload)

    for _ in range(3):  # warm: the first relays load code and grow the heap once
        await asyncio.to_thread(fetch)
    before = peak_rss(relay.proxy.pid)
    for _ in range(16):
        await asyncio.to_thread(fetch)
    grown = peak_rss(relay.proxy.pid) - before
    assert grown < 6 * MIB, f"16 relays of 8 MiB grew the peak by {grown / MIB:.1f} MiB"
