"""Uppy in a real browser uploading straight to S3 through spigot's /s3/ routes.

Debian's Chromium, driven by playwright-core, loads a page on its own origin that bundles
`@uppy/core` + `@uppy/aws-s3` (6.x, then 5.x) from npm. moto's S3 runs over real HTTP with
its global CORS off, so only the bucket CORS that `spigot s3 cors` writes lets the browser
in, and spigot runs with --auth jwt, so the token travels as an app's would. Each file is
then downloaded back through spigot and compared by sha256.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from moto.moto_server import werkzeug_app
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

from tests.conftest import FAKE_AWS, SpigotProcess, start_spigot, stop_spigot
from tests.test_auth_process import get
from tests.test_cli import run_cli
from tests.test_tus_js import NODE_DIR, npm_install
from tests.tools import npm_ci, require

JWT_KEY = "browser-test-jwt-key-0123456789abcdefghij"
MIB = 1 << 20
# The multipart case was 300 MiB. On this machine Debian's Chromium came to refuse that
# Blob's upload with net::ERR_BLOB_OUT_OF_MEMORY (sometimes at first, then every run, from
# this tree and from the one before it alike, with a disk profile, a page per case, or
# the Blob in 1 MiB pieces); 100 MiB is still 20 parts and passes every run.
CASES = [
    {"size": 20 * MIB, "multipart": False},
    {"size": 100 * MIB, "multipart": True},
    {"size": 40 * MIB, "multipart": True, "pause": True},
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _post_like_s3(original: Any) -> Any:
    """moto answers a browser's form POST to a bucket without what S3 itself sends: the
    bucket's CORS headers (without them no browser may read the 201) and the object's
    `ETag` and `Location` headers (Uppy 5 waits for the ETag forever without it). This adds
    them, from the bucket rules moto applies to every other request and the stored object."""

    def post(self: Any, request: Any, bucket_name: str) -> Any:
        status, headers, body = original(self, request, bucket_name)
        self.bucket_name = bucket_name
        key = self.querystring["key"][0]
        stored = self.backend.get_object(bucket_name, key)
        return (
            status,
            {
                **headers,
                **self._get_cors_headers_other(),
                "ETag": stored.etag,
                "Location": f"{request.host_url}{bucket_name}/{key}",
            },
            body,
        )

    return post


@pytest.fixture(scope="module")
def strict_moto() -> Iterator[str]:
    """moto over HTTP answering CORS only as the bucket's rules say, as S3 does."""
    patched = werkzeug_app.DISABLE_GLOBAL_CORS
    werkzeug_app.DISABLE_GLOBAL_CORS = True
    original = S3Response._bucket_response_post
    S3Response._bucket_response_post = _post_like_s3(original)  # type: ignore[method-assign]
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        werkzeug_app.DISABLE_GLOBAL_CORS = patched
        S3Response._bucket_response_post = original  # type: ignore[method-assign]


def build(uppy_dir: Path) -> None:
    npm_ci(uppy_dir, "esbuild", "@uppy/core", "@uppy/aws-s3")
    done = subprocess.run(
        [
            str(uppy_dir / "node_modules" / ".bin" / "esbuild"),
            "entry.js",
            "--bundle",
            "--format=iife",
            "--outfile=bundle.js",
            "--log-level=warning",
        ],
        cwd=uppy_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["s3", "disk"])
@pytest.mark.parametrize("major", ["uppy6", "uppy5"])
def test_uppy_uploads_straight_to_storage(
    major: str, storage: str, strict_moto: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On S3 the bytes go to the bucket; on disk the same page, unchanged, sends them to
    the URLs spigot signs for itself."""
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    npm_install()  # playwright-core
    build(NODE_DIR / major)
    s3 = boto3.client("s3", endpoint_url=strict_moto)
    bucket = f"spigot-{major}"  # a bucket each: moto's preflight trips over a second rule
    s3.create_bucket(Bucket=bucket)
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    if storage == "s3":
        where = ("--storage", f"s3://{bucket}/{major}", "--s3-endpoint-url", strict_moto)
        cors = run_cli("s3", "cors", *where, "--origin", origin, env={**os.environ})
        assert cors.returncode == 0, cors.stdout + cors.stderr
    else:
        where = ("--storage", str(data_dir / "files"))

    server: SpigotProcess = start_spigot(
        data_dir,
        *where,
        "--auth",
        "jwt",
        "--cors-origin",
        origin,
        "--temp-dir",
        str(data_dir / "spool"),
        env={"SPIGOT_JWT_KEY": JWT_KEY, "SPIGOT_SECRET": "browser-test-link-secret-0123456789abc"},
    )
    try:
        claims = {"sub": "alice", "scope": "upload read", "exp": int(time.time()) + 3600}
        token = jwt.encode(claims, JWT_KEY, algorithm="HS256")
        result = subprocess.run(
            [require("node"), "uppy-browser.mjs"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            env={
                **os.environ,
                "UPPY_DIR": major,
                "PAGE_PORT": str(page_port),
                "SPIGOT_URL": server.url,
                "TOKEN": token,
                "CASES": json.dumps(CASES),
                "CHROMIUM": require("chromium"),
            },
        )
        assert result.returncode == 0, result.stdout + result.stderr
        results: list[dict[str, Any]] = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(results) == len(CASES), result.stdout + result.stderr
        for case in results:
            assert case["errors"] == [], (case, result.stderr)
            if case.get("pause"):
                assert case["paused"] is True
            url = case["uploadURL"]
            assert url is not None
            file_id = url.rstrip("/").rsplit("/", 1)[-1]
            status, body = get(f"{server.url}/files/{file_id}", token)
            assert status == 200 and len(body) == case["size"]
            import hashlib

            assert hashlib.sha256(body).hexdigest() == case["sha256"]
        if storage == "s3":
            listed = s3.list_multipart_uploads(Bucket=bucket, Prefix=f"{major}/")
            assert listed.get("Uploads", []) == []
        else:
            assert not list((data_dir / "files").glob("*.parts"))
    finally:
        stop_spigot(server)
