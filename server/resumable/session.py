"""What a resumable upload's requests share, whichever protocol speaks them (tus in
server/routes/tus.py, the IETF draft beside this module): one request at a time holds an
upload, a newer one takes a stuck one over, and a body is taken within its caps.

The words on the wire, and the headers errors carry, are each protocol's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, TypeVar

from aiohttp import web

from storage import DataStore, Locker, Upload, UploadInfo
from storage.hashing import ChunkVerifier

from ..auth import owned, principal_of
from ..bodies import Meter, raw_chunks
from ..context import lifecycle_of, settings_of, store_of
from ..errors import ApiError
from ..protocol import links
from ..responses import file_url
from ..tasks import detach

T = TypeVar("T")

# Tasks now receiving a request body under an upload's lock: the only ones a competing
# request may interrupt (see exclusive()).
RECEIVING: set[asyncio.Task[Any]] = set()


def locked(
    store: DataStore, upload_id: str, release: Callable[[], None]
) -> AbstractAsyncContextManager[Any]:
    if isinstance(store, Locker):
        return store.lock(upload_id, release)
    return nullcontext()


async def exclusive(
    request: web.Request, upload_id: str, work: Callable[[], Coroutine[Any, Any, T]]
) -> T:
    """Run `work` holding the upload's lock, in its own task.

    Another request that wants the lock calls `release`, which cancels this task: a PATCH
    stuck on a dead connection then stores what it has and gives way. The task is shielded
    from the handler, so a client going away cannot abandon it half-way either.
    """
    task: asyncio.Task[T] | None = None
    released = False

    def release() -> None:
        # Only a task waiting on its client's bytes is stuck; one that is finishing or
        # answering will let go in a moment, and cutting it short could leave an upload
        # at its full length yet never finished.
        nonlocal released
        if task is not None and task in RECEIVING and not task.done():
            released = True
            task.cancel()

    async def run() -> T:
        try:
            async with locked(store_of(request), upload_id, release):
                return await work()
        except asyncio.CancelledError:
            if released:
                raise ApiError(
                    423, "upload_taken_over", "another request took over this upload"
                ) from None
            raise

    task = detach(run())
    return await asyncio.shield(task)


Ticks = Callable[[], AbstractAsyncContextManager[object]]


async def receive(
    request: web.Request,
    upload: Upload,
    offset: int,
    verify: ChunkVerifier | None,
    ticks: Ticks | None = None,
) -> None:
    """Append the request body at `offset` (lock held), within the request cap.

    While it runs, a competing request may take the upload over (see exclusive()). `ticks`
    watches the bytes as they go: the IETF draft's progress 104s (interim.py)."""
    info = upload.info
    meter = lifecycle_of(request).meter(info)
    task = asyncio.current_task()
    assert task is not None
    RECEIVING.add(task)
    try:
        body = raw_chunks(request, Meter(within_limit(info, settings_of(request).max_request_size)))
        async with ticks() if ticks is not None else nullcontext():
            await upload.append(offset, meter.wrap(body), verify)
    finally:
        RECEIVING.discard(task)
        meter.offset = info.offset  # what was kept, not what arrived
        meter.publish()


def runs_past(request: web.Request, offset: int, length: int | None) -> bool:
    """Whether the body's Content-Length takes it past the upload's length from `offset`.
    Such a body is refused before a byte is taken, as tusd does: kept, what fits would
    complete the upload with bytes its client sent for something else. A chunked body
    cannot be known so; it keeps what fits (the store's LengthExceeded)."""
    declared = request.content_length
    return length is not None and declared is not None and offset + declared > length


def within_limit(info: UploadInfo, cap: int) -> int:
    """This PATCH's cap: the request cap, and for a deferred-length upload whose creator had
    a lower limit than the server's, no further than that limit."""
    if info.limit is None or info.length is not None:
        return cap
    room = info.limit - info.offset
    if room <= 0:
        raise ApiError(413, "upload_too_large", f"this upload is limited to {info.limit} bytes")
    return min(cap, room) if cap else room


def location(request: web.Request, info: UploadInfo) -> str:
    """The upload's URL; made through an upload link, it carries its own signature until
    the upload expires, so the tus client's HEAD and PATCH need no token."""
    url = file_url(request, info.id)
    keys = settings_of(request).secret
    if not principal_of(request).via_link or not keys or info.expires is None:
        return url
    return f"{url}?{links.file_query(keys[0], links.RESUME, info.id, int(info.expires))}"


def check_size(cap: int, length: int | None) -> None:
    if cap and length is not None and length > cap:
        raise ApiError(413, "upload_too_large", f"uploads are limited to {cap} bytes")


async def terminate(request: web.Request, upload_id: str) -> None:
    """Remove the caller's upload, ending any request still writing it (tus termination,
    the draft's cancellation); its id answers 410 from then on."""

    async def remove() -> None:
        upload = await store_of(request).open(upload_id)
        owned(request, upload.info)
        await upload.delete(gone="terminated")
        lifecycle_of(request).terminated(upload.info, file_url(request, upload_id))

    await exclusive(request, upload_id, remove)
