"""The storage contract, on the local backend."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import (
    LengthExceeded,
    LocalFile,
    LocalStore,
    OffsetMismatch,
    UploadComplete,
    UploadNotFound,
    UploadSpec,
)
from storage.ids import is_valid_id, new_id
from storage.names import MAX_NAME_BYTES, sanitize_name
from tests.conftest import sha256, stored_files


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def failing(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p
    raise ConnectionResetError("client went away")


async def read_all(upload: object, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in upload.read(start, end)])  # type: ignore[attr-defined]


async def test_create_append_finish_read(store: LocalStore, data_dir: Path) -> None:
    body = os.urandom(3 << 20)
    upload = await store.create(UploadSpec(name="a.bin", length=len(body)))
    assert is_valid_id(upload.info.id)
    assert await upload.append(0, chunks(body[:1000], body[1000:])) == len(body)
    info = await upload.finish()
    assert info.sha256 == sha256(body) and info.is_complete and info.offset == len(body)
    again = await store.open(info.id)
    assert again.info.sha256 == sha256(body) and again.info.length == len(body)
    assert await read_all(again) == body
    assert await read_all(again, 5, 17) == body[5:17]
    assert isinstance(again, LocalFile) and again.local_path() == data_dir / info.id
    sidecar = json.loads((data_dir / f"{info.id}.info").read_text())
    assert sidecar["sha256"] == sha256(body) and sidecar["name"] == "a.bin"
    assert sidecar["offset"] == len(body) and sidecar["length"] == len(body)
    assert {"id", "content_type", "created", "expires"} <= sidecar.keys()


async def test_resume_across_opens_and_rehash(store: LocalStore) -> None:
    """Appends from separate opens continue at the stored offset; sha256 still right."""
    body = os.urandom(100_000)
    upload = await store.create(UploadSpec(name="r", length=len(body)))
    await upload.append(0, chunks(body[:40_000]))
    store.hashers.pop(upload.info.id)  # as after a restart: no in-memory hash state
    reopened = await store.open(upload.info.id)
    assert reopened.info.offset == 40_000
    with pytest.raises(OffsetMismatch) as err:
        await reopened.append(39_999, chunks(b"x"))
    assert err.value.expected == 40_000
    await reopened.append(40_000, chunks(body[40_000:]))
    assert (await reopened.finish()).sha256 == sha256(body)


async def test_failed_stream_keeps_what_arrived(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="f", length=10_000))
    with pytest.raises(ConnectionResetError):
        await upload.append(0, failing(b"a" * 3000, b"b" * 1000))
    assert upload.info.offset == 4000
    assert (await store.open(upload.info.id)).info.offset == 4000


async def test_length_is_enforced_while_streaming(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="l", length=10))
    with pytest.raises(LengthExceeded):
        await upload.append(0, chunks(b"12345", b"678901234"))
    assert upload.info.offset == 10  # everything up to the declared length is kept
    assert await read_all(await store.open(upload.info.id)) == b"1234567890"


async def test_deferred_length_and_finish(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="d"))
    assert upload.info.length is None
    await upload.append(0, chunks(b"hello"))
    info = await upload.finish()
    assert info.length == 5 and info.sha256 == sha256(b"hello")
    assert await upload.finish() is info  # idempotent
    with pytest.raises(UploadComplete):
        await upload.append(5, chunks(b"more"))


async def test_declare_length(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="d"))
    await upload.append(0, chunks(b"abc"))
    with pytest.raises(LengthExceeded):
        await upload.declare_length(2)
    await upload.declare_length(4)
    assert (await store.open(upload.info.id)).info.length == 4


async def test_zero_byte_upload(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="empty", length=0))
    assert await upload.append(0, chunks()) == 0
    assert (await upload.finish()).sha256 == sha256(b"")


async def test_delete_and_not_found(store: LocalStore, data_dir: Path) -> None:
    upload = await store.create(UploadSpec(name="x"))
    await upload.delete()
    await upload.delete()  # idempotent
    assert stored_files(data_dir) == []
    with pytest.raises(UploadNotFound):
        await store.open(upload.info.id)
    for bad in ["../etc/passwd", "", "x" * 22 + "/", ".tmp", new_id() + ".info"]:
        with pytest.raises(UploadNotFound):
            await store.open(bad)


async def test_list_uploads(store: LocalStore) -> None:
    ids = set()
    for i in range(300):  # more than one batch
        upload = await store.create(UploadSpec(name=f"n{i}"))
        ids.add(upload.info.id)
    listed = {info.id async for info in store.list_uploads()}
    assert listed == ids


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


def test_ids_are_unguessable_and_url_safe() -> None:
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 22 and is_valid_id(i) for i in ids)


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
