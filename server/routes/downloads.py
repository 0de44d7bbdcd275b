"""`GET` and `HEAD /files/{id}`: RFC 9110 downloads with validators, ranges and multipart.

The decisions (which status, which ranges) come from the pure units in `server.protocol`;
this module only gathers their inputs and moves the bytes: zero-copy sendfile when the
backend is a local file, otherwise the backend's bounded async reader with real backpressure
(every `write` waits for the socket to drain).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

from aiohttp import web

from storage import LocalFile, Presigner, Upload, UploadInfo

from ..auth import Principal, owned, principal_of
from ..context import settings_of, store_of
from ..errors import ApiError
from ..netio import stalled_sends
from ..presign import recognise
from ..protocol import accel, byteranges, conditional, digests, disposition, links
from ..protocol.conditional import Outcome, Validators
from ..protocol.media import is_active, served_type
from ..protocol.ranges import ByteRange, Unsatisfiable, parse_range
from ..proxy.zerocopy import plain_socket, send_file
from ..responses import public_base

log = logging.getLogger("spigot")

# Bodies up to this size are read in one go and sent with their headers in a single write;
# larger ones are streamed (sendfile for local files). Thread hand-offs, not bytes, dominate
# the cost of small ranges: see bench/RESULTS.md. Each such body waits in memory until its
# client takes it: with 200 range readers, 256 KiB here cost ~18 MiB of RSS (bench/load.py).
SMALL_BODY = 64 << 10


@dataclass(frozen=True, slots=True)
class Representation:
    """What a finished upload's headers say about it; it never changes, so it is memoised."""

    validators: Validators
    last_modified: str
    content_type: str
    inline: str  # Content-Disposition values
    attachment: str
    active: bool  # a browser would run script in it: served sandboxed
    # Its sha256 as RFC 9530's Repr-Digest and RFC 3230's Digest give it; None when no
    # sha256 was kept (--checksum none, a direct upload S3 received).
    repr_digest: str | None
    instance_digest: str | None


def representation(info: UploadInfo) -> Representation:
    assert info.strong_etag is not None and info.completed is not None
    return _representation(
        info.strong_etag, info.completed, info.name, info.content_type, info.sha256
    )


@lru_cache(maxsize=4096)
def _representation(
    etag: str, completed: float, name: str, declared_type: str | None, sha256: str | None
) -> Representation:
    # The content of a finished upload never changes, so its sha256 (or, for a direct
    # upload, the backend's ETag) is a strong validator.
    v = Validators(etag=etag, last_modified=datetime.fromtimestamp(int(completed), UTC))
    content_type = served_type(declared_type, name)
    return Representation(
        validators=v,
        last_modified=v.http_last_modified(),
        content_type=content_type,
        active=is_active(content_type),
        inline=disposition.header_for(name, attachment=False),
        attachment=disposition.header_for(name, attachment=True),
        repr_digest=digests.digest_header(sha256) if sha256 else None,
        instance_digest=digests.instance_digest(sha256) if sha256 else None,
    )


async def open_finished(request: web.Request) -> Upload:
    upload = await store_of(request).open(request.match_info["id"])
    info = upload.info
    owned(request, info)
    if info.direct == "post" and not info.is_complete:  # S3 tells nobody it has arrived
        upload = await recognise(request.app, info.id, public_base(request))
        info = upload.info
    if not info.is_complete:
        raise ApiError(
            409,
            "upload_incomplete",
            f"the upload is still in progress ({info.offset} of {info.length} bytes)",
        )
    return upload


async def get_file(request: web.Request) -> web.StreamResponse:
    upload = await open_finished(request)
    info = upload.info
    size = info.length or 0
    rep = representation(info)
    v = rep.validators
    headers = {
        "ETag": v.etag,
        "Last-Modified": rep.last_modified,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
    }
    outcome = conditional.evaluate(request.method, request.headers, v)
    if outcome is Outcome.NOT_MODIFIED:
        return web.Response(status=304, headers=headers)
    if outcome is Outcome.PRECONDITION_FAILED:
        raise ApiError(
            412,
            "precondition_failed",
            "a precondition header did not match",
            {"ETag": v.etag, "Last-Modified": headers["Last-Modified"]},
        )

    mime = rep.content_type
    attachment = request.query.get("download", "") not in ("", "0", "false")
    headers["Content-Type"] = mime
    headers["Content-Disposition"] = rep.attachment if attachment else rep.inline
    settings = settings_of(request)
    if settings.s3_redirect_downloads and isinstance(store := store_of(request), Presigner):
        # The bytes come from S3 itself, with the headers spigot would have sent.
        url = await store.presign_download(
            upload,
            int(settings.s3_redirect_expires),
            mime,
            headers["Content-Disposition"],
        )
        return web.Response(
            status=302, headers={"Location": url, "Cache-Control": "private, no-store"}
        )
    headers["X-Content-Type-Options"] = "nosniff"
    if rep.repr_digest is not None:
        # The whole file's digest, on a range too (RFC 9530 section 3): a client that
        # fetched it in pieces checks what it put together.
        headers["Repr-Digest"] = rep.repr_digest
        if digests.wants_sha256(request.headers.get("Want-Digest")):
            headers["Digest"] = rep.instance_digest or ""
    if rep.active:
        headers["Content-Security-Policy"] = "sandbox"  # see server/protocol/media.py
    # HEAD too: nginx answers it from the file, and spigot-kept-answers.conf asks by HEAD.
    if settings.accel_redirect and isinstance(upload, LocalFile):
        reuse = accel.reuse_seconds(
            granted_by(principal_of(request)),
            request.query.get("expires"),
            settings.accel_reuse,
            time.time(),
        )
        if reuse:
            # First: nginx 1.22 lets it outweigh Cache-Control only if it comes before it.
            headers = {"X-Accel-Expires": str(reuse), **headers}
        if request.method == "HEAD":  # what nginx will say, for a client that asks spigot
            headers["Content-Length"] = str(size)
        return accel_redirect(settings.accel_redirect, settings.storage, upload, headers)

    wanted = parse_range(request.headers.get("Range"), size)
    if wanted is not None and not conditional.range_allowed(request.headers, v):
        wanted = None
    if isinstance(wanted, Unsatisfiable):
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"no requested range lies within the {size} bytes",
            {"Content-Range": f"bytes */{size}", "ETag": v.etag, "Accept-Ranges": "bytes"},
        )

    status = 200
    if wanted is None or len(wanted) == 1:
        single = wanted[0] if wanted else ByteRange(0, size - 1)
        if wanted:
            status = 206
            headers["Content-Range"] = single.content_range(size)
        pieces: list[Piece] = [(b"", single)] if size else []
        tail = b""
        length = single.length if size else 0
    else:
        layout = byteranges.layout(wanted, size, mime)
        status = 206
        headers["Content-Type"] = layout.content_type
        pieces = [(part.head, part.range) for part in layout.parts]
        tail = layout.tail
        length = layout.content_length

    if request.method == "HEAD":
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = length
        await resp.prepare(request)
        await resp.write_eof()
        return resp
    if length <= SMALL_BODY:
        return web.Response(
            status=status, headers=headers, body=await _gather(upload, pieces, tail)
        )
    return await _stream(request, status, headers, length, upload, pieces, tail)


def granted_by(principal: Principal) -> str | None:
    """What let this request read the file, as server.protocol.accel weighs it."""
    if principal.link_kind == links.DOWNLOAD:
        return "link"
    return "public" if principal.public else None


def accel_redirect(
    prefix: str, storage: str, upload: LocalFile, headers: dict[str, str]
) -> web.Response:
    """Every check is done; nginx sends the bytes (sendfile) and serves the ranges itself,
    judging If-Range by the ETag it is given (deploy/nginx/spigot.conf hands it on)."""
    root = Path(url2pathname(urlsplit(storage).path)).resolve()
    where = upload.local_path().resolve().relative_to(root).as_posix()
    headers["X-Accel-Redirect"] = prefix + quote(where)
    return web.Response(status=200, headers=headers)


Piece = tuple[bytes, ByteRange]  # a multipart part head (or b"") and the bytes that follow


async def _gather(upload: Upload, pieces: list[Piece], tail: bytes) -> bytes:
    """A small body read whole: one pool hand-off per range, one write with the headers."""
    if len(pieces) == 1 and not pieces[0][0]:
        only = pieces[0][1]
        return await upload.read_bytes(only.first, only.last + 1)
    out = []
    for head, byte_range in pieces:
        out.append(head)
        out.append(await upload.read_bytes(byte_range.first, byte_range.last + 1))
    out.append(tail)
    return b"".join(out)


async def _stream(
    request: web.Request,
    status: int,
    headers: dict[str, str],
    length: int,
    upload: Upload,
    pieces: list[Piece],
    tail: bytes,
) -> web.StreamResponse:
    """A large body: zero-copy sendfile from a local file, else the backend's reader.

    The file is opened before the headers go out, so a file deleted meanwhile is still a
    clean 404 rather than a truncated 200.
    """
    loop = asyncio.get_running_loop()
    stall_limit = settings_of(request).network_timeout
    # uvloop has no loop.sendfile(): there sendfile(2) is driven here (zerocopy.send_file),
    # on plain TCP; behind TLS the bytes go through the backend's reader
    native = isinstance(loop, asyncio.BaseEventLoop)
    zero_copy = isinstance(upload, LocalFile) and (
        native or plain_socket(request.transport) is not None
    )
    fobj = await upload.open_file() if zero_copy and isinstance(upload, LocalFile) else None
    try:
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = length
        await resp.prepare(request)
        try:
            for head, byte_range in pieces:
                if head:
                    await resp.write(head)
                if fobj is not None and request.transport is not None:
                    # asyncio's sendfile first waits for the transport's buffer (headers,
                    # part head) to flush, so the bytes go out in order.
                    async with stalled_sends(request.transport, stall_limit):
                        if native:
                            await loop.sendfile(
                                request.transport, fobj, byte_range.first, byte_range.length
                            )
                        else:
                            await send_file(
                                request.transport,
                                fobj.fileno(),
                                byte_range.first,
                                byte_range.length,
                            )
                else:
                    async for chunk in upload.read(byte_range.first, byte_range.last + 1):
                        await resp.write(chunk)
            if tail:
                await resp.write(tail)
        except Exception as exc:
            # A body that cannot be finished must not end cleanly: reset the connection,
            # so the client sees a broken download, never a short file that looks whole.
            if not isinstance(exc, ConnectionError):
                log.warning("download of %s broke off: %s", upload.info.id, exc)
            if request.transport is not None:
                request.transport.abort()
            return resp
        await resp.write_eof()
        return resp
    finally:
        if fobj is not None:
            await loop.run_in_executor(None, fobj.close)
