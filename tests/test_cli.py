"""The `spigot` command: settings from flags and SPIGOT_* env vars, one-line errors."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from server.settings import SettingError, Settings, parse_size, parse_storage
from tests.conftest import ROOT, start_spigot, stop_spigot

BACKENDS = ("local",)  # the S3 backend has its own tests of this kind


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100MiB", 100 * 1024**2),
        ("100MB", 100 * 1000**2),
        ("104857600", 104857600),
        ("0", 0),
        ("1GiB", 1024**3),
        ("1.5 KiB", 1536),
        ("10k", 10_000),
        ("2tib", 2 * 1024**4),
        ("5B", 5),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "-1", "1XB", "1 2", "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(SettingError):
        parse_size(text)


def test_storage_accepts_path_and_file_url(tmp_path: Path) -> None:
    assert parse_storage(str(tmp_path)) == tmp_path.as_uri()
    assert parse_storage(tmp_path.as_uri()) == tmp_path.as_uri()
    for bad in ["ftp://x/y", "file://otherhost/x"]:
        with pytest.raises(SettingError):
            parse_storage(bad)


def test_precedence_flag_over_env_over_default() -> None:
    env = {"SPIGOT_MAX_REQUEST_SIZE": "1MiB", "SPIGOT_PORT": "9000"}
    s = Settings.resolve({"port": "9001"}, env)
    assert (s.port, s.max_request_size) == (9001, 1024**2)
    assert Settings.resolve({}, {}).max_request_size == 100 * 1024**2


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["serve", "--max-request-size", "lots"], None, "--max-request-size"),
        (["serve", "--port", "99999"], None, "--port"),
        (["serve", "--public-url", "ftp://x"], None, "--public-url"),
        (["serve", "--log-level", "loud"], None, "--log-level"),
        (["serve", "--storage", "s3://Bad_Bucket/prefix"], None, "not an S3 bucket name"),
        (["serve", "--no-such-flag"], None, "unrecognized"),
        (["serve", "--cors-origin", "ftp://x"], None, "--cors-origin"),
        (["serve", "--hook-url", "nope"], None, "--hook-url"),
        (["serve", "--upload-ttl", "soon"], None, "--upload-ttl"),
        (["serve", "--max-upload-size", "big"], None, "--max-upload-size"),
        (["serve"], {"SPIGOT_MAX_REQUEST_SIZE": "huge"}, "SPIGOT_MAX_REQUEST_SIZE"),
        ([], None, "required"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    args: list[str], env: dict[str, str] | None, needle: str
) -> None:
    result = run_cli(*args, env={**os.environ, **(env or {})})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spigot: error:") and needle in lines[0]
    assert "Traceback" not in result.stderr


def test_help_lists_env_vars() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for name in [
        "SPIGOT_CORS_ORIGIN",
        "SPIGOT_HOOK_URL",
        "SPIGOT_UPLOAD_TTL",
        "SPIGOT_MAX_UPLOAD_SIZE",
        "SPIGOT_HOST",
        "SPIGOT_PORT",
        "SPIGOT_STORAGE",
        "SPIGOT_MAX_REQUEST_SIZE",
        "SPIGOT_PUBLIC_URL",
        "SPIGOT_LOG_LEVEL",
    ]:
        assert name in result.stdout


def test_serve_prints_one_line_and_answers_healthz(data_dir: Path) -> None:
    server = start_spigot(data_dir, env={"SPIGOT_PUBLIC_URL": "https://files.example"})
    try:
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
            body = {"status": "ok", "storage": data_dir.as_uri(), "pid": server.pid}
            assert json.load(resp) == body
        req = urllib.request.Request(server.url + "/files/?name=a.txt", data=b"hi", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201
            assert resp.headers["Location"].startswith("https://files.example/files/")
    finally:
        stop_spigot(server)
    assert server.proc.returncode == 0  # SIGTERM is a clean shutdown
    assert server.proc.stdout is not None and server.proc.stdout.read() == ""


def test_python_dash_m_and_console_script_agree() -> None:
    script = Path(sys.executable).with_name("spigot")
    result = subprocess.run([str(script), "serve", "--port", "x"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("spigot: error: --port")


def test_secrets_never_appear_in_repr() -> None:
    s = Settings.resolve(
        {"secret": "s3cr3t-value-1234567890-abcdefghij,0ld-s3cr3t-1234567890-abcdefghij"},
        {"SPIGOT_IMPORT_TOKEN": "t0ken-value-123456", "SPIGOT_JWT_KEY": "jwtk3y" * 6},
    )
    assert s.secret == (
        "s3cr3t-value-1234567890-abcdefghij",
        "0ld-s3cr3t-1234567890-abcdefghij",
    )
    for secret in ("s3cr3t", "t0ken", "jwtk3y"):
        assert secret not in repr(s)


def test_switches_and_their_env_vars() -> None:
    assert Settings.resolve({"insecure_proxy_unsigned": "1"}, {}).insecure_proxy_unsigned is True
    assert Settings.resolve(
        {}, {"SPIGOT_INSECURE_PROXY_ALLOW_PRIVATE": "true"}
    ).insecure_proxy_allow_private
    assert Settings.resolve({}, {}).insecure_proxy_unsigned is False
    with pytest.raises(SettingError):
        Settings.resolve({}, {"SPIGOT_INSECURE_PROXY_UNSIGNED": "maybe"})
    with pytest.raises(SettingError, match="at least 32 bytes"):
        Settings.resolve({"secret": "short"}, {})
    with pytest.raises(SettingError, match="at least 32 bytes"):  # every key of the list
        Settings.resolve({"secret": "a-first-key-that-is-long-enough-123,short"}, {})


def test_sign_url_needs_a_secret() -> None:
    result = run_cli("sign-url", "https://example.com/x", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "SPIGOT_SECRET" in result.stderr and "Traceback" not in result.stderr


def test_a_local_disk_server_never_loads_boto3(data_dir: Path) -> None:
    """boto3 and its service models cost ~8 MiB of RSS; only S3 storage needs them."""
    probe = (
        "import sys\n"
        "from server.settings import Settings\n"
        "from server.storage_factory import open_store\n"
        "import server.cli\n"
        f"open_store(Settings(storage={str(data_dir)!r}))\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout == "[]\n"


def test_serve_lifts_the_open_files_limit(data_dir: Path) -> None:
    """Started with a soft limit of 256, spigot serves with the hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 256, "the test needs room between the two limits"
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--storage", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("spigot serving ")
        limits = Path(f"/proc/{proc.pid}/limits").read_text().splitlines()
        (line,) = [x for x in limits if x.startswith("Max open files")]
        soft_now, hard_now = line.split()[3:5]
        expected = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        assert hard_now == expected
        assert soft_now == (str(1 << 16) if hard == resource.RLIM_INFINITY else expected)
    finally:
        proc.terminate()
        proc.wait(10)
