"""Taking a large request body straight from its socket in a pool thread, past aiohttp.

Through aiohttp a body arrives in chunks of about 64 KiB, each a trip through the parser,
the event loop, a queue and a thread hand-off to reach the file. Here one pool thread
reads the socket itself into a 1 MiB buffer of its own (`recv_into`), writes the bytes at
their offset (`pwrite`) and feeds the store's hashes while they are still in the CPU's
cache: two copies of each byte, the fewest for a server that hashes what it stores
without mapping the file (a shared writable mapping dies of SIGBUS when the disk fills).

This replaced splice(2) (socket -> pipe -> file inside the kernel, sha256 reading the
bytes back from the page cache in a second thread). The read-back cost as much as the
copy splice saved, and the page cache lookups more: on tmpfs, in 8 alternating 512 MiB
PUTs, this cost 1.28 CPU-s per GiB against splice's 1.59, at the same throughput
(bench/RESULTS.md, 2026-12-02).

The hash runs in the receiving thread, after the write, not beside it. Handing each piece
to a second thread (two buffers, one filling while the other is hashed) measured 5% more
throughput for 13% more CPU per GiB: the hash then reads bytes another core has just
written. On a shared two-core machine, what a byte costs is what sets the pace.

Each step takes what the socket has at hand (up to STEP) without waiting for more: the
wait for the next bytes is the event loop's, bounded by --network-timeout like any read
of a body. The buffers are per thread, so their memory is bounded by the pool's size
(16 MiB at most), whatever the number of uploads.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Sequence
from typing import Literal

from storage.base import ByteSink
from storage.writes import pwritten

from ..netio import duplicate

Step = Literal["full", "dry", "closed"]

MOVE_MIN = 1 << 20  # smaller bodies keep their connection: it outweighs what a take saves
STEP = 4 << 20  # at most this much per hand-off to a thread
PIECE = 1 << 20  # per recv_into: fits in L2 with room for the hash's own work

_buffers = threading.local()


def _buffer() -> memoryview:
    """This thread's receive buffer, made on its first take."""
    buffer: memoryview | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = memoryview(bytearray(PIECE))
    return buffer


class ClientFailed(Exception):
    """Reading the client's socket failed (a reset, a timeout of the kernel's own)."""


class DirectReceiver:
    """Reads one socket into files, with its own duplicate of the socket (the event loop
    watches it while the transport is paused).

    `moved` counts the bytes that have reached a file, and is exact even when a step fails
    half-way: the store keeps those bytes and reports that offset. Every sink has seen
    exactly those bytes, in order.
    """

    def __init__(self, sock_fd: int) -> None:
        with contextlib.ExitStack() as opened:
            self._socket = duplicate(opened, sock_fd)
            self._close = opened.pop_all().close
        self.moved = 0
        self.received = 0  # taken from the socket: moved, or lost to a failed write

    @property
    def socket_fd(self) -> int:
        return self._socket.fileno()

    def close(self) -> None:
        self._close()

    def write(
        self, fd: int, position: int, data: bytes | memoryview, sinks: Sequence[ByteSink]
    ) -> None:
        """(In a pool thread.) Write bytes at `position`, then show them to the sinks."""
        for piece in pwritten(fd, data, position):
            for sink in sinks:
                sink.update(piece)
            self.moved += len(piece)

    def step(self, fd: int, position: int, most: int, sinks: Sequence[ByteSink]) -> Step:
        """(In a pool thread.) Take up to `most` bytes into `fd` at `position`, as long as the
        socket has them at hand: "full" when all are taken, "dry" when the socket had no
        more yet, "closed" when the client closed its side."""
        buffer = _buffer()
        end = self.moved + most
        while self.moved < end:
            try:
                n = self._socket.recv_into(
                    buffer, min(end - self.moved, PIECE), socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return "dry"
            except OSError as exc:
                raise ClientFailed(exc) from exc
            if n == 0:
                return "closed"
            self.received += n
            self.write(fd, position, buffer[:n], sinks)
            position += n
        return "full"
