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
import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import TempSpaceFull

RunBlocking = Callable[..., Awaitable[Any]]

FLUSH = 1 << 20  # spooled bytes are written in batches of this size
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
                await asyncio.wait_for(
                    self._freed.wait_for(lambda: self.used + size <= self.cap), self.wait
                )
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
    """The bytes of one part (or tail), gathered until it is uploaded."""

    def __init__(self, space: TempSpace, memory_limit: int) -> None:
        self.space = space
        self._memory_limit = memory_limit
        self._chunks: list[bytes] = []
        self._pending = 0  # bytes in _chunks
        self.size = 0
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._reserved = 0

    @property
    def spooled(self) -> bool:
        return self._file is not None

    async def add(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._chunks.append(chunk)
        self._pending += len(chunk)
        self.size += len(chunk)
        if self._file is None and self.size > self._memory_limit:
            self._path = self.space.new_path()
            self._file = await self.space.run(open, self._path, "w+b")
        if self._file is not None and self._pending >= FLUSH:
            await self._flush()

    async def _flush(self) -> None:
        if not self._pending or self._file is None:
            return
        await self.space.reserve(self._pending)
        self._reserved += self._pending
        chunks, self._chunks, self._pending = self._chunks, [], 0
        await self.space.run(self._file.writelines, chunks)

    async def body(self) -> bytes | BinaryIO:
        """What to upload: the bytes, or the spool file rewound to its start."""
        if self._file is None:
            data = b"".join(self._chunks)
            self._chunks = [data]
            return data
        await self._flush()
        await self.space.run(self._file.flush)
        await self.space.run(self._file.seek, 0)
        return self._file

    async def discard(self) -> None:
        """Free the memory and the temp file; safe to call twice."""
        self._chunks, self._pending = [], 0
        if self._file is not None:
            f, path, self._file = self._file, self._path, None
            await self.space.run(_close_and_remove, f, path)
        if self._reserved:
            reserved, self._reserved = self._reserved, 0
            await self.space.release(reserved)


def _close_and_remove(f: BinaryIO, path: Path | None) -> None:
    f.close()
    if path is not None:
        path.unlink(missing_ok=True)
