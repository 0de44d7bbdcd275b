"""Socket-level helpers: the descriptors a splice(2) needs, and a watch for sends the
event loop does not see.

A response written through the transport is watched by the connection guard (a full send
buffer that never drains, server/serving/guard.py). `loop.sendfile()` bypasses the
transport: the kernel sends straight from the file, and a reader that takes nothing
would hold the connection forever. `stalled_sends` watches the socket's unsent bytes
(TIOCOUTQ) instead and aborts the connection when they have not moved for `limit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
import struct
import termios
import time
from collections.abc import AsyncIterator

POLL = 1.0


def duplicate(opened: contextlib.ExitStack, fd: int) -> socket.socket:
    """A socket of our own on `fd`'s connection (os.dup), closed with `opened`: the event
    loop can watch it without clashing with the transport's own registration."""
    return opened.enter_context(socket.socket(fileno=os.dup(fd)))


def pipe(opened: contextlib.ExitStack, size: int) -> tuple[int, int]:
    """A non-blocking pipe for splice(2) of about `size` bytes, closed with `opened`:
    (its read end, its write end)."""
    out, into = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    opened.callback(os.close, out)
    opened.callback(os.close, into)
    with contextlib.suppress(OSError):  # a smaller pipe only means smaller steps
        fcntl.fcntl(into, fcntl.F_SETPIPE_SZ, size)
    return out, into


def unsent(fd: int) -> int:
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])


@contextlib.asynccontextmanager
async def stalled_sends(
    transport: asyncio.BaseTransport | None, limit: float
) -> AsyncIterator[None]:
    sock = transport.get_extra_info("socket") if transport is not None else None
    # (uvloop's transports are not asyncio.WriteTransport instances: no isinstance here)
    if not limit or sock is None:
        yield
        return

    async def watch() -> None:
        last, since = -1, time.monotonic()
        while True:
            await asyncio.sleep(min(POLL, limit / 2))
            try:
                now = unsent(sock.fileno())
            except (OSError, ValueError):
                return  # closed meanwhile
            if now == 0 or now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= limit:
                # Shut the socket down under sendfile, which then fails like any send to a
                # dead peer (aborting the transport mid-sendfile trips asyncio itself).
                # Through a duplicate: uvloop's transport sockets refuse shutdown().
                with (
                    contextlib.suppress(OSError),
                    socket.socket(fileno=os.dup(sock.fileno())) as dup,
                ):
                    dup.shutdown(socket.SHUT_RDWR)
                return

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
