"""Crash safety: SIGKILL spigot at random points during a 300 MiB tus upload, restart it on
the same storage, resume from the offset HEAD reports, several times; the result must be
byte-identical."""

from __future__ import annotations

import contextlib
import http.client
import random
import signal
import threading
import time
import urllib.parse
from pathlib import Path

from tests.conftest import SpigotProcess, file_sha256, start_spigot, stop_spigot, write_random

BACKENDS = ("local",)  # the S3 backend has its own tests of this kind

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


def patch_rest(server: SpigotProcess, upload_id: str, source: Path, offset: int) -> None:
    """One PATCH with everything from `offset` on, streamed from the file."""
    with open(source, "rb") as f:
        f.seek(offset)
        headers = {
            **TUS,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Content-Length": str(SIZE - offset),
        }
        # The server may be killed under us: that is the point.
        with contextlib.suppress(ConnectionError, http.client.HTTPException, OSError):
            request(server.url, "PATCH", f"/files/{upload_id}", headers, f).read()


def test_sigkill_and_resume(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    digest = write_random(source, SIZE)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = start_spigot(data_dir, "--max-request-size", "0")
    try:
        resp = request(server.url, "POST", "/files/", {**TUS, "Upload-Length": str(SIZE)})
        assert resp.status == 201
        upload_id = resp.headers["Location"].rsplit("/", 1)[1]
        offsets = []
        for _ in range(KILLS):
            offset = offset_of(server, upload_id)
            offsets.append(offset)
            sender = threading.Thread(target=patch_rest, args=(server, upload_id, source, offset))
            sender.start()
            time.sleep(rng.uniform(0.05, 0.6))
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
            sender.join()
            server = start_spigot(data_dir, "--max-request-size", "0")
        offset = offset_of(server, upload_id)
        offsets.append(offset)
        patch_rest(server, upload_id, source, offset)
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
