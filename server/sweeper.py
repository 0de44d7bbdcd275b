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
from collections.abc import AsyncIterator

from aiohttp import web

from storage import DataStore, Locker, StorageError
from storage.errors import LockTimeout

from .context import LIFECYCLE, SETTINGS, STORE
from .lifecycle import Lifecycle

log = logging.getLogger("spigot.sweeper")


async def sweep_once(
    store: DataStore, now: float | None = None, lifecycle: Lifecycle | None = None
) -> list[str]:
    """Remove every expired unfinished upload; return their ids."""
    now = time.time() if now is None else now
    expired = [
        info.id
        async for info in store.list_uploads()
        if not info.is_complete and info.expires is not None and info.expires <= now
    ]
    removed = []
    for upload_id in expired:
        with contextlib.suppress(LockTimeout, StorageError):  # busy or gone: next sweep
            lock = store.lock(upload_id, lambda: None) if isinstance(store, Locker) else None
            async with lock or contextlib.nullcontext():
                upload = await store.open(upload_id)
                if not upload.info.is_complete:
                    await upload.delete(gone="expired")
                    removed.append(upload_id)
                    if lifecycle is not None:
                        lifecycle.expired(upload_id)
    if removed:
        log.info("expired %d unfinished uploads", len(removed))
    return removed


ANNOUNCE_GRACE = 30.0  # a request that just finished an upload is announcing it itself


async def announce_missed(
    store: DataStore, lifecycle: Lifecycle, base_url: str, now: float | None = None
) -> list[str]:
    """Run the post-finish step for finished uploads a crash left unannounced."""
    now = time.time() if now is None else now
    missed = [
        info.id
        async for info in store.list_uploads()
        if info.is_complete
        and not info.finish_announced
        and (info.completed or 0) < now - ANNOUNCE_GRACE
    ]
    done = []
    for upload_id in missed:
        with contextlib.suppress(LockTimeout, StorageError):
            lock = store.lock(upload_id, lambda: None) if isinstance(store, Locker) else None
            async with lock or contextlib.nullcontext():
                upload = await store.open(upload_id)
                if not upload.info.finish_announced:
                    await lifecycle.finished(upload, f"{base_url}/files/{upload_id}")
                    done.append(upload_id)
    return done


async def sweeper(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the sweep every `sweep_interval` while the app is up."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(app[SETTINGS].sweep_interval)
            try:
                await sweep_once(app[STORE], lifecycle=app[LIFECYCLE])
                base = app[SETTINGS].public_url or ""
                await announce_missed(app[STORE], app[LIFECYCLE], base)
            except Exception:
                log.exception("expiration sweep failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
