"""One writer per upload across every process on this host: flock, plus release requests.

flock(2) locks belong to an open file description, so two opens of `{id}.lock` conflict
even inside one process, and the kernel drops a lock when its holder dies (SIGKILL
included): no stale locks after a crash.

A holder can be stuck: a PATCH whose client vanished without closing the connection waits
for bytes forever. So a waiter asks it to let go, as tusd and @tus/server do. In this process
that is a direct call of the holder's `release` callback; for holders in other processes the
waiter creates `{id}.release`, which every holder polls for. The holder's callback stops its
request (keeping the bytes already stored), and the lock passes within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from ..errors import LockTimeout

T = TypeVar("T")
RunBlocking = Callable[..., Awaitable[Any]]

POLL = 0.05  # how often a waiter retries the lock
WATCH = 0.25  # how often a holder looks for a release request from another process


class FileLocker:
    def __init__(self, directory: Path, run_blocking: RunBlocking, timeout: float = 5.0) -> None:
        self._dir = directory
        self._run = run_blocking
        self.timeout = timeout
        self._holders: dict[str, Callable[[], None]] = {}  # this process's holders

    def _paths(self, upload_id: str) -> tuple[Path, Path]:
        return self._dir / f"{upload_id}.lock", self._dir / f"{upload_id}.release"

    @contextlib.asynccontextmanager
    async def lock(self, upload_id: str, release: Callable[[], None]) -> AsyncIterator[None]:
        lock_path, release_path = self._paths(upload_id)
        fd = await self._run(_open_lock, lock_path)
        try:
            await self._acquire(upload_id, fd, release_path)
            self._holders[upload_id] = release
            watcher = asyncio.ensure_future(self._watch(release_path, release))
            try:
                yield
            finally:
                watcher.cancel()
                self._holders.pop(upload_id, None)
                await self._run(fcntl.flock, fd, fcntl.LOCK_UN)
        finally:
            await self._run(os.close, fd)

    async def _acquire(self, upload_id: str, fd: int, release_path: Path) -> None:
        if await self._run(_try_flock, fd):
            return
        holder = self._holders.get(upload_id)
        if holder is not None:
            holder()
        await self._run(release_path.touch)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            while loop.time() < deadline:
                await asyncio.sleep(POLL)
                if await self._run(_try_flock, fd):
                    return
            raise LockTimeout(upload_id)
        finally:
            await self._run(release_path.unlink, True)

    async def _watch(self, release_path: Path, release: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(WATCH)
            if await self._run(release_path.exists):
                release()
                return

    async def remove(self, upload_id: str) -> None:
        """Forget an upload's lock files (after it is deleted)."""
        for path in self._paths(upload_id):
            await self._run(path.unlink, True)


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
