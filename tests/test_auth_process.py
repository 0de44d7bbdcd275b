"""Access control in a real `spigot serve`: protected mode, the signing commands, real
clients (curl, tuspy, tus-js-client) through upload links with no token, and a log that
never holds a credential."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from tusclient import client as tus_client

from tests import test_cli as cli
from tests.conftest import (
    ROOT,
    SpigotProcess,
    file_sha256,
    sha256,
    start_spigot,
    stop_spigot,
    write_random,
)
from tests.test_tus_js import NODE_DIR, npm_install
from tests.tools import require

SECRET = "process-test-link-secret-0123456789abcdef"
JWT_KEY = "process-test-jwt-key-0123456789abcdefghij"
AUTH_ENV = {"SPIGOT_SECRET": SECRET, "SPIGOT_JWT_KEY": JWT_KEY}
BACKENDS = ("local", "s3")  # the real-client tests run over disk and moto's S3 server


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command with only PATH and `env`: no SPIGOT_* from the caller's environment."""
    return cli.run_cli(*args, env={"PATH": os.environ["PATH"], **(env or {})})


def token(sub: str = "alice", scope: str = "upload read delete sign") -> str:
    claims = {"sub": sub, "scope": scope, "exp": int(time.time()) + 600}
    return jwt.encode(claims, JWT_KEY, algorithm="HS256")


def get(url: str, tok: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if tok:
        request.add_header("Authorization", f"Bearer {tok}")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def secured(data_dir: Path, backend_args: tuple[str, ...]) -> Iterator[SpigotProcess]:
    server = start_spigot(data_dir, "--auth", "jwt", *backend_args, env=AUTH_ENV)
    yield server
    stop_spigot(server)


def sign_upload(server: SpigotProcess, *args: str) -> str:
    port = server.url.rsplit(":", 1)[1]
    result = run_cli("sign-upload", "--port", port, *args, env=AUTH_ENV)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def files_of(server: SpigotProcess, owner: str) -> list[dict[str, object]]:
    status, body = get(f"{server.url}/files/", token(owner))
    assert status == 200
    listed: list[dict[str, object]] = json.loads(body)
    return listed


# -- protected mode ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_no_auth_beyond_loopback_refuses_to_start(data_dir: Path, host: str) -> None:
    result = run_cli("serve", "--host", host, "--port", "0", "--storage", str(data_dir))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"spigot: error: --host {host} is reachable beyond this machine")
    assert "--auth" in lines[0] and "--insecure-no-auth" in lines[0]


def test_insecure_no_auth_starts(data_dir: Path) -> None:
    """In a network namespace of its own (loopback only, and down), so the all-interfaces
    address it binds reaches nothing beyond this test."""
    serve = ["serve", "--host", "0.0.0.0", "--port", "0", "--storage", str(data_dir)]
    proc = subprocess.Popen(
        [require("unshare"), "--net", sys.executable, "-m", "server", *serve, "--insecure-no-auth"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SPIGOT_LOG_LEVEL": "warning"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("spigot serving http://0.0.0.0:"), line
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--auth", "jwt"), {}, "--auth jwt needs exactly one of SPIGOT_JWT_KEY"),
        (("--auth", "hook"), {}, "--auth hook needs --auth-hook-url"),
        (("--auth", "jwt", "--jwt-key", JWT_KEY), {}, "give it as SPIGOT_JWT_KEY"),
        (("--auth", "jwt"), {"SPIGOT_JWT_KEY": "short"}, "at least 32 bytes"),
        (("--auth", "maybe"), {}, "is not an auth mode"),
        (("--auth", "jwt", "--jwt-public-key", "/nonexistent.pem"), {}, "is not a file"),
    ],
)
def test_auth_settings_are_checked_at_start(
    data_dir: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    result = run_cli("serve", "--port", "0", "--storage", str(data_dir), *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert JWT_KEY not in result.stderr


# -- signed links with real clients -------------------------------------------------------


def test_curl_through_an_upload_link(secured: SpigotProcess, tmp_path: Path) -> None:
    curl = require("curl")
    big = tmp_path / "big.iso"
    digest = write_random(big, 3 * 1024 * 1024 + 5)
    link = sign_upload(secured, "--max-size", "4MiB", "--owner", "alice", "--expires-in", "10m")
    result = subprocess.run(
        [curl, "-sS", "-T", str(big), link], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    assert made["name"] == "big.iso" and made["sha256"] == digest
    assert get(made["url"])[0] == 401  # the link uploads; it does not read
    status, body = get(made["url"], token("alice"))
    assert status == 200 and sha256(body) == digest
    assert [f["id"] for f in files_of(secured, "alice")] == [made["id"]]

    # Over the link's size: refused while streaming, nothing stored.
    small = sign_upload(secured, "--max-size", "1MiB")
    result = subprocess.run(
        [curl, "-sS", "-T", str(big), "-o", "/dev/null", "-w", "%{http_code}", small],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "413"
    status, body = get(f"{secured.url}/files/", token("root", "admin"))
    assert [f["id"] for f in json.loads(body)] == [made["id"]]


def test_sign_command_makes_a_download_link(secured: SpigotProcess, tmp_path: Path) -> None:
    curl = require("curl")
    data = os.urandom(100_000)
    request = urllib.request.Request(
        f"{secured.url}/files/x.bin",
        data=data,
        method="PUT",
        headers={"Authorization": f"Bearer {token()}"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        file_id = json.loads(resp.read())["id"]
    port = secured.url.rsplit(":", 1)[1]
    result = run_cli("sign", file_id, "--port", port, "--expires-in", "5m", env=AUTH_ENV)
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip()
    assert link.startswith(f"http://127.0.0.1:{port}/files/{file_id}?expires=")
    out = tmp_path / "x.bin"
    fetched = subprocess.run(
        [curl, "-sS", "-f", "-r", "1000-1999", "-o", str(out), link], timeout=60
    )
    assert fetched.returncode == 0 and out.read_bytes() == data[1000:2000]
    assert run_cli("sign", file_id).returncode != 0  # no secret, no link


def test_tuspy_through_an_upload_link(secured: SpigotProcess, tmp_path: Path) -> None:
    path = tmp_path / "movie.mp4"
    digest = write_random(path, 5 * 1024 * 1024 + 3)
    link = sign_upload(secured, "--max-size", "10MiB", "--type", "video/*", "--owner", "bob")
    client = tus_client.TusClient(link)
    first = client.uploader(
        str(path),
        chunk_size=2 * 1024 * 1024,
        metadata={"filename": path.name, "filetype": "video/mp4"},
    )
    first.upload_chunk()  # interrupted after one chunk
    assert first.url is not None and "sig=" in first.url
    resumed = client.uploader(str(path), url=first.url, chunk_size=2 * 1024 * 1024)
    assert resumed.offset == 2 * 1024 * 1024  # HEAD through the signed Location
    resumed.upload()
    bare = first.url.split("?", 1)[0]
    status, body = get(bare, token("bob"))
    assert status == 200 and sha256(body) == digest == file_sha256(path)
    assert [f["name"] for f in files_of(secured, "bob")] == ["movie.mp4"]


def test_tus_js_client_through_an_upload_link(secured: SpigotProcess, tmp_path: Path) -> None:
    npm_install()
    link = sign_upload(secured, "--max-size", "8MiB", "--type", "video/*", "--owner", "carol")
    result_file = tmp_path / "result.json"
    result = subprocess.run(
        [require("node"), "--test", "tus-link.test.mjs"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SPIGOT_UPLOAD_LINK": link, "SPIGOT_RESULT": str(result_file)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 2" in result.stdout and "# fail 0" in result.stdout, result.stdout
    uploaded = json.loads(result_file.read_text())
    status, body = get(uploaded["url"], token("carol"))
    assert status == 200 and sha256(body) == uploaded["sha256"]
    assert get(uploaded["url"], token("dave"))[0] == 404


# -- logs ---------------------------------------------------------------------------------


def test_credentials_never_reach_the_log(data_dir: Path) -> None:
    server = start_spigot(data_dir, "--auth", "jwt", env={**AUTH_ENV, "SPIGOT_LOG_LEVEL": "debug"})
    try:
        tok = token()
        request = urllib.request.Request(
            f"{server.url}/files/a.txt",
            data=b"hello",
            method="PUT",
            headers={"Authorization": f"Bearer {tok}"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            file_id = json.loads(resp.read())["id"]
        port = server.url.rsplit(":", 1)[1]
        link = run_cli("sign", file_id, "--port", port, env=AUTH_ENV).stdout.strip()
        assert get(link)[0] == 200
        forged = link[:-4] + "0000"
        assert get(forged)[0] == 403
        events = f"{server.url}/files/{file_id}/events?access_token={tok}"
        with urllib.request.urlopen(events, timeout=30) as resp:
            assert b"event: complete" in resp.readline() + resp.readline()
        assert get(f"{server.url}/files/?access_token={tok}")[0] == 401
        assert get(f"{server.url}/files/", "not-a-valid-token")[0] == 401
    finally:
        stop_spigot(server)
    log = server.log()
    assert f"GET /files/{file_id}?expires=" in log  # the requests were logged
    assert "sig=REDACTED" in log and "access_token=REDACTED" in log
    sig = link.rsplit("sig=", 1)[1]
    for secret in (tok, sig, forged.rsplit("sig=", 1)[1], SECRET, JWT_KEY, "not-a-valid-token"):
        assert secret not in log
