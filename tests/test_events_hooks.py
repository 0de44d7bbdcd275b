"""Progress events (SSE), hooks and the webhook."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.context import LIFECYCLE, STORE
from server.lifecycle.hooks import HookRejected, Hooks, WebHook
from server.settings import Settings
from server.sweeper import announce_missed, sweep_once
from storage import LocalStore, UploadInfo, UploadSpec
from tests.conftest import ClientFactory, sha256, stored_files

Client = TestClient  # type: ignore[type-arg]
TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**TUS, "Content-Type": "application/offset+octet-stream"}


async def read_events(resp: aiohttp.ClientResponse, until: set[str]) -> list[dict[str, Any]]:
    """Parse an SSE stream into [{"id","event","data"} | {"comment"}] up to a terminal type."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            events.append({"comment": line[1:].strip()})
        elif line == "":
            if current:
                events.append(current)
                if current.get("event") in until:
                    return events
                current = {}
        else:
            field, _, value = line.partition(": ")
            current[field] = json.loads(value) if field == "data" else value
    return events


async def slow_body(pieces: int, size: int, pause: float) -> AsyncIterator[bytes]:
    for _ in range(pieces):
        yield b"x" * size
        await asyncio.sleep(pause)


async def create(client: Client, length: int) -> str:
    resp = await client.post("/files/", headers={**TUS, "Upload-Length": str(length)})
    assert resp.status == 201
    return resp.headers["Location"].rsplit("/", 1)[1]


async def test_progress_flows_during_a_patch(client: Client) -> None:
    upload_id = await create(client, 10 * 100_000)
    stream = await client.get(f"/files/{upload_id}/events")
    assert stream.status == 200
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert stream.headers["Cache-Control"] == "no-store"
    reader = asyncio.create_task(read_events(stream, {"complete"}))
    start = time.monotonic()
    patch = await client.patch(
        f"/files/{upload_id}",
        data=slow_body(10, 100_000, 0.15),
        headers={**PATCH, "Upload-Offset": "0"},
    )
    patch_done = time.monotonic()
    assert patch.status == 204
    events = await asyncio.wait_for(reader, 10)
    assert events[0] == {"id": "1", "event": "progress", "data": {"offset": 0, "length": 1_000_000}}
    progress = [e for e in events if e.get("event") == "progress"]
    offsets = [e["data"]["offset"] for e in progress]
    assert offsets == sorted(offsets) and offsets[-1] == 1_000_000
    # several updates while the single PATCH was still running, not one at its end
    assert len(progress) >= 4
    assert patch_done - start > 1.2
    ids = [int(e["id"]) for e in events]
    assert ids == list(range(1, len(ids) + 1))
    assert events[-1]["event"] == "complete"
    assert events[-1]["data"]["id"] == upload_id
    assert events[-1]["data"]["size"] == 1_000_000
    assert events[-1]["data"]["sha256"] == sha256(b"x" * 1_000_000)


async def test_last_event_id_resumes_after_it(client: Client) -> None:
    upload_id = await create(client, 6)
    for offset in range(0, 6, 2):
        r = await client.patch(
            f"/files/{upload_id}", data=b"ab", headers={**PATCH, "Upload-Offset": str(offset)}
        )
        assert r.status == 204
    everything = await read_events(await client.get(f"/files/{upload_id}/events"), {"complete"})
    assert [e["event"] for e in everything] == ["complete"]  # a new reader starts at the end
    again = await client.get(f"/files/{upload_id}/events", headers={"Last-Event-ID": "2"})
    replay = await read_events(again, {"complete"})
    assert replay[0]["id"] == "3"
    assert replay[-1]["event"] == "complete"


async def test_heartbeat_on_a_quiet_stream(make_client: ClientFactory) -> None:
    client = await make_client(sse_heartbeat=0.2)
    upload_id = await create(client, 10)
    stream = await client.get(f"/files/{upload_id}/events")
    seen: list[str] = []
    async for raw in stream.content:
        seen.append(raw.decode())
        if raw.startswith(b": heartbeat"):
            break
    assert seen[:3] == ["id: 1\n", "event: progress\n", 'data: {"offset":0,"length":10}\n']


async def test_terminated_and_expired_events(client: Client) -> None:
    first = await create(client, 10)
    stream = await client.get(f"/files/{first}/events")
    reader = asyncio.create_task(read_events(stream, {"terminated"}))
    await asyncio.sleep(0.05)
    assert (await client.delete(f"/files/{first}", headers=TUS)).status == 204
    assert (await asyncio.wait_for(reader, 5))[-1] == {
        "id": "2",
        "event": "terminated",
        "data": {"id": first},
    }
    second = await create(client, 10)
    stream = await client.get(f"/files/{second}/events")
    reader = asyncio.create_task(read_events(stream, {"expired"}))
    await asyncio.sleep(0.05)
    app = client.app
    assert app is not None
    await sweep_once(app[STORE], now=time.time() + 10**6, lifecycle=app[LIFECYCLE])
    assert (await asyncio.wait_for(reader, 5))[-1]["event"] == "expired"
    assert (await client.get(f"/files/{second}/events")).status == 410


async def test_one_shot_progress_by_progress_id(client: Client) -> None:
    stream = await client.get("/progress/upload-42/events")
    reader = asyncio.create_task(read_events(stream, {"complete"}))
    await asyncio.sleep(0.05)
    resp = await client.post(
        "/files/?name=a.bin", data=slow_body(6, 50_000, 0.1), headers={"X-Progress-ID": "upload-42"}
    )
    assert resp.status == 201
    doc = await resp.json()
    events = await asyncio.wait_for(reader, 10)
    assert any(e.get("event") == "progress" and 0 < e["data"]["offset"] < 300_000 for e in events)
    assert events[-1]["event"] == "complete"
    assert events[-1]["data"]["url"] == doc["url"]
    finished = await read_events(await client.get(f"/files/{doc['id']}/events"), {"complete"})
    assert finished[-1]["data"]["sha256"] == doc["sha256"]


async def test_events_for_unknown_uploads(client: Client) -> None:
    resp = await client.get("/files/" + "A" * 22 + "/events")
    assert resp.status == 404
    assert (await client.get("/progress/bad%20token/events")).status == 404
    bad = await client.post("/files/", data=b"x", headers={"X-Progress-ID": "no spaces"})
    assert bad.status == 400


# -- hooks ---------------------------------------------------------------------------------


async def hooked_client(
    aiohttp_client: Any, data_dir: Path, hooks: Hooks, **settings: Any
) -> Client:
    app = create_app(Settings(storage=data_dir.as_uri(), **settings), LocalStore(data_dir), hooks)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def test_pre_create_can_refuse(aiohttp_client: Any, data_dir: Path) -> None:
    async def only_pdfs(spec: UploadSpec, request: web.Request) -> None:
        if not spec.name.endswith(".pdf"):
            raise HookRejected(403, "only PDF files, please")

    client = await hooked_client(aiohttp_client, data_dir, Hooks(pre_create=only_pdfs))
    refused = await client.post("/files/?name=a.exe", data=b"MZ")
    assert refused.status == 403
    assert await refused.json() == {
        "error": {"code": "rejected", "message": "only PDF files, please"}
    }
    meta = "filename " + base64.b64encode(b"b.exe").decode()
    tus = await client.post(
        "/files/", headers={**TUS, "Upload-Length": "2", "Upload-Metadata": meta}
    )
    assert tus.status == 403 and tus.headers["Tus-Resumable"] == "1.0.0"
    assert (await client.post("/files/?name=ok.pdf", data=b"%PDF")).status == 201
    assert len([f for f in stored_files(data_dir) if f.endswith(".info")]) == 1


async def test_post_finish_runs_once(aiohttp_client: Any, data_dir: Path) -> None:
    finished: list[UploadInfo] = []
    client = await hooked_client(aiohttp_client, data_dir, Hooks(post_finish=finished.append))
    upload_id = await create(client, 4)
    for offset, data in ((0, b"ab"), (2, b"cd")):
        r = await client.patch(
            f"/files/{upload_id}", data=data, headers={**PATCH, "Upload-Offset": str(offset)}
        )
        assert r.status == 204
    retry = await client.patch(
        f"/files/{upload_id}", data=b"", headers={**PATCH, "Upload-Offset": "4"}
    )
    assert retry.status == 403  # already complete: no second finish
    assert await client.head(f"/files/{upload_id}", headers=TUS)
    assert [(i.id, i.sha256) for i in finished] == [(upload_id, sha256(b"abcd"))]


async def test_webhook_retries_and_never_blocks(
    aiohttp_client: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WebHook, "BACKOFF", 0.01)
    received: list[dict[str, Any]] = []
    failures = {"left": 2}

    async def hook(request: web.Request) -> web.Response:
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    hook_server = TestServer(receiver, host="127.0.0.1")
    await hook_server.start_server()
    client = await hooked_client(
        aiohttp_client, data_dir, Hooks(), hook_url=str(hook_server.make_url("/hook"))
    )
    upload_id = await create(client, 2)
    await client.patch(f"/files/{upload_id}", data=b"hi", headers={**PATCH, "Upload-Offset": "0"})
    await client.delete(f"/files/{upload_id}", headers=TUS)
    for _ in range(100):
        if len(received) == 3:
            break
        await asyncio.sleep(0.05)
    assert [r["event"] for r in received] == ["created", "finished", "terminated"]
    assert received[1]["upload"]["id"] == upload_id
    assert received[1]["upload"]["sha256"] == sha256(b"hi")
    await hook_server.close()


async def test_dead_webhook_does_not_slow_uploads(aiohttp_client: Any, data_dir: Path) -> None:
    client = await hooked_client(
        aiohttp_client, data_dir, Hooks(), hook_url="http://127.0.0.1:9/unreachable"
    )
    start = time.monotonic()
    for _ in range(5):
        assert (await client.post("/files/", data=b"x")).status == 201
    assert time.monotonic() - start < 2


async def test_post_finish_survives_a_crash_and_runs_once(
    aiohttp_client: Any, data_dir: Path
) -> None:
    finished: list[str] = []
    client = await hooked_client(
        aiohttp_client, data_dir, Hooks(post_finish=lambda info: finished.append(info.id))
    )
    app = client.app
    assert app is not None
    store, lifecycle = app[STORE], app[LIFECYCLE]
    # As a crash would leave it: complete on disk, post-finish never run.
    crashed = await store.create(UploadSpec(name="c", length=3))
    await crashed.append(0, slow_body(1, 3, 0))
    await crashed.finish()
    # And a normal upload, announced by its own request.
    normal = await create(client, 2)
    await client.patch(f"/files/{normal}", data=b"ok", headers={**PATCH, "Upload-Offset": "0"})
    assert finished == [normal]
    later = time.time() + 60
    assert await announce_missed(store, lifecycle, "https://f.example", now=later) == [
        crashed.info.id
    ]
    assert finished == [normal, crashed.info.id]
    assert await announce_missed(store, lifecycle, "https://f.example", now=later) == []
    assert finished == [normal, crashed.info.id]
    assert (await store.open(crashed.info.id)).info.finish_announced


async def test_a_progress_id_can_be_reused_after_a_failure(make_client: ClientFactory) -> None:
    client = await make_client(max_request_size=10)
    # chunked, so the upload starts and then fails as it crosses the cap
    failed = await client.post(
        "/files/", data=slow_body(2, 6, 0), headers={"X-Progress-ID": "retry-me"}
    )
    assert failed.status == 413
    stream = await client.get("/progress/retry-me/events", headers={"Last-Event-ID": "0"})
    first = await asyncio.wait_for(read_events(stream, {"terminated", "complete"}), 5)
    assert first[-1]["event"] == "terminated"
    ok = await client.post("/files/", data=b"x" * 10, headers={"X-Progress-ID": "retry-me"})
    assert ok.status == 201
    again = await asyncio.wait_for(
        read_events(await client.get("/progress/retry-me/events"), {"complete"}), 5
    )
    assert again[-1]["event"] == "complete"
    assert again[-1]["data"]["id"] == (await ok.json())["id"]


async def test_a_failed_form_takes_back_the_files_it_announced(
    aiohttp_client: Any, data_dir: Path
) -> None:
    finished: list[str] = []
    client = await hooked_client(
        aiohttp_client,
        data_dir,
        Hooks(post_finish=lambda info: finished.append(info.id)),
        max_request_size=100_000,
    )

    async def form() -> AsyncIterator[bytes]:
        yield b"--B\r\nContent-Disposition: form-data; name=a; filename=a.bin\r\n\r\n"
        yield b"a" * 10
        yield b"\r\n--B\r\nContent-Disposition: form-data; name=b; filename=b.bin\r\n\r\n"
        for _ in range(20):
            yield b"b" * 10_000  # crosses the cap
        yield b"\r\n--B--\r\n"

    resp = await client.post(
        "/files/", data=form(), headers={"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert resp.status == 413
    assert len(finished) == 1  # a.bin was finished before b.bin failed...
    assert (await client.get(f"/files/{finished[0]}")).status == 404  # ...then removed
    app = client.app
    assert app is not None
    latest = app[LIFECYCLE].events.latest(finished[0])
    assert latest is not None and latest.type == "terminated"  # and readers are told
    assert stored_files(data_dir) == []


async def test_terminating_a_finished_upload_is_announced(client: Client) -> None:
    upload_id = await create(client, 2)
    await client.patch(f"/files/{upload_id}", data=b"ok", headers={**PATCH, "Upload-Offset": "0"})
    assert (await client.delete(f"/files/{upload_id}", headers=TUS)).status == 204
    app = client.app
    assert app is not None
    events = app[LIFECYCLE].events
    latest = events.latest(upload_id)
    assert latest is not None and latest.type == "terminated"
    events.publish(upload_id, "progress", {"offset": 0, "length": 2})  # nothing after removal
    assert events.latest(upload_id) == latest
