"""Upload append: `PATCH /files/{id}` with `Upload-Offset` and `Upload-Complete`.

Checked under the upload's lock, so the offset compared is the one that will be written
at; a request still writing the upload (its client thinks it dead) is taken over first.
"""

from __future__ import annotations

from aiohttp import web

from storage import Upload

from ..auth import owned, upload_cap
from ..bodies import check_declared_length
from ..context import settings_of, store_of
from ..errors import ApiError
from ..protocol import rufh
from .common import interop, state, version_header, with_limits
from .problems import completed, inconsistent_length, mismatching_offset
from .session import check_size, exclusive, location
from .transfer import completed_response, implied_length, settle, take


async def draft_patch(request: web.Request) -> web.Response:
    version = interop(request)
    assert version is not None  # routed here by is_draft
    if version.partial_upload_type and request.content_type != rufh.PARTIAL_UPLOAD:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"an append needs Content-Type {rufh.PARTIAL_UPLOAD}",
            version_header(version),
        )
    offset = rufh.non_negative(request.headers.get("Upload-Offset"))
    if offset is None:
        raise ApiError(400, "bad_header", "an append needs Upload-Offset", version_header(version))
    complete = rufh.completeness(version, request.headers)
    if complete is None:
        field = version.completeness_field
        raise ApiError(400, "bad_header", f"an append needs {field}", version_header(version))
    settings = settings_of(request)
    try:
        check_declared_length(request, settings.max_request_size)
    except ApiError as exc:
        raise with_limits(request, version, exc) from None
    upload_id = request.match_info["id"]

    async def append() -> Upload:
        upload = await store_of(request).open(upload_id)
        info = upload.info
        owned(request, info)
        if info.parts or info.direct:
            raise ApiError(403, "not_resumable", "this upload takes no appends")
        await settle(request, version, upload)
        empty = request.content_length == 0 or not request.body_exists
        if info.is_complete:
            if empty and complete and offset == info.offset:
                return upload  # completed by reaching its length: this is the completion
            if not empty:  # more bytes than the upload's length, as the draft sees it
                raise inconsistent_length(
                    "the upload is complete and takes no more bytes", state(request, version, info)
                )
            raise completed(state(request, version, info))
        if offset != info.offset:
            raise mismatching_offset(info.offset, offset, state(request, version, info))
        length = implied_length(request, version, offset, info.length, complete)
        if length is not None and info.length is None:
            check_size(info.limit or upload_cap(request, settings.max_upload_size), length)
            await upload.declare_length(length)
        await take(request, version, upload, offset, complete)
        return upload

    try:
        upload = await exclusive(request, upload_id, append)
    except ApiError as exc:
        raise with_limits(request, version, exc) from None
    info = upload.info
    if info.is_complete:
        return completed_response(request, version, upload, location(request, info))
    return web.Response(status=204, headers=state(request, version, info))
