"""`POST /sign`: mint a download link to one file, or an upload link with terms.

    {"file": "<id>", "expires_in": "1h"}
    {"upload": {"max_size": "2GiB", "type": "video/*", "owner": "alice"}, "expires_in": "1h"}

answer `{"url", "expires"}`. Needs the `sign` scope. A download link is for a file the
caller owns (or any, for `admin`); an upload link's owner is the caller unless an admin
names another, and its size is never more than the caller's own cap.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..auth import owned, principal_of, upload_cap
from ..bodies import read_json
from ..context import settings_of, store_of
from ..errors import ApiError
from ..protocol import links
from ..responses import file_url, public_base
from ..settings import SettingError, parse_duration, parse_size

MAX_BODY = 4 << 10
DEFAULT_TTL = 3600.0
MAX_TTL = 7 * 86400.0  # as S3's presigned URLs: a week at most


def bad(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def ttl_of(value: Any) -> float:
    if value is None:
        return DEFAULT_TTL
    try:
        ttl = float(value) if isinstance(value, int | float) else parse_duration(str(value))
    except SettingError as exc:
        raise bad(f"expires_in: {exc}") from None
    if not 0 < ttl <= MAX_TTL:
        raise bad("expires_in must be more than zero and at most 7 days")
    return ttl


def size_of(value: Any) -> int | None:
    if value is None:
        return None
    try:
        size = (
            value
            if isinstance(value, int) and not isinstance(value, bool)
            else parse_size(str(value))
        )
    except SettingError as exc:
        raise bad(f"max_size: {exc}") from None
    if size < 1:
        raise bad("max_size must be at least one byte")
    return size


async def sign(request: web.Request) -> web.Response:
    keys = settings_of(request).secret
    if not keys:
        raise ApiError(403, "links_disabled", "signed links need --secret")
    body = await read_json(request, MAX_BODY, '{"file": id} or {"upload": {...}}')
    if not isinstance(body, dict) or ("file" in body) == ("upload" in body):
        raise bad('send {"file": "<id>"} or {"upload": {"max_size", "type", "owner"}}')
    expires = int(time.time() + ttl_of(body.get("expires_in")))
    if "file" in body:
        url = await download_link(request, keys[0], body["file"], expires)
    else:
        url = upload_link(request, keys[0], body["upload"], expires)
    return web.json_response({"url": url, "expires": expires})


async def download_link(request: web.Request, key: str, file_id: Any, expires: int) -> str:
    if not isinstance(file_id, str):
        raise bad('"file" must be a file id')
    upload = await store_of(request).open(file_id)
    owned(request, upload.info)
    query = links.file_query(key, links.DOWNLOAD, upload.info.id, expires)
    return f"{file_url(request, upload.info.id)}?{query}"


def upload_link(request: web.Request, key: str, spec: Any, expires: int) -> str:
    if not isinstance(spec, dict):
        raise bad('"upload" must be an object')
    caller = principal_of(request)
    owner = spec.get("owner", caller.sub)
    if owner != caller.sub and not caller.admin:
        raise ApiError(403, "forbidden", "only admin may sign upload links for another owner")
    cap = upload_cap(request, settings_of(request).max_upload_size)
    wanted = size_of(spec.get("max_size"))
    if wanted is not None and cap and wanted > cap:
        raise bad(f"max_size is over your limit of {cap} bytes")
    terms = links.UploadTerms(
        max_size=wanted if wanted is not None else (cap or None),
        owner=owner if isinstance(owner, str) else None,
        type=spec.get("type"),
    )
    if (owner is not None and not isinstance(owner, str)) or not isinstance(terms.type, str | None):
        raise bad("owner and type must be strings")
    problem = terms.problem()
    if problem is not None:
        raise bad(problem)
    return f"{public_base(request)}/files/?{links.upload_query(key, terms, expires)}"
