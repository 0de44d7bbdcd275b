"""The local backend's side of resumable uploads: its pending-chunk marker, flock across
processes, and pruning files. The shared contract is in test_contract.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import (
    LocalStore,
    UploadGone,
    UploadNotFound,
    UploadSpec,
)
from tests.conftest import sha256
from tests.storage.test_contract import chunks, read_all, verifier

BACKENDS = ("local",)


async def test_verified_chunk_leaves_no_pending_marker(store: LocalStore) -> None:
    body = os.urandom(3 << 20)
    upload = await store.create(UploadSpec(name="v", length=len(body)))
    assert await upload.append(0, chunks(body), verifier("sha1", body)) == len(body)
    assert not store.pending_path(upload.info.id).exists()
    assert (await upload.finish()).sha256 == sha256(body)


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
