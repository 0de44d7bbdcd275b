"""The upload resource's state (HEAD) and its cancellation (DELETE).

Both take the upload's lock, so a HEAD never reports an offset that a request still
writing could move (the draft's "MUST NOT send outdated information"): that request is
ended first, keeping what it stored.
"""

from __future__ import annotations

from aiohttp import web

from storage import UploadInfo

from ..auth import owned
from ..context import store_of
from .common import interop, state
from .session import exclusive, terminate
from .transfer import settle


async def draft_head(request: web.Request) -> web.Response:
    version = interop(request)
    assert version is not None  # routed here by is_draft
    upload_id = request.match_info["id"]

    async def look() -> UploadInfo:
        upload = await store_of(request).open(upload_id)
        owned(request, upload.info)
        await settle(request, version, upload)
        return upload.info

    info = await exclusive(request, upload_id, look)
    return web.Response(
        status=204, headers={**state(request, version, info), "Cache-Control": "no-store"}
    )


async def draft_delete(request: web.Request) -> web.Response:
    await terminate(request, request.match_info["id"])
    return web.Response(status=204)
