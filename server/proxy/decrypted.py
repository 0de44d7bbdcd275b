"""Relaying a TLS upstream's body with one copy in the process: decrypted into a window,
written to the client's socket from it.

Through aiohttp's reader, each TLS read is decrypted into new bytes objects, joined into
one, copied again by the HTTP parser, queued in a StreamReader and written through the
client's transport. On the TLS bench (bench/proxy_tls.py) perf put that glue at about a
fifth of the relay's CPU, beside OpenSSL's own work. Once the response's headers are
parsed, the body is nothing but bytes, so here the upstream's TLS transport is handed a
BufferedProtocol in aiohttp's place: OpenSSL decrypts straight into one fixed window, and
the window goes to a duplicate of the client's socket with os.write.

The window is the backpressure. When it is full the TLS transport stops reading, and it
reads again only once the client has taken everything in it, so a slow client slows the
upstream and memory stays at one window per relay. As with splice, the connection cannot
go back to aiohttp's pool afterwards: its parser never saw these bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import cast

import aiohttp
from aiohttp import web

from ..netio import duplicate
from .zerocopy import Truncated, flushed, plain_socket, ready


def usable(request: web.Request, upstream: aiohttp.ClientResponse) -> bool:
    """Whether the body can take this path: framed by Content-Length alone, from a TLS
    upstream (a plain one is spliced), to a client on a plain socket."""
    if upstream.content_length is None or "Transfer-Encoding" in upstream.headers:
        return False
    connection = upstream.connection
    if connection is None or connection.transport is None or upstream.content.is_eof():
        return False
    source = connection.transport
    if source.is_closing() or source.get_extra_info("sslcontext") is None:
        return False
    return plain_socket(request.transport) is not None


class Window(asyncio.BufferedProtocol):
    """The upstream's protocol once its body starts: bytes land in `[start, end)` of one
    buffer, and the transport pauses while the buffer is full."""

    def __init__(self, transport: asyncio.ReadTransport, size: int) -> None:
        self._transport: asyncio.ReadTransport | None = transport
        self._buffer = memoryview(bytearray(size))
        self._start = self._end = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.ended = False  # the upstream closed, or sent EOF
        self.error: BaseException | None = None

    # the transport's side

    def get_buffer(self, sizehint: int) -> memoryview:
        # Empty only while paused, when the SSL protocols do not call (both accept an empty
        # buffer, and read nothing into it).
        return self._buffer[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self._end == len(self._buffer) and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: BaseException | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # the relay's side

    async def filled(self, idle: float) -> memoryview:
        """The bytes received and not yet taken; waits up to `idle` seconds for some.
        Raises Truncated if the upstream ends first."""
        while self._start == self._end:
            if self.ended:
                raise Truncated("the upstream closed before the end of the body") from self.error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(idle):
                    await self._waiter
            finally:
                self._waiter = None
        return self._buffer[self._start : self._end]

    def close(self) -> None:
        """Let go of the buffer and the transport. uvloop's SSL protocol keeps the bound
        methods of the last buffered protocol it had past set_protocol(), and a reference
        back to the transport would make a cycle the collector cannot free (uvloop's
        classes are not traversed): found as 1 MiB more RSS per relay."""
        self._transport = None
        self._buffer = memoryview(b"")
        self._start = self._end = 0
        self.ended = True

    def taken(self, nbytes: int) -> None:
        """`nbytes` of what `filled` gave are sent. An emptied window starts over at its
        beginning, and a paused transport reads again."""
        self._start += nbytes
        if self._start == self._end:
            self._start = self._end = 0
            if self._paused and self._transport is not None and not self.ended:
                self._paused = False
                self._transport.resume_reading()


async def relay_decrypted(
    request: web.Request,
    resp: web.StreamResponse,
    upstream: aiohttp.ClientResponse,
    window: int,
    idle: float,
) -> int:
    """Send what aiohttp has already read of the body, then the rest through a Window.
    The caller has checked `usable`."""
    connection = upstream.connection
    assert connection is not None and upstream.content_length is not None
    # Typed for asyncio's transports; uvloop's have the same methods but are not instances.
    source = cast(asyncio.ReadTransport, connection.transport)
    sink = cast(asyncio.WriteTransport, request.transport)
    # As with splice: take what is buffered and swap the protocol with no await between,
    # so every later byte lands in the window. aiohttp's protocol is paused first, which
    # also stops its read timer; the window's `idle` replaces it.
    head = b"".join(iter(upstream.content.read_nowait, b""))
    remaining = upstream.content_length - len(head)
    if not remaining:
        await resp.write(head)
        return len(head)
    parser = connection.protocol
    assert parser is not None
    parser.pause_reading()
    received = Window(source, window)
    source.set_protocol(received)
    source.resume_reading()
    try:
        await resp.write(head)  # also sends the headers
        loop = asyncio.get_running_loop()
        with contextlib.ExitStack() as opened:
            fd = plain_socket(sink)
            if fd is None:
                raise ConnectionResetError("the client's connection closed")
            dst = duplicate(opened, fd).fileno()
            await flushed(sink, dst)
            left = remaining
            while left:
                # Bytes past the promised length would be the upstream's error: not sent.
                pending = (await received.filled(idle))[:left]
                try:
                    sent = os.write(dst, pending)
                except BlockingIOError:
                    await ready(loop.add_writer, loop.remove_writer, dst, None)
                    continue
                received.taken(sent)
                left -= sent
    finally:
        # aiohttp's protocol gets the transport back, to see it closed and let go of it.
        source.set_protocol(parser)
        received.close()
        upstream.close()
    return len(head) + remaining
