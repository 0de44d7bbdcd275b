"""The web page at `/`, used in Debian's Chromium as a person would (tests/node/page.mjs):
once open, once behind `--auth jwt` with a token typed into the page.

The script drives the page and kills and restarts spigot itself; this side made the file,
and checks what came back: every sha256, the progress the bar showed, that resumed
uploads went on from where they stopped, the screenshot, and no console errors or CSP
violations. The screenshot is kept in build/test-artifacts/ (the README's is a copy).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from tests.conftest import ROOT, write_random
from tests.test_presign_browser import free_port
from tests.test_tus_js import NODE_DIR, npm_install
from tests.tools import require

ARTIFACTS = ROOT / "build" / "test-artifacts"
JWT_KEY = "page-test-jwt-key-0123456789abcdefghijkl"
SECRET = "page-test-link-secret-0123456789abcdefgh"
MIB = 1 << 20
BIG = 200 * MIB


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("page") / "big-upload.bin"
    return path, write_random(path, BIG)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["none", "jwt"])
def test_the_page_end_to_end(mode: str, big_file: tuple[Path, str], data_dir: Path) -> None:
    npm_install()  # playwright-core
    require("chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path, digest = big_file
    port = free_port()
    command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--storage", str(data_dir / "files"), "--insecure-proxy-allow-private"]
    env = {**os.environ, "SPIGOT_LOG_LEVEL": "warning"}
    token = ""
    if mode == "jwt":
        command += ["--auth", "jwt"]
        env |= {"SPIGOT_JWT_KEY": JWT_KEY, "SPIGOT_SECRET": SECRET}
        scope = "upload read delete import sign"
        claims = {"sub": "alice", "scope": scope, "exp": time.time() + 3600}
        token = jwt.encode(claims, JWT_KEY, algorithm="HS256")
    done = subprocess.run(
        [require("node"), "page.mjs"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=420,
        env={
            **env,
            "SPIGOT_URL": f"http://127.0.0.1:{port}",
            "SPIGOT_CMD": json.dumps(command),
            "BIG_FILE": str(path),
            "TOKEN": token,
            "ARTIFACTS": str(ARTIFACTS),
        },
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert "script-src 'self' 'wasm-unsafe-eval';" in seen["csp"]
    assert "'unsafe-inline'" not in seen["csp"] and "style-src 'self';" in seen["csp"]
    assert seen["cspViolations"] == [] and seen["consoleErrors"] == []
    # the files table: newest first, the import above the upload before it
    assert len(seen["rowOrder"]) >= 2 and seen["rowOrder"] == seen["newestFirst"]
    assert seen["rowOrder"][0] == seen["importedId"]
    assert seen["unlabelled"] == []
    # the bar moved through at least three values on its way to the whole file
    assert len({v for v in seen["progress"] if 0 < v < BIG}) >= 3, seen["progress"]
    assert max(seen["progress"]) == BIG
    assert seen["uploadedSha256"] == digest
    assert seen["listed"][0] == "big-upload.bin" and seen["listed"][1] == "200 MiB"
    assert seen["listed"][2] == "application/octet-stream"
    assert seen["downloadedName"] == "big-upload.bin" and seen["downloadedSha256"] == digest
    # the copied link works for someone without the token: signed when auth is on
    assert seen["copiedStatus"] == 200 and seen["copiedSha256"] == digest
    assert ("sig=" in seen["copiedLink"]) == (mode == "jwt")
    # the import's progress showed, and the file is the origin's bytes
    assert len({v for v in seen["importProgress"] if v > 0}) >= 2, seen["importProgress"]
    assert seen["importedSha256"] == seen["importSha256"]
    # a second import, cancelled: its row went, spigot closed the origin, no second file
    assert seen["importRowsAfterCancel"] == 1
    assert seen["originAbandoned"] == 1 and seen["importedCopies"] == 1
    # resumed, not restarted: the first value after Resume is where the stored bytes end
    assert seen["stoppedAt"] >= 60 * MIB and seen["resumedFrom"] >= 50 * MIB
    assert seen["killedSha256"] == digest
    assert seen["reloadResumedFrom"] >= 40 * MIB and seen["reloadSha256"] == digest
    assert len({seen["uploadedUrl"], seen["killedUrl"], seen["reloadUrl"]}) == 3
    assert seen["deletedStatus"] == 404
    # 120 more files: 100 rows first, the rest behind the button, newest first throughout
    total = len(seen["longNewestFirst"])
    assert total == 123  # the upload, the import, the reloaded upload, and the 120
    assert seen["longFirstRows"] == 100
    assert seen["moreText"] == "Show the last 23"
    assert seen["longAllRows"] == seen["longNewestFirst"]
    # focus goes to the first row the button added, as the button goes away
    assert seen["longFirstAdded"] == "many-19.txt"
    assert seen["longFocus"] == "Download many-19.txt"
    # the page asked for pages, newest first, never for the whole listing: the refresh, the
    # button's next page after the refresh's last row, and the refresh that kept all 123
    refresh, more, again = seen["longListings"]
    assert refresh == "?order=newest&limit=100"
    assert re.fullmatch(
        r"\?order=newest&limit=100&before=[0-9.]+(~|%7E)[\w-]{22}", more
    )  # URLSearchParams writes ~ as %7E
    assert again == "?order=newest&limit=123"
    # the page rendered: many colours, and no one colour covers nearly all of it
    assert Path(seen["screenshot"]).stat().st_size > 20_000
    assert seen["colours"]["distinct"] >= 20 and seen["colours"]["dominantShare"] < 0.9
