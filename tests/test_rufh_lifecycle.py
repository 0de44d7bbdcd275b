"""What tus uploads get, IETF-draft uploads get too: progress and completion events, the
hooks, expiry, and a tus client's view of the same upload. In-process, on both backends
(aiohttp's client skips the 104s, which tests/test_rufh_spec.py reads)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from server.context import LIFECYCLE, STORE
from server.lifecycle.hooks import HookRejected, Hooks
from server.sweeper import sweep_once
from storage import UploadInfo, UploadSpec
from tests.conftest import sha256
from tests.test_events_hooks import Client, hooked_client, read_events, slow_body

DRAFT = {"Upload-Draft-Interop-Version": "9"}
APPEND = {**DRAFT, "Content-Type": "application/partial-upload"}


async def create(client: Client, body: bytes = b"", **fields: str) -> str:
    resp = await client.post("/files/", data=body, headers={**DRAFT, "Upload-Complete": "?0",
                                                            **fields})  # fmt: skip
    assert resp.status == 201, await resp.text()
    assert resp.headers["Upload-Complete"] == "?0"
    return resp.headers["Location"].rsplit("/", 1)[1]


async def test_events_follow_a_draft_upload(client: Client) -> None:
    upload_id = await create(client, b"ab")
    stream = await client.get(f"/files/{upload_id}/events")
    reader = asyncio.create_task(read_events(stream, {"complete"}))
    await asyncio.sleep(0.05)
    resp = await client.patch(
        f"/files/{upload_id}",
        data=slow_body(6, 64 * 1024, 0.1),
        headers={**APPEND, "Upload-Offset": "2", "Upload-Complete": "?1"},
    )
    assert resp.status == 201
    assert resp.headers["Upload-Offset"] == str(2 + 6 * 64 * 1024)
    events = await asyncio.wait_for(reader, 10)
    progress = [e["data"]["offset"] for e in events if e.get("event") == "progress"]
    total = 2 + 6 * 64 * 1024
    assert progress[0] == 2 and progress[-1] == total
    assert any(2 < offset < total for offset in progress), progress  # seen mid-body too
    done = events[-1]
    assert done["event"] == "complete"
    assert done["data"]["sha256"] == sha256(b"ab" + b"x" * 6 * 64 * 1024)


async def test_hooks_see_draft_uploads(aiohttp_client: Any, data_dir: Path) -> None:
    finished: list[UploadInfo] = []

    async def no_exe(spec: UploadSpec, request: Any) -> None:
        if spec.name.endswith(".exe"):
            raise HookRejected(403, "no programs")

    client = await hooked_client(
        aiohttp_client, data_dir, Hooks(pre_create=no_exe, post_finish=finished.append)
    )
    refused = await client.post(
        "/files/?name=a.exe", data=b"MZ", headers={**DRAFT, "Upload-Complete": "?1"}
    )
    assert refused.status == 403
    assert (await refused.json())["error"] == {"code": "rejected", "message": "no programs"}
    upload_id = await create(client, b"ab", **{"Upload-Length": "4"})
    done = await client.patch(
        f"/files/{upload_id}", data=b"cd", headers={**APPEND, "Upload-Offset": "2",
                                                    "Upload-Complete": "?1"}
    )  # fmt: skip
    assert done.status == 201
    again = await client.patch(
        f"/files/{upload_id}", data=b"", headers={**APPEND, "Upload-Offset": "4",
                                                  "Upload-Complete": "?1"}
    )  # fmt: skip
    assert again.status == 201  # the completion repeated: answered, not finished twice
    assert [(i.id, i.sha256) for i in finished] == [(upload_id, sha256(b"abcd"))]


async def test_draft_uploads_expire(client: Client) -> None:
    upload_id = await create(client, b"ab")
    app = client.app
    assert app is not None
    await sweep_once(app[STORE], now=time.time() + 10**6, lifecycle=app[LIFECYCLE])
    gone = await client.head(f"/files/{upload_id}", headers=DRAFT)
    assert gone.status == 410


async def test_tus_and_the_draft_see_one_upload(client: Client) -> None:
    """The same upload resource: begun by a draft client, seen and finished through tus."""
    upload_id = await create(client, b"ab", **{"Upload-Length": "4"})
    tus = {"Tus-Resumable": "1.0.0"}
    head = await client.head(f"/files/{upload_id}", headers=tus)
    assert head.headers["Upload-Offset"] == "2" and head.headers["Upload-Length"] == "4"
    done = await client.patch(
        f"/files/{upload_id}",
        data=b"cd",
        headers={**tus, "Upload-Offset": "2", "Content-Type": "application/offset+octet-stream"},
    )
    assert done.status == 204
    state = await client.head(f"/files/{upload_id}", headers=DRAFT)
    assert state.headers["Upload-Complete"] == "?1"
    got = await client.get(f"/files/{upload_id}")
    assert await got.read() == b"abcd"
