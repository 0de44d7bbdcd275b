"""Real tus clients against a real spigot process: tuspy (sync and async)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from tusclient import client as tus_client

from tests.conftest import SpigotProcess, file_sha256, sha256, write_random

SIZE = 7 * 1024 * 1024 + 321


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("tus") / "movie.mp4"
    return path, write_random(path, SIZE)


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=60) as resp:
        return resp.read(), resp.headers["Content-Disposition"]


def test_tuspy_chunked_with_checksums(spigot: SpigotProcess, source: tuple[Path, str]) -> None:
    path, digest = source
    uploader = tus_client.TusClient(f"{spigot.url}/files/").uploader(
        str(path),
        chunk_size=1024 * 1024,  # eight PATCHes, each with a sha1 Upload-Checksum
        upload_checksum=True,
        metadata={"filename": path.name, "filetype": "video/mp4"},
    )
    uploader.upload()
    assert uploader.offset == SIZE
    data, disposition = fetch(uploader.url)
    assert sha256(data) == digest
    assert disposition == 'inline; filename="movie.mp4"'


def test_tuspy_resumes_from_the_server_offset(
    spigot: SpigotProcess, source: tuple[Path, str]
) -> None:
    path, digest = source
    client = tus_client.TusClient(f"{spigot.url}/files/")
    first = client.uploader(str(path), chunk_size=2 * 1024 * 1024)
    first.upload_chunk()  # stop after one chunk, as an interrupted client would
    assert first.offset == 2 * 1024 * 1024
    resumed = client.uploader(str(path), url=first.url, chunk_size=3 * 1024 * 1024)
    assert resumed.offset == 2 * 1024 * 1024  # asked the server with HEAD
    resumed.upload()
    assert sha256(fetch(first.url)[0]) == digest


async def test_tuspy_async_uploader(spigot: SpigotProcess, source: tuple[Path, str]) -> None:
    path, digest = source
    uploader = tus_client.TusClient(f"{spigot.url}/files/").async_uploader(
        str(path), chunk_size=1536 * 1024, upload_checksum=True
    )
    await uploader.upload()
    assert uploader.offset == SIZE
    assert sha256(fetch(uploader.url)[0]) == digest
    assert file_sha256(path) == digest
