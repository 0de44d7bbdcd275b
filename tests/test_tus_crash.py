"""Crash safety: SIGKILL spigot at random points during a 300 MiB tus upload, restart it on
the same storage, resume from the offset HEAD reports, several times; the result must be
byte-identical. On both backends: on S3 the restarted instance also takes over the dead
one's lease (a short --s3-lock-ttl keeps that quick), and never sees the offset go back."""

from __future__ import annotations

import http.client
import random
import signal
import threading
import time
import urllib.parse
from pathlib import Path

from tests.conftest import SpigotProcess, file_sha256, start_spigot, stop_spigot, write_random

SIZE = 300 * 1024 * 1024
KILLS = 4
TUS = {"Tus-Resumable": "1.0.0"}


def request(
    base: str, method: str, path: str, headers: dict[str, str], body: object = None
) -> http.client.HTTPResponse:
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    conn.request(method, path, body=body, headers=headers)  # type: ignore[arg-type]
    return conn.getresponse()


def offset_of(server: SpigotProcess, upload_id: str) -> int:
    resp = request(server.url, "HEAD", f"/files/{upload_id}", TUS)
    assert resp.status == 200, resp.status
    return int(resp.headers["Upload-Offset"])


def patch_rest(server: SpigotProcess, upload_id: str, source: Path, offset: int) -> int | None:
    """One PATCH with everything from `offset` on, streamed from the file; its status, or
    None when the server was killed under it (that is the point)."""
    with open(source, "rb") as f:
        f.seek(offset)
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Content-Length": str(SIZE - offset),
        }
        try:
            resp = request(server.url, "PATCH", f"/files/{upload_id}", headers, f)
            body = resp.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            return None
        assert resp.status == 204, (resp.status, body)
        return resp.status


def test_sigkill_and_resume(
    data_dir: Path, tmp_path: Path, backend: str, backend_args: tuple[str, ...]
) -> None:
    source = tmp_path / "big.bin"
    digest = write_random(source, SIZE)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    args = (*backend_args, "--max-request-size", "0")
    lease_wait = 0.0
    if backend == "s3":
        args = (*args, "--s3-lock-ttl", "2s")
        lease_wait = 2.5  # a restarted instance first waits out the dead one's 2 s lease
    server = start_spigot(data_dir, *args)
    try:
        resp = request(server.url, "POST", "/files/", {**TUS, "Upload-Length": str(SIZE)})
        assert resp.status == 201
        upload_id = resp.headers["Location"].rsplit("/", 1)[1]
        offsets = []
        for kill in range(KILLS):
            offset = offset_of(server, upload_id)
            offsets.append(offset)
            if offset == SIZE:
                break  # a fast machine finished before the kill: nothing left to test
            sender = threading.Thread(target=patch_rest, args=(server, upload_id, source, offset))
            sender.start()
            time.sleep(rng.uniform(0.05, 0.6) + (lease_wait if kill else 0.0))
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
            sender.join()
            server = start_spigot(data_dir, *args)
        offset = offset_of(server, upload_id)
        offsets.append(offset)
        if offset < SIZE:
            assert patch_rest(server, upload_id, source, offset) == 204
        assert offset_of(server, upload_id) == SIZE
        assert offsets == sorted(offsets), f"seed {seed}: offsets went backwards {offsets}"
        assert offsets[-1] > 0, f"seed {seed}: no progress before the last resume"
        out = tmp_path / "back.bin"
        resp = request(server.url, "GET", f"/files/{upload_id}", {})
        assert resp.status == 200
        with open(out, "wb") as f:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
        assert file_sha256(out) == digest, f"seed {seed}, offsets {offsets}"
        assert resp.headers["ETag"] == f'"{digest}"'
    finally:
        stop_spigot(server)
