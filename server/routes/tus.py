"""tus 1.0 resumable uploads on `/files/`, with every extension spigot advertises.

The grammar lives in `server.protocol.tus`; storage is reached only through the DataStore
interface and the optional capabilities it discovers (Locker, Concatenator). A POST carrying
`Tus-Resumable` is a tus creation; without it, `/files/` stays the one-shot upload.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web

from storage import (
    Concatenator,
    DataStore,
    Locker,
    StorageError,
    Upload,
    UploadInfo,
    UploadSpec,
)
from storage.errors import ChecksumMismatch
from storage.hashing import ChunkVerifier
from storage.names import sanitize_name

from ..auth import owned, principal_of, upload_cap
from ..bodies import Meter, check_declared_length, raw_chunks
from ..context import lifecycle_of, settings_of, store_of
from ..errors import ApiError, from_storage
from ..protocol import links, tus
from ..protocol.conditional import http_date
from ..protocol.media import declared_media_type
from ..responses import file_url
from ..settings import Settings
from ..tasks import detach
from .uploads import check_type

T = TypeVar("T")

BASE_HEADERS = {"Tus-Resumable": tus.TUS_VERSION}

# Tasks now receiving a request body under an upload's lock: the only ones a competing
# request may interrupt (see exclusive()).
RECEIVING: set[asyncio.Task[Any]] = set()


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
    return web.Response(status=204, headers=options_headers(settings_of(request)))


# -- locking -------------------------------------------------------------------------------


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
                raise tus_error(
                    423, "upload_taken_over", "another request took over this upload"
                ) from None
            raise

    task = detach(run())
    return await asyncio.shield(task)


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
    check_type(request, media_type)
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
        raise tus_error(413, "upload_too_large", f"uploads are limited to {cap} bytes")


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
    cap = settings.max_request_size
    check_declared_length(request, cap)
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
    verify = None
    checksum_header = header(request, "Upload-Checksum")
    if checksum_header is not None:
        checksum = parsed(lambda: tus.parse_checksum(checksum_header))
        verify = ChunkVerifier(checksum.algorithm, checksum.digest)
    meter = lifecycle_of(request).meter(info)
    task = asyncio.current_task()
    assert task is not None
    RECEIVING.add(task)
    try:
        body = raw_chunks(request, Meter(within_limit(info, cap)))
        await upload.append(offset, meter.wrap(body), verify)
    except ChecksumMismatch:
        raise tus_error(
            460, "checksum_mismatch", "the chunk does not match Upload-Checksum"
        ) from None
    finally:
        RECEIVING.discard(task)
        meter.offset = info.offset  # what was kept, not what arrived
        meter.publish()
    if info.length is not None and info.offset == info.length:
        await finish(request, upload)
    return upload


def within_limit(info: UploadInfo, cap: int) -> int:
    """This PATCH's cap: the request cap, and for a deferred-length upload whose creator had
    a lower limit than the server's, no further than that limit."""
    if info.limit is None or info.length is not None:
        return cap
    room = info.limit - info.offset
    if room <= 0:
        raise tus_error(413, "upload_too_large", f"this upload is limited to {info.limit} bytes")
    return min(cap, room) if cap else room


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
    upload_id = request.match_info["id"]

    async def terminate() -> None:
        upload = await store_of(request).open(upload_id)
        owned(request, upload.info)
        await upload.delete(gone="terminated")
        lifecycle_of(request).terminated(upload.info, file_url(request, upload_id))

    await exclusive(request, upload_id, terminate)
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
