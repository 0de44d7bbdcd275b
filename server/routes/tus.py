"""tus 1.0 resumable uploads on `/files/`, with every extension spigot advertises.

The grammar lives in `server.protocol.tus`; storage is reached only through the DataStore
interface and the optional capabilities it discovers (Locker, Concatenator). A POST carrying
`Tus-Resumable` is a tus creation; without it, `/files/` stays the one-shot upload.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from storage import (
    Concatenator,
    DataStore,
    StorageError,
    Upload,
    UploadInfo,
    UploadSpec,
)
from storage.errors import ChecksumMismatch, LengthExceeded
from storage.hashing import ChunkVerifier
from storage.names import sanitize_name

from ..auth import check_upload_type, owned, principal_of, upload_cap
from ..bodies import check_declared_length
from ..context import lifecycle_of, settings_of, store_of
from ..errors import ApiError, from_storage
from ..protocol import rufh, tus
from ..protocol.conditional import http_date
from ..protocol.media import declared_media_type
from ..responses import file_url
from ..resumable.common import limits, version_header
from ..resumable.session import (
    check_size,
    exclusive,
    location,
    receive,
    runs_past,
    terminate,
)
from ..settings import Settings

T = TypeVar("T")

BASE_HEADERS = {"Tus-Resumable": tus.TUS_VERSION}


def tus_error(status: int, code: str, message: str, **headers: str) -> ApiError:
    return ApiError(status, code, message, {**BASE_HEADERS, **headers})


def is_tus(request: web.Request) -> bool:
    return "Tus-Resumable" in request.headers


def require_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != tus.TUS_VERSION:
        raise tus_error(
            412,
            "unsupported_tus_version",
            f"this server speaks tus {tus.TUS_VERSION}",
            **{"Tus-Version": tus.TUS_VERSION},
        )


def header(request: web.Request, name: str) -> str | None:
    return request.headers.get(name)


def parsed(fn: Callable[[], T]) -> T:
    """Run a header parser; a malformed header is the client's 400."""
    try:
        return fn()
    except tus.TusHeaderError as exc:
        raise tus_error(400, "bad_tus_header", str(exc)) from None


def expires_header(info: UploadInfo) -> dict[str, str]:
    if info.expires is None or info.is_complete:
        return {}
    return {"Upload-Expires": http_date(datetime.fromtimestamp(info.expires, UTC))}


def state_headers(info: UploadInfo) -> dict[str, str]:
    return {**BASE_HEADERS, "Upload-Offset": str(info.offset), **expires_header(info)}


Handler = Callable[[web.Request], Coroutine[Any, Any, web.Response]]


def tus_handler(handler: Handler) -> Handler:
    """Every answer to a tus request carries Tus-Resumable, errors included."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except StorageError as exc:
            api = from_storage(exc)
        except ApiError as exc:
            api = exc
        api.headers = {**BASE_HEADERS, **api.headers}
        raise api

    return wrapped


# -- OPTIONS ------------------------------------------------------------------------------


def options_headers(settings: Settings) -> dict[str, str]:
    headers = {
        **BASE_HEADERS,
        "Tus-Version": tus.TUS_VERSION,
        "Tus-Extension": tus.EXTENSIONS,
        "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUM_ALGORITHMS),
    }
    if settings.max_upload_size:
        headers["Tus-Max-Size"] = str(settings.max_upload_size)
    return headers


@tus_handler
async def tus_options(request: web.Request) -> web.Response:
    """tus discovery, and the IETF draft's: `Accept-Patch` names its media type, and
    `Upload-Limit` the limits, in the words of the version asked (else the latest)."""
    asked = rufh.interop_of(request.headers)
    version = asked or rufh.Interop(rufh.LATEST)
    headers = {
        **options_headers(settings_of(request)),
        "Accept-Patch": f"{tus.OFFSET_TYPE}, {rufh.PARTIAL_UPLOAD}",
        **limits(request, version, anyone=True),
        **(version_header(asked) if asked else {}),
    }
    return web.Response(status=204, headers=headers)


# -- creation ------------------------------------------------------------------------------


@tus_handler
async def tus_create(request: web.Request) -> web.Response:
    require_version(request)
    settings = settings_of(request)
    store = store_of(request)
    concat = parsed(lambda: tus.parse_concat(header(request, "Upload-Concat")))
    metadata = parsed(lambda: tus.parse_metadata(header(request, "Upload-Metadata")))
    length = parsed(lambda: tus.parse_int("Upload-Length", header(request, "Upload-Length")))
    defer = header(request, "Upload-Defer-Length")
    if defer is not None and defer != "1":
        raise tus_error(400, "bad_tus_header", "Upload-Defer-Length must be 1")
    final = concat is not None and not concat.partial
    if final and (length is not None or defer is not None):
        raise tus_error(400, "bad_tus_header", "a final upload's length comes from its parts")
    if not final and (length is None) == (defer is None):
        raise tus_error(
            400, "bad_tus_header", "send exactly one of Upload-Length, Upload-Defer-Length"
        )
    cap = upload_cap(request, settings.max_upload_size)
    check_size(cap, length)
    media_type = declared_media_type(metadata.get("filetype") or metadata.get("type"))
    check_upload_type(request, media_type)
    spec = UploadSpec(
        name=sanitize_name(metadata.get("filename") or metadata.get("name")),
        content_type=media_type,
        length=length,
        metadata=metadata,
        expires=time.time() + settings.upload_ttl,
        partial=concat is not None and concat.partial,
        max_length=cap or None,
        owner=principal_of(request).sub,
        # the caller's own cap, when lower than the server's, binds later PATCHes too
        limit=cap if cap != settings.max_upload_size else None,
    )
    lifecycle = lifecycle_of(request)
    await lifecycle.admit(spec, request)
    if final:
        assert concat is not None
        upload = await concatenate(request, store, spec, concat.parts)
        url = file_url(request, upload.info.id)
        lifecycle.created(upload.info, url)
        await lifecycle.finished(upload, url)
    else:
        upload = await store.create(spec)
        lifecycle.created(upload.info, file_url(request, upload.info.id))
        if request.body_exists and request.content_length != 0:  # creation-with-upload
            upload = await exclusive(
                request, upload.info.id, lambda: append_body(request, upload.info.id, 0)
            )
        elif length == 0:
            await finish(request, upload)
    info = upload.info
    headers = {**state_headers(info), "Location": location(request, info)}
    return web.Response(status=201, headers=headers)


async def concatenate(
    request: web.Request, store: DataStore, spec: UploadSpec, urls: tuple[str, ...]
) -> Upload:
    partials = []
    caller = principal_of(request)
    for url in urls:
        try:
            partial = await store.open(tus.upload_id_from_url(url))
        except StorageError:
            raise tus_error(400, "bad_partial", f"no partial upload at {url}") from None
        if not caller.owns(partial.info):  # said as of an unknown id
            raise tus_error(400, "bad_partial", f"no partial upload at {url}")
        if not partial.info.partial or not partial.info.is_complete:
            raise tus_error(400, "bad_partial", f"{url} is not a finished partial upload")
        partials.append(partial)
    total = sum(p.info.length or 0 for p in partials)
    check_size(upload_cap(request, settings_of(request).max_upload_size), total)
    final_spec = UploadSpec(
        name=spec.name,
        content_type=spec.content_type,
        length=total,
        metadata=spec.metadata,
        expires=spec.expires,
        owner=spec.owner,
    )
    final = await store.create(final_spec)
    final.info.parts = [p.info.id for p in partials]
    if isinstance(store, Concatenator):
        await store.concatenate(final, partials)
    else:  # any backend can do it by streaming the parts through
        for partial in partials:
            await final.append(final.info.offset, partial.read())
    await final.finish()
    return final


# -- HEAD ----------------------------------------------------------------------------------


@tus_handler
async def tus_head(request: web.Request) -> web.Response:
    require_version(request)
    upload_id = request.match_info["id"]

    async def look() -> UploadInfo:
        upload = await store_of(request).open(upload_id)
        owned(request, upload.info)
        await settle(request, upload)
        return upload.info

    info = await exclusive(request, upload_id, look)
    headers = {**state_headers(info), "Cache-Control": "no-store"}
    if info.length is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(info.length)
    if info.metadata:
        headers["Upload-Metadata"] = tus.encode_metadata(info.metadata)
    if info.partial:
        headers["Upload-Concat"] = "partial"
    elif info.parts:
        parts = " ".join(f"/files/{part}" for part in info.parts)
        headers["Upload-Concat"] = f"final;{parts}"
    return web.Response(status=200, headers=headers)


# -- PATCH ---------------------------------------------------------------------------------


@tus_handler
async def tus_patch(request: web.Request) -> web.Response:
    require_version(request)
    if request.content_type != tus.OFFSET_TYPE:
        raise tus_error(
            415, "unsupported_media_type", f"PATCH needs Content-Type {tus.OFFSET_TYPE}"
        )
    offset = parsed(lambda: tus.parse_int("Upload-Offset", header(request, "Upload-Offset")))
    if offset is None:
        raise tus_error(400, "bad_tus_header", "PATCH needs Upload-Offset")
    upload_id = request.match_info["id"]
    upload = await exclusive(request, upload_id, lambda: append_body(request, upload_id, offset))
    return web.Response(status=204, headers=state_headers(upload.info))


async def append_body(request: web.Request, upload_id: str, offset: int) -> Upload:
    """Append the request body to the upload (lock held), finishing it at its length."""
    settings = settings_of(request)
    check_declared_length(request, settings.max_request_size)
    upload = await store_of(request).open(upload_id)
    info = upload.info
    owned(request, info)
    if info.parts:
        raise tus_error(403, "final_upload", "a final concatenated upload takes no PATCH")
    if info.direct:
        raise tus_error(403, "direct_upload", "this upload's bytes go straight to storage")
    if await settle(request, upload) and offset == info.offset:
        return upload  # the client resends the end: nothing more to take
    declared = parsed(lambda: tus.parse_int("Upload-Length", header(request, "Upload-Length")))
    if declared is not None and declared != info.length:
        if info.length is not None:
            raise tus_error(400, "bad_tus_header", "Upload-Length is already set")
        check_size(info.limit or settings.max_upload_size, declared)
        await upload.declare_length(declared)
    # (At another offset a 409 follows; a complete upload has its own 403.)
    if offset == info.offset and not info.is_complete and runs_past(request, offset, info.length):
        raise tus_error(
            413,
            "length_exceeded",
            f"upload length is {info.length} bytes; {request.content_length} more at offset"
            f" {offset} go past it",
        )
    verify = None
    checksum_header = header(request, "Upload-Checksum")
    if checksum_header is not None:
        checksum = parsed(lambda: tus.parse_checksum(checksum_header))
        verify = ChunkVerifier(checksum.algorithm, checksum.digest)
    try:
        await receive(request, upload, offset, verify)
    except ChecksumMismatch:
        raise tus_error(
            460, "checksum_mismatch", "the chunk does not match Upload-Checksum"
        ) from None
    except LengthExceeded:  # a chunked body ran past: what fit is kept, and may complete it
        if info.offset == info.length:
            await finish(request, upload)
        raise
    if info.length is not None and info.offset == info.length:
        await finish(request, upload)
    return upload


async def settle(request: web.Request, upload: Upload) -> bool:
    """Finish an upload whose bytes are all stored but which is not complete: the request
    that stored the last of them died (a crash, a kill) before finish() had run or ended.
    Left so, clients resuming see nothing to send and the file never becomes downloadable.
    Callers hold the lock. Returns whether it finished the upload."""
    if not upload.info.awaits_finish:
        return False
    await finish(request, upload)
    return True


async def finish(request: web.Request, upload: Upload) -> None:
    """Complete the upload; the post-finish step runs only on the call that completed it
    (callers hold the upload's lock, so there is exactly one such call)."""
    if upload.info.is_complete:
        return
    info = await upload.finish()
    await lifecycle_of(request).finished(upload, file_url(request, info.id))


# -- termination ---------------------------------------------------------------------------


@tus_handler
async def tus_delete(request: web.Request) -> web.Response:
    require_version(request)
    await terminate(request, request.match_info["id"])
    return web.Response(status=204, headers=BASE_HEADERS)


# -- X-HTTP-Method-Override -----------------------------------------------------------------

OVERRIDES: Mapping[str, Callable[[web.Request], Coroutine[Any, Any, web.Response]]] = {
    "PATCH": tus_patch,
    "DELETE": tus_delete,
    "HEAD": tus_head,
}


async def method_override(request: web.Request) -> web.StreamResponse:
    """`POST /files/{id}` with X-HTTP-Method-Override, for clients behind proxies that
    only pass GET and POST."""
    method = request.headers.get("X-HTTP-Method-Override", "").upper()
    handler = OVERRIDES.get(method)
    if handler is None:
        raise ApiError(
            405,
            "method_not_allowed",
            "POST here needs X-HTTP-Method-Override",
            {"Allow": "GET,HEAD,PATCH,DELETE,OPTIONS"},
        )
    return await handler(request)
