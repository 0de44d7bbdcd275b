from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
from aiohttp.test_utils import TestClient
from moto import mock_aws
from moto.server import ThreadedMotoServer

from server.app import create_app
from server.settings import Settings
from storage import DataStore, LocalStore
from storage.s3 import S3Store
from tests import processes

ROOT = Path(__file__).resolve().parent.parent

ClientFactory = Callable[..., Awaitable[TestClient]]  # type: ignore[type-arg]


def parse_multipart(content_type: str, body: bytes) -> list[Message]:
    """A multipart/byteranges body split into its parts, by the standard library."""
    msg = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert msg.is_multipart()
    return list(msg.iter_parts())  # type: ignore[attr-defined]


def assert_byteranges(
    content_type: str, body: bytes, data: bytes, ranges: list[tuple[int, int]]
) -> None:
    """Each part carries exactly data[a:b] and the matching Content-Range."""
    parts = parse_multipart(content_type, body)
    assert len(parts) == len(ranges)
    for part, (a, b) in zip(parts, ranges, strict=True):
        assert part["Content-Range"] == f"bytes {a}-{b - 1}/{len(data)}"
        assert part.get_payload(decode=True) == data[a:b]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_random(path: Path, size: int) -> str:
    """Write `size` pseudo-random bytes (incompressible, cheap) and return their sha256."""
    h = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            # vary each MiB so ranges from different places never look alike
            piece = (i.to_bytes(8, "big") + block)[: min(left, 1 << 20)]
            f.write(piece)
            h.update(piece)
            left -= len(piece)
            i += 1
    return h.hexdigest()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


BACKENDS = ("local", "s3")
BUCKET = "spigot-test"
PREFIX = "t"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that touches storage runs once per backend, unless its module narrows
    `BACKENDS` (a proxy test is not about storage)."""
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", getattr(metafunc.module, "BACKENDS", BACKENDS))


@dataclass
class Backend:
    """One storage backend as the tests see it: how to open it, and what it holds."""

    kind: str
    data_dir: Path
    temp_dir: Path
    s3: Any = None  # a boto3 client on the (mocked) bucket

    @property
    def storage(self) -> str:
        return self.data_dir.as_uri() if self.kind == "local" else f"s3://{BUCKET}/{PREFIX}"

    def new_store(self, **options: Any) -> DataStore:
        if self.kind == "local":
            return LocalStore(self.data_dir, **options)
        return S3Store(BUCKET, PREFIX, temp_dir=self.temp_dir, **options)

    def names(self) -> list[str]:
        """Everything the store holds, temp files included: what a failed upload must not
        leave behind."""
        if self.kind == "local":
            return stored_files(self.data_dir)
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/")
        keys = [o["Key"].removeprefix(PREFIX + "/") for o in listed.get("Contents", [])]
        spooled = [p.name for p in self.temp_dir.rglob("*") if p.is_file() and p.name != ".lock"]
        return sorted(keys + spooled)

    def remove(self, upload_id: str, *suffixes: str) -> None:
        """Delete an upload's objects behind spigot's back."""
        for suffix in suffixes:
            if self.kind == "local":
                (self.data_dir / f"{upload_id}{suffix}").unlink()
            else:
                self.s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{upload_id}{suffix}")


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def backend_store(
    backend: str, data_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Backend]:
    """The test's backend: a directory, or a bucket in moto's in-process mock."""
    if backend == "local":
        yield Backend("local", data_dir, tmp_path / "spool")
        return
    request.getfixturevalue("fake_aws")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield Backend("s3", data_dir, tmp_path / "spool", client)


@pytest.fixture
def make_client(aiohttp_client: ClientFactory, backend_store: Backend) -> ClientFactory:
    """An in-process spigot app over a fresh store of the test's backend; keyword args
    override settings."""

    async def make(**overrides: object) -> TestClient:  # type: ignore[type-arg]
        settings = Settings(storage=backend_store.storage, **overrides)  # type: ignore[arg-type]
        return await aiohttp_client(create_app(settings, backend_store.new_store()))

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:  # type: ignore[type-arg]
    return await make_client()


def stored_files(data_dir: Path) -> list[str]:
    """Everything under the store, temp files included: what a failed upload must not leave."""
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file())


@dataclass
class SpigotProcess:
    url: str
    data_dir: Path
    proc: subprocess.Popen[str]
    stderr: IO[bytes]  # an unnamed file: a pipe nobody drains would stop the server

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        """Everything the server has written to stderr so far. pread leaves the offset,
        which the server's descriptor shares, where the server's next line goes."""
        fd = self.stderr.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")


def start_spigot(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> SpigotProcess:
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--storage", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SPIGOT_LOG_LEVEL": "warning", **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    started = SpigotProcess(url="", data_dir=data_dir, proc=proc, stderr=stderr)
    if not line.startswith("spigot serving "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"spigot did not start: {line!r} {started.log()}")
    started.url = line.split()[2]
    return started


def stop_spigot(server: SpigotProcess) -> None:
    processes.stop(server.proc)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 as a real HTTP endpoint (ThreadedMotoServer), for spigot processes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_spigot_args(
    moto_server: str, fake_aws: None, request: pytest.FixtureRequest
) -> tuple[str, ...]:
    """spigot flags for a fresh prefix in a bucket on the moto server. (The server shares
    moto's in-process state with mock_aws, which resets it, so the bucket is made here.)"""
    client = boto3.client("s3", endpoint_url=moto_server)
    client.create_bucket(Bucket=BUCKET)
    prefix = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:12]
    return ("--storage", f"s3://{BUCKET}/{prefix}", "--s3-endpoint-url", moto_server)


@pytest.fixture
def backend_args(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, ...]:
    """`spigot serve` flags for the test's backend, after start_spigot's data directory:
    none for local disk; for S3, a fresh prefix on the moto server and a temp dir."""
    if backend == "local":
        return ()
    return (*request.getfixturevalue("s3_spigot_args"), "--temp-dir", str(tmp_path / "spool"))


@pytest.fixture
def spigot(data_dir: Path, backend_args: tuple[str, ...]) -> Iterator[SpigotProcess]:
    """A real `spigot serve` process on a free loopback port, over the test's backend."""
    server = start_spigot(data_dir, *backend_args)
    yield server
    stop_spigot(server)
