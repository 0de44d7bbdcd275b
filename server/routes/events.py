"""`GET /files/{id}/events` and `GET /progress/{token}/events`: Server-Sent Events.

Readers get `progress` (`{"offset","length"}`, at most every 250 ms while bytes flow), then
one of `complete`, `terminated`, `expired`. Every event has an `id:`; a reconnecting
EventSource sends `Last-Event-ID` and continues after it. A comment line is sent when the
stream has been quiet for `--sse-heartbeat`, so proxies do not time it out.

One-shot uploads learn their id only when they finish, so a client that wants to watch one
names it first: `X-Progress-ID: <token>` (or `?progress_id=`) on the upload, then follows
`/progress/<token>/events`, the convention of nginx's upload-progress module.
"""

from __future__ import annotations

import asyncio
import json
import re

from aiohttp import web

from storage import StorageError, UploadGone, UploadInfo

from ..auth import owned, principal_of
from ..context import lifecycle_of, settings_of, store_of
from ..errors import ApiError
from ..lifecycle import complete_event
from ..lifecycle.events import TERMINAL, Event, UploadEvents
from ..ops import metrics
from ..protocol.numerals import is_digits
from ..responses import file_url

# How often an event stream over a shared store (S3) re-reads an upload's state, to see what
# other instances wrote. Each look costs a few S3 requests, so not too often.
STORE_POLL = 1.0

PROGRESS_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def progress_token(request: web.Request) -> str | None:
    token = request.headers.get("X-Progress-ID") or request.query.get("progress_id")
    if token is None:
        return None
    if not PROGRESS_TOKEN.fullmatch(token):
        raise ApiError(400, "bad_progress_id", "a progress id is 1-64 of A-Z a-z 0-9 _ -")
    return progress_topic(request, token)


def progress_topic(request: web.Request, token: str) -> str:
    """Progress ids are chosen by clients, so with auth on each owner has their own: one
    user can neither watch nor spoil another's by guessing or reusing an id."""
    if settings_of(request).auth == "none":
        return "progress:" + token
    return f"progress:{principal_of(request).sub or ''}:{token}"


def last_event_id(request: web.Request) -> int:
    value = request.headers.get("Last-Event-ID", "")
    return int(value) if is_digits(value) and len(value) < 19 else 0


async def file_events(request: web.Request) -> web.StreamResponse:
    upload_id = request.match_info["id"]
    upload = await store_of(request).open(upload_id)  # 404 or 410 before any stream opens
    info = upload.info
    owned(request, info)
    events = lifecycle_of(request).events
    url = file_url(request, info.id)
    if events.latest(upload_id) is None:
        # Nothing seen here yet (written by another process, or before a restart): start
        # from what the store says.
        publish_stored(events, info, url)
    # Another instance (S3) or another worker may be the one writing it.
    several = store_of(request).shared or settings_of(request).workers > 1
    if not several or info.is_complete:
        return await stream(request, upload_id)
    # Another instance may be the one writing it: look at the store now and then.
    watcher = asyncio.create_task(watch_store(request, upload_id, url))
    try:
        return await stream(request, upload_id)
    finally:
        watcher.cancel()


def publish_stored(events: UploadEvents, info: UploadInfo, url: str) -> None:
    """Publish the state the store records, unless this process has already said more."""
    latest = events.latest(info.id)
    if latest is not None and latest.type in TERMINAL:
        return
    if info.is_complete:
        events.publish(info.id, "complete", complete_event(info, url))
    elif latest is None or latest.data.get("offset", -1) < info.offset:
        events.publish(info.id, "progress", {"offset": info.offset, "length": info.length})


async def watch_store(request: web.Request, upload_id: str, url: str) -> None:
    store, events = store_of(request), lifecycle_of(request).events
    while True:
        await asyncio.sleep(STORE_POLL)
        try:
            info = (await store.open(upload_id)).info
        except UploadGone:
            events.publish(upload_id, "terminated", {"id": upload_id})
            return
        except StorageError:
            continue  # unreachable for a moment, or removed without a trace: keep looking
        publish_stored(events, info, url)
        if info.is_complete:
            return


async def progress_events(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    if not PROGRESS_TOKEN.fullmatch(token):
        raise ApiError(404, "not_found", "no such progress id")
    return await stream(request, progress_topic(request, token))


async def stream(
    request: web.Request, topic: str, terminal: tuple[str, ...] = ()
) -> web.StreamResponse:
    events = lifecycle_of(request).events
    after = last_event_id(request)
    if after == 0:
        latest = events.latest(topic)
        after = latest.id - 1 if latest is not None else 0  # start with the current state
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: do not buffer this response
        }
    )
    await resp.prepare(request)
    heartbeat = settings_of(request).sse_heartbeat
    metrics.SSE_SUBSCRIBERS.inc()
    try:
        async for event in events.follow(topic, after, heartbeat, terminal):
            await resp.write(frame(event))
    finally:
        metrics.SSE_SUBSCRIBERS.dec()
    if events.closing:  # EventSource reconnects by itself, to a live instance
        await resp.write(b": spigot is shutting down; reconnect with Last-Event-ID\n\n")
    await resp.write_eof()
    return resp


def frame(event: Event | None) -> bytes:
    if event is None:
        return b": heartbeat\n\n"
    data = json.dumps(event.data, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()
