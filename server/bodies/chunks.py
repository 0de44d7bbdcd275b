"""Request bodies as bounded async streams of chunks, with the per-request cap enforced live.

Nothing here ever holds more than one network chunk: aiohttp's StreamReader pauses the socket
when its small buffer fills, so a slow disk slows the client down instead of queueing bytes.

Every read waits at most `--network-timeout` (tusd's rolling read deadline): a client that
stops sending mid-body gets 408 and its connection closed. What that leaves depends on the
caller: a one-shot upload is removed, a tus PATCH keeps what it stored, and either way the
upload's lock is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from aiohttp import BodyPartReader, HttpVersion11, MultipartReader, StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import EmptyStreamReader
from aiohttp.typedefs import Handler

from storage.base import ByteSink
from storage.budget import BatchBudget
from storage.uncancelled import to_the_end

from ..context import SETTINGS
from ..errors import ApiError
from ..proxy.zerocopy import plain_socket, ready
from .direct import MOVE_MIN, STEP, ClientFailed, DirectReceiver

PART_CHUNK = 256 << 10
T = TypeVar("T")

# aiohttp buffers up to twice a request's read window before it pauses the socket. One
# upload alone runs best with a 1 MiB window (the socket pauses and resumes every few chunks
# with aiohttp's 64 KiB); with many at once each gets a share of this budget instead, so
# the 128 uploads of the load suite buffer ~12 MiB rather than ~256 MiB (bench/load.py).
# Memory is per process, so the budget is too.
RECEIVE = BatchBudget(total=4 << 20, largest=1 << 20, smallest=32 << 10)


RECV_SIZE = 256 << 10  # asyncio's selector transport reads up to this per recv()


def _set_window(stream: StreamReader, transport: asyncio.BaseTransport | None, size: int) -> None:
    if isinstance(stream, EmptyStreamReader):  # no body: no buffer
        return
    if size > stream.get_read_buffer_limits()[0]:
        stream.set_read_chunk_size(size)
    else:  # aiohttp can only raise it; its two limits are the whole of the state
        stream._low_water, stream._high_water = size, 2 * size
    _set_recv_size(transport, min(RECV_SIZE, size))


def _set_recv_size(transport: asyncio.BaseTransport | None, size: int) -> None:
    # A pause comes only after a read, so one recv() can pass the window by its whole
    # size: with small windows that overshoot was most of each connection's buffer.
    # spigot's connection protocol (server/serving/guard.py) sizes each read itself, for
    # uvloop as for asyncio; without it (aiohttp's test server), asyncio's transport takes
    # the size per object.
    if transport is None:
        return
    protocol = transport.get_protocol()
    if isinstance(protocol, _SizedReads):
        protocol.read_size = size
    elif isinstance(transport, _SizedRecvs):
        transport.max_size = size


@runtime_checkable
class _SizedReads(Protocol):
    read_size: int


@runtime_checkable
class _SizedRecvs(Protocol):
    max_size: int


def stalled(seconds: float) -> ApiError:
    return ApiError(
        408, "body_timeout", f"no byte of the request body arrived for {seconds:g} s", close=True
    )


async def arriving(request: web.BaseRequest, pending: Awaitable[T]) -> T:
    """`pending` (a read of the body), given at most --network-timeout of silence."""
    limit = request.app[SETTINGS].network_timeout if isinstance(request, web.Request) else 0
    try:
        async with asyncio.timeout(limit or None):
            return await pending
    except TimeoutError:
        raise stalled(limit) from None


def too_large(cap: int) -> ApiError:
    return ApiError(
        413, "too_large", f"request body is larger than the {cap}-byte limit", close=True
    )


def check_declared_length(request: web.BaseRequest, cap: int) -> None:
    """Refuse a body whose Content-Length is over the cap before reading any of it."""
    declared = request.content_length
    if cap and declared is not None and declared > cap:
        raise too_large(cap)


def broken_body(exc: BaseException) -> ApiError:
    return ApiError(400, "incomplete_body", f"the request body ended early or was malformed: {exc}")


class Meter:
    """Counts bytes across every stream of one request, to apply one cap to all of them."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n
        if self.cap and self.total > self.cap:
            raise too_large(self.cap)


LINGER = 10.0  # aiohttp's lingering_time: how long bytes after an early answer are read


class _Moved:
    """What the response needs to know of a moved body (set on the request as MOVED)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left  # bytes of it the client has yet to send


MOVED = web.RequestKey("body_moved", _Moved)  # the body left aiohttp: close after the answer

# Set by the upload routes' expect handler, which defers the interim 100 to the first read
# of the body: most refusals (a PATCH past its upload's length or at the wrong offset, a
# creation over the upload limit) are known only once the handler has looked. Go's
# net/http, and so tusd, does the same: a refused client is never told to send.
CONTINUE_DUE = web.RequestKey("continue_due", bool)


async def send_continue(request: web.BaseRequest) -> None:
    """The interim 100, which only an HTTP/1.1 client understands (as aiohttp's own)."""
    if request.version == HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def continue_if_due(request: web.BaseRequest) -> None:
    """Before the first byte of the body is read: the 100 its expect handler deferred."""
    if request.get(CONTINUE_DUE):
        request[CONTINUE_DUE] = False
        await send_continue(request)


class RawBody:
    """The body as received, any content type (form-encoded bodies are not parsed).

    Iterated, it gives chunks through aiohttp. A store that writes files may instead have it
    take the bytes from the socket into the file in a pool thread (`move_into`, the
    storage.base.MovableBody capability; server/bodies/direct.py says why). Either way every
    byte counts against the cap and reaches the watchers, and silences end at
    --network-timeout.
    """

    def __init__(self, request: web.BaseRequest, meter: Meter) -> None:
        self._request = request
        self._meter = meter
        self._watchers: list[Callable[[int], None]] = []
        self._started = False
        self.more = False

    def watch(self, counted: Callable[[int], None]) -> None:
        """Have `counted(n)` called for every n bytes taken, whichever way they go."""
        self._watchers.append(counted)

    def _took(self, n: int) -> None:
        self._meter.add(n)
        for counted in self._watchers:
            counted(n)

    def __aiter__(self) -> AsyncIterator[bytes]:
        self._started = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        request = self._request
        stream = request.content
        window = 0
        await continue_if_due(request)
        RECEIVE.join()
        try:
            while True:
                # Grown from the smallest, doubling per read: uploads that start together
                # see each other before any has taken a large window (and filled it).
                share = RECEIVE.batch()
                if window != (grown := min(share, max(2 * window, RECEIVE.smallest))):
                    _set_window(stream, request.transport, window := grown)
                if not (chunk := await arriving(request, stream.readany())):
                    break
                self._took(len(chunk))
                yield chunk
        except (HttpProcessingError, ConnectionError) as exc:
            raise broken_body(exc) from exc
        finally:
            RECEIVE.leave()
            if window and window < RECV_SIZE:  # the next request here starts anew
                _set_recv_size(request.transport, RECV_SIZE)
        declared = request.content_length
        if declared is not None and self._meter.total != declared:
            raise broken_body(ValueError(f"got {self._meter.total} of {declared} bytes"))

    def movable(self) -> bool:
        request = self._request
        if self._started or not isinstance(request, web.Request):
            return False
        if request.app[SETTINGS].no_direct_receive:
            return False
        declared = request.content_length
        if declared is None or declared < MOVE_MIN:
            return False
        return plain_socket(request.transport) is not None

    async def move_into(
        self,
        fd: int,
        position: int,
        most: int,
        run: Callable[..., Awaitable[Any]],
        wrote: Callable[[int], None],
        sinks: Sequence[ByteSink],
    ) -> None:
        request = self._request
        assert isinstance(request, web.Request) and request.content_length is not None
        sock = plain_socket(request.transport)
        assert sock is not None, "movable() said so a moment ago"
        self._started = True
        declared = request.content_length
        limit = request.app[SETTINGS].network_timeout
        await continue_if_due(request)
        try:
            receiver = DirectReceiver(sock)
        except OSError as exc:  # out of descriptors: nothing is taken yet
            raise ApiError(503, "busy", f"cannot take the body now: {exc}", close=True) from exc
        reported = 0
        head = 0  # bytes aiohttp had read already
        moved = _Moved(declared)

        def report() -> None:
            nonlocal reported
            if n := receiver.moved - reported:
                reported = receiver.moved
                wrote(n)
                self._took(n)

        try:
            # What aiohttp has read already goes first. Then it reads no more: its parser
            # still waits for the bytes moved here, so the connection ends with this request.
            try:
                buffered = request.content.read_nowait(-1)
            except (HttpProcessingError, ConnectionError) as exc:
                raise broken_body(exc) from exc
            request.content.feed_eof()  # nothing for aiohttp to drain ("lingering") after
            request.protocol.pause_reading()  # after: feed_eof resumes reading
            request[MOVED] = moved
            head = len(buffered)
            if buffered:
                await to_the_end(
                    run(receiver.write, fd, position, memoryview(buffered)[:most], sinks)
                )
                report()
            # Let go of it now, not when the body ends: up to a few hundred KiB per upload,
            # 96 MiB with 256 stalled uploads at once (traced with tracemalloc; the test is
            # tests/test_upload_memory.py).
            del buffered
            end = min(most, declared)
            loop = asyncio.get_running_loop()
            while receiver.moved < end:
                at = position + receiver.moved
                step = min(STEP, end - receiver.moved)
                state = await to_the_end(run(receiver.step, fd, at, step, sinks))
                report()
                if state == "closed":
                    raise broken_body(ValueError(f"got {receiver.moved} of {declared} bytes"))
                if state == "dry":
                    try:
                        await ready(
                            loop.add_reader, loop.remove_reader, receiver.socket_fd, limit or None
                        )
                    except TimeoutError:
                        raise stalled(limit) from None
        except ClientFailed as exc:
            raise broken_body(exc.__cause__ or exc) from exc
        finally:
            report()
            moved.left = declared - head - receiver.received
            receiver.close()
        self.more = head > most or receiver.moved < declared


@web.middleware
async def close_if_body_unread(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After a moved body the response says `Connection: close` and the connection ends:
    aiohttp's parser still waits for bytes that went into a file. So it does when the client
    was never sent the 100 it waited for: it will not send the body it declared (RFC 9110
    10.1.1 has the server say whether it keeps reading; Go's net/http closes too)."""
    response = await handler(request)
    if request.get(CONTINUE_DUE):
        # A body the client sent anyway (curl does, after a second) is read and dropped by
        # aiohttp's lingering close first, so the close does not reset the answer away.
        response.force_close()
    if (moved := request.get(MOVED)) is not None:
        response.force_close()
        if moved.left > 0:
            # An answer before the body's end (a full disk, a length exceeded): send it,
            # then read and drop the rest for a while, as aiohttp's lingering close does.
            # Closed at once, the unread bytes would reset the connection, often before
            # the client had read the answer.
            await response.prepare(request)
            await response.write_eof()
            await _linger(request, moved.left)
    return response


async def _linger(request: web.Request, left: int) -> None:
    sock = plain_socket(request.transport)
    if sock is None:
        return
    loop = asyncio.get_running_loop()
    until = loop.time() + LINGER
    with socket.socket(fileno=os.dup(sock)) as dup:
        sink = bytearray(64 << 10)
        with contextlib.suppress(TimeoutError, OSError):
            while left > 0:
                # a silent client is not waited on for long: it may be waiting itself
                async with asyncio.timeout(max(0.0, min(1.0, until - loop.time()))):
                    if not (n := await loop.sock_recv_into(dup, sink)):
                        return
                left -= n


def raw_chunks(request: web.BaseRequest, meter: Meter) -> RawBody:
    """The request's body (see RawBody)."""
    return RawBody(request, meter)


async def form_reader(request: web.BaseRequest) -> MultipartReader:
    """A multipart/form-data body's reader, its parts read one by one as they arrive."""
    await continue_if_due(request)
    try:
        return await request.multipart()
    except (ValueError, AssertionError, KeyError) as exc:
        raise ApiError(400, "bad_multipart", f"malformed multipart/form-data: {exc}") from exc


async def part_chunks(
    request: web.BaseRequest, part: BodyPartReader, meter: Meter
) -> AsyncIterator[bytes]:
    """One multipart/form-data part's bytes, streamed (never `part.read()`)."""
    try:
        while chunk := await arriving(request, part.read_chunk(PART_CHUNK)):
            meter.add(len(chunk))
            yield chunk
    except (HttpProcessingError, ConnectionError, ValueError) as exc:
        raise broken_body(exc) from exc


async def discard_part(request: web.BaseRequest, part: BodyPartReader, meter: Meter) -> None:
    """Skip a non-file form field, still counting it against the cap."""
    async for _ in part_chunks(request, part, meter):
        pass


async def read_json(request: web.BaseRequest, limit: int, shape: str) -> Any:
    """A small JSON request body (an API call, not a file), read with a cap; `shape` is
    what the 400 says the body should look like."""
    raw = b""
    await continue_if_due(request)
    while chunk := await request.content.read(limit + 1 - len(raw)):
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "too_large", f"the request body is over {limit} bytes", close=True)
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", f"the body must be JSON: {shape}") from None
