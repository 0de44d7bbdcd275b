"""client_js/ (the npm package spigot-client): its types checked with `tsc --noEmit`, and
its tests run under Node 20 against a real spigot process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SpigotProcess, start_spigot, stop_spigot
from tests.tools import npm_ci, require

PACKAGE = ROOT / "client_js"


def install() -> None:
    npm_ci(PACKAGE, "typescript", "tus-js-client", "hash-wasm")


@pytest.fixture
def server(data_dir: Path) -> Iterator[SpigotProcess]:
    spigot = start_spigot(data_dir, "--proxy-allow-private")
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


def test_client_under_node(server: SpigotProcess) -> None:
    install()
    done = subprocess.run(
        [require("node"), "--test", "--test-timeout=60000", "test/"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPIGOT_URL": server.url},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# pass 7" in done.stdout and "# fail 0" in done.stdout, done.stdout
