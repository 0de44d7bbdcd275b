"""S3 failing in the ways it does, between a real spigot and moto's server (tests/faults.py):
throttling and 500s that botocore's retries ride out, faults that persist (503 JSON,
honest tus offsets, no orphaned multipart uploads), and a GetObject cut mid-body (the
client's connection is reset, so a truncated file never looks complete)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import BUCKET, FAKE_AWS, SpigotProcess, start_spigot, stop_spigot
from tests.faults import Fault, FaultyProxy, faulty_proxy

MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def setup(
    moto_server: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SpigotProcess, FaultyProxy, object]]:
    prefix = f"faults-{os.urandom(4).hex()}"  # each test its own corner of the bucket
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    with faulty_proxy(moto_server) as proxy:
        server = start_spigot(
            data_dir,
            "--storage",
            f"s3://{BUCKET}/{prefix}",
            "--s3-endpoint-url",
            proxy.url,
            "--temp-dir",
            str(data_dir / "spool"),
            "--max-request-size",
            "0",
            env=dict(FAKE_AWS),
        )
        try:
            yield server, proxy, (s3, prefix)
        finally:
            stop_spigot(server)


def call(method: str, url: str, data: bytes | None = None, **headers: str):  # type: ignore[no-untyped-def]
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def orphans(where: object) -> list[str]:
    s3, prefix = where  # type: ignore[misc]
    found = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    return [u["Key"] for u in found.get("Uploads", [])]


def test_transient_faults_are_ridden_out(setup: tuple[SpigotProcess, FaultyProxy, object]) -> None:
    server, proxy, _ = setup
    proxy.add(
        Fault("UploadPart", "slowdown", times=2),
        Fault("UploadPart", "internal", times=1),
        Fault("UploadPart", "slow", times=2, delay=0.5),  # added latency
    )
    data = os.urandom(20 * MIB)
    status, _, body = call("PUT", f"{server.url}/files/t.bin", data)
    assert status == 201, body
    parts = [k for op, k in proxy.seen if op == "UploadPart"]
    assert parts.count("passed") + parts.count("slow") >= 3  # three parts got through
    assert {"slowdown", "internal", "slow"} <= set(parts)
    status, _, got = call("GET", json.loads(body)["url"])
    assert status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_persistent_faults_are_503_and_leave_no_orphans(
    setup: tuple[SpigotProcess, FaultyProxy, object],
) -> None:
    server, proxy, s3 = setup
    proxy.add(Fault("UploadPart", "slowdown", times=-1))
    status, headers, body = call("PUT", f"{server.url}/files/p.bin", os.urandom(20 * MIB))
    assert status == 503, body
    assert json.loads(body)["error"]["code"] == "storage_unavailable"
    assert headers["Retry-After"] == "5"
    assert orphans(s3) == []
    proxy.clear()
    status, _, listing = call("GET", f"{server.url}/files/")
    assert status == 200 and json.loads(listing) == []


def test_a_patch_through_persistent_faults_keeps_an_honest_offset(
    setup: tuple[SpigotProcess, FaultyProxy, object],
) -> None:
    server, proxy, _ = setup
    data = os.urandom(20 * MIB)
    status, headers, _ = call(
        "POST", f"{server.url}/files/", None, **TUS, **{"Upload-Length": str(len(data))}
    )
    assert status == 201
    url = headers["Location"]
    proxy.add(Fault("UploadPart", "slowdown", times=-1))
    patch = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    status, _, body = call("PATCH", url, data, **patch)
    assert status == 503, body
    proxy.clear()
    status, headers, _ = call("HEAD", url, None, **TUS)
    stored = int(headers["Upload-Offset"])
    assert 0 <= stored < len(data)
    patch["Upload-Offset"] = str(stored)
    status, _, body = call("PATCH", url, data[stored:], **patch)
    assert status == 204, body
    status, _, got = call("GET", url)
    assert status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_a_download_cut_by_s3_resets_the_client(
    setup: tuple[SpigotProcess, FaultyProxy, object],
) -> None:
    server, proxy, _ = setup
    data = os.urandom(24 * MIB)
    status, _, body = call("PUT", f"{server.url}/files/d.bin", data)
    assert status == 201
    file_id = json.loads(body)["id"]
    proxy.add(Fault("GetObject", "cut", times=-1, after_bytes=3 * MIB, key_part=file_id))
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", f"/files/{file_id}")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(data))
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()
    proxy.clear()
    status, _, got = call("GET", f"{server.url}/files/{file_id}")
    assert status == 200 and got == data
