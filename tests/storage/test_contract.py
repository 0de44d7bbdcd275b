"""The storage contract: what the HTTP layer relies on, run on every backend.

Bytes are read back only once an upload is complete: that is all the HTTP layer serves,
and on S3 the object does not exist before.

Each test runs once on local disk and once on S3 (moto's in-process mock). What only one
backend has (a local path, fd caching, flock, S3's parts and leases) is tested beside it,
in test_local*.py and test_s3.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from storage import (
    Concatenator,
    DurableProgress,
    LengthExceeded,
    Locker,
    OffsetMismatch,
    UploadComplete,
    UploadGone,
    UploadNotFound,
    UploadSpec,
)
from storage.errors import ChecksumMismatch, LockTimeout
from storage.hashing import ChunkVerifier
from storage.ids import is_valid_id, new_id
from storage.s3 import layout
from tests.conftest import Backend, sha256


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def failing(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p
    raise ConnectionResetError("client went away")


async def read_all(upload: Any, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([c async for c in upload.read(start, end)])


def verifier(algorithm: str, data: bytes) -> ChunkVerifier:
    if algorithm == "crc32":
        return ChunkVerifier("crc32", zlib.crc32(data).to_bytes(4, "big"))
    return ChunkVerifier(algorithm, hashlib.new(algorithm, data).digest())


# -- writing and reading ------------------------------------------------------------------


async def test_create_append_finish_read(store: Any) -> None:
    body = os.urandom(7 << 20)  # more than one S3 part
    upload = await store.create(UploadSpec(name="a.bin", length=len(body)))
    assert is_valid_id(upload.info.id)
    assert await upload.append(0, chunks(body[:1000], body[1000:])) == len(body)
    info = await upload.finish()
    assert info.sha256 == sha256(body) and info.is_complete and info.offset == len(body)
    again = await store.open(info.id)
    assert again.info.sha256 == sha256(body) and again.info.length == len(body)
    assert again.info.name == "a.bin" and again.info.is_complete
    assert await read_all(again) == body
    assert await read_all(again, 5, 17) == body[5:17]
    assert await read_all(again, 1 << 20, 6 << 20) == body[1 << 20 : 6 << 20]


async def test_resume_across_opens_and_rehash(store: Any) -> None:
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


async def test_a_store_without_checksum_names_files_by_id(backend_store: Backend) -> None:
    """--checksum none: no sha256, not even by reading back after a restart; the id is the
    strong ETag, and what the upload was created with survives a reopen. A spec that asks
    for the sha256 (a draft's Repr-Digest will check it) still gets it."""
    store = backend_store.new_store(checksum=False)
    await store.start()
    try:
        body = os.urandom(6 << 20)
        upload = await store.create(UploadSpec(name="n", length=len(body)))
        await upload.append(0, chunks(body[: 1 << 20]))
        reopened = await store.open(upload.info.id)  # a new chain, as after a restart
        assert reopened.info.hashed is False
        await reopened.append(1 << 20, chunks(body[1 << 20 :]))
        info = await reopened.finish()
        assert info.sha256 is None and info.strong_etag == f'"{info.id}"'
        again = await store.open(info.id)
        assert again.info.sha256 is None and again.info.strong_etag == f'"{info.id}"'
        assert await read_all(again) == body

        wanted = await store.create(UploadSpec(name="w", length=4, sha256=True))
        await wanted.append(0, chunks(b"abcd"))
        assert (await wanted.finish()).sha256 == sha256(b"abcd")

        pieces = [b"x" * 1000, os.urandom(5 << 20)]
        final = await store.create(UploadSpec(name="whole", length=sum(map(len, pieces))))
        await store.concatenate(final, await finished_partials(store, pieces))
        joined = await final.finish()
        assert joined.sha256 is None and joined.strong_etag == f'"{joined.id}"'
        assert await read_all(await store.open(joined.id)) == b"".join(pieces)
    finally:
        await store.close()


async def test_a_spec_may_decline_the_sha256(store: Any) -> None:
    upload = await store.create(UploadSpec(name="d", length=4, sha256=False))
    await upload.append(0, chunks(b"abcd"))
    info = await upload.finish()
    assert info.sha256 is None and info.strong_etag == f'"{info.id}"'
    assert (await store.open(info.id)).info.hashed is False


async def test_failed_stream_keeps_what_arrived(store: Any) -> None:
    upload = await store.create(UploadSpec(name="f", length=10_000))
    with pytest.raises(ConnectionResetError):
        await upload.append(0, failing(b"a" * 3000, b"b" * 1000))
    assert upload.info.offset == 4000
    reopened = await store.open(upload.info.id)
    assert reopened.info.offset == 4000
    await reopened.append(4000, chunks(b"c" * 6000))
    assert (await reopened.finish()).sha256 == sha256(b"a" * 3000 + b"b" * 1000 + b"c" * 6000)


async def test_length_is_enforced_while_streaming(store: Any) -> None:
    upload = await store.create(UploadSpec(name="l", length=10))
    with pytest.raises(LengthExceeded):
        await upload.append(0, chunks(b"12345", b"678901234"))
    assert upload.info.offset == 10  # everything up to the declared length is kept
    assert (await upload.finish()).sha256 == sha256(b"1234567890")
    assert await read_all(await store.open(upload.info.id)) == b"1234567890"


async def test_deferred_length_and_finish(store: Any) -> None:
    upload = await store.create(UploadSpec(name="d"))
    assert upload.info.length is None
    await upload.append(0, chunks(b"hello"))
    info = await upload.finish()
    assert info.length == 5 and info.sha256 == sha256(b"hello")
    assert await upload.finish() is info  # idempotent
    with pytest.raises(UploadComplete):
        await upload.append(5, chunks(b"more"))
    assert await read_all(await store.open(info.id)) == b"hello"


async def test_declare_length(store: Any) -> None:
    upload = await store.create(UploadSpec(name="d"))
    await upload.append(0, chunks(b"abc"))
    with pytest.raises(LengthExceeded):
        await upload.declare_length(2)
    await upload.declare_length(4)
    reopened = await store.open(upload.info.id)
    assert reopened.info.length == 4 and reopened.info.offset == 3


async def test_zero_byte_upload(store: Any) -> None:
    upload = await store.create(UploadSpec(name="empty", length=0))
    assert await upload.append(0, chunks()) == 0
    assert (await upload.finish()).sha256 == sha256(b"")
    assert await read_all(await store.open(upload.info.id)) == b""


async def test_delete_and_not_found(store: Any, backend_store: Backend) -> None:
    upload = await store.create(UploadSpec(name="x", length=20))
    await upload.append(0, chunks(b"half"))
    await upload.delete()
    await upload.delete()  # idempotent
    assert backend_store.names() == []
    with pytest.raises(UploadNotFound):
        await store.open(upload.info.id)
    for bad in ["../etc/passwd", "", "x" * 22 + "/", ".tmp", new_id() + ".info"]:
        with pytest.raises(UploadNotFound):
            await store.open(bad)


async def test_list_uploads_page_by_page(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "LIST_PAGE", 64)  # S3: several ListObjectsV2 pages
    ids = set()
    for i in range(300):  # and more than one of the local store's batches of 256
        upload = await store.create(UploadSpec(name=f"n{i}"))
        ids.add(upload.info.id)
    listed = [info.id async for info in store.list_uploads()]
    assert len(listed) == 300 and set(listed) == ids


async def test_list_uploads_after_an_id_in_id_order(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layout, "LIST_PAGE", 64)  # S3: several ListObjectsV2 pages
    ids = sorted([(await store.create(UploadSpec(name=f"n{i}"))).info.id for i in range(300)])
    assert [info.id async for info in store.list_uploads(after="")] == ids
    assert [info.id async for info in store.list_uploads(after=ids[99])] == ids[100:]
    gone = await store.open(ids[150])
    await gone.delete()  # a page picks up after its last id, whatever went in between
    assert [info.id async for info in store.list_uploads(after=ids[99])] == (
        ids[100:150] + ids[151:]
    )
    assert [info.id async for info in store.list_uploads(after=ids[-1])] == []


async def test_upload_deleted_by_another_instance_is_not_served(
    store: Any, backend_store: Backend
) -> None:
    upload = await store.create(UploadSpec(name="gone", length=10))
    await upload.append(0, chunks(b"0123456789"))
    await upload.finish()
    opened = await store.open(upload.info.id)
    assert await read_all(opened, 0, 4) == b"0123"  # info (and a local fd) now cached
    other = backend_store.new_store()
    await other.start()
    try:
        await (await other.open(upload.info.id)).delete()
    finally:
        await other.close()
    with pytest.raises(UploadNotFound):
        await read_all(opened, 0, 4)
    with pytest.raises(UploadNotFound):
        await store.open(upload.info.id)


async def test_durable_offset_never_promises_more_than_a_restart_finds(
    store: Any, backend_store: Backend
) -> None:
    """DurableProgress: mid-append, another instance opening the upload (what a restart
    does) finds at least the durable offset; a checksummed chunk promises nothing."""
    upload = await store.create(UploadSpec(name="durable", length=40 << 20))
    assert isinstance(upload, DurableProgress)
    other = backend_store.new_store()
    await other.start()
    promised: list[int] = []

    async def watched(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield os.urandom(1 << 20)
            await asyncio.sleep(0.02)  # parts in flight get their turn
            durable = upload.durable_offset()
            found = (await other.open(upload.info.id)).info.offset
            assert durable <= found, (durable, found)
            promised.append(durable)

    try:
        await upload.append(0, watched(24))
        assert 0 < max(promised) <= 24 << 20
        assert upload.durable_offset() == upload.info.offset == 24 << 20
        promised.clear()
        body = b"".join([os.urandom(1 << 20) for _ in range(4)])

        async def checked() -> AsyncIterator[bytes]:
            for i in range(4):
                yield body[i << 20 : (i + 1) << 20]
                promised.append(upload.durable_offset())

        await upload.append(24 << 20, checked(), verifier("sha256", body))
        assert promised == [24 << 20] * 4  # all or nothing: nothing promised until it matched
    finally:
        await other.close()


# -- what resumable uploads need: verified chunks, tombstones, locks, concatenation -------


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256", "crc32"])
async def test_verified_chunk_is_kept(store: Any, algorithm: str) -> None:
    body = os.urandom(3 << 20)
    upload = await store.create(UploadSpec(name="v", length=len(body)))
    first, second = body[:1000], body[1000:]
    assert await upload.append(0, chunks(first), verifier(algorithm, first)) == 1000
    assert await upload.append(1000, chunks(second), verifier(algorithm, second)) == len(body)
    assert (await upload.finish()).sha256 == sha256(body)
    assert await read_all(await store.open(upload.info.id)) == body


async def test_mismatched_chunk_is_discarded(store: Any) -> None:
    upload = await store.create(UploadSpec(name="m", length=100))
    await upload.append(0, chunks(b"a" * 10))
    with pytest.raises(ChecksumMismatch):
        await upload.append(10, chunks(b"b" * 20), verifier("sha1", b"c" * 20))
    assert upload.info.offset == 10
    reopened = await store.open(upload.info.id)
    assert reopened.info.offset == 10
    await reopened.append(10, chunks(b"b" * 90))
    assert (await reopened.finish()).sha256 == sha256(b"a" * 10 + b"b" * 90)
    assert await read_all(await store.open(upload.info.id)) == b"a" * 10 + b"b" * 90


async def test_verified_chunk_cut_short_is_discarded(store: Any) -> None:
    upload = await store.create(UploadSpec(name="c", length=100))
    with pytest.raises(ConnectionResetError):
        await upload.append(0, failing(b"x" * 30), verifier("sha1", b"x" * 50))
    assert (await store.open(upload.info.id)).info.offset == 0


async def test_wrong_offset_with_a_checksum_loses_nothing(store: Any) -> None:
    upload = await store.create(UploadSpec(name="w", length=100))
    await upload.append(0, chunks(b"0123456789"))
    with pytest.raises(OffsetMismatch):
        await upload.append(3, chunks(b"xyz"), verifier("sha1", b"xyz"))
    reopened = await store.open(upload.info.id)
    assert reopened.info.offset == 10
    await reopened.append(10, chunks(b"z" * 90))
    await reopened.finish()
    assert await read_all(await store.open(upload.info.id)) == b"0123456789" + b"z" * 90


async def test_gone_leaves_a_tombstone(store: Any) -> None:
    upload = await store.create(UploadSpec(name="t"))
    await upload.delete(gone="terminated")
    with pytest.raises(UploadGone):
        await store.open(upload.info.id)
    plain = await store.create(UploadSpec(name="p"))
    await plain.delete()
    with pytest.raises(UploadNotFound):
        await store.open(plain.info.id)


async def test_lock_asks_the_holder_to_release(store: Any) -> None:
    assert isinstance(store, Locker)
    released = asyncio.Event()
    holding = asyncio.Event()

    async def holder() -> None:
        async with store.lock("A" * 22, released.set):
            holding.set()
            await released.wait()  # a PATCH that only lets go when asked
            holding.clear()

    task = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), 5)
    async with store.lock("A" * 22, lambda: None):
        # Asked, the holder let go. (Its exit from the lock may still be finishing: with
        # S3 the lease is free once its object is deleted, a step before that.)
        assert released.is_set() and not holding.is_set()
    await asyncio.wait_for(task, 5)


async def test_lock_times_out_when_the_holder_does_not_release(store: Any) -> None:
    store.locker.timeout = 0.5
    async with store.lock("B" * 22, lambda: None):
        with pytest.raises(LockTimeout):
            async with store.lock("B" * 22, lambda: None):
                pass


async def finished_partials(store: Any, pieces: list[bytes]) -> list[Any]:
    """Partial uploads (tus concatenation's pieces), each finished with its bytes."""
    partials = []
    for piece in pieces:
        p = await store.create(UploadSpec(name="part", length=len(piece), partial=True))
        await p.append(0, chunks(piece))
        await p.finish()
        partials.append(p)
    return partials


async def test_concatenate(store: Any) -> None:
    assert isinstance(store, Concatenator)
    parts = [os.urandom(n) for n in (1000, 5 << 20, 1)]
    partials = await finished_partials(store, parts)
    final = await store.create(UploadSpec(name="whole", length=sum(map(len, parts))))
    info = await store.concatenate(final, partials)
    assert info.offset == info.length
    assert (await final.finish()).sha256 == sha256(b"".join(parts))
    assert await read_all(await store.open(final.info.id)) == b"".join(parts)
