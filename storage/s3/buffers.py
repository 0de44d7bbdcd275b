"""Parts waiting for their upload: in memory while small, in a bounded temp directory when not.

Memory holds at most `memory_limit` bytes per part; a larger part (a deferred-length upload
sized for 1 TiB gets ~105 MiB parts) is spooled to a file. Spooled bytes count against the
temp directory's cap; a writer that would pass it waits for parts to finish uploading and
free space, so a full disk slows uploads rather than failing them, up to a time limit.

Each running instance spools into its own `spigot-*` directory, flock'ed while the instance
lives. At start an instance removes the directories no live instance holds: the leftovers
of a crash. Instances sharing a temp directory never touch each other's files.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import io
import os
import secrets
import shutil
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

from ..budget import BatchBudget
from ..errors import TempSpaceFull

RunBlocking = Callable[..., Awaitable[Any]]
Body: TypeAlias = "BinaryIO | MemoryFile"  # what botocore is handed to send

FLUSH = 1 << 20  # spooled bytes are written in batches of this size, when few parts fill
# With many at once each gets a share of this: 128 uploads held ~1 MiB of part memory and
# ~1 MiB of unwritten chunks each, over 200 MiB, before they shared it (bench/load.py).
BATCH_BUDGET = 8 << 20
YOUNG_DIR = 60.0  # a directory without its lock file this young may be starting up


class TempSpace:
    def __init__(self, parent: Path, cap: int, run: RunBlocking, wait: float = 30.0) -> None:
        self.parent = parent
        self.cap = cap
        self.wait = wait
        self.run = run
        self.dir: Path | None = None
        self._lock_fd: int | None = None
        self.used = 0
        self.peak = 0
        self._freed = asyncio.Condition()
        # How many bytes each filling part may hold in memory, in all: in its memory, or
        # waiting to be written to its spool file.
        self.batches = BatchBudget(BATCH_BUDGET, FLUSH, 32 << 10)

    async def start(self) -> int:
        """Remove dead instances' leftovers, then claim a directory; returns files removed."""
        claimed: tuple[int, Path, int] = await self.run(_claim, self.parent)
        removed, self.dir, self._lock_fd = claimed
        return removed

    async def close(self) -> None:
        if self.dir is not None:
            directory, self.dir = self.dir, None
            await self.run(shutil.rmtree, directory, True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def new_path(self) -> Path:
        assert self.dir is not None, "TempSpace.start() was not awaited"
        return self.dir / secrets.token_hex(8)

    async def reserve(self, size: int) -> None:
        async with self._freed:
            try:
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that
                # arrives as the wait ends (gh-86296), and a cancelled import then ran on.
                async with asyncio.timeout(self.wait):
                    await self._freed.wait_for(lambda: self.used + size <= self.cap)
            except TimeoutError:
                raise TempSpaceFull(
                    f"temp space is full ({self.used} of {self.cap} bytes in use)"
                ) from None
            self.used += size
            self.peak = max(self.peak, self.used)

    async def release(self, size: int) -> None:
        async with self._freed:
            self.used -= size
            self._freed.notify_all()


def _claim(parent: Path) -> tuple[int, Path, int]:
    parent.mkdir(parents=True, exist_ok=True)
    removed = 0
    for candidate in parent.glob("spigot-*"):
        if candidate.is_dir() and _abandoned(candidate):
            removed += sum(1 for p in candidate.iterdir() if p.name != ".lock")
            shutil.rmtree(candidate, ignore_errors=True)
    mine = parent / f"spigot-{secrets.token_hex(8)}"
    mine.mkdir(mode=0o700)
    fd = os.open(mine / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return removed, mine, fd


def _abandoned(directory: Path) -> bool:
    try:
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return directory.stat().st_mtime < time.time() - YOUNG_DIR
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a live instance holds it
    finally:
        os.close(fd)
    return True


class PartBuffer:
    """The bytes of one part (or tail), gathered until it is uploaded.

    In memory, a part is one bytearray of the part's size, allocated once and filled in
    place: no list of chunks to join at the end (that join briefly held every part twice).
    It is handed to botocore as a file over that memory. Past `memory_limit` the bytes go to
    a spool file.
    """

    def __init__(self, space: TempSpace, memory_limit: int, capacity: int = 0) -> None:
        self.space = space
        self._memory_limit = memory_limit
        self._capacity = capacity if capacity <= memory_limit else 0
        # A part known to outgrow memory is spooled from its first byte: first filling
        # memory_limit and then copying it out held ~1 MiB per upload at once under load.
        self._spool_now = capacity > memory_limit
        self._planned = capacity
        self._memory: bytearray | None = None  # bytes [0:size] while not spooled
        self.size = 0
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._unwritten: list[bytes | memoryview] = []  # spooled bytes not yet in the file
        self._unwritten_size = 0
        self._file_crc = 0  # CRC32 of the bytes in the file, computed as they are written
        self._reserved = 0
        self._budget: BatchBudget | None = space.batches
        self._budget.join()

    @property
    def spooled(self) -> bool:
        return self._file is not None

    async def add(self, chunk: bytes | memoryview) -> None:
        if not chunk:
            return
        end = self.size + len(chunk)
        share = self.space.batches.batch()
        if self._file is None and not self._spool_now and end <= min(self._memory_limit, share):
            self._keep(chunk, end)
            return
        if self._file is None:
            # The whole planned part is reserved before its first byte: reserved as it
            # filled, 256 uploads' parts each took a share of the cap, none could finish,
            # and all waited out the limit (507). Now parts past the cap wait their turn
            # whole, without reading their bodies: backpressure, not a deadlock.
            if self._planned > self._reserved:
                await self.space.reserve(self._planned - self._reserved)
                self._reserved = self._planned
            self._path = self.space.new_path()
            self._file = await self.space.run(open, self._path, "w+b")
            if self._memory is not None:
                memory, self._memory = self._memory, None
                self._unwritten.append(memoryview(memory)[: self.size])
                self._unwritten_size += self.size
        self._unwritten.append(chunk)
        self._unwritten_size += len(chunk)
        self.size = end
        if self._unwritten_size >= share:
            await self._flush()

    def _keep(self, chunk: bytes | memoryview, end: int) -> None:
        if self._memory is None:
            self._memory = bytearray(self._capacity)
        if end <= len(self._memory):
            self._memory[self.size : end] = chunk
        else:  # no capacity planned: the part outgrows memory_limit and will spool
            del self._memory[self.size :]
            self._memory += chunk
        self.size = end

    async def _flush(self) -> None:
        if not self._unwritten or self._file is None:
            return
        if self.size > self._reserved:  # past the plan, or no plan: reserve as it grows
            await self.space.reserve(self.size - self._reserved)
            self._reserved = self.size
        chunks, self._unwritten, self._unwritten_size = self._unwritten, [], 0
        self._file_crc = await self.space.run(_write, self._file, chunks, self._file_crc)

    async def body(self) -> Body:
        """What to upload: a file over the bytes in memory, or the spool file rewound."""
        if self._file is None:
            return MemoryFile(memoryview(self._memory or b"")[: self.size])
        await self._flush()
        await self.space.run(self._file.flush)
        await self.space.run(self._file.seek, 0)
        return self._file

    async def crc32(self) -> str:
        """The base64 CRC32 of every byte. Sent with a part, it has S3 check the bytes on
        arrival; it also spares moto a pure-Python CRC64 of the whole object at completion,
        which it computes when a multipart upload names no algorithm."""
        if self._file is not None:
            await self._flush()
            crc = self._file_crc
        else:
            crc = await self.space.run(zlib.crc32, memoryview(self._memory or b"")[: self.size])
        return base64.b64encode(crc.to_bytes(4, "big")).decode()

    async def discard(self) -> None:
        """Free the memory and the temp file; safe to call twice."""
        if self._budget is not None:
            budget, self._budget = self._budget, None
            budget.leave()
        self._memory, self._unwritten, self._unwritten_size = None, [], 0
        if self._file is not None:
            f, path, self._file = self._file, self._path, None
            await self.space.run(_close_and_remove, f, path)
        if self._reserved:
            reserved, self._reserved = self._reserved, 0
            await self.space.release(reserved)


class MemoryFile(io.RawIOBase):
    """A read-only, seekable file over memory that is already there. Each read copies only
    the block asked for; BytesIO would first copy the whole part. (A bare bytearray would
    also do for botocore, but moto's in-process mock, used by the tests, refuses one.)"""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._view)

    def readinto(self, buffer: Any) -> int:
        piece = self._view[self._pos : self._pos + len(buffer)]
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        piece = bytes(self._view[self._pos : end])
        self._pos += len(piece)
        return piece

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def _write(f: BinaryIO, chunks: list[bytes | memoryview], crc: int) -> int:
    """Spool chunks, and carry their CRC32 on: one pass over the bytes, not a second read."""
    f.writelines(chunks)
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
    return crc


def _close_and_remove(f: BinaryIO, path: Path | None) -> None:
    f.close()
    if path is not None:
        path.unlink(missing_ok=True)
