"""The same direct-upload flow on local disk: the URLs that `/s3/` hands out point at
spigot itself, so browser code written for S3 runs unchanged in development.

- A POST policy becomes `POST /files/?upload={id}&expires=…&sig=…` with the fields `key`
  and `Content-Type`, which must name the upload and its type exactly, as in S3's policy;
  the file streams into the upload whole or not at all, within its limit.
- A part URL becomes `PUT /s3/local/{id}/{n}?expires=…&sig=…`, answered with the part's
  `ETag`; complete joins the parts in the kernel (storage/local/direct.py).

Both are signed with `--secret`: the link is the credential, as S3's signature is.
"""

from __future__ import annotations

import time

from aiohttp import BodyPartReader, web

from storage import DirectStore, Locker, PartReceiver, Upload
from storage.errors import ChecksumMismatch
from storage.hashing import WholeOrNothing

from ..auth import Need, guarded, owned
from ..bodies import Meter, arriving, form_reader, part_chunks, raw_chunks
from ..context import settings_of, store_of
from ..errors import ApiError
from ..protocol import digests, links, presign
from ..responses import file_json, file_url, public_base
from .registry import announce

PART = Need(("upload",), links=(links.PART,))
MAX_FIELD = 4 << 10  # a policy form field: a key, a type


class LocalSigner:
    """DirectSigner for a store the server receives the bytes for itself."""

    def __init__(self, request: web.Request) -> None:
        keys = settings_of(request).secret
        if not keys:
            raise ApiError(403, "links_disabled", "direct uploads to local disk need --secret")
        self.key = keys[0]
        self.base = public_base(request)

    async def presign_post(
        self, upload: Upload, content_type: str, limit: int, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        upload_id = upload.info.id
        query = links.file_query(self.key, links.POST, upload_id, int(time.time() + expires_in))
        fields = {"key": upload_id, "Content-Type": content_type}
        return f"{self.base}/files/?upload={upload_id}&{query}", fields

    async def presign_part(self, upload: Upload, number: int, expires_in: int) -> str:
        subject = f"{upload.info.id}/{number}"
        query = links.file_query(self.key, links.PART, subject, int(time.time() + expires_in))
        return f"{self.base}/s3/local/{subject}?{query}"


async def fill_post(request: web.Request, upload_id: str) -> web.Response:
    """The form POST of a direct upload on local disk (see the module's docstring)."""
    store = store_of(request)
    upload = await store.open(upload_id)
    info = upload.info
    if info.direct != "post":
        raise ApiError(404, "not_found", "no such file or upload")
    if info.is_complete:
        raise ApiError(409, "upload_complete", "this upload has its file already")
    reader = await form_reader(request)
    fields: dict[str, str] = {}
    while (part := await arriving(request, reader.next())) is not None:
        if not isinstance(part, BodyPartReader):
            raise ApiError(400, "bad_multipart", "nested multipart parts are not supported")
        if part.filename is None and part.name != "file":
            raw = await part.read_chunk(MAX_FIELD)
            fields[(part.name or "").lower()] = raw.decode("utf-8", "replace")
            continue
        if fields.get("key") != info.id or fields.get("content-type") != info.content_type:
            raise ApiError(
                403,
                "policy_mismatch",
                "the form's key and Content-Type must be the policy's",
                close=True,
            )
        return await _store_file(request, upload, part)
    raise ApiError(400, "no_file", "the form has no file field")


async def _store_file(request: web.Request, upload: Upload, part: BodyPartReader) -> web.Response:
    store = store_of(request)
    lock = store.lock(upload.info.id, lambda: None) if isinstance(store, Locker) else None
    if lock is None:
        raise ApiError(404, "not_found", "direct uploads need a store with locks")
    async with lock:
        upload = await store.open(upload.info.id)
        if upload.info.is_complete:
            raise ApiError(409, "upload_complete", "this upload has its file already", close=True)
        meter = Meter(upload.info.limit or 0)
        await upload.append(0, part_chunks(request, part, meter), WholeOrNothing(), last=True)
        await upload.finish()
        await announce(request.app, upload, public_base(request))
    info = upload.info
    url = file_url(request, info.id)
    headers = {"Location": url, "ETag": info.strong_etag or ""}
    return web.json_response(file_json(info, url), status=201, headers=headers)


async def put_part(request: web.Request) -> web.Response:
    store = store_of(request)
    if not isinstance(store, PartReceiver) or not isinstance(store, DirectStore):
        raise ApiError(404, "not_found", "no such file or upload")
    try:
        number = presign.part_number(request.match_info["part"])
    except presign.PresignError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    upload = await store.open(request.match_info["id"])
    owned(request, upload.info)
    if upload.info.direct != "multipart" or upload.info.is_complete:
        raise ApiError(409, "upload_complete", "this upload takes no more parts")
    try:
        md5 = digests.content_md5(request.headers.get("Content-MD5"))
    except digests.BadDigest as exc:
        raise ApiError(400, "bad_digest", str(exc)) from None
    try:
        part = await store.write_part(
            upload, number, raw_chunks(request, Meter(upload.info.limit or 0)), md5
        )
    except ChecksumMismatch:
        raise ApiError(
            400, "digest_mismatch", "the part does not match its Content-MD5; it was not kept"
        ) from None
    return web.Response(status=200, headers={"ETag": part.etag})


def add_local_routes(app: web.Application) -> None:
    app.router.add_put("/s3/local/{id}/{part}", guarded(PART, put_part))
