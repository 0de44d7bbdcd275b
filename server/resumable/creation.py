"""Upload creation: `POST /files/` or `PUT /files/[name]` with `Upload-Complete`.

The upload is made before one byte of the body is read, and announced at once in a 104
carrying its URL: from then on, a client whose connection breaks can resume. A creation
with `Upload-Complete: ?1` that arrives whole is an ordinary upload, answered as one.
"""

from __future__ import annotations

import time

from aiohttp import web

from storage import Upload, UploadSpec
from storage.names import sanitize_name

from ..auth import check_upload_type, principal_of, upload_cap
from ..bodies import check_declared_length, continue_if_due
from ..context import lifecycle_of, settings_of, store_of
from ..errors import ApiError
from ..protocol import rufh, tus
from ..protocol.disposition import filename_from_header
from ..protocol.media import declared_media_type
from ..responses import file_url
from . import interim
from .common import interop, limits, state, with_limits
from .session import check_size, exclusive, location
from .transfer import completed_response, expected_repr, implied_length, take


def _metadata(request: web.Request) -> dict[str, str]:
    """tus's `Upload-Metadata`, which tus-js-client sends in draft mode too."""
    try:
        return tus.parse_metadata(request.headers.get("Upload-Metadata"))
    except tus.TusHeaderError as exc:
        raise ApiError(400, "bad_header", str(exc)) from None


def _spec(request: web.Request, length: int | None, cap: int) -> UploadSpec:
    settings = settings_of(request)
    metadata = _metadata(request)
    name = (
        request.query.get("name")
        or filename_from_header(request.headers.get("Content-Disposition"))
        or metadata.get("filename")
        or metadata.get("name")
        or request.match_info.get("name")
    )
    given_type = metadata.get("filetype") or metadata.get("type")
    if given_type is None and request.content_type != rufh.PARTIAL_UPLOAD:
        given_type = request.headers.get("Content-Type")
    media_type = declared_media_type(given_type)
    check_upload_type(request, media_type)
    expected = expected_repr(request)
    return UploadSpec(
        name=sanitize_name(name),
        content_type=media_type,
        length=length,
        metadata={**metadata, **expected},
        sha256=True if expected else None,  # checked at completion, even with --checksum none
        expires=time.time() + settings.upload_ttl,
        max_length=length if length is not None else cap or None,
        owner=principal_of(request).sub,
        limit=cap if cap != settings.max_upload_size else None,
    )


async def draft_create(request: web.Request) -> web.Response:
    version = interop(request)
    assert version is not None  # routed here by is_draft_creation
    complete = rufh.completeness(version, request.headers)
    assert complete is not None
    settings = settings_of(request)
    length = implied_length(request, version, 0, None, complete)
    cap = upload_cap(request, settings.max_upload_size)
    try:
        check_declared_length(request, settings.max_request_size)
        check_size(cap, length)
    except ApiError as exc:
        raise with_limits(request, version, exc) from None
    spec = _spec(request, length, cap)
    lifecycle = lifecycle_of(request)
    await lifecycle.admit(spec, request)
    upload = await store_of(request).create(spec)
    info = upload.info
    lifecycle.created(info, file_url(request, info.id))
    url = location(request, info)
    has_body = request.body_exists and request.content_length != 0
    if has_body:  # accepted: the 100 a waiting client needs, then where to resume
        await continue_if_due(request)
        interim.send(request, version, {"Location": url, **limits(request, version, info)})
    if has_body or complete or length == 0:

        async def fill() -> Upload:
            opened = await store_of(request).open(info.id)  # under the lock, as tus does
            await take(request, version, opened, 0, complete or length == 0)
            return opened

        try:
            upload = await exclusive(request, info.id, fill)
        except ApiError as exc:
            raise with_limits(request, version, exc) from None
    if upload.info.is_complete:
        return completed_response(request, version, upload, url)
    headers = {**state(request, version, upload.info), "Location": url}
    return web.Response(status=201, headers=headers)
