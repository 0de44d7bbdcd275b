"""splice(2) between two real loopback TCP connections: exact counts, early ends, stalls,
hang-ups, held-back tails, backpressure and descriptors. The proxy's tests run it end to
end."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import socket
import ssl
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.proxy import zerocopy
from tests.tools import require

MIB = 1 << 20
WINDOW = 1 * MIB
BACKENDS = ("local",)  # not about storage


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        near = socket.create_connection(listener.getsockname())
        far, _ = listener.accept()
    for s in (near, far):
        s.setblocking(False)
    return near, far


@dataclass
class Relay:
    """upstream -> src (spliced) dst -> client: the two sockets spigot would hold."""

    upstream: socket.socket
    src: socket.socket
    dst: socket.socket
    client: socket.socket

    async def send(self, data: bytes) -> None:
        await asyncio.get_running_loop().sock_sendall(self.upstream, data)

    async def receive(self, size: int) -> bytes:
        loop, got = asyncio.get_running_loop(), bytearray()
        while len(got) < size:
            chunk = await loop.sock_recv(self.client, min(MIB, size - len(got)))
            if not chunk:
                break
            got += chunk
        return bytes(got)

    def splice(self, count: int, idle: float = 5.0) -> asyncio.Task[None]:
        async def move() -> None:
            with zerocopy.Splice(self.src.fileno(), self.dst.fileno(), WINDOW) as splice:
                await splice.move(count, idle)

        return asyncio.create_task(move())


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    upstream, src = tcp_pair()
    dst, client = tcp_pair()
    yield Relay(upstream, src, dst, client)
    for s in (upstream, src, dst, client):
        s.close()


async def test_moves_exactly_count_bytes_and_leaves_the_rest(relay: Relay) -> None:
    body = os.urandom(24 * MIB)
    moving = relay.splice(len(body))
    sending = asyncio.create_task(relay.send(body + b"NEXT"))
    received = await relay.receive(len(body))
    await moving
    await sending
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()
    assert relay.src.recv(16) == b"NEXT"  # what follows the count stays in the source


async def test_a_source_that_ends_early_is_truncated(relay: Relay) -> None:
    moving = relay.splice(2000)
    await relay.send(b"x" * 1000)
    relay.upstream.shutdown(socket.SHUT_WR)
    with pytest.raises(zerocopy.Truncated):
        await moving
    assert await relay.receive(1000) == b"x" * 1000


async def test_a_silent_source_times_out(relay: Relay) -> None:
    with pytest.raises(TimeoutError):
        await relay.splice(1000, idle=0.3)


async def test_a_client_that_hung_up_fails_the_splice(relay: Relay) -> None:
    relay.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    relay.client.close()  # with a zero linger: a reset
    moving = relay.splice(64 * MIB)
    sending = asyncio.create_task(relay.send(b"y" * 64 * MIB))
    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        await moving
    sending.cancel()


async def test_a_trickle_is_passed_on_not_held_back(relay: Relay) -> None:
    """Pieces go out marked "more is coming", which lets the kernel hold a short one back
    until TCP's probe timer fires (200 ms or more). A source gone quiet must not leave the
    client waiting for that."""
    pieces = [bytes([65 + i]) * 100 for i in range(7)]
    moving = relay.splice(100 * len(pieces) + 1)
    delays = []
    for piece in pieces:
        start = time.monotonic()
        await relay.send(piece)
        assert await asyncio.wait_for(relay.receive(100), 2) == piece
        delays.append(time.monotonic() - start)
    assert not moving.done()
    assert statistics.median(delays) < 0.1, f"pieces were held back: {delays}"
    await relay.send(b"!")
    assert await relay.receive(1) == b"!"
    await asyncio.wait_for(moving, 2)


async def test_a_client_that_does_not_read_stops_the_source(relay: Relay) -> None:
    # Fixed socket buffers, so the kernel's autotuning cannot blur what is measured.
    for s in (relay.upstream, relay.src, relay.dst, relay.client):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    total = 96 * MIB
    body = os.urandom(total)
    moving = relay.splice(total)
    sent = 0
    view = memoryview(body)
    quiet = 0
    while quiet < 5:  # until the source has been unable to send for a while
        try:
            sent += relay.upstream.send(view[sent : sent + MIB])
            quiet = 0
        except BlockingIOError:
            quiet += 1
            await asyncio.sleep(0.1)
    # The 1 MiB pipe plus four socket buffers (the kernel doubles what is asked for, so at
    # most 2 MiB in all): nothing else may hold the body.
    assert sent < 4 * MIB, f"{sent / MIB:.1f} MiB left the source with nobody reading"
    sending = asyncio.create_task(relay.send(view[sent:].tobytes()))
    received = await relay.receive(total)
    await moving
    await sending
    assert hashlib.sha256(received).digest() == hashlib.sha256(body).digest()


async def test_flushed_waits_for_the_transports_buffer() -> None:
    near, far = tcp_pair()
    far.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, near)
    # Only the sink matters to flushed(); the source is never read.
    with zerocopy.Splice(far.fileno(), near.fileno(), WINDOW) as splice:
        transport.write(b"z" * (16 * MIB))  # far reads nothing yet: most of it is buffered
        assert transport.get_write_buffer_size() > 0
        flushing = asyncio.create_task(splice.flushed(transport))
        await asyncio.sleep(0.3)
        assert not flushing.done()
        got = 0
        while not flushing.done() or got < 16 * MIB:
            chunk = await loop.sock_recv(far, MIB)
            assert chunk
            got += len(chunk)
        assert got == 16 * MIB and transport.get_write_buffer_size() == 0
    transport.close()
    far.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes"),
            *("-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_only_plain_tcp_transports_are_spliced(certificate: tuple[Path, Path]) -> None:
    loop = asyncio.get_running_loop()
    near, far = tcp_pair()
    plain, _ = await loop.connect_accepted_socket(asyncio.Protocol, near)
    assert zerocopy.plain_socket(plain) == near.fileno()
    plain.close()
    far.close()
    assert zerocopy.plain_socket(None) is None

    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0, ssl=server_ctx)
    try:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        assert zerocopy.plain_socket(writer.transport) is None  # TLS: bytes must be decrypted
        writer.close()
    finally:
        server.close()

    unix_near, unix_far = socket.socketpair()
    unix, _ = await loop.connect_accepted_socket(asyncio.Protocol, unix_near)
    assert zerocopy.plain_socket(unix) is None
    unix.close()
    unix_far.close()


async def test_descriptors_are_taken_up_front_and_given_back(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with zerocopy.Splice(relay.src.fileno(), relay.dst.fileno(), WINDOW):
        assert len(os.listdir("/proc/self/fd")) == before + 4  # two sockets, one pipe
    assert len(os.listdir("/proc/self/fd")) == before

    def exhausted(*_: object) -> tuple[int, int]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "pipe2", exhausted)
    with pytest.raises(OSError, match="Too many open files"):
        zerocopy.Splice(relay.src.fileno(), relay.dst.fileno(), WINDOW)
    assert len(os.listdir("/proc/self/fd")) == before  # the duplicates made first are closed


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_send_file_follows_the_transports_buffer_and_sends_exactly_the_range(
    tmp_path: Path, loop_name: str
) -> None:
    """uvloop's downloads: what the transport buffered goes first, then exactly `count`
    bytes of the file from `offset`, through a full socket (the reader starts late); a
    file shorter than promised raises Truncated."""
    data = os.urandom(8 * MIB)
    path = tmp_path / "f"
    path.write_bytes(data)

    async def scenario() -> None:
        got = bytearray()
        done = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"head" * 100_000)  # more than the socket takes at once
            fd = os.open(path, os.O_RDONLY)  # a test file in the page cache: not blocking
            try:
                await zerocopy.send_file(writer.transport, fd, 1000, 5 * MIB)
                with pytest.raises(zerocopy.Truncated):
                    await zerocopy.send_file(writer.transport, fd, len(data) - 10, 20)
            finally:
                os.close(fd)
            writer.close()
            done.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.3)  # the server meets a full socket first
        while chunk := await reader.read(1 << 16):
            got += chunk
        await asyncio.wait_for(done.wait(), 5)
        writer.close()
        server.close()
        expected = b"head" * 100_000 + data[1000 : 1000 + 5 * MIB] + data[-10:]
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(expected).hexdigest()

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(scenario())
    else:
        asyncio.run(scenario())
