"""The S3 backend against moto's in-process mock: layout, parts, tails, leases, temp space."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto import mock_aws

from storage import UploadGone, UploadSpec
from storage.errors import ChecksumMismatch, LockTimeout, StorageUnavailable
from storage.hashing import ChunkVerifier
from storage.s3 import S3Store, layout
from storage.s3.layout import MIB, Part, Tail
from storage.s3.parts import PartWriter
from tests.conftest import BUCKET
from tests.storage.test_contract import finished_partials

PREFIX = "up"


async def chunks(data: bytes, size: int = 256 << 10) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def failing(data: bytes) -> AsyncIterator[bytes]:
    async for chunk in chunks(data):
        yield chunk
    raise ConnectionResetError("client went away")


@pytest.fixture
def s3(fake_aws: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def keys(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/").get("Contents", [])
    return sorted(o["Key"].removeprefix(PREFIX + "/") for o in listed)


@pytest.fixture
async def make_store(s3: Any, tmp_path: Path) -> AsyncIterator[Any]:
    opened: list[S3Store] = []

    async def make(**options: Any) -> S3Store:
        options.setdefault("part_size", 5 * MIB)
        store = S3Store(BUCKET, PREFIX, temp_dir=tmp_path / "spool", **options)
        await store.start()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


# -- pure layout ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_length", "preferred", "size"),
    [
        (1, 5 * MIB, 5 * MIB),  # never below S3's minimum
        (10_000 * 5 * MIB, 5 * MIB, 5 * MIB),  # exactly 10,000 parts of 5 MiB
        (10_000 * 5 * MIB + 1, 5 * MIB, 6 * MIB),  # one byte more: bigger parts
        (10 * 1024**3, 8 * MIB, 8 * MIB),  # the preferred size when it fits
        (1024**4, 8 * MIB, 105 * MIB),  # deferred, planned for --max-upload-size 1TiB
        (None, 8 * MIB, 525 * MIB),  # unbounded: S3's 5 TiB object limit
    ],
)
def test_part_size(max_length: int | None, preferred: int, size: int) -> None:
    got = layout.part_size(max_length, preferred)
    assert got == size
    assert got % MIB == 0
    assert -(-(max_length or layout.MAX_OBJECT) // got) <= layout.MAX_PARTS


def test_part_size_refuses_what_cannot_fit() -> None:
    with pytest.raises(ValueError, match="10000 parts"):
        layout.part_size(10_000 * 5 * 1024**3 + 1, 5 * MIB)


def test_progress_counts_the_run_of_parts_then_the_tail() -> None:
    p = 5 * MIB
    parts = [Part(1, p, "a"), Part(2, p, "b"), Part(4, p, "d")]  # 3 failed, 4 is early
    got = layout.progress(parts, p, 100 * MIB, Tail(3 * p, 10))
    assert [x.number for x in got.parts] == [1, 2] and got.tail is None
    assert got.offset == 2 * p and got.next_number == 3
    filled = layout.progress([*parts, Part(3, p, "c")], p, 100 * MIB, None)
    assert filled.offset == 4 * p  # the early part counts once the gap is filled
    with_tail = layout.progress(parts[:2], p, 100 * MIB, Tail(2 * p, 10))
    assert with_tail.offset == 2 * p + 10
    short_last = layout.progress([Part(1, p, "a"), Part(2, 7, "b")], p, p + 7, None)
    assert short_last.offset == p + 7
    assert layout.progress([Part(1, 7, "a")], p, None, None).offset == 0  # not our layout


def test_keys_split_back() -> None:
    assert layout.key("a/b", "ID", "info") == "a/b/ID.info"
    assert layout.split_key("a/b", "a/b/ID.info") == ("ID", "info")
    assert layout.split_key("a/b", "a/b/ID") == ("ID", "")
    assert layout.split_key("a/b", "a/b/ID.exe") is None
    assert layout.split_key("a/b", "other/ID") is None


# -- the store -----------------------------------------------------------------------------


async def test_tail_survives_a_restart_and_joins_the_next_part(make_store: Any, s3: Any) -> None:
    data = os.urandom(13 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="t.bin", length=len(data)))
    upload_id = upload.info.id
    assert await upload.append(0, chunks(data[: 7 * MIB])) == 7 * MIB
    assert f"{upload_id}.part" in keys(s3)  # 2 MiB after the first 5 MiB part
    await store.close()

    again = await make_store()  # a new instance: nothing carried over in memory
    resumed = await again.open(upload_id)
    assert resumed.info.offset == 7 * MIB
    assert await resumed.append(7 * MIB, chunks(data[7 * MIB :])) == len(data)
    info = await resumed.finish()
    assert info.sha256 == hashlib.sha256(data).hexdigest()  # rehashed from the object
    assert keys(s3) == sorted([upload_id, f"{upload_id}.info"])
    got = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{upload_id}")["Body"].read()
    assert got == data
    etag = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{upload_id}")["ETag"]
    assert etag.endswith('-3"')  # 5 + 5 + 3 MiB parts: the tail led the second append


@pytest.mark.parametrize("steps", [1, 2], ids=["one-shot", "tail-then-end"])
async def test_finish_deletes_a_tail_only_where_one_may_be(
    make_store: Any, s3: Any, monkeypatch: Any, steps: int
) -> None:
    data = os.urandom(8 * MIB)
    store = await make_store()
    deleted: list[str] = []
    real_call = store.s3.call

    async def spy(operation: str, **params: Any) -> Any:
        if operation == "delete_objects":
            deleted.extend(o["Key"] for o in params["Delete"]["Objects"])
        return await real_call(operation, **params)

    monkeypatch.setattr(store.s3, "call", spy)
    upload = await store.create(UploadSpec(name="t.bin", length=len(data)))
    cut = 7 * MIB if steps == 2 else 0  # 7 MiB: a 5 MiB part and a 2 MiB tail
    if cut:
        await upload.append(0, chunks(data[:cut]))
        assert f"{upload.info.id}.part" in keys(s3)
    await upload.append(cut, chunks(data[cut:]))
    info = await upload.finish()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert keys(s3) == sorted([info.id, f"{info.id}.info"])
    tail_key = f"{PREFIX}/{info.id}.part"
    assert deleted.count(tail_key) == (1 if cut else 0)


async def test_a_crash_after_the_tail_was_read_keeps_the_offset(make_store: Any, s3: Any) -> None:
    """The next PATCH has read the tail and the process dies: the offset stays put."""
    data = os.urandom(13 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="t.bin", length=len(data)))
    upload_id = upload.info.id
    await upload.append(0, chunks(data[: 7 * MIB]))
    await PartWriter(upload, upload.stored, None).begin()  # ... and no close(): killed

    resumed = await (await make_store()).open(upload_id)
    assert resumed.info.offset == 7 * MIB
    await resumed.append(7 * MIB, chunks(data[7 * MIB :]))
    assert (await resumed.finish()).sha256 == hashlib.sha256(data).hexdigest()
    assert keys(s3) == sorted([upload_id, f"{upload_id}.info"])


async def test_a_crash_after_a_part_took_the_tail_counts_the_part(make_store: Any, s3: Any) -> None:
    """Killed after the part holding the tail's bytes went up: the stale tail object is
    ignored (it starts before the run of parts ends) and removed at the end."""
    data = os.urandom(13 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="t.bin", length=len(data)))
    upload_id = upload.info.id
    await upload.append(0, chunks(data[: 7 * MIB]))
    writer = PartWriter(upload, upload.stored, None)
    await writer.begin()
    for chunk in [data[7 * MIB : 9 * MIB], data[9 * MIB : 10 * MIB]]:
        await writer.write(chunk)  # 2 MiB tail + 3 MiB = part 2, then 1 MiB buffered
    await asyncio.gather(*writer._inflight)  # part 2 is up ... and no close(): killed
    assert f"{upload_id}.part" in keys(s3)

    resumed = await (await make_store()).open(upload_id)
    assert resumed.info.offset == 10 * MIB
    await resumed.append(10 * MIB, chunks(data[10 * MIB :]))
    assert (await resumed.finish()).sha256 == hashlib.sha256(data).hexdigest()
    assert keys(s3) == sorted([upload_id, f"{upload_id}.info"])
    got = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{upload_id}")["Body"].read()
    assert got == data


async def test_completed_object_with_unfinished_info_is_recovered(make_store: Any, s3: Any) -> None:
    """Killed after CompleteMultipartUpload but before the info said complete."""
    data = os.urandom(13 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="t.bin", length=len(data)))
    await upload.append(0, chunks(data))  # the last part completes the object...
    # ... and no finish(): killed. A new instance finds the multipart upload gone.
    again = await (await make_store()).open(upload.info.id)
    assert again.info.offset == len(data) and again.info.awaits_finish
    info = await again.finish()
    assert info.is_complete and info.sha256 == hashlib.sha256(data).hexdigest()
    assert keys(s3) == sorted([upload.info.id, f"{upload.info.id}.info"])


async def test_an_aborted_multipart_upload_starts_over(make_store: Any, s3: Any) -> None:
    data = os.urandom(13 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="t.bin", length=len(data)))
    await upload.append(0, chunks(data[: 6 * MIB]))
    s3.abort_multipart_upload(
        Bucket=BUCKET, Key=f"{PREFIX}/{upload.info.id}", UploadId=upload.info.backend["multipart"]
    )  # by hand, or a bucket lifecycle rule
    again = await (await make_store()).open(upload.info.id)
    assert again.info.offset == 0
    await again.append(0, chunks(data))
    assert (await again.finish()).sha256 == hashlib.sha256(data).hexdigest()


async def test_broken_stream_keeps_stored_bytes(make_store: Any) -> None:
    data = os.urandom(6 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="x", length=20 * MIB))
    with pytest.raises(ConnectionResetError):
        await upload.append(0, failing(data))
    assert upload.info.offset == len(data)
    assert (await store.open(upload.info.id)).info.offset == len(data)


async def test_checksum_mismatch_keeps_nothing(make_store: Any, s3: Any, tmp_path: Path) -> None:
    data = os.urandom(6 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="x", length=len(data)))
    wrong = ChunkVerifier("sha1", hashlib.sha1(b"other").digest())
    with pytest.raises(ChecksumMismatch):
        await upload.append(0, chunks(data), wrong)
    assert (await store.open(upload.info.id)).info.offset == 0
    assert keys(s3) == [f"{upload.info.id}.info"]  # not one part uploaded
    assert spooled(tmp_path) == []
    right = ChunkVerifier("sha1", hashlib.sha1(data).digest())
    assert await upload.append(0, chunks(data), right) == len(data)
    assert (await upload.finish()).sha256 == hashlib.sha256(data).hexdigest()


def spooled(tmp_path: Path) -> list[str]:
    return [p.name for p in (tmp_path / "spool").rglob("*") if p.is_file() and p.name != ".lock"]


async def test_large_parts_spool_to_temp_within_the_cap(make_store: Any, tmp_path: Path) -> None:
    data = os.urandom(12 * MIB)
    store = await make_store(memory_limit=1 * MIB, temp_cap=12 * MIB, concurrency=2)
    upload = await store.create(UploadSpec(name="x", length=len(data)))
    await upload.append(0, chunks(data))
    info = await upload.finish()
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert 5 * MIB <= store.temp.peak <= 12 * MIB  # parts went through temp files
    assert store.temp.used == 0 and spooled(tmp_path) == []


async def test_more_uploads_than_the_temp_cap_holds_take_turns(
    make_store: Any, tmp_path: Path
) -> None:
    """Four uploads of two 5 MiB parts, a cap of two parts. Reserved as they filled, the
    four first parts took the cap between them, none could finish, and all four waited out
    the limit; whole parts are reserved now, so two fill while two wait."""
    store = await make_store(memory_limit=1 * MIB, temp_cap=10 * MIB, concurrency=2)
    store.temp.wait = 5.0
    datas = [os.urandom(10 * MIB) for _ in range(4)]
    uploads = [await store.create(UploadSpec(name=f"u{i}", length=10 * MIB)) for i in range(4)]

    async def send(upload: Any, data: bytes) -> str:
        await upload.append(0, chunks(data))
        return str((await upload.finish()).sha256)

    digests = await asyncio.gather(*(send(u, d) for u, d in zip(uploads, datas, strict=True)))
    assert digests == [hashlib.sha256(d).hexdigest() for d in datas]
    assert store.temp.peak <= 10 * MIB
    assert store.temp.used == 0 and spooled(tmp_path) == []


async def test_leftover_temp_files_are_cleaned_at_start(make_store: Any, tmp_path: Path) -> None:
    dead = tmp_path / "spool" / "spigot-deadbeef"
    dead.mkdir(parents=True)
    (dead / ".lock").touch()
    (dead / "0123abcd").write_bytes(b"x" * 1000)  # a part a killed instance left
    live = await make_store()
    other = await make_store()  # a second live instance sharing the directory
    assert not dead.exists()
    assert live.temp.dir is not None and live.temp.dir.exists()
    assert other.temp.dir is not None and other.temp.dir.exists()


async def test_zero_bytes_and_metadata_on_the_object(make_store: Any, s3: Any) -> None:
    store = await make_store()
    empty = await store.create(UploadSpec(name="empty", length=0))
    assert (await empty.finish()).sha256 == hashlib.sha256(b"").hexdigest()
    spec = UploadSpec(
        name="Ünïcødé 文件.txt", content_type="text/plain", metadata={"filename": "Ünï 文件.txt"}
    )
    upload = await store.create(spec)
    await upload.append(0, chunks(b"hello"), last=True)
    await upload.finish()
    head = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{upload.info.id}")
    assert head["ContentType"] == "text/plain"
    assert unquote(head["Metadata"]["name"]) == "Ünïcødé 文件.txt"
    assert unquote(head["Metadata"]["tus-filename"]) == "Ünï 文件.txt"


async def test_parts_are_listed_in_pages(make_store: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(layout, "LIST_PAGE", 2)
    data = os.urandom(26 * MIB)
    store = await make_store()
    upload = await store.create(UploadSpec(name="x", length=len(data)))
    await upload.append(0, chunks(data[: 25 * MIB + 5]))
    assert (await store.open(upload.info.id)).info.offset == 25 * MIB + 5  # 5 parts + tail


async def test_concatenation_copies_parts_inside_s3(make_store: Any, monkeypatch: Any) -> None:
    store = await make_store()
    pieces = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1000)]
    partials = await finished_partials(store, pieces)
    final = await store.create(UploadSpec(name="all", length=sum(map(len, pieces))))
    calls: list[str] = []
    real_call = store.s3.call

    async def spy(operation: str, **params: Any) -> Any:
        calls.append(operation)
        return await real_call(operation, **params)

    monkeypatch.setattr(store.s3, "call", spy)
    await store.concatenate(final, partials)
    info = await final.finish()
    assert calls.count("upload_part_copy") == 3 and "upload_part" not in calls
    assert info.sha256 == hashlib.sha256(b"".join(pieces)).hexdigest()
    got = b"".join([c async for c in (await store.open(info.id)).read()])
    assert got == b"".join(pieces)


async def test_small_partials_fall_back_to_streaming(make_store: Any) -> None:
    store = await make_store()
    pieces = [b"abc", b"defg"]
    partials = await finished_partials(store, pieces)
    final = await store.create(UploadSpec(name="all", length=7))
    await store.concatenate(final, partials)
    info = await final.finish()
    assert b"".join([c async for c in (await store.open(info.id)).read()]) == b"abcdefg"


async def test_termination_aborts_the_multipart_upload(make_store: Any, s3: Any) -> None:
    store = await make_store()
    upload = await store.create(UploadSpec(name="x", length=20 * MIB))
    await upload.append(0, chunks(os.urandom(7 * MIB)))
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    await upload.delete(gone="terminated")
    assert not s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads")
    assert keys(s3) == [f"{upload.info.id}.gone"]
    with pytest.raises(UploadGone):
        await store.open(upload.info.id)


async def test_lease_is_exclusive_released_on_request_and_expires(make_store: Any) -> None:
    a = await make_store(lock_timeout=1.5)
    b = await make_store(lock_timeout=1.5, lock_ttl=0.5)  # a's own ttl (15 s) is what counts
    upload = await a.create(UploadSpec(name="x", length=10))
    released = asyncio.Event()
    async with a.lock(upload.info.id, released.set):
        with pytest.raises(LockTimeout):  # held by a live instance that does not let go
            async with b.lock(upload.info.id, lambda: None):
                pass
        assert released.is_set()  # ...but it was asked to, across instances
    async with b.lock(upload.info.id, lambda: None):
        pass  # released: free at once

    # A holder that dies never renews: after its ttl, the lease is taken over.
    doomed = await make_store(lock_ttl=0.5)
    held = doomed.locker.lock(upload.info.id, lambda: None)
    await held.__aenter__()
    for task in asyncio.all_tasks():
        if "_keep" in repr(task.get_coro()):
            task.cancel()  # the holder is gone: no renewals, no answer to release requests
    doomed.locker._holders.clear()
    b.locker.timeout = 3.0
    b.locker.watch = 0.1
    let_go = asyncio.Event()
    async with b.lock(upload.info.id, let_go.set):
        # b asked the dead holder to let go while it waited; that request was not for b.
        await asyncio.sleep(0.5)
        assert not let_go.is_set()


async def test_a_lease_let_go_while_renewing_is_dropped_at_once(
    make_store: Any, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renewal is already at S3 when the holder lets go: the lease's ETag is then the
    renewal's, and dropping it with the one before left it for a whole ttl (under load,
    the next PATCH of the same upload got 423)."""
    store = await make_store(lock_ttl=0.3)
    store.locker.watch = 0.05
    upload = await store.create(UploadSpec(name="x", length=10))
    real = store.s3.call
    renewed = asyncio.Event()

    async def answer_late(operation: str, **params: Any) -> Any:
        made = await real(operation, **params)
        if operation == "put_object" and "IfMatch" in params:
            renewed.set()
            await asyncio.sleep(0.3)  # S3 has it; its answer is still on the way
        return made

    monkeypatch.setattr(store.s3, "call", answer_late)
    async with store.lock(upload.info.id, lambda: None):
        await renewed.wait()
    assert f"{upload.info.id}.lock" not in keys(s3)


async def test_bad_bucket_and_credentials_stop_start(
    s3: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    missing = S3Store("no-such-bucket", temp_dir=tmp_path)
    with pytest.raises(StorageUnavailable, match="does not exist"):
        await missing.start()
    missing.s3.close()


class Sent(Exception):
    """Raised in place of sending: the test only reads the signed request."""


@pytest.mark.parametrize(
    ("endpoint", "signed"),
    [("https://s3.example.test", False), (None, False), ("http://127.0.0.1:9", True)],
)
def test_payloads_are_signed_only_without_tls(
    fake_aws: None, endpoint: str | None, signed: bool
) -> None:
    """Over TLS a part's CRC32 stands in for sha256-signing its bytes, as boto3 does for its
    own uploads; over plain HTTP the payload is signed."""
    from storage.s3.client import S3

    client = S3(BUCKET, endpoint, threads=1)._build()
    seen: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        seen.update(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )
        raise Sent

    client.meta.events.register("before-send.s3.UploadPart", capture)
    body = b"p" * 1024
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    with pytest.raises(Sent):
        client.upload_part(
            Bucket=BUCKET,
            Key="k",
            UploadId="u",
            PartNumber=1,
            Body=body,
            ChecksumCRC32=crc,
        )
    expected = hashlib.sha256(body).hexdigest() if signed else "UNSIGNED-PAYLOAD"
    assert seen["X-Amz-Content-SHA256"] == expected
    assert seen["x-amz-checksum-crc32"] == crc
