"""`GET` and `HEAD /files/{id}`: RFC 9110 downloads with validators, ranges and multipart.

The decisions (which status, which ranges) come from the pure units in `server.protocol`;
this module only gathers their inputs and moves the bytes: zero-copy sendfile when the
backend is a local file, otherwise the backend's bounded async reader with real backpressure
(every `write` waits for the socket to drain).
"""

from __future__ import annotations

import asyncio
import mimetypes
from datetime import UTC, datetime
from typing import IO

from aiohttp import web

from storage import LocalFile, Upload, UploadInfo

from ..context import store_of
from ..errors import ApiError
from ..protocol import byteranges, conditional, disposition
from ..protocol.conditional import Outcome, Validators
from ..protocol.ranges import ByteRange, Unsatisfiable, parse_range


def validators(info: UploadInfo) -> Validators:
    # The content of a finished upload never changes, so its sha256 is a strong validator.
    moment = datetime.fromtimestamp(int(info.completed or info.created), tz=UTC)
    return Validators(etag=f'"{info.sha256}"', last_modified=moment)


def content_type(info: UploadInfo) -> str:
    if info.content_type:
        return info.content_type
    guessed, _ = mimetypes.guess_type(info.name, strict=False)
    return guessed or "application/octet-stream"


async def open_finished(request: web.Request) -> Upload:
    upload = await store_of(request).open(request.match_info["id"])
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
    v = validators(info)
    headers = {
        "ETag": v.etag,
        "Last-Modified": v.http_last_modified(),
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

    mime = content_type(info)
    attachment = request.query.get("download", "") not in ("", "0", "false")
    headers["Content-Type"] = mime
    headers["Content-Disposition"] = disposition.header_for(info.name, attachment=attachment)
    headers["X-Content-Type-Options"] = "nosniff"

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

    resp = web.StreamResponse(headers=headers)
    if wanted is None or len(wanted) == 1:
        single = wanted[0] if wanted else ByteRange(0, size - 1)
        if wanted:
            resp.set_status(206)
            resp.headers["Content-Range"] = single.content_range(size)
        resp.content_length = single.length if size else 0
        await resp.prepare(request)
        if request.method != "HEAD" and size:
            await _send(request, resp, upload, [(b"", single)], b"")
    else:
        layout = byteranges.layout(wanted, size, mime)
        resp.set_status(206)
        resp.content_type = "multipart/byteranges"  # replaced below with the boundary
        resp.headers["Content-Type"] = layout.content_type
        resp.content_length = layout.content_length
        await resp.prepare(request)
        if request.method != "HEAD":
            pieces = [(part.head, part.range) for part in layout.parts]
            await _send(request, resp, upload, pieces, layout.tail)
    await resp.write_eof()
    return resp


async def _send(
    request: web.Request,
    resp: web.StreamResponse,
    upload: Upload,
    pieces: list[tuple[bytes, ByteRange]],
    tail: bytes,
) -> None:
    """Write each piece's head then its bytes, then the tail."""
    loop = asyncio.get_running_loop()
    fobj: IO[bytes] | None = None
    if isinstance(upload, LocalFile) and request.transport is not None:
        fobj = await loop.run_in_executor(None, open, upload.local_path(), "rb")
    try:
        for head, byte_range in pieces:
            if head:
                await resp.write(head)
            if fobj is not None and request.transport is not None:
                # asyncio's sendfile first waits for the transport's buffer (headers, part
                # head) to flush, so the bytes go out in order.
                await loop.sendfile(request.transport, fobj, byte_range.first, byte_range.length)
            else:
                async for chunk in upload.read(byte_range.first, byte_range.last + 1):
                    await resp.write(chunk)
        if tail:
            await resp.write(tail)
    finally:
        if fobj is not None:
            await loop.run_in_executor(None, fobj.close)
