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
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from aiohttp import BodyPartReader, StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import EmptyStreamReader

from storage.budget import BatchBudget

from .context import SETTINGS
from .errors import ApiError

PART_CHUNK = 256 << 10
T = TypeVar("T")

# aiohttp buffers up to twice a request's read window before it pauses the socket. One
# upload alone runs best with a 1 MiB window (the socket pauses and resumes every few chunks
# with aiohttp's 64 KiB); with many at once each gets a share of this budget instead, so
# the 128 uploads of the load suite buffer ~12 MiB rather than ~256 MiB (bench/load.py).
# Memory is per process, so the budget is too.
RECEIVE = BatchBudget(total=4 << 20, largest=1 << 20, smallest=32 << 10)


RECV_SIZE = 256 << 10  # asyncio's selector transport reads up to this per recv()


def _set_window(stream: StreamReader, transport: object, size: int) -> None:
    if isinstance(stream, EmptyStreamReader):  # no body: no buffer
        return
    if size > stream.get_read_buffer_limits()[0]:
        stream.set_read_chunk_size(size)
    else:  # aiohttp can only raise it; its two limits are the whole of the state
        stream._low_water, stream._high_water = size, 2 * size
    _set_recv_size(transport, min(RECV_SIZE, size))


def _set_recv_size(transport: object, size: int) -> None:
    # A pause comes only after a read, so one recv() can pass the window by its whole
    # size: with small windows that overshoot was most of each connection's buffer.
    # asyncio's transport takes the size per object (uvloop's has none: left alone).
    if hasattr(transport, "max_size"):
        transport.max_size = size


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


async def raw_chunks(request: web.BaseRequest, meter: Meter) -> AsyncIterator[bytes]:
    """The body as received, any content type (form-encoded bodies are not parsed)."""
    stream = request.content
    window = 0
    RECEIVE.join()
    try:
        while True:
            # Grown from the smallest, doubling per read: uploads that start together see
            # each other before any has taken a large window (and filled it).
            share = RECEIVE.batch()
            if window != (grown := min(share, max(2 * window, RECEIVE.smallest))):
                _set_window(stream, request.transport, window := grown)
            if not (chunk := await arriving(request, stream.readany())):
                break
            meter.add(len(chunk))
            yield chunk
    except (HttpProcessingError, ConnectionError) as exc:
        raise broken_body(exc) from exc
    finally:
        RECEIVE.leave()
        if window and window < RECV_SIZE:  # the next request on this connection starts anew
            _set_recv_size(request.transport, RECV_SIZE)
    declared = request.content_length
    if declared is not None and meter.total != declared:
        raise broken_body(ValueError(f"got {meter.total} of {declared} bytes"))


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
    while chunk := await request.content.read(limit + 1 - len(raw)):
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "too_large", f"the request body is over {limit} bytes", close=True)
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", f"the body must be JSON: {shape}") from None
