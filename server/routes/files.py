"""The collection: `GET /files/` lists finished files (not tus partial uploads, which are
pieces of a later concatenation), `DELETE /files/{id}` removes one.

The listing streams: a JSON array or, with `Accept: application/x-ndjson`, one JSON object
per line; either way no list of files is ever built in memory. Each caller sees their own
files; `admin` sees everyone's, and `?owner=` narrows that to one owner's.

`?limit=` and `?after=` ask for one page of it, in id order, with the next page's URL in
`Link` (server/protocol/paging.py). That header goes before the body, so a page, at most
1,000 files, is gathered before it is sent. `?order=newest` pages newest first, which takes
a pass over the whole listing per page, and says in `X-Total-Count` how many files the
caller may see in all, as a list that shows a page at a time wants to say.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator

from aiohttp import web

from storage import UploadInfo

from ..auth import owned, principal_of
from ..context import store_of
from ..errors import ApiError
from ..protocol.paging import (
    NewestFirst,
    NewestPage,
    Page,
    next_link,
    next_newest_link,
    parse_page,
)
from ..responses import file_json, public_base

_FLUSH_AT = 64 << 10


async def list_files(request: web.Request) -> web.StreamResponse:
    try:
        page = parse_page(request.query)
    except ValueError as exc:
        raise ApiError(400, "bad_query", str(exc)) from None
    caller = principal_of(request)
    only = request.query.get("owner") if caller.admin else None

    after = page.after if isinstance(page, Page) else None

    async def listed() -> AsyncGenerator[UploadInfo, None]:
        async for info in store_of(request).list_uploads(after):
            if not info.is_complete or info.partial:  # partials are pieces of a concatenation
                continue
            if not caller.owns(info) or (only is not None and info.owner != only):
                continue
            yield info

    resp = web.StreamResponse()
    keep = {"owner": only} if only is not None else {}
    if page is None:
        return await _send(request, resp, listed())
    if isinstance(page, NewestPage):
        newest: NewestFirst[UploadInfo] = NewestFirst(page)
        async for info in listed():
            newest.offer((info.created, info.id), info)
        shown, last = newest.page()
        if last is not None:
            resp.headers["Link"] = next_newest_link(_collection(request), page, last, keep)
        resp.headers["X-Total-Count"] = str(newest.seen)
        return await _send(request, resp, _each(shown))
    held: list[UploadInfo] = []
    async with contextlib.aclosing(listed()) as infos:  # closed at once when left early
        async for info in infos:
            if len(held) == page.limit:  # one more than the page: there is a next one
                resp.headers["Link"] = next_link(_collection(request), page, held[-1].id, keep)
                break
            held.append(info)
    return await _send(request, resp, _each(held))


async def _each(infos: list[UploadInfo]) -> AsyncIterator[UploadInfo]:
    for info in infos:
        yield info


def _collection(request: web.Request) -> str:
    return f"{public_base(request)}/files/"


async def _send(
    request: web.Request, resp: web.StreamResponse, infos: AsyncIterator[UploadInfo]
) -> web.StreamResponse:
    ndjson = "application/x-ndjson" in request.headers.get("Accept", "")
    resp.content_type = "application/x-ndjson" if ndjson else "application/json"
    resp.charset = "utf-8"
    await resp.prepare(request)
    base = public_base(request)
    pending: list[str] = [] if ndjson else ["["]
    size = 0
    first = True
    async for info in infos:
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
