"""Moving a request body from its socket into a file inside the kernel, with splice(2).

Taken through Python, every byte of a body is copied three times in this process: from the
socket into a bytes object, from there into the file's page cache, and once more as sha256
reads it. splice moves the socket's pages into a pipe and from the pipe into the file, so the
bytes never enter the process; the store then hashes them from the page cache in another
thread while the next step moves (storage/local_moved.py). On tmpfs that took a 512 MiB PUT
from 398 to 484 MiB/s and a tus PATCH from 347 to 509 MiB/s (bench/RESULTS.md, 2026-12-02).

Each step runs in the store's thread pool, since a write into a file can block on the disk,
and takes what the socket has (up to STEP) without waiting for more: the wait for the next
bytes is the event loop's, bounded by --network-timeout like any read of a body.
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Literal

from ..netio import duplicate, pipe

Step = Literal["full", "dry", "closed"]

MOVE_MIN = 1 << 20  # smaller bodies keep their connection: it outweighs what a move saves
STEP = 4 << 20  # at most this much per hand-off to a thread
PIPE_SIZE = 1 << 20  # Linux's default pipe-max-size: the most one splice takes
_FLAGS = getattr(os, "SPLICE_F_MOVE", 0)
_NONBLOCK = getattr(os, "SPLICE_F_NONBLOCK", 0)
# What a filesystem without splice support says; its bytes are then copied instead.
_UNSPLICEABLE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


class ClientFailed(Exception):
    """Reading the client's socket failed (a reset, a timeout of the kernel's own)."""


class Mover:
    """A splice from one socket into files, with its own duplicate of the socket (the
    event loop watches it while the transport is paused) and a pipe between them.

    `moved` counts the bytes that have reached a file, and is exact even when a step fails
    half-way: the store keeps those bytes and reports that offset.
    """

    def __init__(self, sock_fd: int) -> None:
        with contextlib.ExitStack() as opened:
            self._socket = duplicate(opened, sock_fd)
            self._pipe_out, self._pipe_in = pipe(opened, PIPE_SIZE)
            self._close = opened.pop_all().close
        self.moved = 0
        self.received = 0  # taken from the socket: moved, or lost in the pipe to an error
        self.copying = False  # the filesystem refused splice: read the pipe and write

    @property
    def socket_fd(self) -> int:
        return self._socket.fileno()

    def close(self) -> None:
        self._close()

    def write(self, fd: int, position: int, data: bytes) -> None:
        """(In a pool thread.) Write bytes already read (aiohttp's buffer) at `position`."""
        rest = memoryview(data)
        while rest:
            wrote = os.pwrite(fd, rest, position)
            rest = rest[wrote:]
            position += wrote
            self.moved += wrote

    def step(self, fd: int, position: int, most: int) -> Step:
        """(In a pool thread.) Move up to `most` bytes into `fd` at `position`, as long as the
        socket has them at hand: "full" when all are moved, "dry" when the socket had no
        more yet, "closed" when the client closed its side."""
        end = self.moved + most
        while self.moved < end:
            try:
                n = os.splice(
                    self._socket.fileno(),
                    self._pipe_in,
                    min(end - self.moved, PIPE_SIZE),
                    flags=_FLAGS | _NONBLOCK,
                )
            except BlockingIOError:
                return "dry"
            except OSError as exc:
                raise ClientFailed(exc) from exc
            if n == 0:
                return "closed"
            self.received += n
            self._drain(fd, position, n)
            position += n
        return "full"

    def _drain(self, fd: int, position: int, n: int) -> None:
        # The pipe now holds n bytes; all of them go to the file before anything else.
        done = 0
        while done < n:
            if not self.copying:
                try:
                    wrote = os.splice(
                        self._pipe_out, fd, n - done, offset_dst=position + done, flags=_FLAGS
                    )
                except OSError as exc:
                    if exc.errno not in _UNSPLICEABLE:
                        raise
                    self.copying = True
                    continue
                done += wrote
                self.moved += wrote
                continue
            data = os.read(self._pipe_out, n - done)
            self.write(fd, position + done, data)
            done += len(data)
