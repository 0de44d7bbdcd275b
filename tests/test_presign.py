"""Direct uploads over the Companion-shaped `/s3/` routes, against moto's S3 over real HTTP:
the policy and signed URLs exactly, registration once, recognition, limits, access, and no
multipart upload left behind. (moto checks neither policies nor signatures, so the tests
read what spigot signed.)"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import boto3
import jwt
import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.context import STORE
from server.lifecycle.hooks import Hooks
from server.presign import cors
from server.settings import Settings
from server.sweeper import recognise_posts, scan, sweep_once
from storage import UploadInfo
from storage.s3 import S3Store
from tests.conftest import BUCKET, FAKE_AWS, sha256
from tests.test_cli import run_cli

Client = TestClient  # type: ignore[type-arg]
KEY = "presign-test-jwt-key-0123456789abcdefghij"
MIB = 1 << 20


def bearer(sub: str, **claims: Any) -> dict[str, str]:
    body = {"sub": sub, "scope": "upload read", "exp": int(time.time()) + 600, **claims}
    return {"Authorization": f"Bearer {jwt.encode(body, KEY, algorithm='HS256')}"}


ALICE = bearer("alice")
BOB = bearer("bob")


class Direct:
    def __init__(self, client: Client, s3: Any, prefix: str, finished: list[UploadInfo]) -> None:
        self.client = client
        self.s3 = s3
        self.prefix = prefix
        self.finished = finished

    def multipart_uploads(self) -> list[Any]:
        listed = self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix + "/")
        return list(listed.get("Uploads", []))


@pytest.fixture
async def direct(
    aiohttp_client: Any, moto_server: str, fake_aws: None, tmp_path: Path, request: Any
) -> AsyncIterator[Direct]:
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    prefix = "d" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]
    overrides = getattr(request, "param", {})
    settings = Settings(
        storage=f"s3://{BUCKET}/{prefix}",
        s3_endpoint_url=moto_server,
        auth="jwt",
        jwt_key=KEY,
        **overrides,
    )
    store = S3Store(BUCKET, prefix, endpoint_url=moto_server, temp_dir=tmp_path / "spool")
    finished: list[UploadInfo] = []
    app = create_app(settings, store, Hooks(post_finish=finished.append))
    yield Direct(await aiohttp_client(app), s3, prefix, finished)


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return decoded


async def post_form(url: str, fields: dict[str, str], data: bytes, name: str = "f.bin") -> int:
    form = aiohttp.FormData()
    for k, v in fields.items():
        form.add_field(k, v)
    form.add_field("file", data, filename=name, content_type=fields.get("Content-Type"))
    async with aiohttp.ClientSession() as http, http.post(url, data=form) as resp:
        return resp.status


async def put_part(url: str, data: bytes) -> str:
    async with aiohttp.ClientSession() as http, http.put(url, data=data) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["ETag"]


async def get_params(direct: Direct, headers: dict[str, str] = ALICE, **query: str) -> Any:
    resp = await direct.client.get("/s3/params", params=query, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


# -- single uploads -------------------------------------------------------------------------


async def test_post_policy_is_exactly_what_it_should_be(direct: Direct) -> None:
    made = await get_params(
        direct, filename="../holiday pic.png", type="image/png", **{"metadata[album]": "summer"}
    )
    assert made["method"] == "POST" and made["expires"] == 900 and made["headers"] == {}
    assert made["url"].endswith(f"/{BUCKET}/")  # Uppy 6.0-6.2 need the trailing slash
    fields = made["fields"]
    key = fields["key"]
    prefix, upload_id = key.split("/")
    assert prefix == direct.prefix and len(upload_id) == 22  # the server's key, not the name
    assert fields["Content-Type"] == "image/png"
    assert fields["success_action_status"] == "201"
    assert fields["x-amz-meta-name"] == "holiday%20pic.png"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4, never v2
    policy = policy_of(fields)
    conditions = policy["conditions"]
    assert ["content-length-range", 0, 1024**4] in conditions  # the server's cap
    for name, value in fields.items():
        if name not in ("policy", "x-amz-signature"):
            assert {name: value} in conditions, name
    assert {"bucket": BUCKET} in conditions
    expiry = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(expiry - time.mktime(time.gmtime()) - 900) < 30


async def test_a_token_cap_is_the_policy_limit(direct: Direct) -> None:
    made = await get_params(direct, bearer("alice", max_upload_size=5000), filename="a")
    assert ["content-length-range", 0, 5000] in policy_of(made["fields"])["conditions"]
    assert made["fields"]["Content-Type"] == "application/octet-stream"


async def test_a_single_post_is_recognised_on_first_get_and_registered_once(
    direct: Direct,
) -> None:
    data = bytes(range(256)) * 4000
    made = await get_params(direct, filename="clip.bin", type="video/mp4")
    file_id = made["fields"]["key"].split("/")[1]
    listed = await (await direct.client.get("/files/", headers=ALICE)).json()
    assert listed == []  # not there yet
    assert await post_form(made["url"], made["fields"], data) == 201
    resp = await direct.client.get(f"/files/{file_id}", headers={**ALICE, "Range": "bytes=5-9"})
    assert resp.status == 206 and await resp.read() == data[5:10]
    head = direct.s3.head_object(Bucket=BUCKET, Key=made["fields"]["key"])
    assert resp.headers["ETag"] == head["ETag"]  # S3's, quoted
    for _ in range(2):
        assert (await direct.client.get(f"/files/{file_id}", headers=ALICE)).status == 200
    assert [i.id for i in direct.finished] == [file_id]  # post_finish exactly once
    listed = await (await direct.client.get("/files/", headers=ALICE)).json()
    assert [(f["id"], f["size"], f["sha256"], f["owner"]) for f in listed] == [
        (file_id, len(data), None, "alice")
    ]
    assert (await direct.client.get(f"/files/{file_id}", headers=BOB)).status == 404


async def test_the_sweep_recognises_and_expires_posts(direct: Direct) -> None:
    data = b"swept" * 1000
    arrived = await get_params(direct, filename="a.bin")
    never = await get_params(direct, filename="b.bin")
    assert await post_form(arrived["url"], arrived["fields"], data) == 201
    app = direct.client.app
    due = await scan(app[STORE], time.time())
    assert len(due.posted) == 2
    registered = await recognise_posts(app, due.posted, "", time.time())
    assert registered == [arrived["fields"]["key"].split("/")[1]]
    assert len(direct.finished) == 1
    later = time.time() + 3600  # past the policy: the one that never came is expired
    due = await scan(app[STORE], later)
    assert await recognise_posts(app, due.posted, "", later) == []
    gone = never["fields"]["key"].split("/")[1]
    resp = await direct.client.get(f"/files/{gone}", headers=ALICE)
    assert resp.status == 410


async def test_an_object_over_its_limit_is_deleted(direct: Direct) -> None:
    made = await get_params(direct, bearer("alice", max_upload_size=100), filename="big")
    assert await post_form(made["url"], made["fields"], b"x" * 101) == 201  # moto lets it in
    file_id = made["fields"]["key"].split("/")[1]
    resp = await direct.client.get(f"/files/{file_id}", headers=ALICE)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "upload_too_large"
    assert "Contents" not in direct.s3.list_objects_v2(Bucket=BUCKET, Prefix=direct.prefix)
    assert direct.finished == []


# -- multipart ------------------------------------------------------------------------------


async def create(direct: Direct, headers: dict[str, str] = ALICE, **body: Any) -> Any:
    payload = {"filename": "movie.mp4", "type": "video/mp4", "metadata": {"a": "b"}, **body}
    resp = await direct.client.post("/s3/multipart", json=payload, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def sign(direct: Direct, made: Any, number: int, headers: dict[str, str] = ALICE) -> Any:
    resp = await direct.client.get(
        f"/s3/multipart/{made['uploadId']}/{number}", params={"key": made["key"]}, headers=headers
    )
    return resp


async def test_multipart_round_trip(direct: Direct) -> None:
    made = await create(direct)
    assert made["bucket"] == BUCKET and made["key"].startswith(direct.prefix + "/")
    upload_id, key = made["uploadId"], made["key"]
    route = f"/s3/multipart/{upload_id}"
    resp = await direct.client.get(route, params={"key": key}, headers=ALICE)
    assert resp.status == 200 and await resp.json() == []

    data = [bytes([i]) * (5 * MIB) for i in range(2)] + [b"tail" * 300]
    signed = await (await sign(direct, made, 1)).json()
    assert signed["expires"] == 900
    query = parse_qs(urlsplit(signed["url"]).query)
    assert query["partNumber"] == ["1"] and query["uploadId"] == [upload_id]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["900"]
    etags = [await put_part(signed["url"], data[0])]
    resp = await direct.client.get(
        f"{route}/batch", params={"key": key, "partNumbers": "3,2"}, headers=ALICE
    )
    batch = (await resp.json())["presignedUrls"]
    assert sorted(batch) == ["2", "3"]
    etags += [await put_part(batch["2"], data[1]), await put_part(batch["3"], data[2])]

    listed = await (await direct.client.get(route, params={"key": key}, headers=ALICE)).json()
    assert listed == [
        {"PartNumber": n, "ETag": etags[n - 1], "Size": len(data[n - 1])} for n in (1, 2, 3)
    ]
    parts = {"parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]}
    for _ in range(2):  # a retried complete registers once and answers the same
        resp = await direct.client.post(
            f"{route}/complete", params={"key": key}, json=parts, headers=ALICE
        )
        assert resp.status == 200, await resp.text()
        done = await resp.json()
        file_id = key.split("/")[1]
        assert done["key"] == key and done["bucket"] == BUCKET
        assert done["location"].endswith(f"/files/{file_id}")
    assert [i.id for i in direct.finished] == [file_id]
    resp = await direct.client.get(
        urlsplit(done["location"]).path,
        headers={**ALICE, "Range": f"bytes={5 * MIB - 2}-{5 * MIB + 1}"},
    )
    assert resp.status == 206 and await resp.read() == b"\x00\x00\x01\x01"
    whole = await direct.client.get(urlsplit(done["location"]).path, headers=ALICE)
    assert sha256(await whole.read()) == sha256(b"".join(data))
    assert resp.headers["Content-Type"] == "video/mp4"
    assert direct.multipart_uploads() == []


@pytest.mark.parametrize("number", ["0", "10001", "x", "-1"])
async def test_bad_part_numbers(direct: Direct, number: str) -> None:
    made = await create(direct)
    resp = await direct.client.get(
        f"/s3/multipart/{made['uploadId']}/{number}", params={"key": made["key"]}, headers=ALICE
    )
    assert resp.status == 400
    body = await resp.json()
    assert body["message"].startswith("part numbers are 1 to 10000")
    resp = await direct.client.get(
        f"/s3/multipart/{made['uploadId']}/batch",
        params={"key": made["key"], "partNumbers": f"1,{number}"},
        headers=ALICE,
    )
    assert resp.status == 400


async def test_bob_cannot_touch_alices_upload(direct: Direct) -> None:
    made = await create(direct)
    route = f"/s3/multipart/{made['uploadId']}"
    other = await create(direct)
    for method, path, body in [
        ("GET", route, None),
        ("GET", f"{route}/1", None),
        ("GET", f"{route}/batch?partNumbers=1", None),
        ("POST", f"{route}/complete", {"parts": [{"PartNumber": 1, "ETag": '"x"'}]}),
        ("DELETE", route, None),
    ]:
        sep = "&" if "?" in path else "?"
        resp = await direct.client.request(
            method, f"{path}{sep}key={made['key']}", json=body, headers=BOB
        )
        assert resp.status == 404, (method, path)
        assert (await resp.json())["message"] == "no such file or upload"
        # her own uploadId with another key of hers, or another uploadId with her key
        resp = await direct.client.request(
            method, f"{path}{sep}key={other['key']}", json=body, headers=ALICE
        )
        assert resp.status == 404, (method, path)
    resp = await direct.client.get("/s3/params")
    assert resp.status == 401


async def test_an_oversized_completion_is_refused_and_aborted(direct: Direct) -> None:
    small = bearer("alice", max_upload_size=6 * MIB)
    made = await create(direct, small)
    etags = []
    for n in (1, 2):
        signed = await (await sign(direct, made, n, small)).json()
        etags.append(await put_part(signed["url"], b"z" * (5 * MIB if n == 1 else 2 * MIB)))
    parts = {"parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]}
    resp = await direct.client.post(
        f"/s3/multipart/{made['uploadId']}/complete",
        params={"key": made["key"]},
        json=parts,
        headers=small,
    )
    assert resp.status == 413
    assert "over its limit" in (await resp.json())["message"]
    assert direct.multipart_uploads() == []
    assert direct.finished == []


async def test_abort_and_expiry_leave_no_multipart_upload(direct: Direct) -> None:
    made = await create(direct)
    assert len(direct.multipart_uploads()) == 1
    resp = await direct.client.delete(
        f"/s3/multipart/{made['uploadId']}", params={"key": made["key"]}, headers=ALICE
    )
    assert resp.status == 200 and await resp.json() == {}
    assert direct.multipart_uploads() == []
    await create(direct)
    assert len(direct.multipart_uploads()) == 1
    store = direct.client.app[STORE]
    await sweep_once(store, time.time() + 2 * 86400)  # past --upload-ttl
    assert direct.multipart_uploads() == []


async def test_tus_cannot_write_into_a_direct_upload(direct: Direct) -> None:
    made = await create(direct)
    file_id = made["key"].split("/")[1]
    resp = await direct.client.patch(
        f"/files/{file_id}",
        data=b"x",
        headers={
            **ALICE,
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "direct_upload"


@pytest.mark.parametrize("direct", [{"verify_direct_uploads": True}], indirect=True)
async def test_verify_direct_uploads_records_the_sha256(direct: Direct) -> None:
    data = b"verify me" * 10_000
    made = await get_params(direct, filename="v.bin")
    assert await post_form(made["url"], made["fields"], data) == 201
    file_id = made["fields"]["key"].split("/")[1]
    assert (await direct.client.get(f"/files/{file_id}", headers=ALICE)).status == 200
    for _ in range(100):  # hashed in the background
        listed = await (await direct.client.get("/files/", headers=ALICE)).json()
        if listed[0]["sha256"] is not None:
            break
        await asyncio.sleep(0.05)
    assert listed[0]["sha256"] == sha256(data)


# -- bucket CORS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "found"),
    [
        ([], ["no CORS rule allows the origin https://app.example"]),
        ([cors.rule(["https://app.example"])], []),
        ([cors.rule(["*"])], []),
        ([cors.rule(["https://*.example"])], []),
        (
            [cors.rule(["https://other.example"])],
            ["no CORS rule allows the origin https://app.example"],
        ),
        (
            [{**cors.rule(["https://app.example"]), "ExposeHeaders": []}],
            ["ETag is not exposed (ExposeHeaders)", "Location is not exposed (ExposeHeaders)"],
        ),
        (
            [
                {
                    **cors.rule(["https://app.example"]),
                    "AllowedMethods": ["GET"],
                    "AllowedHeaders": [],
                }
            ],
            [
                "PUT is not an allowed method",
                "POST is not an allowed method",
                "HEAD is not an allowed method",
                "Content-Type is not an allowed header (AllowedHeaders)",
            ],
        ),
    ],
)
def test_cors_problems(rules: list[dict[str, Any]], found: list[str]) -> None:
    assert cors.problems(rules, "https://app.example") == found


def test_cors_command(moto_server: str, fake_aws: None) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket="cors-test")
    with contextlib.suppress(Exception):
        s3.delete_bucket_cors(Bucket="cors-test")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "s3",
            "cors",
            "--storage",
            "s3://cors-test/x",
            "--s3-endpoint-url",
            moto_server,
            "--origin",
            "https://app.example",
            *args,
            env={**os.environ, **FAKE_AWS},
        )

    checked = run("--check")
    assert checked.returncode == 1
    assert (
        checked.stdout
        == "missing: https://app.example: no CORS rule allows the origin https://app.example\n"
    )
    written = run()
    assert written.returncode == 0, written.stderr
    assert "CORS is ready for direct uploads from https://app.example" in written.stdout
    rules = s3.get_bucket_cors(Bucket="cors-test")["CORSRules"]
    assert rules[-1]["ExposeHeaders"] == ["ETag", "Location"]
    assert sorted(rules[-1]["AllowedMethods"]) == ["GET", "HEAD", "POST", "PUT"]
    assert run("--check").returncode == 0
    s3.put_bucket_cors(
        Bucket="cors-test",
        CORSConfiguration={
            "CORSRules": [{**cors.rule(["https://app.example"]), "ExposeHeaders": ["Location"]}]
        },
    )
    checked = run("--check")
    assert checked.returncode == 1
    assert checked.stdout == "missing: https://app.example: ETag is not exposed (ExposeHeaders)\n"


async def test_the_sweep_aborts_multipart_uploads_no_info_names(direct: Direct) -> None:
    """A crash between CreateMultipartUpload and writing the info leaves a multipart
    upload that nothing points at; prune aborts it once it is older than --upload-ttl."""
    orphan = f"{direct.prefix}/{'Q' * 22}"
    direct.s3.create_multipart_upload(Bucket=BUCKET, Key=orphan)
    kept = await create(direct)  # has an info: the sweep's expiry decides about it
    store = direct.client.app[STORE]
    # (moto reports every Initiated as 2010-11-10, so the age rule cannot be shown young)
    assert await store.prune(time.time() + 2 * 86400) == 1
    assert [u["Key"] for u in direct.multipart_uploads()] == [kept["key"]]
