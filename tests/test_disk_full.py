"""A full disk under a real `spigot serve`: storage on a 16 MiB tmpfs this test mounts.

A one-shot upload that does not fit gets 507 as JSON and leaves nothing; a tus PATCH keeps
what fit and says so, then finishes byte-identical once there is room; info sidecars stay
whole; downloads go on; and the log has one line for it, not a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_spigot, stop_spigot
from tests.tools import mounted_tmpfs

MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "small", "16m") as where:
        yield where


def call(method: str, url: str, data: bytes | None = None, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def offset(url: str) -> int:
    request = urllib.request.Request(url, method="HEAD", headers=TUS)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.headers["Upload-Offset"])


def test_a_full_disk(small_disk: Path) -> None:
    server = start_spigot(small_disk, "--max-request-size", "0")
    try:
        kept = os.urandom(MIB)
        status, body = call("PUT", f"{server.url}/files/kept.bin", kept)
        assert status == 201
        kept_url = json.loads(body)["url"]

        # a one-shot upload that cannot fit: 507, and nothing of it stays
        status, body = call("PUT", f"{server.url}/files/huge.bin", os.urandom(32 * MIB))
        assert status == 507, body
        assert json.loads(body)["error"]["code"] == "insufficient_storage"
        names = sorted(p.name for p in small_disk.iterdir() if p.is_file())
        assert len(names) == 2 and any(n.endswith(".info") for n in names), names
        assert list((small_disk / ".tmp").iterdir()) == []

        # downloads go on
        status, body = call("GET", kept_url)
        assert status == 200 and body == kept

        # a PATCH that runs out of room keeps what fit, and the offset says so
        data = os.urandom(24 * MIB)
        made = urllib.request.urlopen(
            urllib.request.Request(
                f"{server.url}/files/",
                method="POST",
                headers={**TUS, "Upload-Length": str(len(data))},
            ),
            timeout=10,
        )
        url = made.headers["Location"]
        patch = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        status, body = call("PATCH", url, data, **patch)
        assert status == 507, body
        stored = offset(url)
        assert 0 < stored < len(data)
        data_file = small_disk / url.rsplit("/", 1)[1]
        assert data_file.stat().st_size == stored
        for info in small_disk.glob("*.info"):  # every sidecar whole, none cut by ENOSPC
            json.loads(info.read_text())

        # room again: the upload goes on from there and ends byte-identical
        grown = subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=False)
        assert grown.returncode == 0
        patch["Upload-Offset"] = str(stored)
        status, body = call("PATCH", url, data[stored:], **patch)
        assert status == 204, body
        status, body = call("GET", url)
        assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest()

        # read-only storage: writes are a clear 503, reads go on
        frozen = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=False)
        assert frozen.returncode == 0
        status, body = call("PUT", f"{server.url}/files/ro.bin", b"not now")
        assert status == 503 and json.loads(body)["error"]["code"] == "storage_read_only"
        status, body = call("GET", kept_url)
        assert status == 200 and body == kept
    finally:
        stop_spigot(server)
    log = server.log()
    assert "Traceback" not in log and "no space left" in log and "read-only" in log
