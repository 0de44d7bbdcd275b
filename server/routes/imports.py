"""`POST /imports`, `GET /imports/{id}` and `GET /imports/{id}/events` (see server/imports.py)."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator

from aiohttp import web

from ..context import LIFECYCLE, SETTINGS, STORE, settings_of
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
    settings = settings_of(request)
    if settings.import_token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), settings.import_token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "imports need Authorization: Bearer <token>",
                {"WWW-Authenticate": "Bearer"},
            )
    raw = b""
    while chunk := await request.content.read(MAX_BODY + 1 - len(raw)):
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, "too_large", f"the request body is over {MAX_BODY} bytes")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", 'the body must be JSON: {"url": ...}') from None
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
        job = request.app[IMPORTER].submit(body["url"], name, public_base(request))
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
    if request.app[IMPORTER].get(job_id) is None:
        raise ApiError(404, "not_found", "no such import")
    return job_id


async def import_status(request: web.Request) -> web.Response:
    job = request.app[IMPORTER].get(job_of(request))
    assert job is not None
    return web.json_response(job.to_json(public_base(request)))


async def import_events(request: web.Request) -> web.StreamResponse:
    return await stream(request, f"import:{job_of(request)}", ("complete", "error"))
