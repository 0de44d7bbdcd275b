"""What only the local backend has: its files on disk, fd caching, start-up cleanup; and
the pure helpers (ids, names). The contract both backends share is test_contract.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import (
    LocalFile,
    LocalStore,
    UploadNotFound,
    UploadSpec,
)
from storage.ids import is_valid_id, new_id
from storage.names import MAX_NAME_BYTES, sanitize_name
from tests.conftest import sha256, stored_files
from tests.storage.test_contract import chunks, read_all

BACKENDS = ("local",)


async def test_files_and_sidecar_on_disk(store: LocalStore, data_dir: Path) -> None:
    body = os.urandom(3 << 20)
    upload = await store.create(UploadSpec(name="a.bin", length=len(body)))
    await upload.append(0, chunks(body[:1000], body[1000:]))
    info = await upload.finish()
    again = await store.open(info.id)
    assert (data_dir / info.id).read_bytes() == body
    assert isinstance(again, LocalFile) and again.local_path() == data_dir / info.id
    sidecar = json.loads((data_dir / f"{info.id}.info").read_text())
    assert sidecar["sha256"] == sha256(body) and sidecar["name"] == "a.bin"
    assert sidecar["offset"] == len(body) and sidecar["length"] == len(body)
    assert {"id", "content_type", "created", "expires"} <= sidecar.keys()


async def test_start_cleans_temp_and_orphans(data_dir: Path) -> None:
    (data_dir / ".tmp").mkdir()
    (data_dir / ".tmp" / "leftover").write_bytes(b"x")
    orphan = data_dir / new_id()
    orphan.write_bytes(b"crashed create")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    fresh_orphan = data_dir / new_id()  # maybe another process mid-create: keep it
    fresh_orphan.write_bytes(b"")
    store = LocalStore(data_dir)
    await store.start()
    await store.close()
    assert stored_files(data_dir) == [fresh_orphan.name]


async def test_a_removed_temp_directory_is_made_again(store: LocalStore, data_dir: Path) -> None:
    """As a cleaner of old files (systemd-tmpfiles) removes an idle store's empty `.tmp/`:
    the next upload, and the readiness probe, make it again rather than fail."""
    (data_dir / ".tmp").rmdir()
    await store.check_ready()
    (data_dir / ".tmp").rmdir()
    upload = await store.create(UploadSpec(name="after.bin", length=5))
    await upload.append(0, chunks(b"12345"))
    info = await upload.finish()
    assert (data_dir / info.id).read_bytes() == b"12345" and info.sha256 == sha256(b"12345")
    assert stored_files(data_dir) == sorted([info.id, f"{info.id}.info"])


def test_ids_are_unguessable_and_url_safe() -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 22 and is_valid_id(i) for i in ids)
    assert not any(i.startswith("-") for i in ids)  # a command line would read an option


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, "upload"),
        ("", "upload"),
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("..", "upload"),
        ("...", "upload"),
        ("a/..", "upload"),
        ("bad\x00name\r\n.txt", "badname.txt"),
        ("  spaced.txt  ", "spaced.txt"),
        ("e\u0301t\u00e9.txt", "\u00e9t\u00e9.txt"),  # NFC
        ("a\u00a0b\u2028c", "a b c"),
        (".hidden", ".hidden"),
    ],
)
def test_sanitize_name(raw: str | None, clean: str) -> None:
    assert sanitize_name(raw) == clean


@given(st.text(max_size=600))
def test_sanitized_names_are_one_safe_component(raw: str) -> None:
    name = sanitize_name(raw)
    assert name and "/" not in name and "\\" not in name and name.strip(".")
    assert name.isprintable() and len(name.encode()) <= MAX_NAME_BYTES


async def test_small_reads_from_page_cache_and_after_eviction(store: LocalStore) -> None:
    body = os.urandom(1 << 20)
    upload = await store.create(UploadSpec(name="c", length=len(body)))
    await upload.append(0, chunks(body))
    await upload.finish()
    opened = await store.open(upload.info.id)
    assert await read_all(opened, 100, 4196) == body[100:4196]  # thread path, adopts the fd
    assert store.open_files.has(upload.info.id)
    assert await read_all(opened, 8192, 12288) == body[8192:12288]  # served on the loop
    fd = os.open(opened.local_path(), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # evict: RWF_NOWAIT now says EAGAIN
    os.close(fd)
    assert await read_all(opened, 500_000, 504_096) == body[500_000:504_096]


async def test_file_deleted_by_another_process_is_not_served(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="gone", length=10))
    await upload.append(0, chunks(b"0123456789"))
    await upload.finish()
    opened = await store.open(upload.info.id)
    assert await read_all(opened, 0, 4) == b"0123"  # fd and info now cached
    os.unlink(opened.local_path())  # as `DELETE` through another spigot process would
    os.unlink(store.info_path(upload.info.id))
    with pytest.raises(UploadNotFound):
        await read_all(opened, 0, 4)
    with pytest.raises(UploadNotFound):
        await store.open(upload.info.id)
