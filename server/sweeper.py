"""The expiration sweep: unfinished uploads past their Upload-Expires are removed.

It uses only the DataStore interface, so it works the same for every backend. Each upload
is removed under its lock (when the store has one), so a PATCH still running is not cut
off by the sweep; a removed upload leaves a tombstone and answers 410 from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from storage import DataStore, Locker, Pruner, StorageError, Upload
from storage.errors import LockTimeout

from .context import LIFECYCLE, SETTINGS, STORE
from .lifecycle import Lifecycle
from .ops import metrics
from .presign.registry import recognise

log = logging.getLogger("spigot.sweeper")


ANNOUNCE_GRACE = 30.0  # a request that just finished an upload is announcing it itself


@dataclass
class Due:
    """What one pass over the store found to do."""

    expired: list[str] = field(default_factory=list)
    unannounced: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # all bytes stored, never finished
    posted: list[str] = field(default_factory=list)  # direct POSTs S3 may have received


async def scan(store: DataStore, now: float) -> Due:
    """One listing of the store, however many kinds of work it turns up."""
    due = Due()
    async for info in store.list_uploads():
        if info.is_complete:
            if not info.finish_announced and (info.completed or 0) < now - ANNOUNCE_GRACE:
                due.unannounced.append(info.id)
        elif info.awaits_finish:
            due.unfinished.append(info.id)
        elif info.direct == "post":
            due.posted.append(info.id)
        elif info.expires is not None and info.expires <= now:
            due.expired.append(info.id)
    return due


@contextlib.asynccontextmanager
async def held(store: DataStore, upload_id: str) -> AsyncIterator[Upload]:
    """The upload, opened under its lock when the store has locks."""
    lock = store.lock(upload_id, lambda: None) if isinstance(store, Locker) else None
    async with lock or contextlib.nullcontext():
        yield await store.open(upload_id)


async def each_held(
    store: DataStore, ids: list[str], act: Callable[[Upload], Awaitable[bool]]
) -> list[str]:
    """Run `act` on each upload under its lock; the ids it acted on. An upload that is busy
    (locked) or fails in storage is left for the next sweep."""
    done = []
    for upload_id in ids:
        with contextlib.suppress(LockTimeout, StorageError):
            async with held(store, upload_id) as upload:
                if await act(upload):
                    done.append(upload_id)
    return done


async def expire(store: DataStore, ids: list[str], lifecycle: Lifecycle | None) -> list[str]:
    async def remove(upload: Upload) -> bool:
        if upload.info.is_complete:
            return False
        await upload.delete(gone="expired")
        if lifecycle is not None:
            lifecycle.expired(upload.info.id)
        return True

    removed = await each_held(store, ids, remove)
    if removed:
        log.info("expired %d unfinished uploads", len(removed))
    return removed


async def announce(
    store: DataStore, ids: list[str], lifecycle: Lifecycle, base_url: str
) -> list[str]:
    """Run the post-finish step for finished uploads a crash left unannounced."""

    async def announce_one(upload: Upload) -> bool:
        if upload.info.finish_announced:
            return False
        await lifecycle.finished(upload, f"{base_url}/files/{upload.info.id}")
        return True

    return await each_held(store, ids, announce_one)


async def finish_stored(
    store: DataStore, ids: list[str], lifecycle: Lifecycle, base_url: str
) -> list[str]:
    """Finish uploads whose bytes are all stored but whose finish a crash cut off, and
    announce them, as the request that stored their last byte would have."""

    async def finish(upload: Upload) -> bool:
        if not upload.info.awaits_finish:
            return False
        await upload.finish()
        await lifecycle.finished(upload, f"{base_url}/files/{upload.info.id}")
        return True

    done = await each_held(store, ids, finish)
    if done:
        log.info("finished %d uploads a crash had left unfinished", len(done))
    return done


async def recognise_posts(
    app: web.Application, ids: list[str], base_url: str, now: float
) -> list[str]:
    """Register direct POST uploads whose objects have arrived, and expire, with their
    policy, those whose never did. Returns the ids registered."""
    registered, lapsed = [], []
    for upload_id in ids:
        with contextlib.suppress(LockTimeout, StorageError):  # OverLimit: deleted already
            info = (await recognise(app, upload_id, base_url)).info
            if info.is_complete:
                registered.append(upload_id)
            elif info.expires is not None and info.expires <= now:
                lapsed.append(upload_id)
    await expire(app[STORE], lapsed, app[LIFECYCLE])
    return registered


async def sweep_once(
    store: DataStore, now: float | None = None, lifecycle: Lifecycle | None = None
) -> list[str]:
    """Remove every expired unfinished upload; return their ids."""
    due = await scan(store, time.time() if now is None else now)
    return await expire(store, due.expired, lifecycle)


async def announce_missed(
    store: DataStore, lifecycle: Lifecycle, base_url: str, now: float | None = None
) -> list[str]:
    due = await scan(store, time.time() if now is None else now)
    return await announce(store, due.unannounced, lifecycle, base_url)


async def sweeper(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the sweep every `sweep_interval` while the app is up."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(app[SETTINGS].sweep_interval)
            started = time.perf_counter()
            try:
                store, lifecycle = app[STORE], app[LIFECYCLE]
                due = await scan(store, time.time())
                await expire(store, due.expired, lifecycle)
                base_url = app[SETTINGS].public_url or ""
                await finish_stored(store, due.unfinished, lifecycle, base_url)
                await recognise_posts(app, due.posted, base_url, time.time())
                await announce(store, due.unannounced, lifecycle, base_url)
                if isinstance(store, Pruner):
                    await store.prune(time.time())
            except Exception:
                log.exception("expiration sweep failed")
            metrics.SWEEPS.inc()
            metrics.SWEEP_DURATION.observe(time.perf_counter() - started)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
