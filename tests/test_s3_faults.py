"""S3 failing in the ways it does, between a real spigot and moto's server (tests/faults.py):
throttling and 500s that botocore's retries ride out, faults that persist (503 JSON,
honest tus offsets, no orphaned multipart uploads), and a GetObject cut mid-body (the
client's connection is reset, so a truncated file never looks complete)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
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


def create(server: SpigotProcess, length: int) -> str:
    """A new tus upload of `length` bytes; its URL."""
    status, headers, _ = call(
        "POST", f"{server.url}/files/", None, **TUS, **{"Upload-Length": str(length)}
    )
    assert status == 201
    return str(headers["Location"])


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
    url = create(server, len(data))
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


def test_a_patch_cut_while_its_parts_upload_keeps_an_honest_offset(
    setup: tuple[SpigotProcess, FaultyProxy, object],
) -> None:
    """The client goes away while a part is on its way to a slow S3, and resumes at once.
    The offset it is given must count the bytes that had arrived (the part under way and
    the tail after it), and the upload must finish from there to the right sha256.
    (Measured: the first HEAD already answers the final offset, 11.7 of 12 MiB sent; the
    same passed with the writer's close shielded rather than awaited to its end, so this
    guards the outcome, not that mechanism.)"""
    server, proxy, _ = setup
    data = os.urandom(20 * MIB)
    url = create(server, len(data))
    proxy.add(
        Fault("UploadPart", "slow", times=-1, delay=1.5),
        Fault("PutObject", "slow", times=-1, delay=1.5),
    )
    host, port = server.url.removeprefix("http://").split(":")
    path = urllib.parse.urlsplit(url).path
    sock = socket.create_connection((host, int(port)))
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data[: 12 * MIB])
    time.sleep(0.5)  # the first 8 MiB part is with S3, slowly
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, mid-body
    time.sleep(0.3)
    # Resume at once, as a tus client does, while the cut PATCH's writer still works: its
    # lock must hold this one off until the offset is final, then the offset must be true.
    attempts = []
    for _ in range(10):
        status, headers, _ = call("HEAD", url, None, **TUS)
        assert status == 200
        stored = int(headers["Upload-Offset"])
        assert 0 <= stored <= 12 * MIB
        patch = {**TUS, "Upload-Offset": str(stored)}
        patch["Content-Type"] = "application/offset+octet-stream"
        status, _, body = call("PATCH", url, data[stored:], **patch)
        attempts.append((stored, status))
        if status == 204:
            break
        assert status in (409, 423), body  # moved on meanwhile, or still locked: ask again
    assert attempts[-1][1] == 204, attempts
    assert attempts[-1][0] > 0, attempts  # the bytes that had arrived were kept
    proxy.clear()
    status, _, got = call("GET", url)
    assert status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert server.proc.poll() is None
