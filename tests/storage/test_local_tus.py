"""The storage capabilities resumable uploads need: verified chunks, tombstones, locks,
concatenation."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from storage import (
    Concatenator,
    LocalStore,
    Locker,
    UploadGone,
    UploadNotFound,
    UploadSpec,
)
from storage.errors import ChecksumMismatch, LockTimeout, OffsetMismatch
from storage.hashing import ChunkVerifier
from tests.conftest import sha256
from tests.storage.test_local import chunks, failing, read_all


def verifier(algorithm: str, data: bytes) -> ChunkVerifier:
    if algorithm == "crc32":
        return ChunkVerifier("crc32", zlib.crc32(data).to_bytes(4, "big"))
    return ChunkVerifier(algorithm, hashlib.new(algorithm, data).digest())


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "crc32"])
async def test_verified_chunk_is_kept(store: LocalStore, algorithm: str) -> None:
    body = os.urandom(3 << 20)
    upload = await store.create(UploadSpec(name="v", length=len(body)))
    first, second = body[:1000], body[1000:]
    assert await upload.append(0, chunks(first), verifier(algorithm, first)) == 1000
    assert await upload.append(1000, chunks(second), verifier(algorithm, second)) == len(body)
    assert (await upload.finish()).sha256 == sha256(body)
    assert not store.pending_path(upload.info.id).exists()


async def test_mismatched_chunk_is_discarded(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="m", length=100))
    await upload.append(0, chunks(b"a" * 10))
    with pytest.raises(ChecksumMismatch):
        await upload.append(10, chunks(b"b" * 20), verifier("sha1", b"c" * 20))
    assert upload.info.offset == 10
    reopened = await store.open(upload.info.id)
    assert reopened.info.offset == 10
    assert await read_all(reopened) == b"a" * 10
    await reopened.append(10, chunks(b"b" * 90))
    assert (await reopened.finish()).sha256 == sha256(b"a" * 10 + b"b" * 90)


async def test_verified_chunk_cut_short_is_discarded(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="c", length=100))
    with pytest.raises(ConnectionResetError):
        await upload.append(0, failing(b"x" * 30), verifier("sha1", b"x" * 50))
    assert (await store.open(upload.info.id)).info.offset == 0


async def test_crash_mid_verified_chunk_is_rolled_back(store: LocalStore) -> None:
    """As if the process died after writing part of a checksummed chunk."""
    upload = await store.create(UploadSpec(name="k", length=100))
    await upload.append(0, chunks(b"a" * 10))
    upload.local_path().write_bytes(b"a" * 10 + b"z" * 25)  # unverified bytes on disk...
    store.pending_path(upload.info.id).write_text("10")  # ...and the marker saying so
    reopened = await store.open(upload.info.id)
    assert reopened.info.offset == 10  # HEAD never counts unverified bytes
    await reopened.append(10, chunks(b"b" * 5))  # the next locked append rolls back first
    assert await read_all(await store.open(upload.info.id)) == b"a" * 10 + b"b" * 5


async def test_gone_leaves_a_tombstone(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="t"))
    await upload.delete(gone="terminated")
    with pytest.raises(UploadGone):
        await store.open(upload.info.id)
    plain = await store.create(UploadSpec(name="p"))
    await plain.delete()
    with pytest.raises(UploadNotFound):
        await store.open(plain.info.id)


async def test_lock_asks_the_holder_to_release(store: LocalStore) -> None:
    assert isinstance(store, Locker)
    released = asyncio.Event()
    holder_done = asyncio.Event()

    async def holder() -> None:
        async with store.lock("A" * 22, released.set):
            await released.wait()  # a PATCH that only lets go when asked
        holder_done.set()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.1)
    async with store.lock("A" * 22, lambda: None):
        assert holder_done.is_set()
    await task


async def test_lock_times_out_when_the_holder_does_not_release(store: LocalStore) -> None:
    store.locker.timeout = 0.5
    async with store.lock("B" * 22, lambda: None):
        with pytest.raises(LockTimeout):
            async with store.lock("B" * 22, lambda: None):
                pass


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
while not os.path.exists(sys.argv[2]):  # what spigot's holders poll for
    time.sleep(0.05)
fcntl.flock(fd, fcntl.LOCK_UN)
print("released", flush=True)
time.sleep(30)
"""


async def start_holder(lock: Path, release: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(lock), str(release), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and await proc.stdout.readline() == b"locked\n"
    return proc


async def test_lock_across_processes(store: LocalStore, data_dir: Path) -> None:
    upload_id = "C" * 22
    proc = await start_holder(data_dir / f"{upload_id}.lock", data_dir / f"{upload_id}.release")
    try:
        async with store.lock(upload_id, lambda: None):
            assert proc.stdout is not None
            assert await proc.stdout.readline() == b"released\n"
    finally:
        proc.kill()
        await proc.wait()


async def test_lock_dies_with_its_holder(store: LocalStore, data_dir: Path) -> None:
    upload_id = "D" * 22
    proc = await start_holder(data_dir / f"{upload_id}.lock", Path("/nonexistent"))
    proc.kill()  # SIGKILL: the kernel drops the flock
    await proc.wait()
    async with store.lock(upload_id, lambda: None):
        pass


async def test_concatenate(store: LocalStore) -> None:
    assert isinstance(store, Concatenator)
    parts = [os.urandom(n) for n in (1000, 5 << 20, 1)]
    partials = []
    for data in parts:
        p = await store.create(UploadSpec(name="part", length=len(data), partial=True))
        await p.append(0, chunks(data))
        await p.finish()
        partials.append(p)
    final = await store.create(UploadSpec(name="whole", length=sum(map(len, parts))))
    info = await store.concatenate(final, partials)
    assert info.offset == info.length
    assert (await final.finish()).sha256 == sha256(b"".join(parts))


async def test_prune(store: LocalStore, data_dir: Path) -> None:
    from storage import Pruner

    assert isinstance(store, Pruner)
    gone = await store.create(UploadSpec(name="g"))
    await gone.delete(gone="terminated")
    live = await store.create(UploadSpec(name="l"))
    async with store.lock(live.info.id, lambda: None):
        pass  # leaves live's lock file behind, as every locked request does
    (data_dir / f"{'E' * 22}.lock").write_bytes(b"")  # a lock whose upload is gone
    assert await store.prune(time.time()) == 1  # only the orphan lock file
    assert (data_dir / f"{live.info.id}.lock").exists()
    with pytest.raises(UploadGone):
        await store.open(gone.info.id)  # the young tombstone stays
    assert await store.prune(time.time() + 8 * 86400) == 1  # now the tombstone goes
    with pytest.raises(UploadNotFound):
        await store.open(gone.info.id)


async def test_wrong_offset_with_a_checksum_loses_nothing(store: LocalStore) -> None:
    upload = await store.create(UploadSpec(name="w", length=100))
    await upload.append(0, chunks(b"0123456789"))
    with pytest.raises(OffsetMismatch):
        await upload.append(3, chunks(b"xyz"), verifier("sha1", b"xyz"))
    reopened = await store.open(upload.info.id)
    assert reopened.info.offset == 10
    assert await read_all(reopened) == b"0123456789"
