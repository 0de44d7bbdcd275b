"""Uppy Companion's URL provider, in process: `/url/meta`, `/url/get` and the WebSocket at
`/api/{token}` against a real origin on loopback (tests/node/uppy-url.mjs drives the same
routes from Uppy itself, in Chromium)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.context import LIFECYCLE
from tests.conftest import Backend, ClientFactory
from tests.test_presign import KEY, bearer

Client = TestClient  # type: ignore[type-arg]
BODY = bytes(range(256)) * 4096 * 6  # 6 MiB


class Origin:
    def __init__(self) -> None:
        self.server: TestServer | None = None
        self.pause = 0.0  # between 256 KiB pieces: a slow origin, to cancel midway

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def serve(self, request: web.Request) -> web.StreamResponse:
        headers = {
            "Content-Type": "video/mp4",
            "Content-Disposition": 'inline; filename="clip.mp4"',
        }
        resp = web.StreamResponse(headers=headers)
        resp.content_length = len(BODY)
        await resp.prepare(request)
        for at in range(0, len(BODY), 256 << 10):
            await resp.write(BODY[at : at + (256 << 10)])
            await asyncio.sleep(self.pause)
        return resp


class RangedOrigin(Origin):
    """An origin that can resume, as most file hosts and CDNs: Range, If-Range, an ETag.
    It counts the connections it is sending on and the Range headers it was asked with."""

    ETAG = '"clip-v1"'

    def __init__(self) -> None:
        super().__init__()
        self.sending = 0
        self.ranges: list[tuple[str | None, str | None]] = []

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.ranges.append((request.headers.get("Range"), request.headers.get("If-Range")))
        start = 0
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", "ETag": self.ETAG}
        wanted = request.headers.get("Range", "")
        if wanted and request.headers.get("If-Range") == self.ETAG:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            headers["Content-Range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        resp = web.StreamResponse(status=206 if start else 200, headers=headers)
        resp.content_length = len(BODY) - start
        await resp.prepare(request)
        self.sending += 1
        try:
            for at in range(start, len(BODY), 256 << 10):
                await resp.write(BODY[at : at + (256 << 10)])
                await asyncio.sleep(self.pause)
        finally:
            self.sending -= 1
        return resp


async def missing(_: web.Request) -> web.Response:
    return web.Response(status=404)


async def _served(o: Origin) -> AsyncIterator[Origin]:
    app = web.Application()
    app.router.add_get("/media/download", o.serve)
    app.router.add_get("/missing", missing)
    o.server = TestServer(app, host="127.0.0.1")
    await o.server.start_server()
    yield o
    await o.server.close()


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async for o in _served(Origin()):
        yield o


@pytest.fixture
async def ranged() -> AsyncIterator[RangedOrigin]:
    async for o in _served(RangedOrigin()):
        yield o


async def post(client: Client, path: str, body: Any, **headers: str) -> aiohttp.ClientResponse:
    return await client.post(path, data=json.dumps(body), headers=headers)


async def messages(
    client: Client, token: str, send: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Companion's messages for a transfer, to its last; `send` goes after the first."""
    got: list[dict[str, Any]] = []
    async with client.ws_connect(f"/api/{token}") as ws:
        async for message in ws:
            got.append(json.loads(message.data))
            if send is not None and len(got) == 1:
                await ws.send_json(send)
            if got[-1]["action"] in ("success", "error"):
                break
    return got


async def test_a_pasted_link_is_imported_with_companions_messages(
    make_client: ClientFactory, origin: Origin, backend_store: Backend
) -> None:
    client = await make_client(insecure_proxy_allow_private=True)
    url = origin.url("/media/download")
    meta = await post(client, "/url/meta", {"url": url})
    assert meta.status == 200
    assert await meta.json() == {
        "name": "clip.mp4", "type": "video/mp4", "size": len(BODY), "statusCode": 200
    }  # fmt: skip
    # what @uppy/tus sends for a remote file: the destination is spigot's own store
    body = {"fileId": url, "url": url, "protocol": "tus", "endpoint": "http://x/files/",
            "size": len(BODY), "metadata": {"name": "clip.mp4", "type": "video/mp4"}}  # fmt: skip
    got = await post(client, "/url/get", body)
    assert got.status == 200
    token = (await got.json())["token"]
    assert len(token) == 22
    said = await messages(client, token)
    assert [m["action"] for m in said[:-1]] == ["progress"] * (len(said) - 1)
    last_progress = said[-2]["payload"]
    assert last_progress == {
        "progress": "100.00",
        "bytesUploaded": len(BODY),
        "bytesTotal": len(BODY),
    }
    success = said[-1]
    assert success["action"] == "success"
    file = json.loads(success["payload"]["response"]["responseText"])
    assert success["payload"]["url"] == file["url"] and file["name"] == "clip.mp4"
    assert file["sha256"] == hashlib.sha256(BODY).hexdigest()
    stored = await client.get(f"/files/{file['id']}")
    assert stored.status == 200 and await stored.read() == BODY
    assert stored.headers["Content-Type"] == "video/mp4"
    again = await messages(client, token)  # a reconnecting client hears it all again
    assert again == said
    client.app[LIFECYCLE].events.reopen(f"import:{token}")  # as when its events have lingered
    late = await messages(client, token)  # the job still says how it ended
    assert late == [{
        "action": "success",
        "payload": {"url": file["url"], "response": {
            "status": 200, "responseText": json.dumps({"id": file["id"], "url": file["url"]})}},
    }]  # fmt: skip


async def test_a_cancelled_transfer_leaves_nothing(
    make_client: ClientFactory, origin: Origin, backend_store: Backend
) -> None:
    origin.pause = 0.2
    client = await make_client(insecure_proxy_allow_private=True)
    url = origin.url("/media/download")
    token = (await (await post(client, "/url/get", {"url": url})).json())["token"]
    said = await messages(client, token, send={"action": "cancel", "payload": {}})
    assert said[-1] == {
        "action": "error", "payload": {"error": {"message": "the import was cancelled"}}
    }  # fmt: skip
    for _ in range(100):
        if not [n for n in backend_store.names() if not n.startswith(".")]:
            break
        await asyncio.sleep(0.05)
    assert [n for n in backend_store.names() if not n.startswith(".")] == []
    listed = await client.get("/files/")
    assert await listed.json() == []
    client.app[LIFECYCLE].events.reopen(f"import:{token}")  # its events have lingered
    assert await messages(client, token) == [said[-1]]  # the job still says it was cancelled


async def test_failures_are_companions_errors(make_client: ClientFactory, origin: Origin) -> None:
    client = await make_client(insecure_proxy_allow_private=True)
    missing = origin.url("/missing")
    meta = await post(client, "/url/meta", {"url": missing})
    assert meta.status == 502 and (await meta.json())["error"]["code"] == "upstream_error"
    token = (await (await post(client, "/url/get", {"url": missing})).json())["token"]
    said = await messages(client, token)
    assert said[-1] == {
        "action": "error", "payload": {"error": {"message": "the upstream answered 404"}}
    }  # fmt: skip
    for path, body in [("/url/meta", {"nope": 1}), ("/url/get", {"url": "ftp://e.com/a"})]:
        resp = await post(client, path, body)
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"]["code"] in ("bad_request", "bad_url")
    unknown = await client.get("/api/" + "A" * 22)
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "not_found"
    plain = await client.get(f"/api/{token}")  # not a WebSocket handshake
    assert plain.status == 400
    assert (await plain.json())["error"]["code"] == "websocket_expected"


async def test_private_targets_are_refused(make_client: ClientFactory, origin: Origin) -> None:
    client = await make_client()  # the proxy's rules: loopback is private
    url = origin.url("/media/download")
    resp = await post(client, "/url/meta", {"url": url})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "refused_target"
    token = (await (await post(client, "/url/get", {"url": url})).json())["token"]
    said = await messages(client, token)
    assert said[-1]["action"] == "error", said
    assert "127.0.0.1" in said[-1]["payload"]["error"]["message"]


async def test_auth_is_the_import_scope(make_client: ClientFactory, origin: Origin) -> None:
    client = await make_client(auth="jwt", jwt_key=KEY, insecure_proxy_allow_private=True)
    url = origin.url("/media/download")
    assert (await post(client, "/url/get", {"url": url})).status == 401
    reader = bearer("bob", scope="read")
    assert (await post(client, "/url/get", {"url": url}, **reader)).status == 403
    alice = bearer("alice", scope="import read")
    token = (await (await post(client, "/url/get", {"url": url}, **alice)).json())["token"]
    said = await messages(client, token)  # the socket's token is its credential
    file = json.loads(said[-1]["payload"]["response"]["responseText"])
    assert (await client.get(f"/files/{file['id']}", headers=alice)).status == 200
    assert (await client.get(f"/files/{file['id']}", headers=bearer("bob"))).status == 404


async def _state(client: Client, token: str, want: str) -> dict[str, Any]:
    """The import's status, once it is `want` (within 5 s)."""
    for _ in range(100):
        status = await (await client.get(f"/imports/{token}")).json()
        if status["state"] == want:
            return status  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the import never became {want}: {status}")


async def test_pause_gives_back_the_slot_and_resume_asks_for_the_rest(
    make_client: ClientFactory, ranged: RangedOrigin, origin: Origin, backend_store: Backend
) -> None:
    """Uppy's pause and resume, as its socket sends them: the upstream is let go, what was
    stored stays, another import runs in the one slot, and the rest comes with If-Range."""
    ranged.pause = 0.05
    client = await make_client(insecure_proxy_allow_private=True, import_concurrency=1)
    url = ranged.url("/media/download")
    token = (await (await post(client, "/url/get", {"url": url})).json())["token"]
    said: list[dict[str, Any]] = []
    async with client.ws_connect(f"/api/{token}") as ws:
        async for message in ws:
            said.append(json.loads(message.data))
            if said[-1]["payload"].get("bytesUploaded", 0) >= 1 << 20:
                break
        await ws.send_json({"action": "pause", "payload": {}})
        paused = await _state(client, token, "paused")
        assert 1 << 20 <= paused["bytes"] < len(BODY)
        assert ranged.sending == 0  # its upstream connection is closed, not held
        # the slot went back: a second import runs to the end while the first is paused
        other = (
            await (await post(client, "/url/get", {"url": origin.url("/media/download")})).json()
        )["token"]
        assert (await messages(client, other))[-1]["action"] == "success"
        still = await (await client.get(f"/imports/{token}")).json()
        assert still["state"] == "paused" and still["bytes"] == paused["bytes"]
        await ws.send_json({"action": "resume", "payload": {}})
        async for message in ws:
            said.append(json.loads(message.data))
            if said[-1]["action"] in ("success", "error"):
                break
    assert said[-1]["action"] == "success", said[-1]
    file = json.loads(said[-1]["payload"]["response"]["responseText"])
    assert file["sha256"] == hashlib.sha256(BODY).hexdigest()
    stored = await client.get(f"/files/{file['id']}")
    assert stored.status == 200 and await stored.read() == BODY
    # one request for the start, one for the rest from what was stored; no third
    assert ranged.ranges == [(None, None), (f"bytes={paused['bytes']}-", RangedOrigin.ETAG)]


async def test_a_pause_ends_when_the_upload_would_expire(
    make_client: ClientFactory, ranged: RangedOrigin, backend_store: Backend
) -> None:
    ranged.pause = 0.05
    client = await make_client(insecure_proxy_allow_private=True, upload_ttl=1.5)
    token = (await (await post(client, "/url/get", {"url": ranged.url("/media/download")})).json())[
        "token"
    ]
    said = await messages(client, token, send={"action": "pause", "payload": {}})
    assert said[-1] == {
        "action": "error",
        "payload": {"error": {"message": "the import stayed paused until its upload expired"}},
    }
    for _ in range(100):
        if not [n for n in backend_store.names() if not n.startswith(".")]:
            break
        await asyncio.sleep(0.05)
    assert [n for n in backend_store.names() if not n.startswith(".")] == []  # nothing kept


async def test_an_upstream_that_cannot_resume_is_not_paused(
    make_client: ClientFactory, origin: Origin
) -> None:
    """Without ranges a pause would only hold the connection until it timed out, and lose
    the file; the import goes on to the end instead."""
    origin.pause = 0.02
    client = await make_client(insecure_proxy_allow_private=True)
    token = (await (await post(client, "/url/get", {"url": origin.url("/media/download")})).json())[
        "token"
    ]
    said = await messages(client, token, send={"action": "pause", "payload": {}})
    assert said[-1]["action"] == "success"
    file = json.loads(said[-1]["payload"]["response"]["responseText"])
    assert file["sha256"] == hashlib.sha256(BODY).hexdigest()


async def test_a_paused_import_can_be_cancelled(
    make_client: ClientFactory, ranged: RangedOrigin, backend_store: Backend
) -> None:
    ranged.pause = 0.05
    client = await make_client(insecure_proxy_allow_private=True)
    token = (await (await post(client, "/url/get", {"url": ranged.url("/media/download")})).json())[
        "token"
    ]
    async with client.ws_connect(f"/api/{token}") as ws:
        await ws.receive()
        await ws.send_json({"action": "pause", "payload": {}})
        await _state(client, token, "paused")
        await ws.send_json({"action": "cancel", "payload": {}})
        async for message in ws:
            last = json.loads(message.data)
            if last["action"] in ("success", "error"):
                break
    assert last == {
        "action": "error",
        "payload": {"error": {"message": "the import was cancelled"}},
    }
    for _ in range(100):
        if not [n for n in backend_store.names() if not n.startswith(".")]:
            break
        await asyncio.sleep(0.05)
    assert [n for n in backend_store.names() if not n.startswith(".")] == []
