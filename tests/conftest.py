from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import Settings
from storage import LocalStore
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


@pytest.fixture
def make_client(aiohttp_client: ClientFactory, data_dir: Path) -> ClientFactory:
    """An in-process spigot app over a fresh LocalStore; keyword args override settings."""

    async def make(**overrides: object) -> TestClient:  # type: ignore[type-arg]
        settings = Settings(storage=data_dir.as_uri(), **overrides)  # type: ignore[arg-type]
        return await aiohttp_client(create_app(settings, LocalStore(data_dir)))

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

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_spigot(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> SpigotProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--storage", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SPIGOT_LOG_LEVEL": "warning", **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("spigot serving "):
        proc.kill()
        raise RuntimeError(
            f"spigot did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
        )
    return SpigotProcess(url=line.split()[2], data_dir=data_dir, proc=proc)


def stop_spigot(server: SpigotProcess) -> None:
    processes.stop(server.proc)


@pytest.fixture
def spigot(data_dir: Path) -> Iterator[SpigotProcess]:
    """A real `spigot serve` process on a free loopback port."""
    server = start_spigot(data_dir)
    yield server
    stop_spigot(server)
