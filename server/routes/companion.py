"""Uppy Companion's URL provider, answered by spigot itself (server/protocol/companion.py
has the protocol): `POST /url/meta`, `POST /url/get` and the WebSocket at `/api/{token}`.

A page using `@uppy/url` with `companionUrl` set to spigot pastes a link; spigot fetches
the file through its import (server/imports.py: the proxy's SSRF rules, size cap, resume
and retries) into its own store, and reports progress over Companion's WebSocket. Where
Companion would then upload the file to the uploader plugin's `endpoint` (tus, XHR, S3),
spigot is the destination already: the file is stored once, and Uppy gets its URL.

The socket replays what the import has said so far, then follows it to `success` or
`error`. A `cancel` from the client stops the import and removes what it stored. `pause`
and `resume` pause the fetch and go on with it, where its upstream can resume (serves
ranges, with an ETag or Last-Modified); otherwise the fetch runs on. No wait is
unbounded: aiohttp pings the client every --sse-heartbeat and closes a socket whose pong
does not come, and the events follow ends with the import or the server.
"""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from ..auth import principal_of
from ..bodies import read_json
from ..context import lifecycle_of, settings_of
from ..errors import ApiError
from ..imports import Importer, ImportRejected
from ..protocol import companion
from ..protocol.ssrf import Refused, check_url
from ..responses import public_base
from .imports import IMPORTER, MAX_BODY
from .proxy import reach

MAX_MESSAGE = 4 << 10  # the client's messages are {"action": ..., "payload": {}}


def _checked(url: str) -> str:
    try:
        check_url(url)
    except Refused as exc:
        raise ApiError(400, "bad_url", str(exc)) from None
    return url


async def _body(request: web.Request) -> object:
    return await read_json(request, MAX_BODY, '{"url": ...}')


async def url_meta(request: web.Request) -> web.Response:
    try:
        url = _checked(companion.requested_url(await _body(request)))
    except companion.CompanionError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    # A GET, not a HEAD, as Companion asks: many servers answer HEAD wrongly. Only the head
    # is read; the connection is closed, not drained.
    upstream = await reach(request, "GET", url, {}, counted=False)
    try:
        if upstream.status >= 400:
            raise ApiError(502, "upstream_error", f"the upstream answered {upstream.status}")
        headers = {k.lower(): v for k, v in upstream.headers.items()}
        return web.json_response(companion.url_meta(url, upstream.status, headers))
    finally:
        upstream.close()


async def url_get(request: web.Request) -> web.Response:
    try:
        wanted = companion.get_request(await _body(request))
    except companion.CompanionError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    url = _checked(wanted.url)
    try:
        job = request.app[IMPORTER].submit(
            url, wanted.name, public_base(request), principal_of(request).sub
        )
    except ImportRejected as exc:
        raise ApiError(429, "too_many_imports", str(exc), {"Retry-After": "5"}) from None
    return web.json_response({"token": job.id})


async def transfer_socket(request: web.Request) -> web.WebSocketResponse:
    importer = request.app[IMPORTER]
    job = importer.get(request.match_info["token"])
    if job is None:
        raise ApiError(404, "not_found", "no such transfer")
    heartbeat = settings_of(request).sse_heartbeat
    ws = web.WebSocketResponse(heartbeat=heartbeat, max_msg_size=MAX_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_expected", "this URL is a WebSocket (Companion's /api)")
    await ws.prepare(request)
    listener = asyncio.create_task(_listen(ws, importer, job.id))
    events = lifecycle_of(request).events
    try:
        importer.recall(job.id, public_base(request))
        async for event in events.follow(job.topic(), 0, heartbeat, ("error",)):
            if listener.done():  # the client went away: nobody to tell
                break
            message = companion.socket_message(event.type, event.data) if event else None
            if message is not None:
                await ws.send_json(message)
    except ConnectionError:
        pass  # closed under a send
    finally:
        listener.cancel()
        await ws.close()
    return ws


async def _listen(ws: web.WebSocketResponse, importer: Importer, job_id: str) -> None:
    """The client's messages, until it closes: `cancel`, `pause` and `resume`."""
    act = {"cancel": importer.cancel, "pause": importer.pause, "resume": importer.resume}
    async for message in ws:
        action = companion.client_action(message.data) if message.type is WSMsgType.TEXT else None
        if action is not None:
            act[action](job_id)
