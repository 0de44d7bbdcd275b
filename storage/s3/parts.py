"""One append's bytes cut into S3 multipart parts, each uploaded while the next one fills.

The store (store.py) decides where an append starts and what it ends as; this is the
stream in between: part k+1 fills while part k uploads, at most the instance's
`concurrency` uploads are in flight, and what is left at the end becomes the last part,
the whole object, or the tail that goes in front of the next append.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING, Any

from ..base import UploadInfo
from ..hashing import StreamHasher
from . import layout
from .buffers import PartBuffer
from .layout import Part, Progress, Tail

if TYPE_CHECKING:
    from .store import S3Upload

READ_CHUNK = 512 << 10


def part_size_of(info: UploadInfo) -> int:
    return int(info.backend.get("part_size", layout.MIN_PART))


def feed(sinks: list[Any], chunks: list[bytes]) -> None:
    """Every chunk to every hasher, in a pool thread (hashlib lets go of the GIL)."""
    for sink in sinks:
        for chunk in chunks:
            sink.update(chunk)


class PartWriter:
    """Cuts one append's stream into parts and uploads them while the next one fills.

    Part k+1 starts filling while part k uploads; at most the store's `concurrency` uploads
    are in flight across the instance, and a writer that needs another slot waits, which
    stops it reading its request body: backpressure, not a queue.
    """

    def __init__(self, upload: S3Upload, stored: Progress, hasher: StreamHasher | None) -> None:
        self._upload = upload
        self._store = upload._store
        self._size = part_size_of(upload.info)
        self._done: list[Part] = list(stored.parts)
        self._tail = stored.tail
        self._number = stored.next_number  # the number the buffer will be uploaded as
        self._buffer_start = stored.parts_size
        self.end = stored.offset  # upload offset after every byte taken so far
        self._buffer = self._new_buffer()
        self._inflight: deque[asyncio.Task[Part]] = deque()
        self._failed: BaseException | None = None
        self._sinks = [hasher] if hasher is not None else []
        self._unhashed: list[bytes] = []
        self._unhashed_size = 0

    def _new_buffer(self) -> PartBuffer:
        """The next part's buffer, planned for the bytes it will hold where that is known:
        a small upload's only part waits in memory, a full-size part on disk."""
        length = self._upload.info.length
        capacity = self._size
        if length is not None:
            capacity = max(0, min(capacity, length - self._buffer_start))
        return PartBuffer(self._store.temp, self._store.memory_limit, capacity)

    async def begin(self) -> None:
        """Put the stored tail in front of the new bytes. Its object stays until what
        replaces it is stored: a crash before then leaves the tail valid and the offset where
        it was, and once a part holding its bytes is up, the run of parts passes the tail's
        start and the listing no longer counts it (layout.progress)."""
        if self._tail is None:
            return
        s3, tail_key = self._store.s3, self._store.key(self._upload.info.id, "part")
        got = await s3.call("get_object", Key=tail_key)
        body = got["Body"]
        try:
            while chunk := await s3.run(body.read, READ_CHUNK):
                await self._buffer.add(chunk)
        finally:
            await s3.run(body.close)

    @property
    def failure(self) -> BaseException | None:
        return self._failed

    @property
    def durable(self) -> int:
        """The upload's bytes in parts S3 has, with no gap before them: what a restart finds
        when it lists the parts."""
        size = sum(part.size for part in self._done)
        for task in self._inflight:
            if not task.done() or task.cancelled() or task.exception() is not None:
                break
            size += task.result().size
        return size

    async def write(self, chunk: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        self.end += len(chunk)
        if self._sinks:
            self._unhashed.append(chunk)
            self._unhashed_size += len(chunk)
            if self._unhashed_size >= self._store.temp.batches.batch():
                await self._hash_pending()
        if self._buffer.size + len(chunk) < self._size:
            await self._buffer.add(chunk)
            return
        view = memoryview(chunk)
        while len(view):
            room = self._size - self._buffer.size
            piece, view = view[:room], view[room:]
            await self._buffer.add(piece)
            if self._buffer.size == self._size:
                await self._submit()

    async def _hash_pending(self) -> None:
        pending, self._unhashed, self._unhashed_size = self._unhashed, [], 0
        await self._store.run_local(feed, self._sinks, pending)

    async def _submit(self) -> None:
        multipart = await self._upload.ensure_multipart()
        await self._store.slots.acquire()
        buffer = self._buffer
        number = self._number
        self._number += 1
        self._buffer_start += buffer.size
        self._buffer = self._new_buffer()
        task = asyncio.ensure_future(self._upload_part(multipart, number, buffer))
        task.add_done_callback(self._note_failure)
        self._inflight.append(task)
        while self._inflight and self._inflight[0].done() and not self._failed:
            self._done.append(self._inflight.popleft().result())

    def _note_failure(self, task: asyncio.Task[Part]) -> None:
        if not task.cancelled() and task.exception() is not None and self._failed is None:
            self._failed = task.exception()

    async def _upload_part(self, multipart: str, number: int, buffer: PartBuffer) -> Part:
        try:
            body = await buffer.body()
            s3 = self._store.s3
            checksum: dict[str, Any] = {}
            if self._upload.info.backend.get("checksum") == "CRC32":
                checksum["ChecksumCRC32"] = await buffer.crc32()
            made = await s3.call(
                "upload_part",
                Key=self._upload.object_key,
                UploadId=multipart,
                PartNumber=number,
                Body=body,
                ContentLength=buffer.size,
                **checksum,
            )
            return Part(number, buffer.size, str(made["ETag"]), checksum.get("ChecksumCRC32", ""))
        finally:
            await buffer.discard()
            self._store.slots.release()

    async def discard(self) -> None:
        """Give up before any part: free the buffer (memory, spool file, budget share)."""
        await self._buffer.discard()

    async def close(self, final: bool, keep_tail: bool = True) -> Progress:
        """Wait for the parts in flight, then store what is left: as the last part (or the
        whole object) when the upload ends here, else as the tail (unless `keep_tail` is
        off: a failed one-shot body is removed anyway). Returns what is stored."""
        try:
            if self._unhashed:
                await self._hash_pending()
            for task in self._inflight:
                with contextlib.suppress(BaseException):
                    await task
            for task in self._inflight:
                if task.cancelled() or task.exception() is not None:
                    if not task.cancelled() and self._failed is None:
                        self._failed = task.exception()
                    break  # later parts are early: they count once this gap is filled
                self._done.append(task.result())
            self._inflight.clear()
            ok = len(self._done) == self._number - 1
            done = tuple(self._done)
            if not ok:
                return Progress(done, self._tail_if_still_valid(done))
            buffer = self._buffer
            if final and not self._done:
                await self._upload.put_object(buffer)
            elif final and buffer.size:
                await self._store.slots.acquire()
                self._buffer = self._new_buffer()
                multipart = await self._upload.ensure_multipart()
                self._done.append(await self._upload_part(multipart, self._number, buffer))
            elif buffer.size and keep_tail:
                self._upload.tail_possible = True
                await self._store.s3.call(
                    "put_object",
                    Key=self._tail_key,
                    Body=await buffer.body(),
                    Metadata={"start": str(self._buffer_start)},
                )  # replaces the tail begin() read, if any
                return Progress(done, Tail(self._buffer_start, buffer.size))
            elif self._tail is not None and not final:
                await self._store.delete_keys([self._tail_key])  # parts now hold its bytes
            return Progress(tuple(self._done), None)
        finally:
            await self._buffer.discard()

    @property
    def _tail_key(self) -> str:
        return self._store.key(self._upload.info.id, "part")

    def _tail_if_still_valid(self, done: tuple[Part, ...]) -> Tail | None:
        """After a failed part: the tail begin() read still counts if no part got past it."""
        tail = self._tail
        return tail if tail is not None and sum(p.size for p in done) == tail.start else None
