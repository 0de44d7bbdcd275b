"""--fsync: what reaches the disk before spigot says so. Counted at os.fsync itself."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import LocalStore, UploadSpec


async def chunks(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


@pytest.mark.parametrize(
    ("mode", "on_patch", "on_finish"),
    [("never", 0, 0), ("finish", 0, 3), ("always", 1, 4)],  # data, info, directory
)
async def test_what_each_mode_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, on_patch: int, on_finish: int
) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    store = LocalStore(tmp_path / "data", fsync=mode)
    await store.start()
    try:
        upload = await store.create(UploadSpec(name="f.bin", length=10))
        await upload.append(0, chunks(b"hello"))
        assert len(synced) == on_patch  # a PATCH that does not end the upload
        synced.clear()
        await upload.append(5, chunks(b"world"))
        await upload.finish()
        assert len(synced) == on_finish
        again = await store.open(upload.info.id)
        assert again.info.is_complete and again.info.offset == 10
    finally:
        await store.close()
