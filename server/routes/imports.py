"""`POST /imports`, `GET` and `DELETE /imports/{id}`, and `GET /imports/{id}/events` (see
server/imports.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..auth import principal_of
from ..bodies import read_json
from ..context import LIFECYCLE, SETTINGS, STORE
from ..errors import ApiError
from ..imports import Importer, ImportRejected
from ..protocol.ssrf import Refused, check_url
from ..responses import public_base
from .events import stream
from .proxy import UPSTREAM

IMPORTER = web.AppKey("importer", Importer)
MAX_BODY = 16 << 10  # a JSON request naming a URL: small, and read with a cap


async def importer(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx, after the proxy's upstream session exists."""
    app[IMPORTER] = Importer(app[SETTINGS], app[STORE], app[LIFECYCLE], app[UPSTREAM])
    yield
    await app[IMPORTER].close()


async def create_import(request: web.Request) -> web.Response:
    body = await read_json(request, MAX_BODY, '{"url": ...}')
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        raise ApiError(400, "bad_request", 'the body must be JSON with a "url" string')
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "bad_request", '"name" must be a string')
    try:
        check_url(body["url"])
    except Refused as exc:
        raise ApiError(400, "bad_url", str(exc)) from None
    try:
        job = request.app[IMPORTER].submit(
            body["url"], name, public_base(request), principal_of(request).sub
        )
    except ImportRejected as exc:
        raise ApiError(429, "too_many_imports", str(exc), {"Retry-After": "5"}) from None
    doc = job.to_json(public_base(request))
    return web.json_response(
        {"id": doc["id"], "events": doc["events"], "file": None},
        status=202,
        headers={"Location": f"{public_base(request)}/imports/{job.id}"},
    )


def job_of(request: web.Request) -> str:
    job_id = request.match_info["id"]
    job = request.app[IMPORTER].get(job_id)
    caller = principal_of(request)
    if job is None or not (caller.admin or job.owner == caller.sub):
        raise ApiError(404, "not_found", "no such import")
    return job_id


async def import_status(request: web.Request) -> web.Response:
    job = request.app[IMPORTER].get(job_of(request))
    assert job is not None
    return web.json_response(job.to_json(public_base(request)))


async def import_events(request: web.Request) -> web.StreamResponse:
    job_id = job_of(request)
    request.app[IMPORTER].recall(job_id, public_base(request))
    return await stream(request, f"import:{job_id}", ("complete", "error"))


async def cancel_import(request: web.Request) -> web.Response:
    """Stop a queued or running import, removing what it stored; its events end in
    `error`. One that has ended is a 409: its file, if any, is deleted as any file is."""
    if not request.app[IMPORTER].cancel(job_of(request)):
        raise ApiError(
            409, "import_ended", "the import has ended; a file it made is deleted at /files/{id}"
        )
    return web.Response(status=204)
