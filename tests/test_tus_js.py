"""tus-js-client (what Uppy uses) under Node against a real spigot process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import SpigotProcess
from tests.tools import require

NODE_DIR = Path(__file__).with_name("node")


def npm_install() -> None:
    """Install the pinned JavaScript clients (package-lock.json) once per checkout."""
    if (NODE_DIR / "node_modules" / "tus-js-client").is_dir():
        return
    result = subprocess.run(
        [require("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tus_js_client(spigot: SpigotProcess) -> None:
    npm_install()
    result = subprocess.run(
        [require("node"), "--test", "tus.test.mjs"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPIGOT_URL": spigot.url},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 6" in result.stdout and "# fail 0" in result.stdout, result.stdout
