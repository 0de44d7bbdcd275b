"""Direct uploads become spigot files: registered exactly once, with the same events,
hooks and webhook as any upload.

S3 tells nobody when a browser's POST lands, so a POST upload is recognised when the file
is first asked for, and by the sweep (HeadObject); a multipart upload is registered by its
completion. Both happen under the upload's lock with the state re-read inside it, so
retried completions, concurrent GETs and several instances register it once.
"""

from __future__ import annotations

import logging

from aiohttp import web

from storage import DirectStore, Locker, OverLimit, Upload

from ..context import LIFECYCLE, SETTINGS, STORE
from ..lifecycle import Lifecycle
from ..tasks import detach

log = logging.getLogger("spigot.direct")

S3_MAX_OBJECT = 5 * 1024**4  # a POST policy needs an upper bound even when spigot has none


async def announce(app: web.Application, upload: Upload, base_url: str) -> None:
    """The post-finish step for a direct upload just registered, and the optional
    background sha256."""
    lifecycle: Lifecycle = app[LIFECYCLE]
    await lifecycle.finished(upload, f"{base_url}/files/{upload.info.id}")
    store = app[STORE]
    if app[SETTINGS].verify_direct_uploads and isinstance(store, DirectStore):
        detach(verify(store, upload))


async def verify(store: DirectStore, upload: Upload) -> None:
    try:
        await store.hash_direct(upload)
    except Exception:  # the file stays, with sha256 null: never a hash not computed
        log.exception("could not hash direct upload %s", upload.info.id)


async def recognise(app: web.Application, upload_id: str, base_url: str) -> Upload:
    """Open a direct POST upload, registering it first if S3 now holds its object. An
    object over the policy's size is deleted and reported (OverLimit)."""
    store = app[STORE]
    lock = store.lock(upload_id, lambda: None) if isinstance(store, Locker) else None
    if lock is None or not isinstance(store, DirectStore):
        return await store.open(upload_id)
    async with lock:
        upload = await store.open(upload_id)
        info = upload.info
        if info.direct != "post" or info.is_complete:
            return upload
        try:
            arrived = await store.recognise_direct(upload, info.limit or S3_MAX_OBJECT)
        except OverLimit:
            log.warning("direct upload %s was over its limit and has been deleted", upload_id)
            app[LIFECYCLE].terminated(info, f"{base_url}/files/{upload_id}")
            raise
        if arrived:
            await announce(app, upload, base_url)
        return upload
