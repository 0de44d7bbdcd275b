"""Several spigot processes on one bucket (moto's ThreadedMotoServer over real HTTP): any
instance continues any upload, SSE sees other instances' writes, redirects, start-up errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.conftest import (
    BUCKET,
    FAKE_AWS,
    ROOT,
    SpigotProcess,
    sha256,
    start_spigot,
    stop_spigot,
)
from tests.processes import stop
from tests.tools import require

BACKENDS = ("s3",)
MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def instances(
    s3_spigot_args: tuple[str, ...], data_dir: Path, tmp_path: Path
) -> Iterator[list[SpigotProcess]]:
    """Three instances, A, B and C, sharing one bucket prefix. A short lease ttl lets a
    dead instance's lease lapse quickly."""
    started = [
        start_spigot(
            data_dir,
            *s3_spigot_args,
            *("--s3-lock-ttl", "2s", "--s3-part-size", "5MiB"),
            *("--temp-dir", str(tmp_path / n)),
        )
        for n in "abc"
    ]
    yield started
    for server in started:
        if server.proc.poll() is None:
            stop_spigot(server)


def call(
    base: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def create(base: str, length: int) -> str:
    status, headers, _ = call(base, "POST", "/files/", {**TUS, "Upload-Length": str(length)}, b"")
    assert status == 201
    return headers["Location"].rsplit("/", 1)[1]


def patch(base: str, upload_id: str, offset: int, body: bytes) -> tuple[int, dict[str, str]]:
    headers = {
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    status, got, _ = call(base, "PATCH", f"/files/{upload_id}", headers, body)
    return status, got


def s3_client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint)


def parts_listed(endpoint: str, prefix: str, upload_id: str) -> int:
    client = s3_client(endpoint)
    uploads = client.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{prefix}/{upload_id}")
    total = 0
    for found in uploads.get("Uploads", []):
        listed = client.list_parts(Bucket=BUCKET, Key=found["Key"], UploadId=found["UploadId"])
        total += len(listed.get("Parts", []))
    return total


def test_upload_started_on_a_continues_on_b_and_downloads_from_c(
    instances: list[SpigotProcess], s3_spigot_args: tuple[str, ...]
) -> None:
    a, b, c = instances
    endpoint, prefix = s3_spigot_args[3], s3_spigot_args[1].rsplit("/", 1)[1]
    data = os.urandom(13 * MIB + 12345)
    upload_id = create(a.url, len(data))

    # A receives the first 7 MiB of one PATCH, then dies mid-request (SIGKILL).
    url = urllib.parse.urlsplit(a.url)
    sock = socket.create_connection((url.hostname, url.port))
    head = (
        f"PATCH /files/{upload_id} HTTP/1.1\r\nHost: a\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data[: 7 * MIB])
    deadline = time.monotonic() + 30
    while parts_listed(endpoint, prefix, upload_id) < 1:  # the first 5 MiB part is in
        assert time.monotonic() < deadline, "A never uploaded a part"
        time.sleep(0.1)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    sock.close()

    # B answers for the upload: its lease waits out A's lapsed one, then continues.
    status, headers, _ = call(b.url, "HEAD", f"/files/{upload_id}", TUS)
    assert status == 200
    offset = int(headers["Upload-Offset"])
    assert offset == 5 * MIB  # the part A finished; the rest A held died with it
    status, headers = patch(b.url, upload_id, offset, data[offset:])
    assert status == 204 and headers["Upload-Offset"] == str(len(data))

    status, headers, body = call(c.url, "GET", f"/files/{upload_id}", {})
    assert status == 200 and sha256(body) == sha256(data)
    assert headers["ETag"] == f'"{sha256(data)}"'
    status, headers, body = call(c.url, "GET", f"/files/{upload_id}", {"Range": "bytes=-100"})
    assert status == 206 and body == data[-100:]
    assert headers["Content-Range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"


def read_events(url: str, found: list[dict[str, Any]], done: threading.Event) -> None:
    with urllib.request.urlopen(url, timeout=60) as resp:
        kind = ""
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                found.append({"type": kind, **json.loads(line[6:])})
                if kind == "complete":
                    break
    done.set()


def test_events_on_c_follow_an_upload_written_through_b(instances: list[SpigotProcess]) -> None:
    _, b, c = instances
    data = os.urandom(6 * MIB)
    upload_id = create(b.url, len(data))
    assert patch(b.url, upload_id, 0, data[: 2 * MIB])[0] == 204
    found: list[dict[str, Any]] = []
    done = threading.Event()
    reader = threading.Thread(
        target=read_events, args=(f"{c.url}/files/{upload_id}/events", found, done)
    )
    reader.start()
    deadline = time.monotonic() + 10
    while not found:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert found[0] == {"type": "progress", "offset": 2 * MIB, "length": len(data)}
    assert patch(b.url, upload_id, 2 * MIB, data[2 * MIB :])[0] == 204
    assert done.wait(15), found
    reader.join()
    assert found[-1]["type"] == "complete"
    assert found[-1]["sha256"] == hashlib.sha256(data).hexdigest()
    assert found[-1]["size"] == len(data)


def test_redirect_downloads_to_a_presigned_url(
    s3_spigot_args: tuple[str, ...], data_dir: Path, tmp_path: Path
) -> None:
    server = start_spigot(data_dir, *s3_spigot_args, "--s3-redirect-downloads")
    try:
        source = tmp_path / "report é.pdf"
        data = os.urandom(300_000)
        source.write_bytes(data)
        curl = require("curl")
        done = subprocess.run(
            [curl, "-sS", "-f", "-T", str(source), f"{server.url}/files/"],
            capture_output=True,
            text=True,
            check=True,
        )
        file_id = json.loads(done.stdout)["id"]
        location = ""
        req = urllib.request.Request(f"{server.url}/files/{file_id}?download=1")
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(req, timeout=30)
        except urllib.error.HTTPError as exc:
            assert exc.code == 302
            location = exc.headers["Location"]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        assert query["response-content-type"] == ["application/pdf"]
        assert query["response-content-disposition"][0].startswith("attachment;")
        assert 0 < int(query["X-Amz-Expires"][0]) <= 900
        out = tmp_path / "got"
        headers = subprocess.run(
            [curl, "-sS", "-f", "-L", "-D", "-", "-o", str(out), f"{server.url}/files/{file_id}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.read_bytes() == data
        assert "content-type: application/pdf" in headers.lower()
    finally:
        stop_spigot(server)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def spigot_fails(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1, done
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line, no trace
    return done.stderr


def test_missing_bucket_stops_start(moto_server: str, fake_aws: None) -> None:
    err = spigot_fails(
        "--storage",
        "s3://no-such-bucket/x",
        "--s3-endpoint-url",
        moto_server,
        env={**os.environ, **FAKE_AWS},
    )
    assert "bucket 'no-such-bucket' does not exist" in err


def test_no_credentials_stop_start(moto_server: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    err = spigot_fails("--storage", f"s3://{BUCKET}", "--s3-endpoint-url", moto_server, env=env)
    assert "Unable to locate credentials" in err


@pytest.fixture
def authenticating_moto(tmp_path: Path) -> Iterator[str]:
    """A moto server that checks signatures (INITIAL_NO_AUTH_ACTION_COUNT=0), in its own
    process because moto reads that setting once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "moto server did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def test_bad_credentials_stop_start(authenticating_moto: str) -> None:
    env = {**os.environ, **FAKE_AWS, "AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1"}
    err = spigot_fails(
        "--storage", f"s3://{BUCKET}", "--s3-endpoint-url", authenticating_moto, env=env
    )
    assert "refused: check the credentials" in err
    assert "AKIAWRONG" not in err and "testing" not in err  # no secrets in the message
