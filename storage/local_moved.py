"""Appending a body that moves itself into the file (`MovableBody`, splice from the socket).

The body's bytes never enter the process, so the hashes (the whole file's sha256, a tus
chunk's checksum) read them back from the page cache, where they have just landed: one pool
job at a time per upload, so each hash sees them in order, running beside the next move on
the other core instead of after it. Reading back costs one copy from the page cache, about
a tenth of what sha256 itself costs; the moves save two copies and every Python chunk.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .base import MovableBody
from .uncancelled import to_the_end

HASH_PIECE = 256 << 10  # read back per pread: fits in L2, beside the hash's own work

Blocking = Callable[..., Awaitable[Any]]


class Sink(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...


class Follower:
    """Feeds `sinks` the file's bytes from `start` on, as the move reports them landed."""

    def __init__(self, fd: int, start: int, sinks: Sequence[Sink], run: Blocking) -> None:
        self._fd = fd
        self._done = self._landed = start
        self._sinks = sinks
        self._run = run
        self._job: asyncio.Future[None] | None = None

    def landed(self, n: int) -> None:
        self._landed += n
        if self._sinks and self._job is None:
            self._job = asyncio.ensure_future(self._catch_up())

    async def _catch_up(self) -> None:
        try:
            while self._done < self._landed:
                end = self._landed
                await self._run(_feed, self._fd, self._done, end, self._sinks)
                self._done = end
        finally:
            self._job = None

    async def caught_up(self) -> None:
        """Wait until every byte landed so far has been hashed (to the end, see
        storage/uncancelled.py: the job reads the descriptor the caller closes next)."""
        while self._job is not None:
            await to_the_end(self._job)


def _feed(fd: int, start: int, end: int, sinks: Sequence[Sink]) -> None:
    piece = memoryview(bytearray(min(HASH_PIECE, end - start)))
    position = start
    while position < end:
        n = os.preadv(fd, [piece[: end - position]], position)
        if n == 0:
            raise OSError(f"{end - position} bytes written at {position} are not in the file")
        for sink in sinks:
            sink.update(piece[:n])
        position += n


async def append_moved(
    path: Path,
    offset: int,
    body: MovableBody,
    most: int,
    sinks: Sequence[Sink],
    run: Blocking,
    landed: Callable[[int], None],
) -> None:
    """Move at most `most` bytes of `body` into the file at `offset`, hashing them behind the
    move. `landed(n)` hears of every n bytes in the file as they land, so the caller's count
    is exact when the body fails part-way too; every hash has seen them before this returns
    or raises."""
    fd = await run(os.open, path, os.O_RDWR | os.O_CLOEXEC)
    follower = Follower(fd, offset, sinks, run)

    def wrote(n: int) -> None:
        landed(n)
        follower.landed(n)

    try:
        await body.move_into(fd, offset, most, run, wrote)
    finally:
        try:
            await follower.caught_up()
        finally:
            await to_the_end(run(os.close, fd))
