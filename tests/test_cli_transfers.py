"""`spigot upload` and `spigot download` against a real spigot: killed mid-transfer and
rerun, they continue where they stopped; the progress bar drawn in a real terminal (tmux)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT, file_sha256, start_spigot, stop_spigot, write_random
from tests.test_presign_browser import free_port
from tests.tools import require

MIB = 1 << 20
SIZE = 60 * MIB + 123


def cli(*args: str, cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )


def wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stored_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.iterdir() if p.is_file() and "." not in p.name)


def test_upload_resumes_after_the_server_is_killed(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    digest = write_random(source, SIZE)
    port = str(free_port())
    server = start_spigot(data_dir, "--port", port)
    cache = tmp_path / "cache"
    first = cli("upload", str(source), "--server", server.url, "--limit-rate", "20MB", cache=cache)
    wait_for(lambda: stored_bytes(data_dir) >= 10 * MIB)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 1
    # stderr holds the plain progress lines (not a terminal), then one error line
    last = err.strip().splitlines()[-1]
    assert last.startswith("spigot: error:") and last.endswith(
        "run the same command again to resume"
    )
    assert all(line.startswith("big.bin: ") for line in err.strip().splitlines()[:-1])
    server = start_spigot(data_dir, "--port", port)
    try:
        second = cli("upload", str(source), "--server", server.url, cache=cache)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        url, path, report = out.strip().split("\t")
        assert path == str(source)
        found = re.fullmatch(r"sent (\d+) bytes, resumed at (\d+)", report)
        assert found is not None, report
        sent, resumed_at = int(found.group(1)), int(found.group(2))
        assert resumed_at >= 10 * MIB and sent == SIZE - resumed_at < SIZE
        with urllib.request.urlopen(url, timeout=60) as resp:
            import hashlib

            assert hashlib.sha256(resp.read()).hexdigest() == digest
    finally:
        stop_spigot(server)


def upload_file(server_url: str, source: Path) -> str:
    request = urllib.request.Request(
        f"{server_url}/files/{source.name}", data=source.read_bytes(), method="PUT"
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        import json

        url: str = json.loads(resp.read())["url"]
        return url


def test_download_in_four_ranges_resumes_after_a_kill(data_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    digest = write_random(source, SIZE)
    server = start_spigot(data_dir)
    try:
        url = upload_file(server.url, source)
        out = tmp_path / "out.bin"
        state = tmp_path / "out.bin.part.json"
        cache = tmp_path / "cache"
        first = cli("download", url, "-o", str(out), "-j", "4", "--limit-rate", "20MB", cache=cache)
        wait_for(lambda: state.exists() and time.sleep(1.2) is None)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert not out.exists()
        second = cli("download", url, "-o", str(out), "-j", "4", cache=cache)
        stdout, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        name, report = stdout.strip().split("\t")
        found = re.fullmatch(r"sha256 ([0-9a-f]{64}) checked, resumed at (\d+)", report)
        assert found is not None, report
        assert found.group(1) == digest and int(found.group(2)) > 0
        assert name == str(out) and file_sha256(out) == digest
        assert not state.exists() and not (tmp_path / "out.bin.part").exists()
    finally:
        stop_spigot(server)


def test_progress_in_a_real_terminal(data_dir: Path, tmp_path: Path) -> None:
    tmux = require("tmux")
    source = tmp_path / "src.bin"
    write_random(source, 40 * MIB)
    server = start_spigot(data_dir)
    session = f"spigot-{os.getpid()}"
    try:
        url = upload_file(server.url, source)
        command = (
            f"cd {ROOT} && XDG_CACHE_HOME={tmp_path} {sys.executable} -m server download {url}"
            f" -o {tmp_path / 'shown.bin'} --limit-rate 10MB; sleep 30"
        )
        subprocess.run(
            [tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "10", command],
            check=True,
        )
        time.sleep(2.0)
        pane = subprocess.run(
            [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
        ).stdout
        assert "shown.bin" in pane, pane
        assert re.search(r"\d+(\.\d)?/4[0-9]\.\d MB", pane), pane  # bytes done of total
        assert re.search(r"\d+(\.\d)? MB/s", pane), pane  # the rate
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], check=False)
        stop_spigot(server)


def test_clear_errors_and_exit_codes(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)},
        )

    assert run("upload", "x").returncode == 2  # no --server
    bad = run("download", "http://127.0.0.1:9/files/x", "--limit-rate", "fast")
    assert bad.returncode == 2 and "--limit-rate" in bad.stderr
    missing = run("upload", str(tmp_path / "nope"), "--server", "http://127.0.0.1:9")
    assert missing.returncode == 1 and missing.stderr.strip().endswith("nope: not a file")
    down = run("download", "http://127.0.0.1:9/files/x", "-o", str(tmp_path / "x"))
    assert down.returncode == 1
    assert (
        down.stderr.strip()
        == "spigot: error: http://127.0.0.1:9/files/x: the server could not be reached"
    )
