"""client_js/ (the npm package spigot-client): its types checked with `tsc --noEmit`, and
its tests run under Node 20 against a real spigot process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SpigotProcess, start_spigot, stop_spigot
from tests.test_presign_browser import free_port
from tests.test_tus_js import NODE_DIR, npm_install
from tests.tools import npm_ci, require

PACKAGE = ROOT / "client_js"


def install() -> None:
    npm_ci(PACKAGE, "typescript", "tus-js-client", "hash-wasm")


@pytest.fixture
def server(data_dir: Path) -> Iterator[SpigotProcess]:
    spigot = start_spigot(data_dir, "--insecure-proxy-allow-private")
    yield spigot
    stop_spigot(spigot)


def test_types_check_with_tsc() -> None:
    install()
    done = subprocess.run(
        [str(PACKAGE / "node_modules" / ".bin" / "tsc"), "--noEmit", "-p", "."],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def s3_server(data_dir: Path, s3_spigot_args: tuple[str, ...]) -> Iterator[SpigotProcess]:
    """Over moto's S3, where direct uploads are on: the client sends parts to the bucket."""
    spigot = start_spigot(data_dir / "s3", *s3_spigot_args, "--temp-dir", str(data_dir / "spool"))
    yield spigot
    stop_spigot(spigot)


def test_client_under_node(server: SpigotProcess, s3_server: SpigotProcess, data_dir: Path) -> None:
    install()
    port = free_port()  # a spigot the tests kill and restart themselves, on a fixed port
    killable = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1"]
    killable += ["--port", str(port), "--storage", str(data_dir / "killable")]
    done = subprocess.run(
        [require("node"), "--test", "--test-timeout=120000", "test/"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=400,
        env={
            **os.environ,
            "SPIGOT_URL": server.url,
            "S3_SPIGOT_URL": s3_server.url,
            "SPIGOT_CMD": json.dumps(killable),
            "KILLABLE_URL": f"http://127.0.0.1:{port}",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("# pass 15", "# fail 0", "# skipped 0"):
        assert line in done.stdout, done.stdout


def test_client_in_chromium(server: SpigotProcess) -> None:
    """The browser build, as the page loads it: an upload that survives a reload, a Blob
    download checked by hash-wasm, events."""
    npm_install()  # playwright-core
    require("chromium")
    done = subprocess.run(
        [require("node"), "client-browser.mjs"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPIGOT_URL": server.url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["errors"] == []
    assert seen["unfinishedAfterReload"] == [["browser-client.bin", 24 << 20]]
    assert seen["resumedFrom"] >= 8 << 20  # went on from what the server had
    assert seen["unfinishedAtEnd"] == 0
    assert seen["downloaded"] == {
        "size": 24 << 20,
        "sha256": seen["expected"],
        "verified": True,
        "blobSha256": seen["expected"],
    }
    assert seen["events"][-1] == "complete"
