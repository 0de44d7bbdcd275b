"""The /s3/ direct-upload flow on local disk: the URLs point at spigot itself, so the same
browser code works in development. POST policies, part PUTs with ETags, complete, access."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from server.lifecycle.hooks import Hooks
from storage import UploadInfo
from tests.conftest import Backend, ClientFactory, sha256
from tests.test_presign import ALICE, KEY, bearer

Client = TestClient  # type: ignore[type-arg]
BACKENDS = ("local",)
SECRET = "local-presign-link-secret-0123456789abcd"
MIB = 1 << 20


@pytest.fixture
async def local(aiohttp_client: Any, backend_store: Backend) -> tuple[Client, list[UploadInfo]]:
    from server.app import create_app
    from server.settings import Settings

    finished: list[UploadInfo] = []
    settings = Settings(storage=backend_store.storage, auth="jwt", jwt_key=KEY, secret=(SECRET,))
    app = create_app(settings, backend_store.new_store(), Hooks(post_finish=finished.append))
    return await aiohttp_client(app), finished


def path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def form(fields: dict[str, str], data: bytes, ctype: str = "image/png") -> aiohttp.FormData:
    f = aiohttp.FormData()
    for k, v in fields.items():
        f.add_field(k, v)
    f.add_field("file", data, filename="pic.png", content_type=ctype)
    return f


async def test_a_post_policy_on_disk(
    local: tuple[Client, list[UploadInfo]], backend_store: Backend
) -> None:
    client, finished = local
    resp = await client.get(
        "/s3/params",
        params={"filename": "pic.png", "type": "image/png"},
        headers=bearer("alice", max_upload_size=1000),
    )
    made = await resp.json()
    assert made["method"] == "POST"
    fields = made["fields"]
    file_id = fields["key"]
    assert fields == {"key": file_id, "Content-Type": "image/png"}
    assert path(made["url"]).startswith(f"/files/?upload={file_id}&expires=")
    url = path(made["url"])
    # The policy's fields are conditions: another type or key is refused.
    for bad in ({**fields, "Content-Type": "text/html"}, {**fields, "key": "B" * 22}):
        resp = await client.post(url, data=form(bad, b"x" * 10))
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "policy_mismatch"
    resp = await client.post(url, data=form(fields, b"x" * 1001))  # over the bound limit
    assert resp.status == 413
    assert (await client.get(f"/files/{file_id}", headers=ALICE)).status == 409  # nothing kept
    # The link fills this one upload by form POST, and makes nothing else.
    assert (await client.put(url.replace("/files/?", "/files/x.png?"), data=b"x")).status == 403
    tus = {"Tus-Resumable": "1.0.0", "Upload-Length": "3"}
    assert (await client.post(url, headers=tus)).status == 403
    assert (await client.post(url, data=b"raw body")).status == 400
    made = [n for n in backend_store.names() if not n.startswith(".") and not n.endswith(".lock")]
    assert made == [file_id, f"{file_id}.info"]
    data = bytes(range(256)) * 3
    resp = await client.post(url, data=form(fields, data), expect100=True)  # sent on its 100
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"].endswith(f"/files/{file_id}")
    assert resp.headers["ETag"] == f'"{sha256(data)}"'
    resp = await client.post(url, data=form(fields, data))
    assert resp.status == 409  # one file per policy
    resp = await client.get(f"/files/{file_id}", headers=ALICE)
    assert resp.status == 200 and await resp.read() == data
    assert [i.id for i in finished] == [file_id]
    assert (await client.get(f"/files/{file_id}", headers=bearer("bob"))).status == 404


async def test_multipart_on_disk(
    local: tuple[Client, list[UploadInfo]], backend_store: Backend
) -> None:
    client, finished = local
    resp = await client.post(
        "/s3/multipart", json={"filename": "m.bin", "type": "video/mp4"}, headers=ALICE
    )
    made = await resp.json()
    file_id = made["key"]
    assert made["bucket"] == "" and len(file_id) == 22
    route = f"/s3/multipart/{made['uploadId']}"
    data = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"c" * 1234]
    urls = (
        await (
            await client.get(
                f"{route}/batch", params={"key": file_id, "partNumbers": "1,2,3"}, headers=ALICE
            )
        ).json()
    )["presignedUrls"]
    assert path(urls["1"]).startswith(f"/s3/local/{file_id}/1?expires=")
    # a part's URL is for that part only
    wrong = path(urls["1"]).replace(f"/{file_id}/1?", f"/{file_id}/2?")
    assert (await client.put(wrong, data=b"x")).status == 403
    # The owner's token may PUT a part too; a number S3 would refuse is a 400, not a 500.
    for bad in ("0", "10001", "x", "\u00b2"):
        resp = await client.put(f"/s3/local/{file_id}/{bad}", data=b"x", headers=ALICE)
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"]["code"] == "bad_request"
    etags = []
    for n, chunk in enumerate(data, start=1):
        resp = await client.put(path(urls[str(n)]), data=chunk)
        assert resp.status == 200
        assert resp.headers["ETag"] == f'"{hashlib.md5(chunk).hexdigest()}"'
        etags.append(resp.headers["ETag"])
    listed = await (await client.get(route, params={"key": file_id}, headers=ALICE)).json()
    assert listed == [
        {"PartNumber": n, "ETag": etags[n - 1], "Size": len(data[n - 1])} for n in (1, 2, 3)
    ]
    assert (await client.get(route, params={"key": file_id}, headers=bearer("bob"))).status == 404
    wrong = {"parts": [{"PartNumber": 1, "ETag": '"0000"'}]}
    resp = await client.post(
        f"{route}/complete", params={"key": file_id}, json=wrong, headers=ALICE
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_parts"
    # Uppy sends the ETags without their quotes, which S3 accepts too.
    unquoted = [e.strip('"') for e in etags]
    parts = {"parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(unquoted, start=1)]}
    for _ in range(2):
        resp = await client.post(
            f"{route}/complete", params={"key": file_id}, json=parts, headers=ALICE
        )
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["location"].endswith(f"/files/{file_id}")
    assert [i.id for i in finished] == [file_id]
    resp = await client.get(
        f"/files/{file_id}", headers={**ALICE, "Range": f"bytes={5 * MIB - 1}-{5 * MIB}"}
    )
    assert resp.status == 206 and await resp.read() == b"ab"
    whole = await client.get(f"/files/{file_id}", headers=ALICE)
    assert sha256(await whole.read()) == sha256(b"".join(data))
    joined = b"".join(bytes.fromhex(e.strip('"')) for e in etags)
    assert whole.headers["ETag"] == f'"{hashlib.md5(joined).hexdigest()}-3"'
    assert not (backend_store.data_dir / f"{file_id}.parts").exists()


async def test_a_part_is_checked_against_its_content_md5(
    local: tuple[Client, list[UploadInfo]], backend_store: Backend
) -> None:
    """S3's UploadPart check, which Uppy's signPart can ask for: a part that is not its
    Content-MD5 is not kept, and the part stored before under that number stays."""
    client, _ = local
    resp = await client.post(
        "/s3/multipart", json={"filename": "m.bin", "type": "video/mp4"}, headers=ALICE
    )
    made = await resp.json()
    file_id = made["key"]
    url = f"/s3/local/{file_id}/1"
    first, second = b"a" * (1 << 20), b"b" * (1 << 20)

    def md5(data: bytes) -> str:
        return base64.b64encode(hashlib.md5(data).digest()).decode()

    resp = await client.put(url, data=first, headers={**ALICE, "Content-MD5": md5(first)})
    assert resp.status == 200 and resp.headers["ETag"] == f'"{hashlib.md5(first).hexdigest()}"'
    resp = await client.put(url, data=second, headers={**ALICE, "Content-MD5": md5(first)})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "digest_mismatch"
    resp = await client.put(url, data=second, headers={**ALICE, "Content-MD5": "0" * 32})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_digest"
    route = f"/s3/multipart/{made['uploadId']}"
    listed = await (await client.get(route, params={"key": file_id}, headers=ALICE)).json()
    etag = f'"{hashlib.md5(first).hexdigest()}"'
    assert listed == [{"PartNumber": 1, "ETag": etag, "Size": len(first)}]
    assert not any(".part." in n for n in backend_store.names())  # no temp file left


async def test_abort_on_disk_removes_the_parts(
    local: tuple[Client, list[UploadInfo]], backend_store: Backend
) -> None:
    client, _ = local
    made = await (await client.post("/s3/multipart", json={"filename": "x"}, headers=ALICE)).json()
    route = f"/s3/multipart/{made['uploadId']}"
    signed = await (
        await client.get(f"{route}/1", params={"key": made["key"]}, headers=ALICE)
    ).json()
    assert (await client.put(path(signed["url"]), data=b"part")).status == 200
    assert (backend_store.data_dir / f"{made['key']}.parts").is_dir()
    resp = await client.delete(route, params={"key": made["key"]}, headers=ALICE)
    assert resp.status == 200 and await resp.json() == {}
    assert backend_store.names() == [f"{made['key']}.gone"]
    assert (await client.put(path(signed["url"]), data=b"part")).status == 410


async def test_disk_direct_uploads_need_a_secret(
    make_client: ClientFactory, backend_store: Backend
) -> None:
    client = await make_client(auth="jwt", jwt_key=KEY)
    resp = await client.get("/s3/params", params={"filename": "a"}, headers=ALICE)
    assert resp.status == 403
    body = await resp.json()
    assert body["message"] == "direct uploads to local disk need --secret"
    resp = await client.post("/s3/multipart", json={"filename": "a"}, headers=ALICE)
    assert resp.status == 403
    assert [n for n in backend_store.names() if not n.startswith(".")] == []  # nothing made
