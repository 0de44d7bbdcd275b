"""Local-disk backend: `{id}` holds the bytes, `{id}.info` a JSON sidecar with UploadInfo.

Two rules make it crash-safe without a journal:

- The offset of an unfinished upload is the data file's size, as in tusd's filestore. A write
  the process did not finish is simply not counted, so after SIGKILL and restart the offset
  never claims more than is on disk.
- The sidecar is replaced atomically (write a temp file in `.tmp/`, then rename), so a reader
  sees the old info or the new one, never half of either.

All file I/O runs in the store's own bounded thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import heapq
import json
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, BinaryIO, TextIO, TypeVar

from ..base import ByteSink, DataStore, MovableBody, StoredPart, Upload, UploadInfo, UploadSpec
from ..budget import BatchBudget
from ..direct import DelegatesDirect
from ..errors import (
    ChecksumMismatch,
    LengthExceeded,
    OffsetMismatch,
    StorageError,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    UploadComplete,
    UploadGone,
    UploadNotFound,
)
from ..hashing import ChunkVerifier
from ..ids import is_valid_id, new_id
from ..memo import FinishedInfos, Hashers
from ..uncancelled import to_the_end
from ..writes import append_all
from .direct import LocalDirect
from .fdcache import OpenFiles, memory_backed
from .locking import FileLocker

T = TypeVar("T")

# Network chunks are small (often 16-256 KiB). Gathering them and writing each batch with
# writev in a pool thread, hashed there too, measured 2.3-3.2x faster than one aiofiles
# write per chunk (bench/micro_write.py). 4 MiB batches rather than 1 MiB took a tus PATCH
# from 1.6x to 2.05x @tus/server's throughput (bench/tus_tmpfs.py): the cost is in thread
# hand-offs, not bytes. At most one batch is written while the next one fills, so an upload
# holds at most 8 MiB, and a slow disk slows the reader rather than growing a queue. With
# many uploads at once the batches shrink (budget.py): 128 uploads of the load suite held
# 8 MiB each, ~1 GiB, before they shared 16 MiB.
WRITE_BUFFER = 4 << 20
WRITE_BUDGET = 8 << 20
READ_CHUNK = 256 << 10
UNBOUNDED = 1 << 62  # how far a body of no declared upload length may go
ORPHAN_AGE = 3600.0  # a data file without a sidecar this old is a crashed create
TOMBSTONE_AGE = 7 * 86400.0  # how long a gone upload keeps answering 410 rather than 404
LIST_BATCH = 256  # infos loaded per pool hand-off when listing


class LocalStore(DelegatesDirect, DataStore):
    direct: LocalDirect

    def __init__(
        self,
        root: Path | str,
        *,
        io_threads: int = 16,
        fsync: str = "finish",
        checksum: bool = True,
    ) -> None:
        self.root = Path(root).resolve()
        self.checksum = checksum  # whether new uploads get a sha256 (see UploadInfo.hashed)
        # never; finish: data, info and directory reach the disk before a completion is
        # reported; always: also each append's bytes before it returns.
        self.fsync = fsync
        self._tmp = self.root / ".tmp"
        self._pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="spigot-io")
        self.hashers = Hashers()
        self.batches = BatchBudget(WRITE_BUDGET, WRITE_BUFFER, 32 << 10)
        self._finished = FinishedInfos()
        self.open_files = OpenFiles(in_memory=memory_backed(self.root))
        self.locker = FileLocker(self.root, self.run_blocking)
        self.direct = LocalDirect(self)

    def describe(self) -> str:
        return self.root.as_uri()

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking file I/O in the store's own bounded pool, off the event loop. A
        full disk and a read-only one are storage errors the server can name (507, 503),
        not crashes."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull(f"{self.root}: no space left") from exc
            if exc.errno == errno.EROFS:
                raise StorageReadOnly(f"{self.root} is read-only") from exc
            raise

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.run_blocking(self._prepare_root)

    async def check_ready(self) -> None:
        """ReadyCheck: a file can be made in the store's own temp directory."""
        try:
            await self.run_blocking(self._probe)
        except OSError as exc:
            raise StorageUnavailable(f"{self.root} is not writable: {exc.strerror}") from None

    def _probe(self) -> None:
        with self._open_temp(self._tmp / f"ready-{secrets.token_hex(4)}") as f:
            os.unlink(f.name)

    def _open_temp(self, path: Path) -> TextIO:
        """A new file in `.tmp/`, made again if it has gone: a cleaner of old files
        (systemd-tmpfiles, tmpreaper) removes an idle store's empty `.tmp/`, and every
        upload would then fail until a restart."""
        try:
            return open(path, "w", encoding="utf-8")
        except FileNotFoundError:
            self._tmp.mkdir(exist_ok=True)
            return open(path, "w", encoding="utf-8")

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        for leftover in self._tmp.iterdir():  # temp sidecars from a crash mid-rename
            leftover.unlink(missing_ok=True)
        cutoff = time.time() - ORPHAN_AGE
        with os.scandir(self.root) as entries:
            for entry in entries:
                if (
                    is_valid_id(entry.name)
                    and not (self.root / f"{entry.name}.info").exists()
                    and entry.stat().st_mtime < cutoff
                ):
                    os.unlink(entry.path)

    async def close(self) -> None:
        self.open_files.close()
        self._pool.shutdown(wait=True)

    # -- DirectStore (storage.base): direct.py does the work ------------------------------

    async def write_part(
        self, upload: Upload, number: int, chunks: AsyncIterable[bytes], md5: bytes | None = None
    ) -> StoredPart:
        return await self.direct.write_part(upload, number, chunks, md5)

    # -- paths --------------------------------------------------------------------------

    def data_path(self, upload_id: str) -> Path:
        return self.root / upload_id

    def info_path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.info"

    def pending_path(self, upload_id: str) -> Path:
        """Marks a checksummed append in progress; holds the offset it started from."""
        return self.root / f"{upload_id}.pending"

    def gone_path(self, upload_id: str) -> Path:
        """Tombstone of a terminated or expired upload, so it answers 410, not 404."""
        return self.root / f"{upload_id}.gone"

    def lock(
        self, upload_id: str, release: Callable[[], None]
    ) -> AbstractAsyncContextManager[None]:
        return self.locker.lock(upload_id, release)

    def write_info(self, info: UploadInfo, durable: bool = False) -> None:
        """Replace the sidecar atomically (a full disk leaves the old one whole); with
        `durable`, on disk before this returns. Blocking: call through the pool."""
        tmp = self._tmp / f"{info.id}.{secrets.token_hex(4)}"
        try:
            with self._open_temp(tmp) as f:
                json.dump(info.to_json(), f, separators=(",", ":"))
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, self.info_path(info.id))
            if durable:
                sync_directory(self.root)
        finally:
            tmp.unlink(missing_ok=True)

    def sync_data(self, upload_id: str) -> None:
        fd = os.open(self.data_path(upload_id), os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _load(self, upload_id: str) -> UploadInfo:
        """Read the sidecar; an unfinished upload's offset is its data file's size."""
        try:
            with open(self.info_path(upload_id), encoding="utf-8") as f:
                info = UploadInfo.from_json(json.load(f))
            size = os.stat(self.data_path(upload_id)).st_size
        except FileNotFoundError:
            if self.gone_path(upload_id).exists():
                raise UploadGone(upload_id) from None
            raise UploadNotFound(upload_id) from None
        except (ValueError, TypeError) as exc:
            raise StorageError(f"upload {upload_id} has an unreadable info file") from exc
        if not info.is_complete:
            # Bytes of a checksummed chunk still being verified (or cut off by a crash)
            # are not part of the upload yet.
            info.offset = min(size, _read_pending(self.pending_path(upload_id), size))
        return info

    # -- DataStore ----------------------------------------------------------------------

    async def create(self, spec: UploadSpec) -> LocalUpload:
        info = UploadInfo.new(new_id(), spec, hashed=self.checksum)
        await self.run_blocking(self._create_files, info)
        return LocalUpload(self, info)

    def _create_files(self, info: UploadInfo) -> None:
        # Data file first: a crash between the two leaves an orphan that start() removes,
        # never a sidecar that points at nothing.
        fd = os.open(self.data_path(info.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        self.write_info(info)

    async def open(self, upload_id: str) -> LocalUpload:
        if not is_valid_id(upload_id):
            raise UploadNotFound(upload_id)
        cached = self._finished.get(upload_id)
        if cached is not None:
            return LocalUpload(self, cached)
        info = await self.run_blocking(self._load, upload_id)
        if info.is_complete:
            self.remember_finished(info)
        return LocalUpload(self, info)

    def remember_finished(self, info: UploadInfo) -> None:
        self._finished.remember(info)

    def forget_finished(self, upload_id: str) -> None:
        self._finished.forget(upload_id)
        self.open_files.forget(upload_id)

    async def list_uploads(self, after: str | None = None) -> AsyncIterator[UploadInfo]:
        if after is not None:
            async for info in self._list_after(after):
                yield info
            return
        # One directory iterator, advanced a batch at a time in the pool: memory stays at
        # one batch however many uploads the directory holds. Batches run one after
        # another, never concurrently, so the iterator is never shared between threads.
        # A listing cancelled mid-batch waits for the batch (to_the_end) before it closes
        # the iterator: closing it while a thread still read it crashed the process
        # (closedir under readdir, a segfault in one CI run).
        entries = await to_the_end(self.run_blocking(os.scandir, self.root))
        try:
            while batch := await to_the_end(
                self.run_blocking(self._next_infos, entries, LIST_BATCH)
            ):
                for info in batch:
                    yield info
        finally:
            await to_the_end(self.run_blocking(entries.close))

    async def prune(self, now: float) -> int:
        """Remove tombstones older than TOMBSTONE_AGE, and lock or release files whose
        upload no longer exists (nothing can be waiting on those: opening fails first)."""
        return await self.run_blocking(self._prune, now)

    def _prune(self, now: float) -> int:
        removed = 0
        with os.scandir(self.root) as entries:
            for entry in entries:
                stem, dot, kind = entry.name.partition(".")
                if not dot or not is_valid_id(stem):
                    continue
                stale = (kind == "gone" and entry.stat().st_mtime < now - TOMBSTONE_AGE) or (
                    kind in ("lock", "release", "parts") and not self.info_path(stem).exists()
                )
                if stale and kind == "parts":
                    self.direct.remove_parts(stem)
                    removed += 1
                elif stale:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed

    async def concatenate(self, final: Upload, partials: Sequence[Upload]) -> UploadInfo:
        """Append the partial uploads' bytes to `final` inside the kernel (copy_file_range),
        which shares extents on filesystems that support it (btrfs, XFS) and never passes
        the bytes through this process."""
        assert isinstance(final, LocalUpload)
        paths = [self.data_path(p.info.id) for p in partials]
        size = await self.run_blocking(_copy_files, paths, final.local_path())
        final.info.offset = size
        return final.info

    async def _list_after(self, after: str) -> AsyncIterator[UploadInfo]:
        # A directory has no order, so each batch is the next LIST_BATCH ids after the
        # last, picked from a whole scan with a bounded heap: memory stays at one batch,
        # and a page of a listing costs a few scans of names, not a sort of all of them.
        while True:
            batch, after = await self.run_blocking(self._infos_after, after, LIST_BATCH)
            if not after:
                return
            for info in batch:
                yield info

    def _infos_after(self, after: str, want: int) -> tuple[list[UploadInfo], str]:
        """The infos of the next `want` ids after `after`, and the last of those ids ("" when
        there are none)."""
        with os.scandir(self.root) as entries:
            infos = (e.name[: -len(".info")] for e in entries if e.name.endswith(".info"))
            ids = heapq.nsmallest(want, (i for i in infos if i > after and is_valid_id(i)))
        found: list[UploadInfo] = []
        for upload_id in ids:
            with contextlib.suppress(StorageError):  # deleted meanwhile, or corrupt
                found.append(self._load(upload_id))
        return found, ids[-1] if ids else ""

    def _next_infos(self, entries: Iterator[os.DirEntry[str]], want: int) -> list[UploadInfo]:
        """Up to `want` infos from the iterator; an empty list only when it is exhausted."""
        found: list[UploadInfo] = []
        for entry in entries:
            upload_id = entry.name.removesuffix(".info")
            if upload_id == entry.name or not is_valid_id(upload_id):
                continue
            with contextlib.suppress(StorageError):  # deleted meanwhile, or corrupt
                found.append(self._load(upload_id))
            if len(found) >= want:
                break
        return found


class LocalUpload(Upload):
    def __init__(self, store: LocalStore, info: UploadInfo) -> None:
        self._store = store
        self._info = info
        # While an append runs: where it began, its writer (the chunk path), and whether
        # it is all or nothing (a checksummed chunk keeps nothing until it matches).
        self._began: int | None = None
        self._writer: _CoalescingWriter | None = None
        self._whole_or_nothing = False

    def durable_offset(self) -> int:
        """Bytes the OS has accepted survive the process (the moved path counts them into
        info.offset as they land); gathered ones do not, nor a checksummed chunk's."""
        if self._began is None:
            return self._info.offset
        if self._whole_or_nothing:
            return self._began
        if self._writer is not None:
            return self._began + self._writer.written
        return self._info.offset

    @property
    def info(self) -> UploadInfo:
        return self._info

    def local_path(self) -> Path:
        return self._store.data_path(self._info.id)

    async def open_file(self) -> BinaryIO:
        """The data file opened for reading (sendfile); UploadNotFound if it is gone."""
        try:
            return await self._store.run_blocking(open, self.local_path(), "rb")
        except FileNotFoundError:
            self._store.forget_finished(self._info.id)
            raise UploadNotFound(self._info.id) from None

    async def append(
        self,
        offset: int,
        chunks: AsyncIterable[bytes],
        verify: ChunkVerifier | None = None,
        *,
        last: bool = False,
    ) -> int:
        # Callers that lock (the tus routes) hold the upload's lock here, so a `.pending`
        # marker found on open is a crash's leftover and is rolled back.
        info = self._info
        if info.is_complete:
            raise UploadComplete(info.id)
        store = self._store
        upload_id = info.id
        marker = store.pending_path(upload_id)
        pending = marker if verify is not None else None
        fd, size = await store.run_blocking(
            _open_for_append, self.local_path(), marker, offset, verify is not None
        )
        info.offset = size
        hasher = None
        started = False  # only a chunk this call began writing may be rolled back
        try:
            if offset != size:
                raise OffsetMismatch(size, offset)
            started = True
            hasher = store.hashers.for_append(info)
            sinks: list[ByteSink] = [sink for sink in (hasher, verify) if sink is not None]
            self._began, self._whole_or_nothing = offset, verify is not None
            if isinstance(chunks, MovableBody) and chunks.movable():
                await self._append_moved(fd, offset, chunks, sinks)
            else:
                await self._append_chunks(fd, offset, chunks, sinks)
            if verify is not None and not verify.matches():
                raise ChecksumMismatch(upload_id)
        except BaseException:
            if pending is not None and started:  # a checksummed chunk is all or nothing
                store.hashers.pop(upload_id)
                await to_the_end(store.run_blocking(_roll_back, fd, offset, pending))
                info.offset = offset
            raise
        finally:
            self._began, self._writer = None, None
            if store.fsync == "always":
                with contextlib.suppress(OSError):
                    await store.run_blocking(os.fsync, fd)
            await store.run_blocking(os.close, fd)
        if pending is not None:
            await store.run_blocking(pending.unlink, True)
        return info.offset

    async def _append_chunks(
        self, fd: int, offset: int, chunks: AsyncIterable[bytes], sinks: list[ByteSink]
    ) -> None:
        info = self._info
        writer = self._writer = _CoalescingWriter(fd, self._store, sinks)
        try:
            async for chunk in chunks:
                if info.length is not None and offset + writer.end + len(chunk) > info.length:
                    await writer.write(chunk[: info.length - offset - writer.end])
                    raise LengthExceeded(info.length)
                await writer.write(chunk)
        finally:
            # Keep what arrived, even when the stream failed: the offset then says
            # exactly how far a resuming client must go back.
            await writer.close()
            info.offset = offset + writer.written

    async def _append_moved(
        self, fd: int, offset: int, body: MovableBody, sinks: list[ByteSink]
    ) -> None:
        """The body takes itself into the file (server/bodies/direct.py); info.offset
        follows every byte, so it is exact when the body fails part-way too."""
        info = self._info
        most = info.length - offset if info.length is not None else UNBOUNDED

        def landed(n: int) -> None:
            info.offset += n

        # fd is O_APPEND and offset its end, so the body's pwrites land where they say.
        await body.move_into(fd, offset, most, self._store.run_blocking, landed, sinks)
        if body.more:
            raise LengthExceeded(info.length or 0)

    async def declare_length(self, length: int) -> None:
        if self._info.is_complete:
            raise UploadComplete(self._info.id)
        if length < self._info.offset:
            raise LengthExceeded(length)
        self._info.length = length
        await self._store.run_blocking(self._store.write_info, self._info)

    async def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        store = self._store
        stop = self._info.offset if end is None else end
        if stop - start <= READ_CHUNK:
            if stop > start:
                yield await self.read_bytes(start, stop)
            return
        f = await self.open_file()
        try:
            pos = start
            while pos < stop:
                chunk = await store.run_blocking(
                    os.pread, f.fileno(), min(READ_CHUNK, stop - pos), pos
                )
                if not chunk:
                    raise StorageError(f"upload {self._info.id} is shorter than its offset")
                pos += len(chunk)
                yield chunk
        finally:
            await store.run_blocking(f.close)

    async def read_bytes(self, start: int, end: int) -> bytes:
        if end - start > READ_CHUNK:
            return await super().read_bytes(start, end)
        return await self._read_small(start, end - start)

    async def _read_small(self, start: int, size: int) -> bytes:
        """Small ranges are the hot path of segmented and random-access clients.

        A finished file's bytes come straight from the page cache when they are there (see
        storage/local/fdcache.py); otherwise one hand-off to the pool opens, reads and closes.
        """
        upload_id = self._info.id
        open_files = self._store.open_files
        cacheable = self._info.is_complete and open_files.enabled
        try:
            if cacheable:
                cached = open_files.try_read(upload_id, start, size)
                if cached is not None:
                    return cached
            keep = cacheable and not open_files.has(upload_id)
            data, fd = await self._store.run_blocking(self._pread, start, size, keep)
        except FileNotFoundError:
            self._store.forget_finished(upload_id)  # on the loop: never from a thread
            raise UploadNotFound(upload_id) from None
        if fd is not None:
            open_files.adopt(upload_id, fd)
        return data

    def _pread(self, start: int, size: int, keep_open: bool) -> tuple[bytes, int | None]:
        """Blocking, in the pool. Raises FileNotFoundError for the caller to handle."""
        fd = os.open(self.local_path(), os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, size, start)
            if len(data) != size:
                raise StorageError(f"upload {self._info.id} is shorter than its offset")
        except BaseException:
            os.close(fd)
            raise
        if keep_open:
            return data, fd
        os.close(fd)
        return data, None

    async def finish(self) -> UploadInfo:
        info = self._info
        if info.is_complete:
            return info
        info.settle_length()
        if info.hashed:
            info.sha256 = self._store.hashers.digest_if_whole(
                info.id, info.offset
            ) or await self._store.run_blocking(_hash_file, self.local_path())
        info.completed = time.time()
        info.expires = None
        durable = self._store.fsync != "never"
        if durable:
            await self._store.run_blocking(self._store.sync_data, info.id)
        await self._store.run_blocking(self._store.write_info, info, durable)
        self._store.remember_finished(info)
        return info

    async def mark_finish_announced(self) -> None:
        info = dataclasses.replace(self._info, finish_announced=True)
        await self._store.run_blocking(self._store.write_info, info)
        self._info = info
        self._store.remember_finished(info)

    async def delete(self, gone: str | None = None) -> None:
        self._store.hashers.pop(self._info.id)
        self._store.forget_finished(self._info.id)
        await self._store.run_blocking(self._remove_files, gone)
        await self._store.locker.remove(self._info.id)

    def _remove_files(self, gone: str | None) -> None:
        store, upload_id = self._store, self._info.id
        if gone is not None:
            store.gone_path(upload_id).write_text(
                json.dumps({"reason": gone, "at": time.time()}), encoding="utf-8"
            )
        # Sidecar first, so no reader ever finds info whose bytes are already gone.
        store.info_path(upload_id).unlink(missing_ok=True)
        self.local_path().unlink(missing_ok=True)
        store.pending_path(upload_id).unlink(missing_ok=True)
        store.direct.remove_parts(upload_id)


class _CoalescingWriter:
    """Gathers chunks into writes of the store's batch size, done in the pool one at a time."""

    def __init__(self, fd: int, store: LocalStore, sinks: list[ByteSink]) -> None:
        self._fd = fd
        self._store = store
        self._budget = store.batches
        self._budget.join()
        self._sinks = sinks
        self._chunks: list[bytes] = []
        self.pending = 0  # bytes gathered, not yet handed to a write
        self.written = 0  # bytes the OS has accepted
        self._inflight: asyncio.Future[int] | None = None
        self._inflight_size = 0

    @property
    def end(self) -> int:
        """Bytes taken so far, written or not, counted from where this append began."""
        return self.written + self.pending + self._inflight_size

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._chunks.append(chunk)
        self.pending += len(chunk)
        if self.pending >= self._budget.batch():
            await self._submit()
            if self._budget.shared:  # no next batch fills while this one is written
                await self._wait()

    async def _submit(self) -> None:
        await self._wait()
        chunks, self._chunks = self._chunks, []
        self._inflight_size, self.pending = self.pending, 0
        self._inflight = asyncio.ensure_future(
            self._store.run_blocking(_write_all, self._fd, chunks, self._sinks)
        )

    async def _wait(self) -> None:
        # To the end (storage/uncancelled.py): a cancelled handler closes the descriptor
        # next, which must not happen while a thread still writes through it.
        if self._inflight is not None:
            try:
                self.written += await to_the_end(self._inflight)
            finally:
                self._inflight, self._inflight_size = None, 0

    async def close(self) -> None:
        """Write out everything gathered, even when called because the stream failed."""
        # To the end: if the handler is being cancelled, the bytes already received must
        # still reach the file before the offset is reported, and before the caller closes
        # the descriptor (asyncio.shield alone would let the cancellation through at once).
        try:
            if self._chunks:
                await to_the_end(self._submit())
            await to_the_end(self._wait())
        finally:
            self._budget.leave()


def _open_for_append(path: Path, marker: Path, offset: int, mark: bool) -> tuple[int, int]:
    """Open for appending: roll back a checksummed chunk a crash left unverified, then,
    for a new checksummed chunk, record where it starts (atomically) before any byte."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except FileNotFoundError:
        raise UploadNotFound(path.name) from None
    size = os.fstat(fd).st_size
    start = _read_pending(marker, size)
    if start < size:
        os.ftruncate(fd, start)
        size = start
    marker.unlink(missing_ok=True)
    if mark and offset == size:
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(str(offset), encoding="ascii")
        os.replace(tmp, marker)
    return fd, size


def _read_pending(path: Path, default: int) -> int:
    try:
        return int(path.read_text(encoding="ascii"))
    except (FileNotFoundError, ValueError):
        return default


def _roll_back(fd: int, offset: int, pending: Path) -> None:
    os.ftruncate(fd, offset)
    pending.unlink(missing_ok=True)


def _write_all(fd: int, chunks: list[bytes], sinks: list[ByteSink]) -> int:
    """Write the gathered chunks (storage/writes.py says in what pieces), then feed the
    hashes."""
    total = append_all(fd, chunks)
    for sink in sinks:
        for chunk in chunks:
            sink.update(chunk)
    return total


def _copy_files(sources: list[Path], dest: Path) -> int:
    # Explicit offsets: copy_file_range refuses a destination opened with O_APPEND.
    with open(dest, "r+b") as out:
        pos = os.fstat(out.fileno()).st_size
        for source in sources:
            with open(source, "rb") as src:
                read_at, left = 0, os.fstat(src.fileno()).st_size
                while left:
                    copied = os.copy_file_range(src.fileno(), out.fileno(), left, read_at, pos)
                    if copied == 0:
                        raise StorageError(f"{source.name} shrank while being concatenated")
                    read_at += copied
                    pos += copied
                    left -= copied
        return pos


def _hash_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sync_directory(path: Path) -> None:
    """fsync a directory, so a rename in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
