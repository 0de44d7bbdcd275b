"""One-shot uploads: `POST /files/` (raw body or multipart/form-data) and `PUT /files/{name}`.

Each file is streamed into a fresh upload and finished only when its last byte is stored, so
an upload is never visible as complete early. Any failure (cap crossed, body cut short,
client gone) deletes everything this request created: a half-received one-shot upload leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from storage import Upload, UploadInfo, UploadSpec
from storage.names import sanitize_name

from ..auth import Need, authenticate, check_upload_type, principal_of, upload_cap
from ..bodies import (
    CONTINUE_DUE,
    Meter,
    arriving,
    broken_body,
    check_declared_length,
    discard_part,
    form_reader,
    md5_checked,
    part_chunks,
    raw_chunks,
    send_continue,
)
from ..context import lifecycle_of, settings_of, store_of
from ..errors import ApiError
from ..presign.local import fill_post
from ..protocol import digests, links
from ..protocol.disposition import filename_from_header
from ..protocol.media import declared_media_type
from ..responses import file_json, file_url
from ..tasks import run_to_completion
from .events import progress_token

# Should the process die mid-upload, the unfinished upload expires and is swept after this.
ONE_SHOT_TTL = 3600.0


async def post_file(request: web.Request) -> web.Response:
    principal = principal_of(request)
    if principal.link_kind == links.POST and principal.only_upload is not None:
        return await run_to_completion(fill_post(request, principal.only_upload))
    if request.content_type == "multipart/form-data":
        return await run_to_completion(_multipart(request))
    name = request.query.get("name") or filename_from_header(
        request.headers.get("Content-Disposition")
    )
    return await run_to_completion(_raw(request, name))


async def put_file(request: web.Request) -> web.Response:
    name = (
        request.query.get("name")
        or filename_from_header(request.headers.get("Content-Disposition"))
        or request.match_info.get("name")
    )
    return await run_to_completion(_raw(request, name))


ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def expect_continue(need: Need) -> ExpectHandler:
    """Answer `Expect: 100-continue` with the 401/403 a request would get, or 413 when the
    declared body is over the caller's cap.

    curl asks before sending a large body; refusing here means not one byte is sent. aiohttp
    runs this before the route's handler, so the guard's check is made here too (once: the
    handler finds the principal already decided).

    Otherwise the 100 waits for the handler's first read of the body (bodies.CONTINUE_DUE),
    as Go's net/http and so tusd do: the rest of the refusals need the handler (a tus
    PATCH past its upload's length or at the wrong offset, a creation over the upload
    limit, a type the token may not upload), and a client must not be told to send first.
    """

    async def expect(request: web.Request) -> web.StreamResponse | None:
        if request.headers.get("Expect", "").lower() != "100-continue":
            return None
        try:
            await authenticate(request, need)
            check_declared_length(
                request, upload_cap(request, settings_of(request).max_request_size)
            )
        except ApiError as exc:
            return exc.response()
        if request.content_length != 0:
            request[CONTINUE_DUE] = True
        else:
            await send_continue(request)
        return None

    return expect


async def expect_only_continue(request: web.Request) -> web.StreamResponse | None:
    """The answer to `Expect` on every route that takes no upload: `100-continue` goes on,
    anything else is a JSON 417. aiohttp's own handler answered in plain text with the
    header's value in it, and a value that was not UTF-8 made that a 500."""
    if request.headers.get("Expect", "").lower() == "100-continue":
        await send_continue(request)
        return None
    message = "the only expectation this server meets is 100-continue"
    return ApiError(417, "expectation_failed", message).response()


async def expect_no_body(request: web.Request) -> web.StreamResponse | None:
    """The answer to `Expect` where no route matched (404) or no method did (405): nothing
    will read the body, so `100-continue` gets no 100, and the error closes the connection
    (bodies.close_if_body_unread); anything else is the JSON 417 of every other route."""
    if request.headers.get("Expect", "").lower() == "100-continue":
        if request.content_length != 0:
            request[CONTINUE_DUE] = True
        return None
    return await expect_only_continue(request)


def one_shot_cap(request: web.Request) -> int:
    return upload_cap(request, settings_of(request).max_request_size)


async def _raw(request: web.Request, name: str | None) -> web.Response:
    cap = one_shot_cap(request)
    check_declared_length(request, cap)
    expected = _expected_sha256(request)
    spec = _spec(request, name, request.headers.get("Content-Type", ""))
    if expected is not None:
        spec = dataclasses.replace(spec, sha256=True)  # checked under --checksum none too
    chunks: AsyncIterable[bytes] = raw_chunks(request, Meter(cap))
    if (md5 := _expected_md5(request)) is not None:
        chunks = md5_checked(chunks, md5)
    upload = await _store_stream(request, spec, chunks, expected)
    return _created(request, [upload.info])


def _expected_md5(request: web.Request) -> bytes | None:
    """A raw body's `Content-MD5`, as S3's PutObject takes it; a malformed one is a 400
    before any byte is taken (S3's InvalidDigest)."""
    try:
        return digests.content_md5(request.headers.get("Content-MD5"))
    except digests.BadDigest as exc:
        raise ApiError(400, "bad_digest", str(exc)) from None


def _expected_sha256(request: web.Request) -> str | None:
    """The sha256 a raw body's `Content-Digest` or `Repr-Digest` says it has (RFC 9530;
    for a whole body stored as sent the two are the same digest), hex. Only sha-256 is
    checked, the hash spigot keeps anyway; other algorithms are ignored, as RFC 9530 lets
    a recipient do. Two that disagree are a 400 before any byte is taken."""
    found = {
        digest
        for field in ("Content-Digest", "Repr-Digest")
        if (digest := digests.digests(request.headers.get(field)).get("sha256")) is not None
    }
    if len(found) > 1:
        raise ApiError(400, "digest_mismatch", "Content-Digest and Repr-Digest disagree")
    return found.pop().hex() if found else None


async def _multipart(request: web.Request) -> web.Response:
    cap = one_shot_cap(request)
    check_declared_length(request, cap)
    meter = Meter(cap)
    reader = await form_reader(request)
    stored: list[Upload] = []
    try:
        async for part in _parts(request, reader):
            if part.filename is None:
                await discard_part(request, part, meter)
                continue
            spec = _spec(request, part.filename, part.headers.get("Content-Type", ""))
            stored.append(await _store_stream(request, spec, part_chunks(request, part, meter)))
    except BaseException:
        await asyncio.shield(_take_back(request, stored))
        raise
    if not stored:
        raise ApiError(400, "no_file", "the form has no file field")
    return _created(request, [upload.info for upload in stored])


async def _parts(request: web.Request, reader: MultipartReader) -> AsyncIterator[BodyPartReader]:
    """The form's top-level parts; nested multipart (obsolete multipart/mixed) is refused."""
    try:
        while (part := await arriving(request, reader.next())) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_multipart", "nested multipart parts are not supported")
            yield part
    except (HttpProcessingError, ConnectionError, ValueError, AssertionError) as exc:
        raise broken_body(exc) from exc


async def _store_stream(
    request: web.Request,
    spec: UploadSpec,
    chunks: AsyncIterable[bytes],
    expected: str | None = None,
) -> Upload:
    """Create, fill and finish one upload, or leave no trace of it: also when its sha256
    is not the `expected` one its client declared."""
    lifecycle = lifecycle_of(request)
    token = progress_token(request)
    aliases = (token,) if token else ()
    for alias in aliases:
        lifecycle.events.reopen(alias)
    await lifecycle.admit(spec, request)
    upload = await store_of(request).create(spec)
    url = file_url(request, upload.info.id)
    lifecycle.created(upload.info, url)
    meter = lifecycle.meter(upload.info, *aliases)
    try:
        await upload.append(0, meter.wrap(chunks), last=True)
        info = await upload.finish()
        if expected is not None and not hmac.compare_digest(expected, info.sha256 or ""):
            raise ApiError(
                400,
                "digest_mismatch",
                f"the body's sha-256 is {info.sha256}, not the {expected} its digest field"
                " gives; nothing was kept",
            )
    except BaseException:
        meter.stop()
        await asyncio.shield(upload.delete())
        lifecycle.terminated(upload.info, url, *aliases)
        raise
    meter.publish()
    await lifecycle.finished(upload, url, *aliases)
    return upload


async def _take_back(request: web.Request, uploads: list[Upload]) -> None:
    """Remove files a failed form had already finished, and say so to readers and hooks."""
    lifecycle = lifecycle_of(request)
    for upload in uploads:
        await upload.delete()
        lifecycle.terminated(upload.info, file_url(request, upload.info.id))


def _spec(request: web.Request, name: str | None, content_type: str) -> UploadSpec:
    media_type = declared_media_type(content_type)
    check_upload_type(request, media_type)
    return UploadSpec(
        name=sanitize_name(name),
        content_type=media_type,
        expires=time.time() + ONE_SHOT_TTL,
        # The body's declared size bounds the file's (a form's too): a backend that plans
        # its layout (S3 part sizes) then plans for this file, not for the largest allowed.
        max_length=request.content_length or one_shot_cap(request) or None,
        owner=principal_of(request).sub,
    )


def _created(request: web.Request, infos: list[UploadInfo]) -> web.Response:
    urls = [file_url(request, info.id) for info in infos]
    body: dict[str, Any]
    if len(infos) == 1:
        body = file_json(infos[0], urls[0])
    else:
        body = {"files": [file_json(i, u) for i, u in zip(infos, urls, strict=True)]}
    headers = {"Location": urls[0]}
    if len(infos) == 1 and infos[0].sha256:
        headers["Repr-Digest"] = digests.digest_header(infos[0].sha256)
    return web.json_response(body, status=201, headers=headers)
