"""The S3 backend: bytes stream straight into multipart parts; any instance continues any upload.

Nothing about an upload lives in one instance: its info, parts, tail and lease are objects in
the bucket (see layout.py for the keys and how the offset is read back from them, lease.py for
locking). While a PATCH streams in, each full part is uploaded while the next one fills, with
at most `concurrency` part uploads in flight per instance (parts.py); a part waits in the temp
directory, or in memory when it is no larger than `memory_limit` (buffers.py). What arrives
after the last full part is kept as `{id}.part` and goes in front of the next append.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from ..base import CallCallback, DataStore, Upload, UploadInfo, UploadSpec
from ..direct import DelegatesDirect
from ..errors import (
    ChecksumMismatch,
    LengthExceeded,
    OffsetMismatch,
    StorageError,
    UploadComplete,
    UploadGone,
    UploadNotFound,
)
from ..hashing import ChunkVerifier
from ..ids import is_valid_id, new_id
from ..memo import FinishedInfos, Hashers
from ..uncancelled import to_the_end
from . import layout
from .buffers import FLUSH, PartBuffer, TempSpace
from .client import S3, S3Error, is_missing
from .direct import S3Direct
from .layout import MIN_PART, Part, Progress, Tail
from .lease import LeaseLocker
from .parts import READ_CHUNK, PartWriter, feed, part_size_of

T = TypeVar("T")

TOMBSTONE_AGE = 7 * 86400.0
STRAY_AGE = 3600.0  # a lease or release request with no upload this old is a leftover


class S3Store(DelegatesDirect, DataStore):
    direct: S3Direct

    shared = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        part_size: int = 8 << 20,
        concurrency: int = 4,
        memory_limit: int = 1 << 20,
        temp_dir: Path | str = "/tmp/spigot",
        temp_cap: int = 1 << 30,
        max_length: int | None = None,
        lock_ttl: float = 15.0,
        lock_timeout: float = 10.0,
        abandon_after: float = 86400.0,
        checksum: bool = True,
    ) -> None:
        self.bucket = bucket
        self.checksum = checksum  # whether new uploads get a sha256 (see UploadInfo.hashed)
        self.prefix = prefix.strip("/")
        self.preferred_part = part_size
        self.memory_limit = memory_limit
        self.max_length = max_length
        self.abandon_after = abandon_after  # see _abort_abandoned
        self.s3 = S3(bucket, endpoint_url, threads=concurrency + 8)
        # Spooling and hashing are local work, in threads of their own: queued behind parts
        # on their way to a slow S3, every upload's chunks waited in memory (bench/load.py:
        # 128 uploads held ~1 MiB each more).
        self._local = ThreadPoolExecutor(max_workers=4, thread_name_prefix="spigot-spool")
        self.temp = TempSpace(Path(temp_dir), temp_cap, self.run_local)
        self.slots = asyncio.Semaphore(concurrency)
        self.locker = LeaseLocker(self.s3, self.key, ttl=lock_ttl, timeout=lock_timeout)
        self.hashers = Hashers()
        self.finished = FinishedInfos()
        self.direct = S3Direct(self)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    # -- DirectStore (storage.base): direct.py does the work ------------------------------

    async def presign_post(
        self, upload: Upload, content_type: str, limit: int, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        return await self.direct.presign_post(upload, content_type, limit, expires_in)

    async def presign_part(self, upload: Upload, number: int, expires_in: int) -> str:
        return await self.direct.presign_part(upload, number, expires_in)

    def key(self, upload_id: str, suffix: str = "") -> str:
        return layout.key(self.prefix, upload_id, suffix)

    async def start(self) -> None:
        await self.s3.connect()
        await self.temp.start()

    async def check_ready(self) -> None:
        """ReadyCheck: the bucket answers, with these credentials."""
        await self.s3.check_bucket()

    def observe_calls(self, callback: CallCallback) -> None:
        """CallObserver: every S3 API call, timed by botocore's own events."""
        self.s3.observe_calls(callback)

    async def run_local(self, fn: Callable[..., T], *args: Any) -> T:
        """Local disk or CPU work (spool files, hashing) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._local, fn, *args)

    async def close(self) -> None:
        """Remove this instance's temp directory and stop the threads; safe to repeat."""
        await self.temp.close()
        self.s3.close()
        self._local.shutdown(wait=True)

    def lock(
        self, upload_id: str, release: Callable[[], None]
    ) -> AbstractAsyncContextManager[None]:
        return self.locker.lock(upload_id, release)

    # -- info -----------------------------------------------------------------------------

    async def write_info(self, info: UploadInfo) -> None:
        body = json.dumps(info.to_json(), separators=(",", ":")).encode()
        await self.s3.call(
            "put_object", Key=self.key(info.id, "info"), Body=body, ContentType="application/json"
        )

    async def _read_info(self, upload_id: str) -> UploadInfo:
        try:
            raw = await self.s3.get_bytes(self.key(upload_id, "info"))
        except S3Error as exc:
            if not is_missing(exc):
                raise StorageError(f"reading upload {upload_id} failed") from exc
            if await self._exists(self.key(upload_id, "gone")):
                raise UploadGone(upload_id) from None
            raise UploadNotFound(upload_id) from None
        try:
            return UploadInfo.from_json(json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise StorageError(f"upload {upload_id} has an unreadable info object") from exc

    async def _exists(self, object_key: str) -> bool:
        return await self._size_of(object_key) is not None

    async def _size_of(self, object_key: str) -> int | None:
        try:
            head = await self.s3.call("head_object", Key=object_key)
        except S3Error as exc:
            if is_missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    async def progress(self, info: UploadInfo) -> Progress | None:
        """What is safely stored of an unfinished upload, from the listed parts and tail;
        None if the multipart upload the info names is gone."""
        listed, tail = await asyncio.gather(self._list_parts(info), self._head_tail(info.id))
        if listed is None:
            return None
        return layout.progress(listed, part_size_of(info), info.length, tail)

    async def _list_parts(self, info: UploadInfo) -> list[Part] | None:
        multipart = info.backend.get("multipart")
        if not multipart:
            return []
        parts: list[Part] = []
        marker = 0
        while True:
            try:
                page = await self.s3.call(
                    "list_parts",
                    Key=self.key(info.id),
                    UploadId=multipart,
                    MaxParts=layout.LIST_PAGE,
                    PartNumberMarker=marker,
                )
            except S3Error as exc:
                if is_missing(exc):
                    return None
                raise
            for p in page.get("Parts", []):
                parts.append(
                    Part(p["PartNumber"], p["Size"], p["ETag"], p.get("ChecksumCRC32", ""))
                )
            if not page.get("IsTruncated"):
                return parts
            marker = int(page["NextPartNumberMarker"])

    async def _head_tail(self, upload_id: str) -> Tail | None:
        try:
            head = await self.s3.call("head_object", Key=self.key(upload_id, "part"))
        except S3Error as exc:
            if is_missing(exc):
                return None
            raise
        start = head.get("Metadata", {}).get("start", "")
        return Tail(int(start), int(head["ContentLength"])) if start.isdigit() else None

    # -- DataStore ------------------------------------------------------------------------

    async def create(self, spec: UploadSpec) -> S3Upload:
        info = UploadInfo.new(new_id(), spec, hashed=self.checksum)
        planned = spec.length if spec.length is not None else spec.max_length or self.max_length
        info.backend["part_size"] = str(layout.part_size(planned, self.preferred_part))
        await self.write_info(info)
        return S3Upload(self, info, Progress((), None), tail_possible=False)

    async def open(self, upload_id: str) -> S3Upload:
        if not is_valid_id(upload_id):
            raise UploadNotFound(upload_id)
        cached = self.finished.get(upload_id)
        if cached is not None:
            return S3Upload(self, cached, None)
        info = await self._read_info(upload_id)
        if info.is_complete:
            self.finished.remember(info)
            return S3Upload(self, info, None)
        if info.direct:  # its bytes go to S3 from the client, never through here
            return S3Upload(self, info, Progress((), None), tail_possible=False)
        # With no multipart upload, or when the one the info names is gone, the object may
        # be whole: a crash came between writing it and the info saying so, and finish()
        # only has to record it. Without a multipart upload both are asked at once.
        key = self.key(upload_id)
        if info.backend.get("multipart"):
            stored = await self.progress(info)
            size = None if stored is not None else await self._size_of(key)
        else:
            stored, size = await asyncio.gather(self.progress(info), self._size_of(key))
        if size is not None:
            info.offset = size
            upload = S3Upload(self, info, Progress((), None))
            upload.object_written = True
            return upload
        if stored is None:  # aborted under us: start again with a new multipart upload
            del info.backend["multipart"]
            stored = await self.progress(info)
            assert stored is not None
        info.offset = stored.offset
        return S3Upload(self, info, stored)

    async def list_uploads(self, after: str | None = None) -> AsyncIterator[UploadInfo]:
        # Keys list in order, and every id has the same length, so key order is id order;
        # "{id}/" sorts after all of that id's keys ("{id}", "{id}.info", ...: "." < "/").
        start = layout.key(self.prefix, after) + "/" if after else None
        async for group in self._groups(start):
            if "info" in group:
                with contextlib.suppress(StorageError):  # deleted meanwhile, or corrupt
                    yield (await self.open(group["id"])).info

    async def _groups(self, start_after: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Our objects, one dict per upload id ({suffix: LastModified, "id": id}), a page of
        1,000 keys at a time. Keys are listed in order, so an upload's objects are adjacent."""
        token: str | None = None
        current: dict[str, Any] = {"id": None}
        while True:
            params: dict[str, Any] = {
                "Prefix": f"{self.prefix}/" if self.prefix else "",
                "MaxKeys": layout.LIST_PAGE,
            }
            if start_after:
                params["StartAfter"] = start_after
            if token:
                params["ContinuationToken"] = token
            page = await self.s3.call("list_objects_v2", **params)
            for obj in page.get("Contents", []):
                found = layout.split_key(self.prefix, obj["Key"])
                if found is None or not is_valid_id(found[0]):
                    continue
                upload_id, suffix = found
                if upload_id != current["id"]:
                    if current["id"] is not None:
                        yield current
                    current = {"id": upload_id}
                current[suffix or "object"] = obj["LastModified"].timestamp()
            if not page.get("IsTruncated"):
                break
            token = page["NextContinuationToken"]
        if current["id"] is not None:
            yield current

    async def prune(self, now: float) -> int:
        """Drop old tombstones, and leases or release requests of uploads that are gone;
        abort multipart uploads under the prefix that no upload's info names any more."""
        stale: list[str] = []
        known: set[str] = set()
        async for group in self._groups():
            upload_id = group["id"]
            if "info" in group:
                known.add(upload_id)
            if group.get("gone", now) < now - TOMBSTONE_AGE:
                stale.append(self.key(upload_id, "gone"))
            if "info" not in group:
                for suffix in ("lock", "release"):
                    if group.get(suffix, now) < now - STRAY_AGE:
                        stale.append(self.key(upload_id, suffix))
        for start in range(0, len(stale), 1000):
            await self.delete_keys(stale[start : start + 1000])
        return len(stale) + await self._abort_abandoned(known, now)

    async def _abort_abandoned(self, known: set[str], now: float) -> int:
        """Multipart uploads whose upload has no info (a crash between creating one and
        recording it, or an info deleted by hand) would be billed forever: abort those
        older than `abandon_after`. Uploads with an info are expired by the sweep."""
        aborted = 0
        params: dict[str, Any] = {"Prefix": f"{self.prefix}/" if self.prefix else ""}
        while True:
            page = await self.s3.call("list_multipart_uploads", **params)
            for found in page.get("Uploads", []):
                split = layout.split_key(self.prefix, found["Key"])
                upload_id = split[0] if split is not None else ""
                old = found["Initiated"].timestamp() < now - self.abandon_after
                if old and upload_id not in known:
                    with contextlib.suppress(S3Error):
                        await self.s3.call(
                            "abort_multipart_upload", Key=found["Key"], UploadId=found["UploadId"]
                        )
                        aborted += 1
            if not page.get("IsTruncated"):
                return aborted
            params["KeyMarker"] = page["NextKeyMarker"]
            params["UploadIdMarker"] = page["NextUploadIdMarker"]

    async def delete_keys(self, keys: list[str]) -> None:
        if keys:
            await self.s3.call(
                "delete_objects", Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )

    async def concatenate(self, final: Upload, partials: Sequence[Upload]) -> UploadInfo:
        """Build the final object from the partial objects inside S3 (UploadPartCopy), when
        each partial can be a part (all but the last at least 5 MiB, none over 5 GiB);
        otherwise stream their bytes through, which works for any sizes."""
        assert isinstance(final, S3Upload)
        sizes = [p.info.length or 0 for p in partials]
        copyable = all(s >= MIN_PART for s in sizes[:-1]) and all(
            s <= layout.MAX_PART for s in sizes
        )
        if not copyable or not partials:
            for i, partial in enumerate(partials):
                await final.append(final.info.offset, partial.read(), last=i == len(partials) - 1)
            return final.info
        multipart = await final.ensure_multipart()

        async def copy(number: int, partial: Upload) -> Part:
            async with self.slots:
                made = await self.s3.call(
                    "upload_part_copy",
                    Key=self.key(final.info.id),
                    UploadId=multipart,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": self.key(partial.info.id)},
                )
            result = made["CopyPartResult"]
            return Part(number, 0, result["ETag"], result.get("ChecksumCRC32", ""))

        parts = await asyncio.gather(*(copy(n, p) for n, p in enumerate(partials, start=1)))
        await final.complete_multipart(list(parts))
        final.info.offset = sum(sizes)
        return final.info

    async def presign_download(
        self, upload: Upload, expires_in: int, content_type: str, disposition: str
    ) -> str:
        params = {
            "Key": self.key(upload.info.id),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": disposition,
        }
        return await self.s3.run(self.s3.presign, "get_object", params, expires_in)


def object_metadata(info: UploadInfo) -> dict[str, str]:
    """User metadata must be ASCII in S3, so values are percent-encoded (UTF-8)."""
    meta = {"name": quote(info.name, safe="")}
    for k, v in info.metadata.items():
        if k.isascii() and k.replace("-", "").replace("_", "").isalnum():
            meta[f"tus-{k.lower()}"] = quote(v, safe="")
    return meta


class S3Upload(Upload):
    def __init__(
        self,
        store: S3Store,
        info: UploadInfo,
        stored: Progress | None,
        *,
        tail_possible: bool = True,
    ) -> None:
        self._store = store
        self._info = info
        self.stored = stored  # None once complete
        self.object_written = False  # the final object exists (small body or concatenation)
        # A `{id}.part` object may exist: this instance wrote one, or it was opened from
        # storage, where a crash may have left a stale one. Only then has finish() to
        # delete it, which spares one-shot uploads a request.
        self.tail_possible = tail_possible
        self._began: int | None = None  # while an append runs: where it began
        self._writer: PartWriter | None = None  # ...and its writer, once past staging

    def durable_offset(self) -> int:
        """Uploaded parts survive the process; the part buffer does not (a tail object
        the append began from survives until a part holds its bytes). A checksummed chunk
        keeps nothing until it matches, so it promises nothing either."""
        if self._began is None:
            return self._info.offset
        if self._writer is None:
            return self._began
        return max(self._began, self._writer.durable)

    @property
    def info(self) -> UploadInfo:
        return self._info

    @property
    def object_key(self) -> str:
        return self._store.key(self._info.id)

    async def ensure_multipart(self) -> str:
        """The multipart upload's id, started (and recorded in the info) on first need."""
        info = self._info
        multipart = info.backend.get("multipart")
        if multipart:
            return multipart
        params: dict[str, Any] = {
            "Key": self.object_key,
            "Metadata": object_metadata(info),
            "ChecksumAlgorithm": "CRC32",
        }
        if info.content_type:
            params["ContentType"] = info.content_type
        made = await self._store.s3.call("create_multipart_upload", **params)
        info.backend["multipart"] = str(made["UploadId"])
        info.backend["checksum"] = "CRC32"  # parts of uploads made before this send none
        await self._store.write_info(info)
        return info.backend["multipart"]

    async def complete_multipart(self, parts: list[Part]) -> None:
        await self._store.s3.call(
            "complete_multipart_upload",
            Key=self.object_key,
            UploadId=self._info.backend["multipart"],
            MultipartUpload={"Parts": [p.completed() for p in parts]},
        )
        self.object_written = True

    async def put_object(self, buffer: PartBuffer) -> None:
        s3 = self._store.s3
        params: dict[str, Any] = {
            "Key": self.object_key,
            "Body": await buffer.body(),
            "Metadata": object_metadata(self._info),
            "ChecksumCRC32": await buffer.crc32(),
        }
        if self._info.content_type:
            params["ContentType"] = self._info.content_type
        await s3.call("put_object", **params)
        self.object_written = True

    async def append(
        self,
        offset: int,
        chunks: AsyncIterable[bytes],
        verify: ChunkVerifier | None = None,
        *,
        last: bool = False,
    ) -> int:
        info = self._info
        if info.is_complete or self.object_written:
            raise UploadComplete(info.id)
        if info.direct:
            raise StorageError(f"{info.id} is a direct upload: its bytes go straight to S3")
        assert self.stored is not None
        if offset != info.offset:
            raise OffsetMismatch(info.offset, offset)
        self._began = offset
        try:
            return await self._append(offset, chunks, verify, last)
        finally:
            self._began = self._writer = None

    async def _append(
        self,
        offset: int,
        chunks: AsyncIterable[bytes],
        verify: ChunkVerifier | None,
        last: bool,
    ) -> int:
        info = self._info
        assert self.stored is not None
        staged: PartBuffer | None = None
        if verify is not None:
            # All or nothing: the chunk waits in the temp directory until its checksum is
            # known to match, and only then are any of its bytes uploaded.
            staged = await self._stage(offset, chunks, verify)
            chunks = _replay(staged)
        writer = PartWriter(self, self.stored, self._store.hashers.for_append(info))
        if verify is None:
            self._writer = writer
        ended = False
        try:
            await writer.begin()
            async for chunk in chunks:
                if info.length is not None and writer.end + len(chunk) > info.length:
                    await writer.write(chunk[: info.length - writer.end])
                    raise LengthExceeded(info.length)
                await writer.write(chunk)
            if last and info.length is None:
                info.length = writer.end
            ended = True
        finally:
            try:
                # Keep what arrived even when the stream failed: the offset then says how
                # far a resuming client must go back. Awaited to the end by a cancelled
                # handler too (storage/uncancelled.py): its lock must not be released, nor
                # the staged chunk discarded, while the writer still works.
                # Only a stream that ended well may give the upload its final form.
                final = ended and writer.end == info.length
                self.stored = await to_the_end(writer.close(final, keep_tail=not last))
                info.offset = writer.end if self.object_written else self.stored.offset
            finally:
                if staged is not None:
                    await staged.discard()
        if ended and info.offset < writer.end and writer.failure is not None:
            # The body arrived but a part did not get to S3 (after botocore's retries):
            # the offset stays honest, and the client is told to retry, not "done".
            raise writer.failure
        return info.offset

    async def _stage(
        self, offset: int, chunks: AsyncIterable[bytes], verify: ChunkVerifier
    ) -> PartBuffer:
        length = self._info.length
        staged = PartBuffer(self._store.temp, 0)
        pending: list[bytes] = []
        size = unhashed = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if length is not None and offset + size > length:
                    raise LengthExceeded(length)
                await staged.add(chunk)
                pending.append(chunk)
                unhashed += len(chunk)
                if unhashed >= FLUSH:
                    await self._store.run_local(feed, [verify], pending)
                    pending, unhashed = [], 0
            await self._store.run_local(feed, [verify], pending)
            if not verify.matches():
                raise ChecksumMismatch(self._info.id)
        except BaseException:
            await asyncio.shield(staged.discard())
            raise
        return staged

    async def declare_length(self, length: int) -> None:
        if self._info.is_complete:
            raise UploadComplete(self._info.id)
        if length < self._info.offset:
            raise LengthExceeded(length)
        self._info.length = length
        await self._store.write_info(self._info)

    async def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        stop = self._info.offset if end is None else end
        if stop <= start:
            return
        if stop - start <= READ_CHUNK:
            yield await self.read_bytes(start, stop)
            return
        s3 = self._store.s3
        try:
            got = await s3.call(
                "get_object", Key=self.object_key, Range=f"bytes={start}-{stop - 1}"
            )
        except S3Error as exc:
            raise self._read_error(exc) from None
        body = got["Body"]
        try:
            while chunk := await s3.run(body.read, READ_CHUNK):
                yield chunk
        finally:
            await s3.run(body.close)

    async def read_bytes(self, start: int, end: int) -> bytes:
        try:
            return await self._store.s3.get_bytes(self.object_key, f"bytes={start}-{end - 1}")
        except S3Error as exc:
            raise self._read_error(exc) from None

    def _read_error(self, exc: S3Error) -> StorageError:
        if is_missing(exc):
            self._store.finished.forget(self._info.id)
            return UploadNotFound(self._info.id)
        return StorageError(f"reading upload {self._info.id} failed")

    async def finish(self) -> UploadInfo:
        info = self._info
        if info.is_complete:
            return info
        info.settle_length()
        store = self._store
        multipart = info.backend.get("multipart")
        if not self.object_written:
            assert self.stored is not None
            if self.stored.tail is not None or not multipart:
                # The tail (or, for an empty upload, nothing) still has to become the end.
                writer = PartWriter(self, self.stored, None)
                try:
                    await writer.begin()
                except BaseException:
                    await writer.discard()
                    raise
                self.stored = await writer.close(final=True)
            if not self.object_written:
                await self.complete_multipart(list(self.stored.parts))
            elif multipart and not self.stored.parts:
                await self._abort_multiparts()  # put whole: an earlier attempt's parts go
        if info.hashed:
            info.sha256 = (
                store.hashers.digest_if_whole(info.id, info.offset) or await self.hash_object()
            )
        if self.tail_possible:
            await store.delete_keys([store.key(info.id, "part")])  # a tail now in the object
        info.completed = time.time()
        info.expires = None
        info.backend.pop("multipart", None)
        await store.write_info(info)
        self.stored = None
        store.finished.remember(info)
        return info

    async def hash_object(self) -> str:
        """sha256 of the stored object, for uploads no one process saw whole."""
        s3 = self._store.s3
        got = await s3.call("get_object", Key=self.object_key)
        return await s3.run(_hash_body, got["Body"])

    async def mark_finish_announced(self) -> None:
        self._info.finish_announced = True
        await self._store.write_info(self._info)
        self._store.finished.remember(self._info)

    async def delete(self, gone: str | None = None) -> None:
        store, upload_id = self._store, self._info.id
        store.hashers.pop(upload_id)
        store.finished.forget(upload_id)
        if gone is not None:
            tombstone = json.dumps({"reason": gone, "at": time.time()}).encode()
            await store.s3.call("put_object", Key=store.key(upload_id, "gone"), Body=tombstone)
        # Info first, so no reader ever finds info whose bytes are already gone.
        await store.delete_keys([store.key(upload_id, "info")])
        await self._abort_multiparts()
        await store.delete_keys(
            [store.key(upload_id), store.key(upload_id, "part"), store.key(upload_id, "release")]
        )

    async def _abort_multiparts(self) -> None:
        """Abort every multipart upload for this key (a crash may have left more than the
        one the info names), so no parts are left to be billed."""
        s3 = self._store.s3
        listed = await s3.call("list_multipart_uploads", Prefix=self.object_key)
        for found in listed.get("Uploads", []):
            if found["Key"] == self.object_key:
                with contextlib.suppress(S3Error):
                    await s3.call(
                        "abort_multipart_upload", Key=self.object_key, UploadId=found["UploadId"]
                    )


async def _replay(staged: PartBuffer) -> AsyncIterator[bytes]:
    """The staged chunk's bytes again, read back from its spool file."""
    body = await staged.body()
    run = staged.space.run
    while chunk := await run(body.read, FLUSH):
        yield chunk


def _hash_body(body: Any) -> str:
    digest = hashlib.sha256()
    try:
        while chunk := body.read(1 << 20):
            digest.update(chunk)
    finally:
        body.close()
    return digest.hexdigest()
