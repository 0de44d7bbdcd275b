"""Uppy 6's @uppy/url in Debian's Chromium, with spigot as its Companion: a link pasted into
the page becomes a file in spigot's store, with Companion's progress on the way.

The page (tests/node/uppy6/url-entry.js, bundled by esbuild) runs on its own origin, so
CORS is real, and spigot runs with --auth jwt, the token going in `companionHeaders` as an
app would send it. The link is an origin on loopback (hence --insecure-proxy-allow-private,
which exists for tests like this one). The file is downloaded back and compared by sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from tests.conftest import SpigotProcess, start_spigot, stop_spigot
from tests.test_auth_process import get
from tests.test_presign_browser import free_port
from tests.test_tus_js import NODE_DIR, npm_install
from tests.tools import npm_ci, require

JWT_KEY = "uppy-url-test-jwt-key-0123456789abcdefgh"
UPPY = NODE_DIR / "uppy6"


def bundle() -> None:
    npm_ci(UPPY, "esbuild", "@uppy/core", "@uppy/url", "@uppy/tus")
    done = subprocess.run(
        [str(UPPY / "node_modules" / ".bin" / "esbuild"), "url-entry.js", "--bundle",
         "--format=iife", "--outfile=url-bundle.js", "--log-level=warning"],
        cwd=UPPY, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_uppy_url_imports_a_pasted_link(data_dir: Path) -> None:
    npm_install()  # playwright-core
    bundle()
    page_port = free_port()
    server: SpigotProcess = start_spigot(
        data_dir,
        "--auth", "jwt", "--cors-origin", f"http://127.0.0.1:{page_port}",
        "--insecure-proxy-allow-private",
        env={"SPIGOT_JWT_KEY": JWT_KEY},
    )  # fmt: skip
    try:
        claims = {"sub": "alice", "scope": "import read", "exp": int(time.time()) + 3600}
        token = jwt.encode(claims, JWT_KEY, algorithm="HS256")
        result = subprocess.run(
            [require("node"), "uppy-url.mjs"],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PAGE_PORT": str(page_port), "SPIGOT_URL": server.url,
                 "TOKEN": token, "CHROMIUM": require("chromium")},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        assert seen["errors"] == [] and seen["consoleErrors"] == [], seen
        # /url/meta named the file before anything was fetched
        assert seen["name"] == "linked clip.mp4" and seen["type"] == "video/mp4"
        assert seen["size"] == seen["remoteSize"] == 16 << 20
        # Companion's progress reached Uppy on its way to the whole file
        partial = {v for v in seen["progress"] if 0 < v < seen["remoteSize"]}
        assert len(partial) >= 2, seen["progress"]
        # Uppy's pause let go of the origin, and its resume asked for the rest of the file
        # from what spigot had stored (/url/meta's GET is closed after its head)
        pause = seen["pause"]
        assert pause["at"] >= 4 << 20 and pause["sendingMidway"] == 0, pause
        assert len(set(pause["during"])) <= 1, pause  # no progress while paused
        first, *rest = [r for r in seen["ranges"] if r is not None]
        resumed_from = int(first.removeprefix("bytes=").rstrip("-"))
        assert rest == [] and pause["at"] <= resumed_from < seen["remoteSize"], seen["ranges"]
        assert seen["ranges"].count(None) == 2  # the head for /url/meta, then the import
        # the file is spigot's, and Uppy got its URL and JSON
        file_id = seen["uploadURL"].rstrip("/").rsplit("/", 1)[-1]
        assert seen["uploadURL"] == f"{server.url}/files/{file_id}"
        assert seen["body"]["sha256"] == seen["sha256"] and seen["body"]["id"] == file_id
        status, body = get(f"{server.url}/files/{file_id}", token)
        assert status == 200 and hashlib.sha256(body).hexdigest() == seen["sha256"]
        listed = json.loads(get(f"{server.url}/files/", token)[1])
        assert [f["id"] for f in listed] == [file_id]  # stored once: tus was never sent it
    finally:
        stop_spigot(server)
