"""Each connection's limits, below HTTP: how long a request head may take, how long a
reader may leave a response unread, and how many connections there may be at all.

aiohttp has a keep-alive timeout but no bound on a request head that never completes, and
none on a client that stops reading: a few hundred such connections would sit in a
worker forever. Every connection is wrapped in a `Guarded` protocol that:
- closes it if a request head has not arrived within --header-timeout of its first byte
  (or of the connection opening);
- aborts it if its send buffer stays full, the reader taking nothing, for
  --network-timeout;
- turns it away with a JSON 503 and Retry-After when --max-connections, or
  --max-connections-per-ip for its address, are already open.
Body silences are bounded one level up, where the body is read (server/bodies.py).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..settings import Settings
from .bad_http import answer_in_json

Factory = Callable[[], asyncio.Protocol]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def busy(why: str) -> bytes:
    body = json.dumps({"error": {"code": "too_many_connections", "message": why}}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Book:
    """Open connections, in all and per client address."""

    limit: int
    per_ip: int
    open: int = 0
    by_ip: Counter[str] = field(default_factory=Counter)

    def refusal(self, ip: str) -> str | None:
        if self.limit and self.open >= self.limit:
            return f"this server has its {self.limit} connections open; try again shortly"
        if self.per_ip and self.by_ip[ip] >= self.per_ip:
            return f"{ip} has its {self.per_ip} connections open; try again shortly"
        return None

    def add(self, ip: str) -> None:
        self.open += 1
        self.by_ip[ip] += 1

    def remove(self, ip: str) -> None:
        self.open -= 1
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]


READ_SIZE = 256 << 10  # what asyncio's and uvloop's transports read at most at once

# Every connection reads into this one buffer, and its bytes are copied out before the next
# read: the loop runs one read at a time, and get_buffer and buffer_updated come together.
_received = memoryview(bytearray(READ_SIZE))


class Guarded(asyncio.BufferedProtocol):
    """The connection's protocol, wrapping aiohttp's.

    It is a BufferedProtocol so that each connection's read size is ours to set
    (`read_size`). uvloop's transports read up to 256 KiB at a time into a Protocol, and
    the window a body's reader sets (server/bodies/chunks.py) only pauses the socket after
    a read: with many uploads at once each connection held a whole read beyond its 32 KiB
    share. bench/load.py with 256 uploads over S3 peaked at 229 MiB on uvloop that way, and
    at 167 MiB with reads sized here. The copy out of the shared buffer is the one uvloop
    makes for a Protocol anyway, and 4 KiB ranges measured the same CPU per request.
    """

    read_size = READ_SIZE

    def __init__(self, inner: asyncio.Protocol, settings: Settings, book: Book) -> None:
        self._inner: Any = inner
        self._header_timeout = settings.header_timeout
        self._network_timeout = settings.network_timeout
        self._book = book
        self._transport: asyncio.Transport | None = None
        self._ip = ""
        self._counted = False
        self._between = True  # no request head is being waited on by a handler
        self._head_timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None

    # -- asyncio.BufferedProtocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if isinstance(peer, tuple) else ""
        refusal = self._book.refusal(self._ip)
        if refusal is not None:
            transport.write(busy(refusal))
            transport.close()
            self._inner = None
            return
        self._book.add(self._ip)
        self._counted = True
        self._inner.connection_made(transport)
        self._arm_head()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _received[: self.read_size]

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_received[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._between and self._head_timer is None:
            self._arm_head()  # the first byte of the next request on a kept-alive connection
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted:
            self._counted = False
            self._book.remove(self._ip)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()
        if self._network_timeout and self._write_timer is None:
            loop = asyncio.get_running_loop()
            self._write_timer = loop.call_later(self._network_timeout, self._abort)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        if self._inner is not None:
            self._inner.resume_writing()

    # -- what the request middleware tells it ---------------------------------------------

    def head_arrived(self) -> None:
        self._between = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def request_done(self) -> None:
        self._between = True

    # -- timers -----------------------------------------------------------------------------

    def _arm_head(self) -> None:
        if self._header_timeout:
            loop = asyncio.get_running_loop()
            self._head_timer = loop.call_later(self._header_timeout, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        if self._between and self._transport is not None:
            self._transport.close()

    def _abort(self) -> None:
        self._write_timer = None
        if self._transport is not None:
            self._transport.abort()  # a reader that takes nothing is not waited on

    def _disarm(self) -> None:
        for timer in (self._head_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._write_timer = None


def guarded(factory: Factory, settings: Settings) -> Callable[[], Guarded]:
    book = Book(settings.max_connections, settings.max_connections_per_ip)

    def make() -> Guarded:
        inner = factory()
        if isinstance(inner, RequestHandler):
            answer_in_json(inner)
        return Guarded(inner, settings, book)

    return make


@web.middleware
async def mark(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The head has arrived: its timer stops; the next one starts with the next request."""
    transport = request.transport
    protocol = transport.get_protocol() if transport is not None else None
    if isinstance(protocol, Guarded):
        protocol.head_arrived()
    try:
        return await handler(request)
    finally:
        if isinstance(protocol, Guarded):
            protocol.request_done()
