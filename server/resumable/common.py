"""What every draft route shares: which requests are draft requests, and the state fields.

The upload resource is the tus upload itself (`/files/{id}`), on the same storage, so
locking, take-over, expiry, ownership, hooks, events and crash recovery are tus's own
(server/routes/tus.py). Only the words on the wire differ.
"""

from __future__ import annotations

import time

from aiohttp import web

from storage import UploadInfo

from ..auth import upload_cap
from ..context import settings_of
from ..errors import ApiError
from ..protocol import rufh


def interop(request: web.Request) -> rufh.Interop | None:
    return rufh.interop_of(request.headers)


def is_draft(request: web.Request) -> bool:
    """A request to an upload resource (HEAD, PATCH, DELETE) in a version spigot speaks."""
    return interop(request) is not None


def is_draft_creation(request: web.Request) -> bool:
    """A request that may create an upload: a known version and a completeness field. With
    neither, the request stays what it always was (a one-shot upload)."""
    version = interop(request)
    return version is not None and rufh.completeness(version, request.headers) is not None


def version_header(version: rufh.Interop) -> dict[str, str]:
    return {"Upload-Draft-Interop-Version": str(version.version)}


def limits(
    request: web.Request,
    version: rufh.Interop,
    info: UploadInfo | None = None,
    *,
    anyone: bool = False,
) -> dict[str, str]:
    """`Upload-Limit`: the caller's upload cap, the request cap, and the time left (the
    whole TTL before an upload exists). `anyone`: the server's own caps, for OPTIONS,
    which is answered before anyone is asked who they are."""
    settings = settings_of(request)
    if info is None:
        max_size: int | None = (
            settings.max_upload_size if anyone else upload_cap(request, settings.max_upload_size)
        )
        age: int | None = int(settings.upload_ttl)
    else:
        max_size = info.limit or upload_cap(request, settings.max_upload_size)
        left = None if info.expires is None else int(info.expires - time.time())
        age = None if info.is_complete or left is None else max(left, 1)
    return rufh.limit_header(
        version, max_size=max_size, max_append_size=settings.max_request_size, max_age=age
    )


def state(request: web.Request, version: rufh.Interop, info: UploadInfo) -> dict[str, str]:
    """The fields that say where an upload stands: offset, completeness, length, limits."""
    headers = {
        **version_header(version),
        "Upload-Offset": str(info.offset),
        **rufh.completeness_header(version, info.is_complete),
        **limits(request, version, info),
    }
    if info.length is not None:
        headers["Upload-Length"] = str(info.length)
    return headers


def with_limits(request: web.Request, version: rufh.Interop, exc: ApiError) -> ApiError:
    """A 413 that comes of spigot's limits says them, as the draft requires."""
    if exc.status == 413:
        exc.headers = {**exc.headers, **limits(request, version)}
    return exc
