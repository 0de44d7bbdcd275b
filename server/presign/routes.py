"""The Companion-shaped `/s3/` routes that `@uppy/aws-s3` calls, on spigot's own terms.

| route | answers |
| --- | --- |
| `GET /s3/params` | a SigV4 POST policy for one new key: `{method, url, fields, expires}` |
| `POST /s3/multipart` | a new multipart upload: `{key, uploadId, bucket}` |
| `GET /s3/multipart/{uploadId}?key=` | its parts: `[{PartNumber, ETag, Size}]` |
| `GET /s3/multipart/{uploadId}/{n}?key=` | a signed part URL: `{url, expires}` |
| `GET /s3/multipart/{uploadId}/batch?key=&partNumbers=` | `{presignedUrls: {n: url}}` |
| `POST /s3/multipart/{uploadId}/complete?key=` | `{location, key, bucket}` |
| `DELETE /s3/multipart/{uploadId}?key=` | `{}` |

Where Companion trusts the client, spigot does not: the key is a fresh spigot id, the
client's file name is metadata, and every uploadId is bound to its key and owner (a
mismatch is 404, as an unknown id). Errors carry a top-level `message`, which Uppy shows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from storage import DirectSigner, DirectStore, Locker, StorageError, Upload, UploadSpec
from storage.names import sanitize_name

from ..auth import Need, guarded, owned, principal_of, upload_cap
from ..bodies import read_json
from ..context import lifecycle_of, settings_of, store_of
from ..errors import ApiError, from_storage
from ..protocol import presign
from ..protocol.media import declared_media_type
from ..responses import file_url, public_base
from .local import LocalSigner, add_local_routes
from .registry import S3_MAX_OBJECT, announce

UPLOAD = Need(("upload",))
MAX_BODY = 64 << 10
DEFAULT_TYPE = "application/octet-stream"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def companion_errors(handler: Handler) -> Handler:
    """Errors as Companion words them, `{"message": ...}`, beside spigot's own shape."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except presign.PresignError as exc:
            api = ApiError(400, "bad_request", str(exc))
        except StorageError as exc:
            api = from_storage(exc)
            if api.status >= 500:
                raise
        except ApiError as exc:
            api = exc
        body = {"message": api.message, "error": {"code": api.code, "message": api.message}}
        return web.json_response(body, status=api.status, headers=api.headers)

    run.__name__ = handler.__name__
    if hasattr(handler, "spigot_need"):
        run.spigot_need = handler.spigot_need  # type: ignore[attr-defined]
    return run


def direct_store(request: web.Request) -> DirectStore:
    store = store_of(request)
    if not isinstance(store, DirectStore):
        raise ApiError(404, "not_found", "this storage takes no direct uploads")
    return store


def signer(request: web.Request) -> DirectSigner:
    """The store itself where clients reach it (S3); else spigot signs its own URLs."""
    store = store_of(request)
    return store if isinstance(store, DirectSigner) else LocalSigner(request)


def limit_of(request: web.Request) -> int:
    return upload_cap(request, settings_of(request).max_upload_size) or S3_MAX_OBJECT


def direct_spec(
    request: web.Request, filename: Any, content_type: Any, metadata: dict[str, str], ttl: float
) -> UploadSpec:
    name = filename if isinstance(filename, str) else None
    declared = declared_media_type(content_type if isinstance(content_type, str) else None)
    return UploadSpec(
        name=sanitize_name(name),
        content_type=declared or DEFAULT_TYPE,
        metadata=metadata,
        expires=time.time() + ttl,
        owner=principal_of(request).sub,
        limit=limit_of(request),
    )


async def params(request: web.Request) -> web.Response:
    store = direct_store(request)
    sign_with = signer(request)  # before anything is made: it may refuse
    settings = settings_of(request)
    query = request.query
    expires_in = int(settings.presign_expires)
    spec = direct_spec(
        request, query.get("filename"), query.get("type"), presign.query_metadata(query), expires_in
    )
    upload = await store.create_direct(spec, "post")
    lifecycle_of(request).created(upload.info, file_url(request, upload.info.id))
    assert spec.content_type is not None and spec.limit is not None
    url, fields = await sign_with.presign_post(upload, spec.content_type, spec.limit, expires_in)
    return web.json_response(
        {"method": "POST", "url": url, "fields": fields, "expires": expires_in, "headers": {}}
    )


async def create_multipart(request: web.Request) -> web.Response:
    store = direct_store(request)
    signer(request)  # refuses before anything is made, where parts could not be signed
    body = await read_json(request, MAX_BODY, '{"filename", "type", "metadata"}')
    if not isinstance(body, dict):
        raise presign.PresignError('the body must be {"filename", "type", "metadata"}')
    spec = direct_spec(
        request,
        body.get("filename"),
        body.get("type"),
        presign.body_metadata(body.get("metadata")),
        settings_of(request).upload_ttl,
    )
    upload = await store.create_direct(spec, "multipart")
    lifecycle_of(request).created(upload.info, file_url(request, upload.info.id))
    bucket, key, upload_id = store.direct_target(upload)
    return web.json_response({"key": key, "uploadId": upload_id, "bucket": bucket})


async def bound(request: web.Request) -> tuple[DirectStore, Upload]:
    """The upload this uploadId and key name, if both are bound to it and it is the
    caller's; 404 otherwise, as for an unknown id."""
    store = direct_store(request)
    key = request.query.get("key")
    try:
        upload = await store_of(request).open(presign.upload_id_of_key(key))
    except StorageError:
        raise ApiError(404, "not_found", "no such file or upload") from None
    owned(request, upload.info)
    _, real_key, multipart = store.direct_target(upload)
    if upload.info.direct != "multipart" or key != real_key:
        raise ApiError(404, "not_found", "no such file or upload")
    if multipart != request.match_info["uploadId"]:
        raise ApiError(404, "not_found", "no such file or upload")
    return store, upload


async def list_parts(request: web.Request) -> web.Response:
    store, upload = await bound(request)
    if upload.info.is_complete:
        raise ApiError(409, "upload_complete", "the upload is complete")
    parts = await store.list_direct_parts(upload)
    return web.json_response(
        [{"PartNumber": p.number, "ETag": p.etag, "Size": p.size} for p in parts]
    )


async def sign_part(request: web.Request) -> web.Response:
    number = presign.part_number(request.match_info["partNumber"])
    _, upload = await bound(request)
    expires_in = int(settings_of(request).presign_expires)
    url = await signer(request).presign_part(upload, number, expires_in)
    return web.json_response({"url": url, "expires": expires_in})


async def sign_batch(request: web.Request) -> web.Response:
    numbers = presign.part_numbers(request.query.get("partNumbers"))
    _, upload = await bound(request)
    expires_in = int(settings_of(request).presign_expires)
    sign_with = signer(request)
    urls = {str(n): await sign_with.presign_part(upload, n, expires_in) for n in numbers}
    return web.json_response({"presignedUrls": urls})


@contextlib.asynccontextmanager
async def locked(request: web.Request, upload_id: str) -> AsyncIterator[None]:
    store = store_of(request)
    lock = store.lock(upload_id, lambda: None) if isinstance(store, Locker) else None
    async with lock or contextlib.nullcontext():
        yield


async def complete(request: web.Request) -> web.Response:
    body = await read_json(request, presign.MAX_PARTS * 100, '{"parts": [...]}')
    parts = presign.completed_parts(body)
    store, upload = await bound(request)
    upload_id = upload.info.id
    async with locked(request, upload_id):
        upload = await store_of(request).open(upload_id)  # as it is now, under the lock
        if not upload.info.is_complete:
            await store.complete_direct(upload, parts, upload.info.limit or limit_of(request))
            await announce(request.app, upload, public_base(request))
    bucket, key, _ = store.direct_target(upload)
    return web.json_response(
        {"location": file_url(request, upload_id), "key": key, "bucket": bucket}
    )


async def abort(request: web.Request) -> web.Response:
    _, upload = await bound(request)
    async with locked(request, upload.info.id):
        upload = await store_of(request).open(upload.info.id)
        if upload.info.is_complete:
            raise ApiError(409, "upload_complete", "the upload is complete; DELETE the file")
        await upload.delete(gone="terminated")
        lifecycle_of(request).terminated(upload.info, file_url(request, upload.info.id))
    return web.json_response({})


def add_presign_routes(app: web.Application) -> None:
    r = app.router

    def route(method: str, path: str, handler: Handler) -> None:
        r.add_route(method, path, companion_errors(guarded(UPLOAD, handler)))

    route("GET", "/s3/params", params)
    route("POST", "/s3/multipart", create_multipart)
    route("GET", "/s3/multipart/{uploadId}", list_parts)
    route("GET", "/s3/multipart/{uploadId}/batch", sign_batch)  # before {partNumber}
    route("GET", "/s3/multipart/{uploadId}/{partNumber}", sign_part)
    route("POST", "/s3/multipart/{uploadId}/complete", complete)
    route("DELETE", "/s3/multipart/{uploadId}", abort)
    add_local_routes(app)
