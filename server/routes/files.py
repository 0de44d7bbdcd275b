"""The collection: `GET /files/` lists finished files (not tus partial uploads, which are
pieces of a later concatenation), `DELETE /files/{id}` removes one.

The listing streams: a JSON array or, with `Accept: application/x-ndjson`, one JSON object
per line; either way no list of files is ever built in memory. Each caller sees their own
files; `admin` sees everyone's, and `?owner=` narrows that to one owner's.
"""

from __future__ import annotations

import json

from aiohttp import web

from ..auth import owned, principal_of
from ..context import store_of
from ..responses import file_json, public_base

_FLUSH_AT = 64 << 10


async def list_files(request: web.Request) -> web.StreamResponse:
    ndjson = "application/x-ndjson" in request.headers.get("Accept", "")
    resp = web.StreamResponse()
    resp.content_type = "application/x-ndjson" if ndjson else "application/json"
    resp.charset = "utf-8"
    await resp.prepare(request)
    base = public_base(request)
    caller = principal_of(request)
    only = request.query.get("owner") if caller.admin else None
    pending: list[str] = [] if ndjson else ["["]
    size = 0
    first = True
    async for info in store_of(request).list_uploads():
        if not info.is_complete or info.partial:  # partials are pieces of a concatenation
            continue
        if not caller.owns(info) or (only is not None and info.owner != only):
            continue
        line = json.dumps(file_json(info, f"{base}/files/{info.id}"), separators=(",", ":"))
        if ndjson:
            line += "\n"
        elif not first:
            line = "," + line
        first = False
        pending.append(line)
        size += len(line)
        if size >= _FLUSH_AT:
            await resp.write("".join(pending).encode())
            pending, size = [], 0
    if not ndjson:
        pending.append("]")
    await resp.write("".join(pending).encode())
    await resp.write_eof()
    return resp


async def delete_file(request: web.Request) -> web.Response:
    upload = await store_of(request).open(request.match_info["id"])
    owned(request, upload.info)
    await upload.delete()
    return web.Response(status=204)
