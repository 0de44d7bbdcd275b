"""JavaScript clients against a real spigot process: tus-js-client (what Uppy uses) under
Node, and the browser's own EventSource in Debian's Chromium driven by playwright-core."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import SpigotProcess, start_spigot, stop_spigot
from tests.tools import npm_ci, require

NODE_DIR = Path(__file__).with_name("node")


def npm_install() -> None:
    """Install the pinned JavaScript clients (package-lock.json) once per checkout."""
    npm_ci(NODE_DIR, "tus-js-client", "playwright-core")


def node_test(spigot: SpigotProcess, script: str, passes: int, **env: str) -> None:
    npm_install()
    result = subprocess.run(
        [require("node"), "--test", script],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPIGOT_URL": spigot.url, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"# pass {passes}" in result.stdout and "# fail 0" in result.stdout, result.stdout


def test_tus_js_client(spigot: SpigotProcess) -> None:
    node_test(spigot, "tus.test.mjs", 6)


def test_browser_eventsource(data_dir: Path) -> None:
    """The page lives on its own origin, so this also proves CORS for EventSource."""
    server = start_spigot(data_dir, "--cors-origin", "*")
    try:
        node_test(server, "eventsource.test.mjs", 1, CHROMIUM=require("chromium"))
    finally:
        stop_spigot(server)
