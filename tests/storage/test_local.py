"""What only the local backend has: its files on disk, fd caching, start-up cleanup; and
the pure helpers (ids, names). The contract both backends share is test_contract.py."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from storage.local.fdcache import filesystem_type, memory_backed
from storage.names import MAX_NAME_BYTES, sanitize_name
from tests.conftest import sha256, stored_files
from tests.storage.test_contract import chunks, read_all
from tests.tools import mounted_tmpfs

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


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=1024k
30 25 0:27 / /dev/shm rw,relatime - ext4 /dev/vdb rw
31 27 0:28 / /srv/my\\040files rw - ramfs ramfs rw
32 27 0:29 / /data rw shared:1 - xfs /dev/vdc rw
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "ext4"),
        ("/var/lib/spigot", "ext4"),
        ("/dev/shm/spigot", "ext4"),  # the second mount on /dev/shm hides the tmpfs
        ("/dev/pts", "devtmpfs"),
        ("/srv/my files/x", "ramfs"),  # \040 is a space
        ("/srv/my", "ext4"),
        ("/data", "xfs"),  # optional fields (shared:1) before the separator
        ("/database", "ext4"),  # not under /data
    ],
)
def test_filesystem_type_from_mountinfo(path: str, kind: str) -> None:
    assert filesystem_type(MOUNTINFO, path) == kind
    assert filesystem_type("garbage\n", path) is None


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "tmpfs", "8m") as where:
        yield where


@pytest.mark.parametrize("on", ["disk", "tmpfs"])
async def test_a_warm_small_read_never_leaves_the_loop(
    on: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    """The hot path of range readers: on disk by RWF_NOWAIT, which tmpfs cannot do; its
    pages are memory, so a plain read there is as safe. Before, tmpfs took a pool thread
    for every small read and served half the ranges a disk did."""
    root = request.getfixturevalue("tmpfs") if on == "tmpfs" else data_dir
    assert memory_backed(root) is (on == "tmpfs")
    store = LocalStore(root)
    await store.start()
    try:
        body = os.urandom(1 << 20)
        upload = await store.create(UploadSpec(name="r", length=len(body)))
        await upload.append(0, chunks(body))
        await upload.finish()
        opened = await store.open(upload.info.id)
        assert await read_all(opened, 0, 4096) == body[:4096]  # opens the file in a thread
        handed_off = []
        real = store.run_blocking

        async def counted(fn: Any, *args: Any) -> Any:
            handed_off.append(fn)
            return await real(fn, *args)

        store.run_blocking = counted  # type: ignore[method-assign]
        for start in (4096, 65536, 1 << 19):
            assert await read_all(opened, start, start + 4096) == body[start : start + 4096]
        assert handed_off == []
    finally:
        await store.close()


async def test_a_cancelled_listing_closes_its_directory_after_the_batch(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing whose request goes away while a batch is read in a pool thread must not
    close the directory under that thread: closedir under readdir killed a CI worker."""
    import storage.local.store as local_store

    for n in range(3):
        upload = await store.create(UploadSpec(name=f"f{n}", length=1))
        await upload.append(0, chunks(b"x"))
        await upload.finish()
    seen: list[str] = []
    real_scandir, real_batch = os.scandir, store._next_infos

    class Entries:
        def __init__(self, path: Path) -> None:
            self._it = real_scandir(path)

        def __iter__(self) -> Entries:
            return self

        def __next__(self) -> os.DirEntry[str]:
            return next(self._it)

        def close(self) -> None:
            seen.append("close")
            self._it.close()

    def slow_batch(entries: Any, want: int) -> Any:
        seen.append("batch")
        time.sleep(0.3)  # still reading when the listing is cancelled
        found = real_batch(entries, want)
        seen.append("batch done")
        return found

    monkeypatch.setattr(local_store.os, "scandir", Entries)
    monkeypatch.setattr(store, "_next_infos", slow_batch)

    async def consume() -> None:
        async for _ in store.list_uploads():
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["batch", "batch done", "close"]


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
