"""Import from URL: into storage in the background, with events, resume, limits and SSRF."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.context import LIFECYCLE
from server.routes.imports import IMPORTER
from tests.conftest import Backend, ClientFactory
from tests.test_events_hooks import read_events

Client = TestClient  # type: ignore[type-arg]
BODY = bytes(range(256)) * 4096 * 8  # 8 MiB


class Origin:
    """Serves BODY with or without ranges, optionally dropping the first response midway."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.drop_first = False
        self.ranges = True
        self.connections = 0
        self.pause = 0.0  # between 512 KiB pieces: an import slow enough to cancel
        self.server: TestServer | None = None

    def url(self, path: str = "/file.bin") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        start = 0
        status = 200
        headers = {"Content-Type": "application/octet-stream", "ETag": '"v1"'}
        if self.ranges:
            headers["Accept-Ranges"] = "bytes"
            rng = request.headers.get("Range")
            if rng and request.headers.get("If-Range", '"v1"') == '"v1"':
                start = int(rng.removeprefix("bytes=").split("-")[0])
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = len(BODY) - start
        await resp.prepare(request)
        if self.drop_first and len(self.requests) == 1:
            await resp.write(BODY[start : start + 3_000_000])
            assert request.transport is not None
            request.transport.abort()
            return resp
        if not self.pause:
            await resp.write(BODY[start:])
            return resp
        for at in range(start, len(BODY), 512 << 10):
            await resp.write(BODY[at : at + (512 << 10)])
            await asyncio.sleep(self.pause)
        return resp


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    o = Origin()
    app = web.Application()
    app.router.add_get("/file.bin", o.serve)
    o.server = TestServer(app, host="127.0.0.1")
    await o.server.start_server()
    yield o
    await o.server.close()


async def start_import(client: Client, body: Any, **headers: str) -> Any:
    resp = await client.post("/imports", data=json.dumps(body), headers=headers)
    return resp


async def run_import(client: Client, url: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    resp = await start_import(client, {"url": url, "name": "imported.bin"})
    assert resp.status == 202, await resp.text()
    doc = await resp.json()
    assert doc["file"] is None and doc["events"] == f"/imports/{doc['id']}/events"
    events = await asyncio.wait_for(
        read_events(await client.get(doc["events"]), {"complete", "error"}), 30
    )
    return doc, events


async def test_import_to_disk(make_client: ClientFactory, origin: Origin) -> None:
    client = await make_client(insecure_proxy_allow_private=True)
    doc, events = await run_import(client, origin.url())
    assert events[-1]["event"] == "complete"
    file = events[-1]["data"]["file"]
    assert file["size"] == len(BODY)
    assert file["sha256"] == hashlib.sha256(BODY).hexdigest()
    got = await client.get(f"/files/{file['id']}")
    assert await got.read() == BODY
    assert got.headers["Content-Disposition"] == 'inline; filename="imported.bin"'
    progress = [e["data"] for e in events if e.get("event") == "progress"]
    assert progress and all(set(p) == {"bytes", "total"} for p in progress)
    status = await (await client.get(f"/imports/{doc['id']}")).json()
    assert status["state"] == "complete" and status["file"] == file["url"]
    client.app[LIFECYCLE].events.reopen(f"import:{doc['id']}")  # its events lingered out
    late = await asyncio.wait_for(
        read_events(await client.get(doc["events"]), {"complete", "error"}), 10
    )
    assert [e["event"] for e in late] == ["complete"]  # the job says it again, not silence
    assert late[0]["data"]["file"] == {"id": file["id"], "url": file["url"]}


async def test_import_resumes_after_a_drop(make_client: ClientFactory, origin: Origin) -> None:
    origin.drop_first = True
    client = await make_client(insecure_proxy_allow_private=True)
    _, events = await run_import(client, origin.url())
    assert events[-1]["event"] == "complete"
    assert len(origin.requests) == 2
    resumed_at = int(origin.requests[1]["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 3_000_000
    assert origin.requests[1]["If-Range"] == '"v1"'
    got = await client.get(f"/files/{events[-1]['data']['file']['id']}")
    assert hashlib.sha256(await got.read()).hexdigest() == hashlib.sha256(BODY).hexdigest()


async def test_import_without_ranges_fails_cleanly(
    make_client: ClientFactory, origin: Origin, backend_store: Backend
) -> None:
    origin.drop_first = True
    origin.ranges = False
    client = await make_client(insecure_proxy_allow_private=True)
    doc, events = await run_import(client, origin.url())
    assert events[-1]["event"] == "error"
    assert "connection failed" in events[-1]["data"]["message"]
    assert [f for f in backend_store.names() if not f.startswith(".")] == []
    status = await (await client.get(f"/imports/{doc['id']}")).json()
    assert status["state"] == "error"


async def test_an_import_can_be_cancelled(
    make_client: ClientFactory, origin: Origin, backend_store: Backend
) -> None:
    """`DELETE /imports/{id}`, as a tus client terminates an upload: the fetch stops, what
    it stored is removed, and its events end in `error`."""
    origin.pause = 0.2
    client = await make_client(insecure_proxy_allow_private=True)
    doc = await (await start_import(client, {"url": origin.url()})).json()
    events = await client.get(doc["events"])
    first = await asyncio.wait_for(read_events(events, {"progress"}), 10)
    assert first[-1]["event"] == "progress"
    cancelled = await client.delete(f"/imports/{doc['id']}")
    assert cancelled.status == 204
    rest = await asyncio.wait_for(read_events(events, {"complete", "error"}), 10)
    assert rest[-1]["event"] == "error"
    assert rest[-1]["data"]["message"] == "the import was cancelled"
    status = await (await client.get(f"/imports/{doc['id']}")).json()
    assert status["state"] == "error" and status["file"] is None
    for _ in range(100):
        if not [f for f in backend_store.names() if not f.startswith(".")]:
            break
        await asyncio.sleep(0.05)
    assert [f for f in backend_store.names() if not f.startswith(".")] == []
    again = await client.delete(f"/imports/{doc['id']}")
    assert again.status == 409 and (await again.json())["error"]["code"] == "import_ended"
    unknown = await client.delete("/imports/" + "A" * 22)
    assert unknown.status == 404


async def test_a_shutdown_stops_imports_and_leaves_nothing(
    make_client: ClientFactory, origin: Origin, backend_store: Backend
) -> None:
    """The app's cleanup stops a storing import as a cancel does: between chunks, with no
    store call in flight, so nothing of it outlives the process."""
    origin.pause = 0.2
    client = await make_client(insecure_proxy_allow_private=True)
    doc = await (await start_import(client, {"url": origin.url()})).json()
    events = await client.get(doc["events"])
    for _ in range(2):  # the first progress is the start; the second has bytes stored
        await asyncio.wait_for(read_events(events, {"progress"}), 10)
    importer = client.app[IMPORTER]
    await client.close()  # the app's cleanup: the importer first, then the store
    job = importer.get(doc["id"])
    assert job is not None and (job.state, job.error) == ("error", "the server shut down")
    assert [f for f in backend_store.names() if not f.startswith(".")] == []


async def test_import_refuses_private_targets(client: Client, origin: Origin) -> None:
    _, events = await run_import(client, origin.url())  # default settings
    assert events[-1]["event"] == "error"
    assert "refusing 127.0.0.1" in events[-1]["data"]["message"]
    assert origin.requests == []


async def test_import_token(make_client: ClientFactory, origin: Origin) -> None:
    client = await make_client(
        insecure_proxy_allow_private=True, import_token="a-token-of-16-chars"
    )
    body = {"url": origin.url()}
    assert (await start_import(client, body)).status == 401
    assert (await start_import(client, body, Authorization="Bearer wrong-token-here")).status == 401
    ok = await start_import(client, body, Authorization="Bearer a-token-of-16-chars")
    assert ok.status == 202
    events = await read_events(await client.get((await ok.json())["events"]), {"complete"})
    assert events[-1]["event"] == "complete"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ([], 400),
        ({"url": 5}, 400),
        ({"url": "ftp://x/y"}, 400),
        ({"url": "http://x/", "name": 3}, 400),
        ({"url": "http://x/" + "a" * 20_000}, 413),
    ],
)
async def test_bad_requests(client: Client, body: Any, status: int) -> None:
    data = body if isinstance(body, str) else json.dumps(body)
    resp = await client.post("/imports", data=data)
    assert resp.status == status
    assert set((await resp.json())["error"]) == {"code", "message"}


async def test_queue_is_bounded(make_client: ClientFactory) -> None:
    gate = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await gate.wait()
        return web.Response(body=b"x")

    app = web.Application()
    app.router.add_get("/stall", stall)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = await make_client(
            insecure_proxy_allow_private=True, import_concurrency=1, import_queue=1
        )
        url = str(server.make_url("/stall"))
        assert (await start_import(client, {"url": url})).status == 202  # running
        await asyncio.sleep(0.1)
        assert (await start_import(client, {"url": url})).status == 202  # waiting
        full = await start_import(client, {"url": url})
        assert full.status == 429 and full.headers["Retry-After"] == "5"
    finally:
        gate.set()
        await server.close()


async def test_unknown_import(client: Client) -> None:
    assert (await client.get("/imports/nope")).status == 404
    assert (await client.get("/imports/nope/events")).status == 404
